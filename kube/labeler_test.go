package kube

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
)

const ns = "storage"

func pod(name string, labels map[string]string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels}}
}

// hasLeaderLabel reads a pod's leader label from the (fake) API.
func hasLeaderLabel(t *testing.T, cs *fake.Clientset, name string) bool {
	t.Helper()
	p, err := cs.CoreV1().Pods(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get pod %s: %v", name, err)
	}
	return p.Labels[RoleLabel] == LeaderValue
}

func newLabeler(t *testing.T, cs *fake.Clientset, name string, leader *atomic.Bool) *Labeler {
	t.Helper()
	l, err := NewLabeler(LabelerConfig{Client: cs, Namespace: ns, Pod: name, IsLeader: leader.Load,
		Resync: 20 * time.Millisecond, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestReconcile(t *testing.T) {
	tests := []struct {
		name      string
		labels    map[string]string
		leader    bool
		want      bool
		wantPatch bool
	}{
		{"becomes leader", map[string]string{"app": "dfs"}, true, true, true},
		{"stays leader", map[string]string{RoleLabel: LeaderValue}, true, true, false},
		{"loses leadership", map[string]string{"app": "dfs", RoleLabel: LeaderValue}, false, false, true},
		{"follower without label", map[string]string{"app": "dfs"}, false, false, false},
		{"no labels at all", nil, true, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(pod("dfs-0", tc.labels))
			var leader atomic.Bool
			leader.Store(tc.leader)
			if err := newLabeler(t, cs, "dfs-0", &leader).Reconcile(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := hasLeaderLabel(t, cs, "dfs-0"); got != tc.want {
				t.Errorf("leader label = %v, want %v", got, tc.want)
			}
			patches := 0
			for _, a := range cs.Actions() {
				if a.GetVerb() == "patch" {
					patches++
					if pt := a.(k8stesting.PatchAction).GetPatchType(); pt != types.MergePatchType {
						t.Errorf("patch type %s, want a merge patch", pt)
					}
				}
				if v := a.GetVerb(); v != "get" && v != "patch" {
					t.Errorf("verb %q beyond the chart's Role (get, patch)", v)
				}
				if r := a.GetResource().Resource; r != "pods" {
					t.Errorf("resource %q beyond the chart's Role (pods)", r)
				}
			}
			if (patches > 0) != tc.wantPatch {
				t.Errorf("%d patches, want a patch: %v", patches, tc.wantPatch)
			}
			// Other labels survive.
			p, _ := cs.CoreV1().Pods(ns).Get(context.Background(), "dfs-0", metav1.GetOptions{})
			if tc.labels["app"] != "" && p.Labels["app"] != "dfs" {
				t.Errorf("labels %v: the app label was lost", p.Labels)
			}
		})
	}
}

// waitLabel polls until the pod's leader label is want.
func waitLabel(t *testing.T, cs *fake.Clientset, name string, want bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for hasLeaderLabel(t, cs, name) != want {
		if time.Now().After(deadline) {
			t.Fatalf("pod %s: leader label never became %v", name, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRunFollowsLeadershipBetweenPods(t *testing.T) {
	cs := fake.NewClientset(pod("dfs-0", nil), pod("dfs-1", nil))
	var lead0, lead1 atomic.Bool
	l0, l1 := newLabeler(t, cs, "dfs-0", &lead0), newLabeler(t, cs, "dfs-1", &lead1)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for _, l := range []*Labeler{l0, l1} {
		go func() { l.Run(ctx); done <- struct{}{} }()
	}

	lead0.Store(true)
	l0.Notify(true)
	waitLabel(t, cs, "dfs-0", true)
	waitLabel(t, cs, "dfs-1", false)

	// Leadership moves: the label moves with it.
	lead0.Store(false)
	l0.Notify(false)
	lead1.Store(true)
	l1.Notify(true)
	waitLabel(t, cs, "dfs-0", false)
	waitLabel(t, cs, "dfs-1", true)

	// Someone removes the label by hand: the resync puts it back.
	patch := []byte(`{"metadata":{"labels":{"` + RoleLabel + `":null}}}`)
	if _, err := cs.CoreV1().Pods(ns).Patch(context.Background(), "dfs-1", types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitLabel(t, cs, "dfs-1", true)

	// Shutdown removes it, leader or not.
	cancel()
	<-done
	<-done
	if hasLeaderLabel(t, cs, "dfs-1") || hasLeaderLabel(t, cs, "dfs-0") {
		t.Error("a stopped labeler left the leader label behind")
	}
}

func TestRunRetriesFailedPatches(t *testing.T) {
	cs := fake.NewClientset(pod("dfs-0", nil))
	var failures atomic.Int32
	failures.Store(3)
	cs.PrependReactor("patch", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if failures.Add(-1) >= 0 {
			return true, nil, errors.New("api server unavailable")
		}
		return false, nil, nil
	})
	var leader atomic.Bool
	leader.Store(true)
	l, err := NewLabeler(LabelerConfig{Client: cs, Namespace: ns, Pod: "dfs-0", IsLeader: leader.Load,
		Resync: time.Hour, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go l.Run(ctx)
	// Resync is an hour: only the backoff retry can succeed in time.
	waitLabel(t, cs, "dfs-0", true)
}

func TestNewLabelerNeedsPodIdentity(t *testing.T) {
	cs := fake.NewClientset()
	yes := func() bool { return true }
	for name, cfg := range map[string]LabelerConfig{
		"no client":    {Namespace: ns, Pod: "p", IsLeader: yes},
		"no namespace": {Client: cs, Pod: "p", IsLeader: yes},
		"no pod":       {Client: cs, Namespace: ns, IsLeader: yes},
		"no leader":    {Client: cs, Namespace: ns, Pod: "p"},
	} {
		if _, err := NewLabeler(cfg); err == nil {
			t.Errorf("%s: NewLabeler accepted %+v", name, cfg)
		}
	}
}

func TestReconcileMissingPod(t *testing.T) {
	var leader atomic.Bool
	leader.Store(true)
	l := newLabeler(t, fake.NewClientset(), "dfs-0", &leader)
	if err := l.Reconcile(context.Background()); err == nil {
		t.Fatal("Reconcile of a missing pod succeeded")
	}
}
