package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
)

// LabelerConfig configures a Labeler. Zero durations take the defaults.
type LabelerConfig struct {
	// Client talks to the API server (InClusterClient, or a fake in tests).
	Client kubernetes.Interface
	// Namespace and Pod name this node's own pod (the downward API's
	// POD_NAMESPACE and POD_NAME).
	Namespace string
	Pod       string
	// IsLeader reports whether this node leads now (replication.Node).
	IsLeader func() bool
	// Resync is how often the label is reconciled even without a
	// leadership change. Default 30s.
	Resync time.Duration
	// Cleanup bounds the removal of the label on shutdown. Default 5s.
	Cleanup time.Duration
	Log     zerolog.Logger
}

// Labeler keeps RoleLabel=LeaderValue on this node's pod exactly while the
// node leads. Create it with NewLabeler, feed it leadership changes through
// Notify, and Run it.
type Labeler struct {
	cfg  LabelerConfig
	log  zerolog.Logger
	kick chan struct{}
}

// NewLabeler checks cfg and returns a Labeler.
func NewLabeler(cfg LabelerConfig) (*Labeler, error) {
	if cfg.Client == nil || cfg.Namespace == "" || cfg.Pod == "" || cfg.IsLeader == nil {
		return nil, errors.New("kube: LabelerConfig needs Client, Namespace, Pod and IsLeader (POD_NAME and POD_NAMESPACE from the downward API)")
	}
	if cfg.Resync <= 0 {
		cfg.Resync = 30 * time.Second
	}
	if cfg.Cleanup <= 0 {
		cfg.Cleanup = 5 * time.Second
	}
	return &Labeler{
		cfg:  cfg,
		log:  cfg.Log.With().Str("component", "kube").Str("pod", cfg.Namespace+"/"+cfg.Pod).Logger(),
		kick: make(chan struct{}, 1),
	}, nil
}

// Notify tells the labeler that leadership changed. It never blocks, so it
// can be given to replication.Node.OnLeadership; the argument is ignored
// because Reconcile reads IsLeader, which is never stale.
func (l *Labeler) Notify(bool) {
	select {
	case l.kick <- struct{}{}:
	default: // a reconcile is already due
	}
}

// Run reconciles on start, on every Notify and every Resync until ctx
// ends, retrying failures with backoff; then it removes the label (within
// Cleanup), since a pod that is shutting down should no longer receive the
// leader's traffic.
func (l *Labeler) Run(ctx context.Context) {
	l.log.Info().Str("label", RoleLabel+"="+LeaderValue).Dur("resync", l.cfg.Resync).
		Msg("keeping the leader label on this pod while it leads")
	retry := time.Duration(0)
	for {
		wait := l.cfg.Resync
		if err := l.Reconcile(ctx); err != nil {
			if ctx.Err() != nil {
				break
			}
			retry = min(max(2*retry, 250*time.Millisecond), l.cfg.Resync)
			wait = retry
			l.log.Warn().Err(err).Dur("retry_in", wait).Msg("cannot update the leader label; the leader Service may point at the wrong pod until it succeeds")
		} else {
			retry = 0
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-l.kick:
		case <-t.C:
		}
		t.Stop()
		if ctx.Err() != nil {
			break
		}
	}
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), l.cfg.Cleanup)
	defer cancel()
	if err := l.set(cctx, false); err != nil {
		l.log.Warn().Err(err).Msg("cannot remove the leader label on shutdown; the new leader's pod gets it and this one stops being ready")
	}
}

// Reconcile makes the pod's label match IsLeader once.
func (l *Labeler) Reconcile(ctx context.Context) error {
	return l.set(ctx, l.cfg.IsLeader())
}

// set adds (leader) or removes the label if the pod does not already
// match. Reading first keeps the steady state to one GET per resync.
func (l *Labeler) set(ctx context.Context, leader bool) error {
	pods := l.cfg.Client.CoreV1().Pods(l.cfg.Namespace)
	pod, err := pods.Get(ctx, l.cfg.Pod, metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("kube: get pod %s/%s: %w", l.cfg.Namespace, l.cfg.Pod, err)
	}
	has := pod.Labels[RoleLabel] == LeaderValue
	if has == leader {
		return nil
	}
	// A JSON merge patch: a null value deletes the key.
	var value any
	if leader {
		value = LeaderValue
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"labels": map[string]any{RoleLabel: value}}})
	if err != nil {
		return fmt.Errorf("kube: leader label patch: %w", err)
	}
	if _, err := pods.Patch(ctx, l.cfg.Pod, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("kube: patch pod %s/%s: %w", l.cfg.Namespace, l.cfg.Pod, err)
	}
	if leader {
		l.log.Info().Msg("this node leads: labeled its pod " + RoleLabel + "=" + LeaderValue)
	} else {
		l.log.Info().Msg("this node does not lead: removed " + RoleLabel + " from its pod")
	}
	return nil
}
