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

{{/* The Secret holding the read token(s) (`auth.readToken`): the user's existing one or ours. */}}
{{- define "driftwatch.readSecretName" -}}
{{- default (printf "%s-read" (include "driftwatch.fullname" .)) .Values.auth.readToken.existingSecret }}
{{- end }}

{{/* Where the token Secrets are mounted (whole Secrets, never subPath: the kubelet then refreshes the files on rotation). */}}
{{- define "driftwatch.tokenDir" -}}/etc/driftwatch/auth/write{{- end }}
{{- define "driftwatch.readTokenDir" -}}/etc/driftwatch/auth/read{{- end }}
{{- define "driftwatch.tlsDir" -}}/etc/driftwatch/tls{{- end }}

{{/* The Service's DNS name. */}}
{{- define "driftwatch.serviceHost" -}}
{{- printf "%s.%s.svc" (include "driftwatch.fullname" .) .Release.Namespace }}
{{- end }}

{{/* In-cluster URL of the monitor (what sidecars and the KServe logger send to); https with `tls.enabled`. */}}
{{- define "driftwatch.monitorURL" -}}
{{- printf "%s://%s:%d" (ternary "https" "http" .Values.tls.enabled) (include "driftwatch.serviceHost" .) (int .Values.service.port) }}
{{- end }}

{{/* A probe from values, with `scheme: HTTPS` on its httpGet when the monitor serves TLS. */}}
{{- define "driftwatch.probe" -}}
{{- $probe := deepCopy .probe }}
{{- if and .root.Values.tls.enabled (get $probe "httpGet") }}
{{- $_ := set $probe "httpGet" (merge (dict "scheme" "HTTPS") (deepCopy (get $probe "httpGet"))) }}
{{- end }}
{{- toYaml $probe }}
{{- end }}

{{/* Where users reach the monitor (report links in alerts): `config.server.public_url`, else the Service. */}}
{{- define "driftwatch.publicURL" -}}
{{- default (include "driftwatch.monitorURL" .) (get (default dict (get .Values.config "server")) "public_url") }}
{{- end }}

{{/* monitor.app.chartgen.PUBLIC_URL_PLACEHOLDER: what generated report links carry until install time. */}}
{{- define "driftwatch.publicURLPlaceholder" -}}http://driftwatch-public-url.invalid{{- end }}

{{/* The container port is fixed: config, probes and Service all refer to it by the name `http`. */}}
{{- define "driftwatch.containerPort" -}}8080{{- end }}

{{/*
The driftwatch config as rendered into the ConfigMap: the user's `config` with the fields the chart
owns (listen address, store path on the persistence mount, token files, TLS files, public URL) filled in.
*/}}
{{- define "driftwatch.config" -}}
{{- $cfg := deepCopy .Values.config }}
{{- $server := default dict (get $cfg "server") }}
{{- $_ := set $server "host" "0.0.0.0" }}
{{- $_ := set $server "port" (int (include "driftwatch.containerPort" .)) }}
{{- $_ := set $server "public_url" (include "driftwatch.publicURL" .) }}
{{- /* The monitor reads its tokens from the mounted Secrets (re-read on change), not from an env var. */}}
{{- $_ := set $server "auth_token_env" nil }}
{{- if .Values.auth.enabled }}
{{- $auth := default dict (get $server "auth") }}
{{- $_ := set $auth "token_files" (list (printf "%s/%s" (include "driftwatch.tokenDir" .) .Values.auth.secretKey)) }}
{{- if .Values.auth.readToken.enabled }}
{{- $_ := set $auth "read_token_files" (list (printf "%s/%s" (include "driftwatch.readTokenDir" .) .Values.auth.readToken.secretKey)) }}
{{- end }}
{{- $_ := set $auth "protect_metrics" .Values.auth.protectMetrics }}
{{- $_ := set $server "auth" $auth }}
{{- end }}
{{- if .Values.tls.enabled }}
{{- if not .Values.tls.existingSecret }}
{{- fail "tls.enabled needs tls.existingSecret: a kubernetes.io/tls Secret (keys tls.crt, tls.key) for the Service's DNS name" }}
{{- end }}
{{- $_ := set $server "tls" (dict "cert_file" (printf "%s/tls.crt" (include "driftwatch.tlsDir" .)) "key_file" (printf "%s/tls.key" (include "driftwatch.tlsDir" .))) }}
{{- end }}
{{- $store := default dict (get $server "store") }}
{{- $_ := set $store "path" (printf "%s/driftwatch.db" (trimSuffix "/" .Values.persistence.mountPath)) }}
{{- $_ := set $server "store" $store }}
{{- $_ := set $cfg "server" $server }}
{{- if get $cfg "fleet" }}
{{- fail "config.fleet is rendered by the chart: set fleet.enabled and the fleet.kafka / fleet.postgres values instead" }}
{{- end }}
{{- if .Values.fleet.enabled }}
{{- $_ := set $cfg "fleet" (include "driftwatch.fleetConfig" . | fromYaml) }}
{{- end }}
{{- toYaml $cfg }}
{{- end }}

