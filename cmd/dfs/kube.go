package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"github.com/dfs-project/dfs/cluster"
	"github.com/dfs-project/dfs/kube"
	"github.com/dfs-project/dfs/server"
)

// kubeFlags are dfs server's Kubernetes integration (package kube). Both
// switches default to on inside a pod that has POD_NAME (the downward API)
// and the API server's address (KUBERNETES_SERVICE_HOST).
func kubeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: "kube-leader-label", EnvVars: []string{"DFS_KUBE_LEADER_LABEL"},
			Usage: "keep the label " + kube.RoleLabel + "=" + kube.LeaderValue + " on this pod (POD_NAME, POD_NAMESPACE) while this node leads, " +
				"for a leader Service; needs get and patch on pods (default: on when POD_NAME and KUBERNETES_SERVICE_HOST are set)"},
		&cli.BoolFlag{Name: "kube-remove-scaled-down", EnvVars: []string{"DFS_KUBE_REMOVE_SCALED_DOWN"},
			Usage: "as leader, remove voters that are pods of --kube-statefulset beyond its replica count whose pod is gone " +
				"(a missed preStop leave); needs get on pods and on the StatefulSet (default: on when POD_NAME and KUBERNETES_SERVICE_HOST are set)"},
		&cli.StringFlag{Name: "kube-statefulset", EnvVars: []string{"DFS_KUBE_STATEFULSET"},
			Usage: "the StatefulSet this pod belongs to (default: POD_NAME without its -ordinal)"},
		&cli.DurationFlag{Name: "kube-reap-interval", EnvVars: []string{"DFS_KUBE_REAP_INTERVAL"}, Value: time.Minute,
			Usage: "how often the leader looks for voters the StatefulSet scaled away"},
	}
}

// inPod reports whether this process runs in a Kubernetes pod that knows
// its own name.
func inPod() bool {
	return os.Getenv("POD_NAME") != "" && os.Getenv("KUBERNETES_SERVICE_HOST") != ""
}

// switchOn reads a kube switch: its value when given, else inPod.
func switchOn(c *cli.Context, name string) bool {
	if c.IsSet(name) {
		return c.Bool(name)
	}
	return inPod()
}

// podIdentity reads POD_NAME and POD_NAMESPACE (the downward API).
func podIdentity() (name, namespace string, err error) {
	name, namespace = os.Getenv("POD_NAME"), os.Getenv("POD_NAMESPACE")
	if name == "" || namespace == "" {
		return "", "", errors.New("POD_NAME and POD_NAMESPACE must be set (the downward API: metadata.name, metadata.namespace)")
	}
	return name, namespace, nil
}

func statefulSetName(c *cli.Context, pod string) (string, error) {
	if s := c.String("kube-statefulset"); s != "" {
		return s, nil
	}
	s, ok := kube.StatefulSetOf(pod)
	if !ok {
		return "", fmt.Errorf("pod %q is not named like a StatefulSet's pod: set --kube-statefulset", pod)
	}
	return s, nil
}

// startKube starts the Kubernetes integration the flags ask for and
// returns a function that waits until it has stopped (after ctx ends: the
// labeler removes the label on the way out).
func startKube(ctx context.Context, c *cli.Context, srv *server.Server, log zerolog.Logger) (wait func(), err error) {
	label, reap := switchOn(c, "kube-leader-label"), switchOn(c, "kube-remove-scaled-down")
	if !label && !reap {
		return func() {}, nil
	}
	pod, ns, err := podIdentity()
	if err != nil {
		return nil, fmt.Errorf("--kube-leader-label / --kube-remove-scaled-down: %w", err)
	}
	client, err := kube.InClusterClient()
	if err != nil {
		return nil, fmt.Errorf("--kube-leader-label / --kube-remove-scaled-down: %w (turn them off outside Kubernetes)", err)
	}
	var wg sync.WaitGroup
	if label {
		l, err := kube.NewLabeler(kube.LabelerConfig{Client: client, Namespace: ns, Pod: pod,
			IsLeader: srv.Node().IsLeader, Log: log})
		if err != nil {
			return nil, err
		}
		srv.Node().OnLeadership(l.Notify)
		wg.Go(func() { l.Run(ctx) })
	}
	if reap {
		sts, err := statefulSetName(c, pod)
		if err != nil {
			return nil, fmt.Errorf("--kube-remove-scaled-down: %w", err)
		}
		r, err := kube.NewReaper(kube.ReaperConfig{Client: client, Namespace: ns, StatefulSet: sts,
			Members: nodeMembers{srv}, Interval: c.Duration("kube-reap-interval"), Log: log})
		if err != nil {
			return nil, err
		}
		wg.Go(func() { r.Run(ctx) })
	}
	return wg.Wait, nil
}

// nodeMembers presents a server's Raft configuration to kube.Reaper.
type nodeMembers struct{ srv *server.Server }

