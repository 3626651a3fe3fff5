{{/* Name of the chart, or nameOverride. */}}
{{- define "dsops.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Full name of the release's objects (at most 52 characters: CronJob names get a suffix). */}}
{{- define "dsops.fullname" -}}
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

{{/* The CronJob's name: at most 52 characters (Kubernetes appends 11 to name its Jobs). */}}
{{- define "dsops.cronJobName" -}}
{{- printf "%s-rotation" (include "dsops.fullname" . | trunc 43 | trimSuffix "-") }}
{{- end }}

{{- define "dsops.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dsops.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dsops.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dsops.labels" -}}
helm.sh/chart: {{ include "dsops.chart" . }}
{{ include "dsops.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "dsops.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dsops.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dsops.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) }}
{{- end }}

{{- define "dsops.configMapName" -}}
{{- default (printf "%s-config" (include "dsops.fullname" .)) .Values.config.existingConfigMap }}
{{- end }}

{{- define "dsops.configPath" -}}
{{- printf "%s/%s" (trimSuffix "/" .Values.config.mountPath) .Values.config.key }}
{{- end }}

{{/* True (non-empty) when a worker or scheduler process runs, i.e. the job queue is needed. */}}
{{- define "dsops.queueUsed" -}}
{{- if .Values.workers.enabled }}true{{ end }}
{{- end }}

{{/* The Secret holding the queue's database URL; fails when none is given but one is needed. */}}
{{- define "dsops.databaseSecretName" -}}
{{- if .Values.database.existingSecret }}
{{- .Values.database.existingSecret }}
{{- else if .Values.database.url }}
{{- printf "%s-database" (include "dsops.fullname" .) }}
{{- else }}
{{- fail "database.url or database.existingSecret is required when workers.enabled is true: the PostgreSQL of the job queue (postgresql:// URL or store:// reference)" }}
{{- end }}
{{- end }}

{{/* The workers' grace period: above the job timeout, so SIGTERM lets the running job finish. */}}
{{- define "dsops.workerGrace" -}}
{{- $timeout := int .Values.workers.jobTimeoutSeconds }}
{{- if kindIs "invalid" .Values.workers.terminationGracePeriodSeconds }}
{{- add $timeout 60 }}
{{- else }}
{{- $grace := int .Values.workers.terminationGracePeriodSeconds }}
{{- if le $grace $timeout }}
{{- fail (printf "workers.terminationGracePeriodSeconds (%d) must be above workers.jobTimeoutSeconds (%d): SIGTERM lets the running job finish, and Kubernetes kills the pod when the grace period ends" $grace $timeout) }}
{{- end }}
{{- $grace }}
{{- end }}
{{- end }}

{{/* Arguments shared by the worker and scheduler processes: the job settings and metrics. */}}
{{- define "dsops.workerCommonArgs" -}}
- --job-timeout
- {{ printf "%ds" (int .Values.workers.jobTimeoutSeconds) | quote }}
- --retry-limit
- {{ .Values.workers.retryLimit | quote }}
{{- with .Values.workers.env }}
- --env
- {{ . | quote }}
{{- end }}
{{- if .Values.metrics.enabled }}
- --metrics-listen
- {{ printf "0.0.0.0:%d" (int .Values.metrics.port) | quote }}
{{- end }}
{{- end }}

{{- define "dsops.podAnnotations" -}}
checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
{{- with .Values.podAnnotations }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "dsops.metricsAnnotations" -}}
{{- if .Values.metrics.enabled }}
prometheus.io/scrape: "true"
prometheus.io/port: {{ .Values.metrics.port | quote }}
prometheus.io/path: {{ .Values.metrics.path | quote }}
{{- end }}
{{- end }}

{{/* Environment of every dsops container; withDatabase adds the queue's URL from its Secret. */}}
{{- define "dsops.env" -}}
{{- $root := index . 0 }}
{{- $withDatabase := index . 1 }}
- name: HOME
  value: /var/lib/dsops
- name: DSOPS_NON_INTERACTIVE
  value: "1"
- name: NO_COLOR
  value: "1"
{{- if $withDatabase }}
- name: DSOPS_WORKER_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "dsops.databaseSecretName" $root }}
      key: {{ $root.Values.database.secretKey }}
{{- end }}
{{- with $root.Values.env }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "dsops.volumeMounts" -}}
- name: config
  mountPath: {{ .Values.config.mountPath }}
  readOnly: true
- name: home
  mountPath: /var/lib/dsops
- name: tmp
  mountPath: /tmp
{{- end }}

{{- define "dsops.volumes" -}}
- name: config
  configMap:
    name: {{ include "dsops.configMapName" . }}
    items:
      - key: {{ .Values.config.key }}
        path: {{ .Values.config.key }}
- name: home
  emptyDir:
    sizeLimit: {{ .Values.scratch.sizeLimit }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.scratch.sizeLimit }}
{{- end }}

{{/* Pod-level settings shared by every pod of the chart. */}}
{{- define "dsops.podSpecCommon" -}}
serviceAccountName: {{ include "dsops.serviceAccountName" . }}
automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
