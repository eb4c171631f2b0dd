{{/* Names, labels and the derived settings every template shares. */}}

{{- define "driftwatch.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "driftwatch.fullname" -}}
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

{{- define "driftwatch.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "driftwatch.selectorLabels" -}}
app.kubernetes.io/name: {{ include "driftwatch.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: monitor
{{- end }}

{{- define "driftwatch.labels" -}}
helm.sh/chart: {{ include "driftwatch.chart" . }}
{{ include "driftwatch.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: driftwatch
{{- end }}

{{- define "driftwatch.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "driftwatch.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "driftwatch.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/* The Secret holding the bearer token: the user's existing one or ours. */}}
{{- define "driftwatch.secretName" -}}
{{- default (include "driftwatch.fullname" .) .Values.auth.existingSecret }}
{{- end }}

{{/* In-cluster URL of the monitor (what sidecars and the KServe logger send to). */}}
{{- define "driftwatch.monitorURL" -}}
{{- printf "http://%s.%s.svc:%d" (include "driftwatch.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}

{{/* Where users reach the monitor (report links in alerts): `config.server.public_url`, else the Service. */}}
{{- define "driftwatch.publicURL" -}}
{{- default (include "driftwatch.monitorURL" .) (get (default dict (get .Values.config "server")) "public_url") }}
{{- end }}

{{/* monitor.chartgen.PUBLIC_URL_PLACEHOLDER: what generated report links carry until install time. */}}
{{- define "driftwatch.publicURLPlaceholder" -}}http://driftwatch-public-url.invalid{{- end }}

{{/* The container port is fixed: config, probes and Service all refer to it by the name `http`. */}}
{{- define "driftwatch.containerPort" -}}8080{{- end }}

{{/*
The driftwatch config as rendered into the ConfigMap: the user's `config` with the fields the chart
owns (listen address, store path on the persistence mount, token env var, public URL) filled in.
*/}}
{{- define "driftwatch.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $server := default dict (get $cfg "server") }}
{{- $_ := set $server "host" "0.0.0.0" }}
{{- $_ := set $server "port" (int (include "driftwatch.containerPort" .)) }}
{{- $_ := set $server "public_url" (include "driftwatch.publicURL" .) }}
{{- if .Values.auth.enabled }}
{{- $_ := set $server "auth_token_env" .Values.auth.envVar }}
{{- else }}
{{- $_ := set $server "auth_token_env" nil }}
{{- end }}
{{- $store := default dict (get $server "store") }}
{{- $_ := set $store "path" (printf "%s/driftwatch.db" (trimSuffix "/" .Values.persistence.mountPath)) }}
{{- $_ := set $server "store" $store }}
{{- $_ := set $cfg "server" $server }}
{{- toYaml $cfg }}
{{- end }}

{{/*
"true" when a Prometheus Operator object is to be rendered: `enabled: true` forces it, `"auto"`
renders it only when the cluster (or `helm template --api-versions`) serves monitoring.coreos.com/v1.
Call with (dict "enabled" .Values.x.enabled "root" $).
*/}}
{{- define "driftwatch.operatorEnabled" -}}
{{- $e := toString .enabled }}
{{- if or (eq $e "true") (and (eq $e "auto") (.root.Capabilities.APIVersions.Has "monitoring.coreos.com/v1")) -}}
true
{{- end }}
{{- end }}

{{/*
Namespaces the monitor needs access to, as a JSON list: the release namespace, `rbac.namespaces`,
and (with `rbac.namespacesFromConfig`) those the config names for retraining Jobs and model pods.
*/}}
{{- define "driftwatch.rbacNamespaces" -}}
{{- $ns := list .Release.Namespace }}
{{- range .Values.rbac.namespaces }}
{{- $ns = append $ns . }}
{{- end }}
{{- if .Values.rbac.namespacesFromConfig }}
{{- $defaults := default dict (get .Values.config "defaults") }}
{{- $retrains := list (get $defaults "retrain") }}
{{- range (default list (get .Values.config "models")) }}
{{- $retrains = append $retrains (get . "retrain") }}
{{- with (get . "resources") }}
{{- if get . "selector" }}
{{- $ns = append $ns (default "default" (get . "namespace")) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $retrains }}
{{- if and . (eq (toString (default "local" (get . "launcher"))) "kubernetes") (get . "kubernetes") }}
{{- $ns = append $ns (default "default" (get (get . "kubernetes") "namespace")) }}
{{- end }}
{{- end }}
{{- end }}
{{- $ns | uniq | toJson }}
{{- end }}

{{/* Least privilege: retraining Jobs, model pods (resource collector) and their metrics. */}}
{{- define "driftwatch.rbacRules" -}}
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "delete"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get", "list", "watch"]
- apiGroups: ["metrics.k8s.io"]
  resources: ["pods"]
  verbs: ["get", "list"]
{{- end }}

{{/*
The capture sidecar container for a model pod, as `driftwatch inject` adds it (a test keeps the two
identical). Call with (dict "root" $ "upstreamPort" N "model" NAME).
*/}}
{{- define "driftwatch.sidecarContainer" -}}
{{- $v := .root.Values -}}
- name: driftwatch-sidecar
  image: {{ include "driftwatch.image" .root }}
  imagePullPolicy: {{ $v.image.pullPolicy }}
  args:
    - sidecar
    - --upstream
    - http://127.0.0.1:{{ .upstreamPort }}
    - --monitor
    - {{ include "driftwatch.monitorURL" .root }}
    - --model
    - {{ .model }}
    - --port
    - {{ $v.sidecar.port | quote }}
    - --spool-dir
    - /var/spool/driftwatch
    {{- if $v.auth.enabled }}
    - --token-env
    - {{ $v.auth.envVar }}
  env:
    - name: {{ $v.auth.envVar }}
      valueFrom:
        secretKeyRef:
          name: {{ include "driftwatch.secretName" .root }}
          key: {{ $v.auth.secretKey }}
    {{- end }}
  ports:
    - name: driftwatch-capture
      containerPort: {{ $v.sidecar.port }}
      protocol: TCP
  readinessProbe:
    httpGet:
      path: /driftwatch/readyz
      port: driftwatch-capture
    periodSeconds: 5
  livenessProbe:
    httpGet:
      path: /driftwatch/healthz
      port: driftwatch-capture
    periodSeconds: 10
  resources:
    {{- toYaml $v.sidecar.resources | nindent 4 }}
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    runAsNonRoot: true
    runAsUser: 10001
    runAsGroup: 10001
    capabilities:
      drop:
        - ALL
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    - name: driftwatch-spool
      mountPath: /var/spool/driftwatch
    - name: driftwatch-tmp
      mountPath: /tmp
{{- end }}

{{/* The sidecar's emptyDir volumes, as `driftwatch inject` adds them (spool up to --spool-max-bytes, 256MiB by default). */}}
{{- define "driftwatch.sidecarVolumes" -}}
- name: driftwatch-spool
  emptyDir:
    sizeLimit: 512Mi
- name: driftwatch-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- end }}
