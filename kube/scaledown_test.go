package kube

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/rs/zerolog"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
)

func statefulSet(name string, replicas int32) *appsv1.StatefulSet {
	return &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.StatefulSetSpec{Replicas: &replicas}}
}

func TestOrdinal(t *testing.T) {
	tests := []struct {
		sts, pod string
		want     int
		ok       bool
	}{
		{"dfs", "dfs-0", 0, true},
		{"dfs", "dfs-12", 12, true},
		{"my-dfs", "my-dfs-3", 3, true},
		{"dfs", "dfs-", 0, false},
		{"dfs", "dfs-01", 0, false},
		{"dfs", "dfs-x", 0, false},
		{"dfs", "other-1", 0, false},
		{"dfs", "dfs-1-2", 0, false},
		{"dfs", "dfs--1", 0, false},
	}
	for _, tc := range tests {
		got, ok := Ordinal(tc.sts, tc.pod)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Ordinal(%q, %q) = %d, %v; want %d, %v", tc.sts, tc.pod, got, ok, tc.want, tc.ok)
		}
	}
	for pod, want := range map[string]string{"dfs-0": "dfs", "my-dfs-10": "my-dfs", "dfs": "", "dfs-x": "", "-1": ""} {
		got, ok := StatefulSetOf(pod)
		if got != want || ok != (want != "") {
			t.Errorf("StatefulSetOf(%q) = %q, %v; want %q", pod, got, ok, want)
		}
	}
}

func TestScaledDown(t *testing.T) {
	deleting := statefulSet("dfs", 3)
	deleting.DeletionTimestamp = &metav1.Time{}
	deleting.Finalizers = []string{"test"}
	tests := []struct {
		name    string
		objects []runtime.Object
		pod     string
		leave   bool
		wantErr bool
	}{
		{"scaled from 5 to 3: dfs-4 leaves", []runtime.Object{statefulSet("dfs", 3)}, "dfs-4", true, false},
		{"scaled from 4 to 3: dfs-3 leaves", []runtime.Object{statefulSet("dfs", 3)}, "dfs-3", true, false},
		{"rolling restart keeps dfs-2", []runtime.Object{statefulSet("dfs", 3)}, "dfs-2", false, false},
		{"rolling restart keeps dfs-0", []runtime.Object{statefulSet("dfs", 3)}, "dfs-0", false, false},
		{"scaled to zero: a full stop", []runtime.Object{statefulSet("dfs", 0)}, "dfs-0", false, false},
		{"StatefulSet deleted", nil, "dfs-1", false, false},
		{"StatefulSet being deleted", []runtime.Object{deleting}, "dfs-4", false, false},
		{"not a pod of the StatefulSet", []runtime.Object{statefulSet("dfs", 3)}, "web-4", false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cs := fake.NewClientset(tc.objects...)
			d, err := ScaledDown(context.Background(), cs, ns, "dfs", tc.pod)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want an error: %v", err, tc.wantErr)
			}
			if d.Leave != tc.leave {
				t.Errorf("Leave = %v (%s), want %v", d.Leave, d.Reason, tc.leave)
			}
			if err == nil && d.Reason == "" {
				t.Error("no reason given")
			}
		})
	}
}

// fakeMembers is a Raft configuration the Reaper sweeps.
type fakeMembers struct {
	leader    bool
	servers   []string
	removed   []string
	removeErr error
}

func (f *fakeMembers) IsLeader() bool { return f.leader }

func (f *fakeMembers) Servers(context.Context) ([]string, error) { return slices.Clone(f.servers), nil }

func (f *fakeMembers) Remove(_ context.Context, id string) error {
	if f.removeErr != nil {
		return f.removeErr
	}
	f.removed = append(f.removed, id)
	f.servers = slices.DeleteFunc(f.servers, func(s string) bool { return s == id })
	return nil
}

func TestReaperSweep(t *testing.T) {
	tests := []struct {
		name    string
		leader  bool
		objects []runtime.Object
		servers []string
		want    []string
	}{
		{"removes scaled-away pods that are gone", true,
			[]runtime.Object{statefulSet("dfs", 3), pod("dfs-0", nil), pod("dfs-1", nil), pod("dfs-2", nil)},
			[]string{"dfs-0", "dfs-1", "dfs-2", "dfs-3", "dfs-4"}, []string{"dfs-3", "dfs-4"}},
		{"keeps a terminating pod (its preStop leaves)", true,
			[]runtime.Object{statefulSet("dfs", 3), pod("dfs-0", nil), pod("dfs-3", nil)},
			[]string{"dfs-0", "dfs-1", "dfs-2", "dfs-3"}, nil},
		{"keeps a deleted pod within the replicas (it is recreated)", true,
			[]runtime.Object{statefulSet("dfs", 3), pod("dfs-0", nil)},
			[]string{"dfs-0", "dfs-1", "dfs-2"}, nil},
		{"keeps nodes that are not pods of the StatefulSet", true,
			[]runtime.Object{statefulSet("dfs", 1), pod("dfs-0", nil)},
			[]string{"dfs-0", "external-node"}, nil},
		{"does nothing when scaled to zero", true,
			[]runtime.Object{statefulSet("dfs", 0)},
			[]string{"dfs-0", "dfs-1"}, nil},
		{"a follower does nothing", false,
			[]runtime.Object{statefulSet("dfs", 1), pod("dfs-0", nil)},
			[]string{"dfs-0", "dfs-1"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := &fakeMembers{leader: tc.leader, servers: tc.servers}
			r, err := NewReaper(ReaperConfig{Client: fake.NewClientset(tc.objects...), Namespace: ns,
				StatefulSet: "dfs", Members: m, Log: zerolog.Nop()})
			if err != nil {
				t.Fatal(err)
			}
			got, err := r.Sweep(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) || !slices.Equal(m.removed, tc.want) {
				t.Errorf("removed %v (members saw %v), want %v", got, m.removed, tc.want)
			}
		})
	}
}

func TestReaperSweepErrors(t *testing.T) {
	m := &fakeMembers{leader: true, servers: []string{"dfs-0", "dfs-1"}, removeErr: errors.New("no quorum")}
	r, err := NewReaper(ReaperConfig{Client: fake.NewClientset(statefulSet("dfs", 1), pod("dfs-0", nil)),
		Namespace: ns, StatefulSet: "dfs", Members: m, Log: zerolog.Nop()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Sweep(context.Background()); !errors.Is(err, m.removeErr) {
		t.Errorf("Sweep error = %v, want it to wrap %v", err, m.removeErr)
	}
	r, _ = NewReaper(ReaperConfig{Client: fake.NewClientset(), Namespace: ns, StatefulSet: "dfs", Members: m})
	if _, err := r.Sweep(context.Background()); err == nil {
		t.Error("Sweep without a StatefulSet succeeded")
	}
}