func (m nodeMembers) IsLeader() bool { return m.srv.Node().IsLeader() }

func (m nodeMembers) Servers(ctx context.Context) ([]string, error) {
	st, err := m.srv.Node().Status(ctx)
	if err != nil {
		return nil, err
	}
	ids := make([]string, 0, len(st.Servers))
	for _, s := range st.Servers {
		ids = append(ids, s.ID)
	}
	return ids, nil
}

func (m nodeMembers) Remove(ctx context.Context, id string) error {
	_, err := m.srv.Cluster().Remove(ctx, id)
	return err
}

// leaveCommand is `dfs cluster leave`: the node removes itself, the
// StatefulSet's preStop hook with --if-scaled-down.
func leaveCommand(addr, timeout cli.Flag) *cli.Command {
	return &cli.Command{
		Name:  "leave",
		Usage: "remove this node (--id) from the cluster, e.g. from a Kubernetes preStop hook",
		Description: "Asks the node at --addr (this one: http://127.0.0.1:8080) to remove the node\n" +
			"--id (DFS_ID, which the pod's environment already has) from Raft's voters and\n" +
			"the member table, while it still runs and can vote for its own removal.\n\n" +
			"With --if-scaled-down (the Helm chart's preStop hook) it first asks the\n" +
			"Kubernetes API whether this pod goes away because its StatefulSet was scaled\n" +
			"below its ordinal, and does nothing otherwise: a rolling restart, an update,\n" +
			"an eviction or a deleted pod keep their ordinal and stay voters; deleting the\n" +
			"StatefulSet or scaling it to zero keeps the configuration for the volumes.\n" +
			"Needs get on the StatefulSet; POD_NAME and POD_NAMESPACE from the downward API.",
		Flags: append([]cli.Flag{addr, timeout,
			&cli.StringFlag{Name: "id", EnvVars: []string{"DFS_ID"}, Required: true, Usage: "this node's ID (the pod name)"},
			&cli.StringFlag{Name: "cluster-secret", EnvVars: []string{"DFS_CLUSTER_SECRET"},
				Usage: "the cluster's shared secret (prefer the environment variable)"},
			&cli.BoolFlag{Name: "if-scaled-down",
				Usage: "leave only if the StatefulSet's replica count no longer covers this pod's ordinal"},
			&cli.StringFlag{Name: "kube-statefulset", EnvVars: []string{"DFS_KUBE_STATEFULSET"},
				Usage: "the StatefulSet this pod belongs to (default: POD_NAME without its -ordinal)"},
		}, clientTLSFlags()...),
		Action: runClusterLeave,
	}
}

func runClusterLeave(c *cli.Context) error {
	ctx, cancel := context.WithTimeout(c.Context, c.Duration("timeout"))
	defer cancel()
	id := c.String("id")
	if c.Bool("if-scaled-down") {
		pod, ns, err := podIdentity()
		if err != nil {
			return fmt.Errorf("--if-scaled-down: %w", err)
		}
		sts, err := statefulSetName(c, pod)
		if err != nil {
			return fmt.Errorf("--if-scaled-down: %w", err)
		}
		client, err := kube.InClusterClient()
		if err != nil {
			return fmt.Errorf("--if-scaled-down: %w", err)
		}
		d, err := kube.ScaledDown(ctx, client, ns, sts, pod)
		if err != nil {
			return fmt.Errorf("--if-scaled-down: %w", err)
		}
		if !d.Leave {
			fmt.Fprintf(c.App.Writer, "%s stays in the cluster: %s\n", id, d.Reason)
			return nil
		}
		fmt.Fprintf(c.App.Writer, "%s leaves the cluster: %s\n", id, d.Reason)
	}
	secret := c.String("cluster-secret")
	if secret == "" {
		return errors.New("leaving needs the cluster secret: --cluster-secret or DFS_CLUSTER_SECRET")
	}
	tr, err := clientTransport(c)
	if err != nil {
		return err
	}
	resp, err := cluster.NewClient(secret, tr).Remove(ctx, c.String("addr"), id)
	if err != nil {
		return fmt.Errorf("leave: %w", err)
	}
	fmt.Fprintf(c.App.Writer, "removed %s (by leader %s)\n", resp.Removed, resp.Leader)
	return nil
}

// waitRaftAdvertise waits until a --raft-advertise given as a host name
// (compose service names, a pod's DNS name) resolves: Raft resolves it
// once at start, and a record that appears a moment after the container
// starts would otherwise fail the start.
func waitRaftAdvertise(ctx context.Context, addr string, log zerolog.Logger) error {
	if addr == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--raft-advertise %q: %w", addr, err)
	}
	if _, err := kube.WaitResolvable(ctx, net.DefaultResolver, host, time.Second, log); err != nil {
		return fmt.Errorf("--raft-advertise: %w", err)
	}
	return nil
}