{{/* Fleet mode: where the Kafka TLS Secret is mounted, and the environment variables of the Secrets. */}}
{{- define "driftwatch.kafkaTlsDir" -}}/etc/driftwatch/kafka-tls{{- end }}
{{- define "driftwatch.postgresDsnEnv" -}}DRIFTWATCH_POSTGRES_DSN{{- end }}
{{- define "driftwatch.kafkaUsernameEnv" -}}DRIFTWATCH_KAFKA_USERNAME{{- end }}
{{- define "driftwatch.kafkaPasswordEnv" -}}DRIFTWATCH_KAFKA_PASSWORD{{- end }}

{{/*
The config's `fleet` section (monitor/core/config.py FleetConfig) from the `fleet` values; fails the
render on a combination the monitor would refuse or that could not work.
*/}}
{{- define "driftwatch.fleetConfig" -}}
{{- $f := .Values.fleet }}
{{- $k := $f.kafka }}
{{- $bootstrap := $k.bootstrapServers }}
{{- if kindIs "slice" $bootstrap }}{{ $bootstrap = join "," $bootstrap }}{{ end }}
{{- if not $bootstrap }}
{{- fail "fleet.enabled needs fleet.kafka.bootstrapServers: the Kafka brokers (host:port[,host:port...])" }}
{{- end }}
{{- if not $f.postgres.existingSecret }}
{{- fail "fleet.enabled needs fleet.postgres.existingSecret: a Secret holding the PostgreSQL connection string under fleet.postgres.dsnKey" }}
{{- end }}
{{- if .Values.persistence.enabled }}
{{- fail "fleet mode keeps its state in PostgreSQL, not on a volume: set persistence.enabled=false with fleet.enabled" }}
{{- end }}
{{- if gt (int $f.replicas) (int $k.partitions) }}
{{- fail (printf "fleet.replicas (%d) exceeds fleet.kafka.partitions (%d): the replicas beyond the partition count would own no model" (int $f.replicas) (int $k.partitions)) }}
{{- end }}
{{- $sec := $k.security }}
{{- $security := dict "protocol" $sec.protocol }}
{{- if hasPrefix "SASL" $sec.protocol }}
{{- if not (and $sec.saslMechanism $k.sasl.existingSecret) }}
{{- fail (printf "fleet.kafka.security.protocol %s needs fleet.kafka.security.saslMechanism and fleet.kafka.sasl.existingSecret (the Secret with the SASL user name and password)" $sec.protocol) }}
{{- end }}
{{- $_ := set $security "sasl_mechanism" $sec.saslMechanism }}
{{- $_ := set $security "username_env" (include "driftwatch.kafkaUsernameEnv" .) }}
{{- $_ := set $security "password_env" (include "driftwatch.kafkaPasswordEnv" .) }}
{{- else if or $sec.saslMechanism $k.sasl.existingSecret }}
{{- fail (printf "fleet.kafka.security.saslMechanism / fleet.kafka.sasl.existingSecret are set but protocol %s does not use SASL (SASL_PLAINTEXT or SASL_SSL does)" $sec.protocol) }}
{{- end }}
{{- if $k.tls.existingSecret }}
{{- if not (hasSuffix "SSL" $sec.protocol) }}
{{- fail (printf "fleet.kafka.tls.existingSecret is set but protocol %s does not use TLS (SSL or SASL_SSL does)" $sec.protocol) }}
{{- end }}
{{- if ne (empty $k.tls.certKey) (empty $k.tls.keyKey) }}
{{- fail "fleet.kafka.tls.certKey and fleet.kafka.tls.keyKey go together (a client certificate and its key)" }}
{{- end }}
{{- $dir := include "driftwatch.kafkaTlsDir" . }}
{{- with $k.tls.caKey }}{{ $_ := set $security "ca_file" (printf "%s/%s" $dir .) }}{{ end }}
{{- with $k.tls.certKey }}{{ $_ := set $security "cert_file" (printf "%s/%s" $dir .) }}{{ end }}
{{- with $k.tls.keyKey }}{{ $_ := set $security "key_file" (printf "%s/%s" $dir .) }}{{ end }}
{{- end }}
kafka:
  bootstrap_servers: {{ $bootstrap | quote }}
  topic: {{ $k.topic | quote }}
  partitions: {{ int $k.partitions }}
  group_id: {{ $k.groupId | quote }}
  replication_factor: {{ int $k.replicationFactor }}
  produce_timeout: {{ $k.produceTimeout | quote }}
  security:
    {{- toYaml $security | nindent 4 }}
