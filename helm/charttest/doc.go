// Package charttest holds the test of the Helm chart in ../dfs: it renders
// the chart with `helm template` (defaults and every ci/*-values.yaml),
// decodes every object strictly into its Kubernetes or Gateway API type
// (the Prometheus Operator's ServiceMonitor into a local mirror of the
// fields the chart renders), and checks the chart against the code: the
// probes against the server's endpoints and flags, the leader Service
// against package kube's label, the Role against what package kube calls,
// every DFS_* variable of the dfs container against the EnvVars of the
// flags in cmd/dfs (parsed from its source), and the values for users,
// limits, scrub and timeouts against the variables they must set (and the
// schema against values dfs would refuse), and the per-path rules'
// ConfigMap against package access's parser.
package charttest
