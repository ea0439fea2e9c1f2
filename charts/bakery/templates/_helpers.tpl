{{/* Helpers shared by the bakery chart's templates: names, labels, images, environment. */}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "bakery.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Resource-name prefix: fullnameOverride, or the release name (plus the chart name when the
release name does not contain it). Truncated to leave room for "-reception". */}}
{{- define "bakery.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 52 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 52 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Labels on every object. Call with (dict "ctx" $ "component" "reception"). */}}
{{- define "bakery.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .ctx.Chart.Name .ctx.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: bakery
{{ include "bakery.selectorLabels" . }}
{{- end }}

{{/* Selector labels of one component. Call with (dict "ctx" $ "component" "reception"). */}}
{{- define "bakery.selectorLabels" -}}
app.kubernetes.io/name: {{ include "bakery.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end }}

{{/* The service account the pods run as. */}}
{{- define "bakery.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "bakery.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret holding the RabbitMQ credentials and the OTLP headers. */}}
{{- define "bakery.secretName" -}}
{{- default (include "bakery.fullname" .) .Values.existingSecret }}
{{- end }}

{{/* Image reference: [registry/]repository:tag, where registry is global.imageRegistry when
set, else the image's own registry, and tag defaults to the chart's appVersion.
Call with (dict "ctx" $ "image" .Values.reception.image). */}}
{{- define "bakery.image" -}}
{{- $registry := .image.registry | default "" }}
{{- with .ctx.Values.global }}
{{- with .imageRegistry }}
{{- $registry = . }}
{{- end }}
{{- end }}
{{- $ref := printf "%s:%s" .image.repository (default .ctx.Chart.AppVersion .image.tag | toString) }}
{{- if $registry }}
{{- printf "%s/%s" (trimSuffix "/" $registry) $ref }}
{{- else }}
{{- $ref }}
{{- end }}
{{- end }}

{{/* imagePullSecrets of every pod: global.imagePullSecrets, then imagePullSecrets; each a
Secret name or a {name: ...} object; duplicates dropped. Renders nothing when there are none. */}}
{{- define "bakery.imagePullSecrets" -}}
{{- $all := list }}
{{- with .Values.global }}
{{- $all = concat $all (.imagePullSecrets | default list) }}
{{- end }}
{{- $all = concat $all (.Values.imagePullSecrets | default list) }}
{{- $names := list }}
{{- range $all }}
{{- $name := kindIs "string" . | ternary . "" }}
{{- if kindIs "map" . }}
{{- $name = .name }}
{{- end }}
{{- if and $name (not (has $name $names)) }}
{{- $names = append $names $name }}
{{- end }}
{{- end }}
{{- with $names }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Rolling updates of both Deployments: a new pod first, an old one only once it is ready. */}}
{{- define "bakery.rollingUpdate" -}}
strategy:
  type: RollingUpdate
  rollingUpdate:
    maxSurge: 1
    maxUnavailable: 0
{{- end }}

{{/* RABBIT_HOST: rabbitmq.addresses joined with commas, else rabbitmq.address. */}}
{{- define "bakery.rabbitHost" -}}
{{- if .Values.rabbitmq.addresses }}
{{- join "," .Values.rabbitmq.addresses }}
{{- else }}
{{- .Values.rabbitmq.address }}
{{- end }}
{{- end }}

{{/* Port of a host:port address. */}}
{{- define "bakery.addressPort" -}}
{{- splitList ":" . | last }}
{{- end }}

{{/* Port of the OTLP endpoint URL (443 or 80 when the URL has none). */}}
{{- define "bakery.otlpPort" -}}
{{- $url := urlParse .Values.otel.endpoint }}
{{- if regexMatch ":[0-9]+$" $url.host }}
{{- splitList ":" $url.host | last }}
{{- else if eq $url.scheme "https" }}443
{{- else }}80
{{- end }}
{{- end }}

{{/* Annotations that roll the pods when the configuration or the Secret changes. */}}
{{- define "bakery.checksumAnnotation" -}}
checksum/config: {{ printf "%s%s" (include (print .Template.BasePath "/configmap.yaml") .) (include (print .Template.BasePath "/secret.yaml") .) | sha256sum }}
{{- end }}

{{/* Environment shared by both services: the downward API (read by the tracing SDK for the
k8s.* resource attributes), the credentials and headers from the Secret, extra env. The rest
comes from the ConfigMap through envFrom. */}}
{{- define "bakery.env" -}}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: K8S_NODE_NAME
  valueFrom:
    fieldRef:
      fieldPath: spec.nodeName
- name: RABBIT_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ include "bakery.secretName" . }}
      key: rabbitmq-username
- name: RABBIT_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ include "bakery.secretName" . }}
      key: rabbitmq-password
{{- with .Values.redis.password.existingSecret }}
- name: REDIS_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ . }}
      key: {{ $.Values.redis.password.key }}
{{- end }}
- name: OTEL_EXPORTER_OTLP_HEADERS
  valueFrom:
    secretKeyRef:
      name: {{ include "bakery.secretName" . }}
      key: otlp-headers
      optional: true
{{- with .Values.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Pod-spec fields shared by both services. Call with (dict "ctx" $ "values" .Values.baker). */}}
{{- define "bakery.podCommon" -}}
serviceAccountName: {{ include "bakery.serviceAccountName" .ctx }}
automountServiceAccountToken: false
{{- with include "bakery.imagePullSecrets" .ctx | trim }}
{{ . }}
{{- end }}
securityContext:
  {{- toYaml .ctx.Values.podSecurityContext | nindent 2 }}
terminationGracePeriodSeconds: {{ .values.terminationGracePeriodSeconds }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 16Mi
{{- end }}