postgres:
  dsn_env: {{ include "driftwatch.postgresDsnEnv" . }}
  lease_seconds: {{ $f.postgres.leaseSeconds | quote }}
{{- end }}

{{/* Fleet mode: the environment variables the config's `fleet` section names, from the existing Secrets. */}}
{{- define "driftwatch.fleetEnv" -}}
{{- $f := .Values.fleet }}
- name: {{ include "driftwatch.postgresDsnEnv" . }}
  valueFrom:
    secretKeyRef:
      name: {{ $f.postgres.existingSecret }}
      key: {{ $f.postgres.dsnKey }}
{{- if hasPrefix "SASL" $f.kafka.security.protocol }}
- name: {{ include "driftwatch.kafkaUsernameEnv" . }}
  valueFrom:
    secretKeyRef:
      name: {{ $f.kafka.sasl.existingSecret }}
      key: {{ $f.kafka.sasl.usernameKey }}
- name: {{ include "driftwatch.kafkaPasswordEnv" . }}
  valueFrom:
    secretKeyRef:
      name: {{ $f.kafka.sasl.existingSecret }}
      key: {{ $f.kafka.sasl.passwordKey }}
{{- end }}
{{- end }}

{{/* Fleet mode: the pods' affinity, `affinity` with a podAntiAffinity on the hostname unless it has its own. */}}
{{- define "driftwatch.fleetAffinity" -}}
{{- $affinity := deepCopy (default dict .Values.affinity) }}
{{- if not (hasKey $affinity "podAntiAffinity") }}
{{- $term := dict "topologyKey" "kubernetes.io/hostname" "labelSelector" (dict "matchLabels" (include "driftwatch.selectorLabels" . | fromYaml)) }}
{{- if eq .Values.fleet.antiAffinity "hard" }}
{{- $_ := set $affinity "podAntiAffinity" (dict "requiredDuringSchedulingIgnoredDuringExecution" (list $term)) }}
{{- else }}
{{- $_ := set $affinity "podAntiAffinity" (dict "preferredDuringSchedulingIgnoredDuringExecution" (list (dict "weight" 100 "podAffinityTerm" $term))) }}
{{- end }}
{{- end }}
{{- toYaml $affinity }}
{{- end }}

{{/*
Fails the render when files generated by monitor.app.chartgen (rules, dashboards) are used with a
`config` other than the one they were made from (files/generated-from.yaml): they would silently
watch other models, thresholds or job names. Both sides are parsed by helm and compared as JSON, so
formatting cannot differ; `server` is left out (generators read only its public_url, filled in at render).
Call with (dict "root" $ "what" "…" "key" "values key that replaces them").
*/}}
{{- define "driftwatch.assertGeneratedFromConfig" -}}
{{- $shipped := .root.Files.Get "files/generated-from.yaml" | fromYaml }}
{{- $config := omit .root.Values.config "server" }}
{{- if ne (toJson $shipped) (toJson $config) }}
{{- $differs := list }}
{{- range $key := concat (keys $shipped) (keys $config) | uniq | sortAlpha }}
{{- if ne (toJson (get $shipped $key)) (toJson (get $config $key)) }}
{{- $differs = append $differs (printf "config.%s" $key) }}
{{- end }}
{{- end }}
{{- fail (printf "the chart's %s were generated from its default `config`, and your `config` differs (in %s): they would not match it. Generate them for your config with `python -m monitor.app.chartgen --config my-config.yaml --values-out my-values.yaml` and install with `--values my-values.yaml` (it sets `config`, `%s` and the other generated values)" .what (join ", " $differs) .key) }}
{{- end }}
{{- end }}

