package kube

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Ordinal returns the ordinal of a StatefulSet's pod from its name
// (<statefulset>-<ordinal>), and false for a name that is not one of its
// pods.
func Ordinal(statefulSet, pod string) (int, bool) {
	rest, ok := strings.CutPrefix(pod, statefulSet+"-")
	if !ok || rest == "" || (len(rest) > 1 && rest[0] == '0') {
		return 0, false
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}

// StatefulSetOf returns the name of the StatefulSet a pod belongs to, by
// the StatefulSet naming rule (the pod name without its -<ordinal>).
func StatefulSetOf(pod string) (string, bool) {
	i := strings.LastIndexByte(pod, '-')
	if i <= 0 {
		return "", false
	}
	if _, ok := Ordinal(pod[:i], pod); !ok {
		return "", false
	}
	return pod[:i], true
}

// Decision says whether a terminating pod should leave the cluster, and why.
type Decision struct {
	Leave  bool
	Reason string
}

// ScaledDown decides whether pod, which is terminating, goes away because
// its StatefulSet was scaled below its ordinal (leave the Raft
// configuration) or for any other reason: a rolling update, an eviction,
// a deleted pod, a node drain (its ordinal is still below spec.replicas:
// it comes back with its volume and must stay a voter), the whole
// StatefulSet being deleted (keep the configuration for a reinstall over
// the same volumes), or a scale to zero (a full stop, not a shrink: the
// last voter could not leave anyway).
func ScaledDown(ctx context.Context, client kubernetes.Interface, namespace, statefulSet, pod string) (Decision, error) {
	ord, ok := Ordinal(statefulSet, pod)
	if !ok {
		return Decision{}, fmt.Errorf("kube: pod %q is not a pod of StatefulSet %q", pod, statefulSet)
	}
	sts, err := client.AppsV1().StatefulSets(namespace).Get(ctx, statefulSet, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return Decision{Reason: "StatefulSet " + statefulSet + " is gone (the release is being deleted): stay in the configuration"}, nil
	}
	if err != nil {
		return Decision{}, fmt.Errorf("kube: get StatefulSet %s/%s: %w", namespace, statefulSet, err)
	}
	replicas := replicasOf(sts.Spec.Replicas)
	switch {
	case sts.DeletionTimestamp != nil:
		return Decision{Reason: "StatefulSet " + statefulSet + " is being deleted: stay in the configuration"}, nil
	case replicas == 0:
		return Decision{Reason: "scaled to zero (a full stop): stay in the configuration"}, nil
	case ord >= replicas:
		return Decision{Leave: true, Reason: fmt.Sprintf("ordinal %d is beyond the %d replicas: scaled down", ord, replicas)}, nil
	}
	return Decision{Reason: fmt.Sprintf("ordinal %d is within the %d replicas (restart, update or eviction): stay a voter", ord, replicas)}, nil
}

func replicasOf(p *int32) int {
	if p == nil {
		return 1 // the API's default
	}
	return int(*p)
}

// Members is what the Reaper needs from the node.
type Members interface {
	// IsLeader reports whether this node leads.
	IsLeader() bool
	// Servers lists the IDs in the Raft configuration.
	Servers(ctx context.Context) ([]string, error)
	// Remove takes a member out of Raft and the member table.
	Remove(ctx context.Context, id string) error
}

// ReaperConfig configures a Reaper. Zero durations take the defaults.
type ReaperConfig struct {
	Client      kubernetes.Interface
	Namespace   string
	StatefulSet string
	Members     Members
	// Interval between sweeps. Default 1m.
	Interval time.Duration
	Log      zerolog.Logger
}

// Reaper is the leader's safety net behind the preStop hook: it removes
// from the Raft configuration every server that is a pod of the
// StatefulSet, whose ordinal is at or beyond spec.replicas, and whose pod
// does not exist any more. Such a voter can never come back by itself
// (the StatefulSet no longer creates its pod) and each one counts against
// the majority.
type Reaper struct {
	cfg ReaperConfig
	log zerolog.Logger
}

// NewReaper checks cfg and returns a Reaper.
func NewReaper(cfg ReaperConfig) (*Reaper, error) {
	if cfg.Client == nil || cfg.Namespace == "" || cfg.StatefulSet == "" || cfg.Members == nil {
		return nil, errors.New("kube: ReaperConfig needs Client, Namespace, StatefulSet and Members")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = time.Minute
	}
	return &Reaper{cfg: cfg, log: cfg.Log.With().Str("component", "kube").Logger()}, nil
}

// Run sweeps every Interval until ctx ends; only the leader acts.
func (r *Reaper) Run(ctx context.Context) {
	r.log.Info().Str("statefulset", r.cfg.Namespace+"/"+r.cfg.StatefulSet).Dur("interval", r.cfg.Interval).
		Msg("the leader removes voters of pods the StatefulSet scaled away")
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		removed, err := r.Sweep(ctx)
		if err != nil && ctx.Err() == nil {
			r.log.Warn().Err(err).Msg("scale-down sweep failed; retrying at the next interval")
		}
		if len(removed) > 0 {
			r.log.Info().Strs("removed", removed).Msg("removed voters whose pods the StatefulSet scaled away")
		}
	}
}

// Sweep runs once and returns the IDs it removed. A follower does nothing.
func (r *Reaper) Sweep(ctx context.Context) ([]string, error) {
	if !r.cfg.Members.IsLeader() {
		return nil, nil
	}
	sts, err := r.cfg.Client.AppsV1().StatefulSets(r.cfg.Namespace).Get(ctx, r.cfg.StatefulSet, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("kube: get StatefulSet %s/%s: %w", r.cfg.Namespace, r.cfg.StatefulSet, err)
	}
	replicas := replicasOf(sts.Spec.Replicas)
	if replicas == 0 || sts.DeletionTimestamp != nil {
		return nil, nil
	}
	ids, err := r.cfg.Members.Servers(ctx)
	if err != nil {
		return nil, fmt.Errorf("kube: raft configuration: %w", err)
	}
	var removed []string
	var errs []error
	for _, id := range ids {
		ord, ok := Ordinal(r.cfg.StatefulSet, id)
		if !ok || ord < replicas {
			continue
		}
		_, err := r.cfg.Client.CoreV1().Pods(r.cfg.Namespace).Get(ctx, id, metav1.GetOptions{})
		switch {
		case err == nil:
			continue // still terminating (its preStop is leaving) or not yet gone
		case !apierrors.IsNotFound(err):
			errs = append(errs, fmt.Errorf("kube: get pod %s/%s: %w", r.cfg.Namespace, id, err))
			continue
		}
		if err := r.cfg.Members.Remove(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("kube: remove %s: %w", id, err))
			continue
		}
		removed = append(removed, id)
	}
	return removed, errors.Join(errs...)
}
