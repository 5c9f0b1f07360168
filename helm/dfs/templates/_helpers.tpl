{{/* Names. */}}
{{- define "dfs.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dfs.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 40 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "dfs.headless" -}}{{ include "dfs.fullname" . }}-headless{{- end }}
{{- define "dfs.leader" -}}{{ include "dfs.fullname" . }}-leader{{- end }}

{{- define "dfs.secretName" -}}
{{- default (printf "%s-cluster-secret" (include "dfs.fullname" .)) .Values.cluster.existingSecret }}
{{- end }}

{{- define "dfs.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dfs.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Labels. */}}
{{- define "dfs.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dfs.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dfs.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{ include "dfs.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/* The label the leader keeps on its own pod: kube.RoleLabel=kube.LeaderValue. */}}
{{- define "dfs.leaderLabel" -}}
dfs.io/role: leader
{{- end }}

{{/* Sets the client Service apart from the headless and leader Services,
which carry the same labels otherwise: the ServiceMonitor selects it. */}}
{{- define "dfs.clientServiceLabel" -}}
dfs.io/service: client
{{- end }}

{{/* How many pods form a new cluster. */}}
{{- define "dfs.bootstrapExpect" -}}
{{- if gt (int .Values.cluster.bootstrapExpect) 0 }}{{ int .Values.cluster.bootstrapExpect }}{{ else }}{{ int .Values.replicas }}{{ end }}
{{- end }}

{{/* The stable DNS name of pod $i: kube.StatefulSetDNS.Host. */}}
{{- define "dfs.podHost" -}}
{{- printf "%s-%d.%s.%s.svc.%s" (include "dfs.fullname" .root) (int .i) (include "dfs.headless" .root) .root.Release.Namespace .root.Values.clusterDomain }}
{{- end }}

{{/* --peers: the HTTP URLs of pods 0..bootstrapExpect-1 (kube.StatefulSetDNS.PeerURLs). */}}
{{- define "dfs.peers" -}}
{{- $root := . }}
{{- $urls := list }}
{{- range $i := until (int (include "dfs.bootstrapExpect" .)) }}
{{- $urls = append $urls (printf "%s://%s:%d" (include "dfs.scheme" $root) (include "dfs.podHost" (dict "root" $root "i" $i)) (int $root.Values.ports.http)) }}
{{- end }}
{{- join "," $urls }}
{{- end }}

{{/* Whether the pods talk to the Kubernetes API at all. */}}
{{- define "dfs.needsAPI" -}}
{{- if or .Values.cluster.leaderLabel .Values.cluster.removeScaledDown }}true{{ end }}
{{- end }}

{{/* The pods' URL scheme: https when tls.existingSecret is set. */}}
{{- define "dfs.scheme" -}}
{{- if .Values.tls.existingSecret }}https{{ else }}http{{ end }}
{{- end }}

{{/* An env entry for an optional value, given as (list NAME VALUE):
nothing when VALUE is null, so the binary's default applies. Numbers are
written out in full: Helm reads YAML numbers as float64, which would
otherwise print as 1.099511627776e+12, a value dfs refuses. */}}
{{- define "dfs.optionalEnv" -}}
{{- $v := index . 1 }}
{{- if not (kindIs "invalid" $v) }}
- name: {{ index . 0 }}
  {{- if and (kindIs "float64" $v) (eq $v (floor $v)) }}
  value: {{ int64 $v | toString | quote }}
  {{- else }}
  value: {{ toString $v | quote }}
  {{- end }}
{{- end }}
{{- end }}

{{/* Where the htpasswd Secret is mounted: a directory, so that kubelet
updates it in place (it never updates a subPath mount). */}}
{{- define "dfs.usersDir" -}}/etc/dfs/users{{- end }}

{{/* The ConfigMap holding the per-path rules: auth.accessRulesConfigMap,
or the chart's own when auth.accessRules is set; empty: no rules. */}}
{{- define "dfs.accessRulesConfigMap" -}}
{{- if .Values.auth.accessRulesConfigMap }}
{{- .Values.auth.accessRulesConfigMap }}
{{- else if .Values.auth.accessRules }}
{{- include "dfs.fullname" . }}-access-rules
{{- end }}
{{- end }}

{{/* Where that ConfigMap is mounted: a directory, like the users, so that
kubelet updates the rules in place and dfs reloads them. */}}
{{- define "dfs.accessRulesDir" -}}/etc/dfs/access{{- end }}

{{/* --public-url: .Values.publicURLs, or else the Ingress hosts and the
HTTPRoute hostnames of those enabled (no wildcards), each with https://
and http://; comma-separated, empty when there are none. */}}
{{- define "dfs.publicURLs" -}}
{{- $urls := list }}
{{- if .Values.publicURLs }}
{{- $urls = .Values.publicURLs }}
{{- else }}
{{- $hosts := list }}
{{- if .Values.ingress.enabled }}
{{- range .Values.ingress.hosts }}
{{- $hosts = append $hosts .host }}
{{- end }}
{{- end }}
{{- if .Values.httpRoute.enabled }}
{{- range .Values.httpRoute.hostnames }}
{{- $hosts = append $hosts . }}
{{- end }}
{{- end }}
{{- range uniq $hosts }}
{{- if and . (not (hasPrefix "*" .)) }}
{{- $urls = append $urls (printf "https://%s" .) }}
{{- $urls = append $urls (printf "http://%s" .) }}
{{- end }}
{{- end }}
{{- end }}
{{- join "," $urls }}
{{- end }}