{{/*
"true" when a Prometheus Operator object is to be rendered: `enabled: true` forces it, `"auto"`
renders it only when the cluster (or `helm template --api-versions`) serves its API group version,
monitoring.coreos.com/v1 unless "api" says otherwise.
Call with (dict "enabled" .Values.x.enabled "root" $ ["api" "monitoring.coreos.com/v1alpha1"]).
*/}}
{{- define "driftwatch.operatorEnabled" -}}
{{- $e := toString .enabled }}
{{- if or (eq $e "true") (and (eq $e "auto") (.root.Capabilities.APIVersions.Has (.api | default "monitoring.coreos.com/v1"))) -}}
true
{{- end }}
{{- end }}

{{/*
What the monitor does in which namespace, as JSON {namespace: {"jobs": bool, "podMetrics": bool,
"workflows": bool}} (the only API calls it makes: retrain/kubernetes.py, retrain/argo.py,
monitor/resources/kubernetes.py):
- "jobs": batch Jobs create/get/list/watch/delete, where a model retrains with the kubernetes
  launcher (`retrain.kubernetes.namespace` of each enabled model's retrain, or of `defaults.retrain`);
- "workflows": Argo Workflows create/get, where a model retrains with the argo launcher
  (`retrain.argo.namespace`);
- "podMetrics": metrics.k8s.io pods list, where a model's pods are measured (`resources.namespace`
  of models with a `resources.selector` and no `resources.pid_file`).
Derived from `config` with `rbac.namespacesFromConfig`; each of `rbac.namespaces` gets both.
*/}}
{{- define "driftwatch.rbacGrants" -}}
{{- $grants := dict }}
{{- range .Values.rbac.namespaces }}
{{- $_ := set $grants . (dict "jobs" true "podMetrics" true) }}
{{- end }}
{{- if .Values.rbac.namespacesFromConfig }}
{{- $defaults := default dict (get .Values.config "defaults") }}
{{- range (default list (get .Values.config "models")) }}
{{- $retrain := default (get $defaults "retrain") (get . "retrain") }}
{{- if and $retrain (ne (toString (get $retrain "enabled")) "false") (eq (toString (get $retrain "launcher")) "kubernetes") (get $retrain "kubernetes") }}
{{- $ns := default "default" (get (get $retrain "kubernetes") "namespace") }}
{{- $_ := set $grants $ns (merge (dict "jobs" true) (default dict (get $grants $ns))) }}
{{- end }}
{{- if and $retrain (ne (toString (get $retrain "enabled")) "false") (eq (toString (get $retrain "launcher")) "argo") (get $retrain "argo") }}
{{- $ns := default "default" (get (get $retrain "argo") "namespace") }}
{{- $_ := set $grants $ns (merge (dict "workflows" true) (default dict (get $grants $ns))) }}
{{- end }}
{{- with (get . "resources") }}
{{- if and (get . "selector") (not (get . "pid_file")) }}
{{- $ns := default "default" (get . "namespace") }}
{{- $_ := set $grants $ns (merge (dict "podMetrics" true) (default dict (get $grants $ns))) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}
{{- toJson $grants }}
{{- end }}

{{/*
The rules of one grant (see driftwatch.rbacGrants), each verb one the monitor calls.
Call with (dict "jobs" BOOL "podMetrics" BOOL "workflows" BOOL).
*/}}
{{- define "driftwatch.rbacRules" -}}
{{- if .jobs }}
- apiGroups: ["batch"]
  resources: ["jobs"]
  verbs: ["create", "get", "list", "watch", "delete"]
{{- end }}
{{- if .podMetrics }}
- apiGroups: ["metrics.k8s.io"]
  resources: ["pods"]
  verbs: ["list"]
{{- end }}
{{- if .workflows }}
- apiGroups: ["argoproj.io"]
  resources: ["workflows"]
  verbs: ["create", "get"]
{{- end }}
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
    - --token-file
    - /var/run/secrets/driftwatch/{{ $v.auth.secretKey }}
    {{- end }}
  env:
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
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
    {{- if $v.auth.enabled }}
    - name: driftwatch-token
      mountPath: /var/run/secrets/driftwatch
      readOnly: true
    {{- end }}
{{- end }}

{{/* The sidecar's volumes, as `driftwatch inject` adds them: emptyDirs (spool up to --spool-max-bytes, 256MiB by default) and the token Secret (a copy in the model's namespace, same name). */}}
{{- define "driftwatch.sidecarVolumes" -}}
- name: driftwatch-spool
  emptyDir:
    sizeLimit: 512Mi
- name: driftwatch-tmp
  emptyDir:
    sizeLimit: 64Mi
{{- if .Values.auth.enabled }}
- name: driftwatch-token
  secret:
    secretName: {{ include "driftwatch.secretName" . }}
    defaultMode: 0444
{{- end }}
{{- end }}
