{{- define "autorollback.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "autorollback.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "autorollback.selectorLabels" -}}
app.kubernetes.io/name: {{ include "autorollback.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "autorollback.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "autorollback.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/component: operator
{{- end }}

{{- define "autorollback.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "autorollback.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Exactly the verbs the operator uses; nothing on Secrets; no delete but of pods, only while deleteStuckPods is on. */}}
{{- define "autorollback.rules" -}}
{{- $kinds := .Values.kinds }}
# Exactly the verbs the operator uses: it watches the workloads of `kinds` ({{ join ", " $kinds }})
# and patches them to roll back; it reads their history (ReplicaSets, ControllerRevisions) and
# annotates it (marks); it creates Events. A kind left out is granted nothing.
- apiGroups: ["apps"]
  resources: [{{ include "autorollback.kindResources" $kinds }}]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: [{{ include "autorollback.historyResources" $kinds }}]
  verbs: ["get", "list", "patch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- if or .Values.failFast.podSignals .Values.prometheus.url }}
# Fast failure signals: the pods of a fail-fast Deployment's rollout in progress (label-selected);
# metric checks: the names of a revision's pods ({{ "{{pods}}" }} in a check template); alerts: whether a
# pod of a StatefulSet's or DaemonSet's new revision is Ready (their revisions have no status)
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
{{- end }}
{{- if and .Values.deleteStuckPods (has "StatefulSet" $kinds) }}
# A StatefulSet left stuck by its rollback (OrderedReady): list its pods, delete those of the failed
# revision that are not Ready (the only delete the operator makes; gracefully, with preconditions)
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "delete"]
{{- end }}
{{- if and .Values.gitRevert.enabled .Values.gitRevert.argocd.enabled }}
# Git revert: read the Argo CD Application that names a Deployment's source
- apiGroups: ["argoproj.io"]
  resources: ["applications"]
  verbs: ["get"]
{{- end }}
{{- if and .Values.gitRevert.enabled .Values.gitRevert.flux.enabled }}
# Git revert: read the Flux Kustomization and GitRepository that name a Deployment's source
- apiGroups: ["kustomize.toolkit.fluxcd.io"]
  resources: ["kustomizations"]
  verbs: ["get"]
- apiGroups: ["source.toolkit.fluxcd.io"]
  resources: ["gitrepositories"]
  verbs: ["get"]
{{- end }}
{{- end }}

{{/* The apps/v1 resources of the workload kinds (quoted, comma-separated), and of their history. */}}
{{- define "autorollback.kindResources" -}}
{{- $plural := dict "Deployment" "deployments" "StatefulSet" "statefulsets" "DaemonSet" "daemonsets" }}
{{- $out := list }}
{{- range . }}{{ $out = append $out (get $plural . | quote) }}{{ end }}
{{- join ", " $out }}
{{- end }}

{{- define "autorollback.historyResources" -}}
{{- $out := list }}
{{- if has "Deployment" . }}{{ $out = append $out ("replicasets" | quote) }}{{ end }}
{{- if or (has "StatefulSet" .) (has "DaemonSet" .) }}{{ $out = append $out ("controllerrevisions" | quote) }}{{ end }}
{{- join ", " $out }}
{{- end }}

{{/* One --git-allowed-repo=NSGLOB=URL[ paths=A,B][ credential=NAME] per rule of gitRevert.allowedRepos
     (namespace globs in sorted order), each quoted: globs and `{namespace}` are not plain YAML. */}}
{{- define "autorollback.gitAllowedRepoArgs" -}}
{{- range $ns, $rules := .Values.gitRevert.allowedRepos }}
{{- range $rules }}
{{- $arg := "" }}
{{- if kindIs "string" . }}
{{- $arg = printf "--git-allowed-repo=%s=%s" $ns . }}
{{- else }}
{{- $arg = printf "--git-allowed-repo=%s=%s" $ns .url }}
{{- with .paths }}{{ $arg = printf "%s paths=%s" $arg (join "," .) }}{{ end }}
{{- with .credential }}{{ $arg = printf "%s credential=%s" $arg . }}{{ end }}
{{- end }}
- {{ $arg | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The list form of gitRevert.allowedRepos (before rules named namespaces) fails here, with the
     same repositories in the new form: the schema lets it through so that this message is shown. */}}
{{- define "autorollback.checkGitRevert" -}}
{{- if kindIs "slice" .Values.gitRevert.allowedRepos }}
{{- fail (printf "gitRevert.allowedRepos is a map from namespace glob to rules now, not a list. The same repositories for every namespace, as before: allowedRepos: {\"*\": %s}. Better, bind each repository to the namespaces it serves, e.g. allowedRepos: {\"*\": [\"https://git.example.com/{namespace}/*\"], \"shop-*\": [{url: \"https://git.example.com/platform/gitops.git\", paths: [\"apps/{namespace}/**\"]}]} (README: Upgrade notes (Git revert), Security)" (toJson .Values.gitRevert.allowedRepos)) }}
{{- end }}
{{- end }}

{{/* The port of a URL: its own, else 443 for https and 80 for http. */}}
{{- define "autorollback.urlPort" -}}
{{- $u := urlParse . }}
{{- $hostPort := splitList ":" $u.host }}
{{- if gt (len $hostPort) 1 }}{{ last $hostPort }}{{ else if eq $u.scheme "https" }}443{{ else }}80{{ end }}
{{- end }}

{{/* The bearer token file and the CA file the operator is given for Prometheus: a mounted Secret or
     ConfigMap key when one is named, else the path given. */}}
{{- define "autorollback.prometheusTokenFile" -}}
{{- if .Values.prometheus.bearerTokenSecret.name }}/etc/autorollback/prometheus-token/{{ .Values.prometheus.bearerTokenSecret.key }}
{{- else }}{{ .Values.prometheus.bearerTokenFile }}{{ end }}
{{- end }}

{{- define "autorollback.prometheusCaFile" -}}
{{- if and .Values.prometheus.caConfigMap.name .Values.prometheus.caSecret.name }}
{{- fail "prometheus.caConfigMap and prometheus.caSecret: name one of them" }}
{{- end }}
{{- if .Values.prometheus.caConfigMap.name }}/etc/autorollback/prometheus-ca/{{ .Values.prometheus.caConfigMap.key }}
{{- else if .Values.prometheus.caSecret.name }}/etc/autorollback/prometheus-ca/{{ .Values.prometheus.caSecret.key }}
{{- else }}{{ .Values.prometheus.caFile }}{{ end }}
{{- end }}

{{/* One egress rule: the ports (else the URL's) and the peers (else any address). */}}
{{- define "autorollback.egressTo" -}}
- ports:
    {{- range (.ports | default (list (include "autorollback.urlPort" .url))) }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
  {{- with .to }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
