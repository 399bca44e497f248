{{/* Chart name, possibly overridden. */}}
{{- define "videollm.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/*
Resource-name prefix: the release name, plus the chart name unless the release name already
contains it (release `videollm` -> `videollm`, release `prod` -> `prod-videollm`). Room is left
for the longest suffix (`-minio-headless`).
*/}}
{{- define "videollm.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 48 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "videollm.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; call with (dict "ctx" $ "component" "minio"). */}}
{{- define "videollm.labels" -}}
helm.sh/chart: {{ include "videollm.chart" .ctx }}
{{ include "videollm.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: videollm
{{- end -}}

{{/* Selector labels; call with (dict "ctx" $ "component" "minio"). */}}
{{- define "videollm.selectorLabels" -}}
app.kubernetes.io/name: {{ include "videollm.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* An image reference from {repository, tag}. */}}
{{- define "videollm.image" -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}

{{/* The MLflow server image: mlflow.image, or the pipeline image when that is empty. */}}
{{- define "videollm.mlflowImage" -}}
{{- if .Values.mlflow.image.repository -}}
{{- include "videollm.image" (dict "repository" .Values.mlflow.image.repository "tag" (required "mlflow.image.tag is required with mlflow.image.repository" .Values.mlflow.image.tag)) -}}
{{- else -}}
{{- include "videollm.image" .Values.images.pipeline -}}
{{- end -}}
{{- end -}}

{{/* The platform ConfigMap and Secret every component reads (envFrom). */}}
{{- define "videollm.configName" -}}
{{- printf "%s-platform" (include "videollm.fullname" .) -}}
{{- end -}}

{{- define "videollm.secretName" -}}
{{- default (printf "%s-credentials" (include "videollm.fullname" .)) .Values.credentials.existingSecret -}}
{{- end -}}

{{- define "videollm.minioName" -}}
{{- printf "%s-minio" (include "videollm.fullname" .) -}}
{{- end -}}

{{- define "videollm.mlflowName" -}}
{{- printf "%s-mlflow" (include "videollm.fullname" .) -}}
{{- end -}}

{{- define "videollm.inferenceName" -}}
{{- printf "%s-inference" (include "videollm.fullname" .) -}}
{{- end -}}

{{/* S3 endpoint URL: the in-cluster MinIO Service, or minio.external.endpoint. */}}
{{- define "videollm.s3Endpoint" -}}
{{- if .Values.minio.enabled -}}
{{- printf "http://%s:%v" (include "videollm.minioName" .) .Values.minio.service.port -}}
{{- else -}}
{{- required "minio.external.endpoint is required when minio.enabled=false (e.g. https://s3.example.com)" .Values.minio.external.endpoint | trimSuffix "/" -}}
{{- end -}}
{{- end -}}

{{- define "videollm.s3Secure" -}}
{{- if hasPrefix "https://" (include "videollm.s3Endpoint" .) -}}true{{- else -}}false{{- end -}}
{{- end -}}

{{/* MLflow tracking URI: the in-cluster server, or mlflow.external.trackingUri. */}}
{{- define "videollm.trackingUri" -}}
{{- if .Values.mlflow.enabled -}}
{{- printf "http://%s:%v" (include "videollm.mlflowName" .) .Values.mlflow.service.port -}}
{{- else -}}
{{- required "mlflow.external.trackingUri is required when mlflow.enabled=false" .Values.mlflow.external.trackingUri -}}
{{- end -}}
{{- end -}}

{{/* Buckets the bucket Job creates: minio.buckets + platform.bucket + MLflow's artifact bucket. */}}
{{- define "videollm.buckets" -}}
{{- $buckets := concat (.Values.minio.buckets | default list) (list .Values.platform.bucket) -}}
{{- if hasPrefix "s3://" .Values.mlflow.artifactsDestination -}}
{{- $buckets = append $buckets (regexReplaceAll "^s3://([^/]+).*$" .Values.mlflow.artifactsDestination "${1}") -}}
{{- end -}}
{{- $buckets | uniq | join " " -}}
{{- end -}}

{{- define "videollm.pipelineServiceAccount" -}}
{{- .Values.pipeline.serviceAccount.name -}}
{{- end -}}

{{/* envFrom of every component: the platform ConfigMap and Secret. */}}
{{- define "videollm.envFrom" -}}
- configMapRef:
    name: {{ include "videollm.configName" . }}
- secretRef:
    name: {{ include "videollm.secretName" . }}
{{- end -}}

{{/* Pod annotation that rolls pods when the platform ConfigMap changes. */}}
{{- define "videollm.configChecksum" -}}
checksum/platform-config: {{ include (print .Template.BasePath "/platform-configmap.yaml") . | sha256sum }}
{{- end -}}

{{/* Host headers the MLflow server accepts: its Service names (short, namespaced, FQDN, any
port), localhost for port-forwarding, and mlflow.extraAllowedHosts. */}}
{{- define "videollm.mlflowAllowedHosts" -}}
{{- $svc := include "videollm.mlflowName" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $svc (printf "%s:*" $svc) (printf "%s.%s" $svc $ns) (printf "%s.%s:*" $svc $ns) (printf "%s.%s.svc*" $svc $ns) "localhost" "localhost:*" "127.0.0.1" "127.0.0.1:*" -}}
{{- concat $hosts (.Values.mlflow.extraAllowedHosts | default list) | join "," -}}
{{- end -}}
