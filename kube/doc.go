// Package kube owns what a dfs node does differently when it runs as a pod
// of a Kubernetes StatefulSet (the Helm chart in helm/dfs):
//
//   - Leader labeling (Labeler): the leader keeps the label
//     RoleLabel=LeaderValue on its own pod, through the Kubernetes API, so a
//     leader Service selecting that label sends writes straight to it. The
//     label follows every leader change, is removed when the pod stops
//     leading and on shutdown, and a periodic reconcile heals anything
//     missed (a failed patch, a label removed by hand, a pod that crashed
//     while leading and restarted as a follower).
//   - Scale-down safety: ScaledDown tells a terminating pod (the chart's
//     preStop hook, `dfs cluster leave --if-scaled-down`) whether the
//     StatefulSet was scaled below its ordinal, in which case it removes
//     itself from the Raft configuration while it can still vote; the
//     Reaper is the leader's safety net that removes voters of this
//     StatefulSet whose ordinal is beyond the replica count and whose pod no
//     longer exists (a preStop that failed or timed out). A rolling restart
//     or a deleted pod keeps its ordinal below the replica count and is
//     never removed.
//   - Discovery (StatefulSetDNS, WaitResolvable): the stable DNS names of
//     the StatefulSet's pods behind its headless Service, from which the
//     chart builds --peers and --advertise-url, and waiting until a name
//     resolves (a pod's own record appears shortly after it starts).
//
// The API calls are limited to what the chart's Role grants: get and patch
// on pods, get on the one StatefulSet. The package holds no global state;
// every Kubernetes client comes in through kubernetes.Interface, so tests
// use client-go's fake clientset.
package kube

import (
	"fmt"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

const (
	// RoleLabel is the pod label the leader sets on its own pod; the chart's
	// leader Service selects RoleLabel=LeaderValue.
	RoleLabel = "dfs.io/role"
	// LeaderValue is RoleLabel's value on the leader's pod.
	LeaderValue = "leader"
)

// InClusterClient returns a client for the API server of the cluster this
// process runs in, authenticated by the pod's service account.
func InClusterClient() (kubernetes.Interface, error) {
	cfg, err := rest.InClusterConfig()
	if err != nil {
		return nil, fmt.Errorf("kube: in-cluster config: %w", err)
	}
	cfg.UserAgent = "dfs"
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("kube: client: %w", err)
	}
	return cs, nil
}
