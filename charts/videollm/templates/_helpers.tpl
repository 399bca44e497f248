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

{{/* Pod annotations that roll a pod when the platform ConfigMap or a Secret it reads changes;
call with (dict "ctx" $ "config" true "credentials" true "mlflowAuth" false "hfToken" false).
Generated values are read back with `lookup` on upgrade, so an unchanged Secret renders the
same bytes and the same checksum. An existingSecret is not the chart's to hash. */}}
{{- define "videollm.checksums" -}}
{{- $ctx := .ctx -}}
{{- $sums := list -}}
{{- if .config -}}
{{- $sums = append $sums (printf "checksum/platform-config: %s" (include (print $ctx.Template.BasePath "/platform-configmap.yaml") $ctx | sha256sum)) -}}
{{- end -}}
{{- if and .credentials (not $ctx.Values.credentials.existingSecret) -}}
{{- $sums = append $sums (printf "checksum/credentials: %s" (include (print $ctx.Template.BasePath "/platform-secret.yaml") $ctx | sha256sum)) -}}
{{- end -}}
{{- if .mlflowAuth -}}
{{- $sums = append $sums (printf "checksum/mlflow-auth: %s" (include (print $ctx.Template.BasePath "/mlflow-auth-secret.yaml") $ctx | sha256sum)) -}}
{{- end -}}
{{- if and .hfToken (not $ctx.Values.hfToken.existingSecret) -}}
{{- $sums = append $sums (printf "checksum/hf-token: %s" (include (print $ctx.Template.BasePath "/hf-token-secret.yaml") $ctx | sha256sum)) -}}
{{- end -}}
{{- join "\n" $sums -}}
{{- end -}}

{{/* Label and annotation of every batch pod (hook Jobs, test pods): no Istio sidecar, which
would never exit and so keep the pod from completing. Both, since Istio reads either. */}}
{{- define "videollm.noIstioSidecar" -}}
{{- if .Values.istio.disableBatchSidecars -}}
sidecar.istio.io/inject: "false"
{{- end -}}
{{- end -}}

{{/* The in-cluster MLflow server runs the basic-auth app. */}}
{{- define "videollm.mlflowAuth" -}}
{{- if and .Values.mlflow.enabled .Values.mlflow.auth.enabled -}}true{{- end -}}
{{- end -}}

{{/* The MLflow server's own Secret (Flask session key); never given to clients. */}}
{{- define "videollm.mlflowAuthSecretName" -}}
{{- printf "%s-mlflow-auth" (include "videollm.fullname" .) -}}
{{- end -}}

{{/* The training pods' ServiceAccount (videollm.cluster.TRAIN_SERVICE_ACCOUNT). */}}
{{- define "videollm.trainServiceAccount" -}}
{{- printf "%s-train" (include "videollm.fullname" .) -}}
{{- end -}}

{{/* Hugging Face cache PVC and token Secret (platform.HF_CACHE_PVC, HF_TOKEN_SECRET). */}}
{{- define "videollm.hfCacheName" -}}
{{- printf "%s-hf-cache" (include "videollm.fullname" .) -}}
{{- end -}}

{{- define "videollm.hfTokenSecretName" -}}
{{- default (printf "%s-hf-token" (include "videollm.fullname" .)) .Values.hfToken.existingSecret -}}
{{- end -}}

{{/* HF_HOME of the pods that load Hugging Face models (platform.HF_HOME). */}}
{{- define "videollm.hfHome" -}}/var/cache/huggingface{{- end -}}

{{/* Host headers the MLflow server accepts: its Service names (short, namespaced, FQDN, any
port), localhost for port-forwarding, its Ingress/HTTPRoute hosts and mlflow.extraAllowedHosts. */}}
{{- define "videollm.mlflowAllowedHosts" -}}
{{- $svc := include "videollm.mlflowName" . -}}
{{- $ns := .Release.Namespace -}}
{{- $hosts := list $svc (printf "%s:*" $svc) (printf "%s.%s" $svc $ns) (printf "%s.%s:*" $svc $ns) (printf "%s.%s.svc*" $svc $ns) "localhost" "localhost:*" "127.0.0.1" "127.0.0.1:*" -}}
{{- if and .Values.mlflow.ingress.enabled .Values.mlflow.ingress.host -}}
{{- $hosts = append $hosts .Values.mlflow.ingress.host -}}
{{- end -}}
{{- if .Values.mlflow.httpRoute.enabled -}}
{{- $hosts = concat $hosts (.Values.mlflow.httpRoute.hostnames | default list) -}}
{{- end -}}
{{- concat $hosts (.Values.mlflow.extraAllowedHosts | default list) | uniq | join "," -}}
{{- end -}}
