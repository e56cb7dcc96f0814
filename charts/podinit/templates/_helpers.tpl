{{/* Names ------------------------------------------------------------------------- */}}
{{- define "podinit.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "podinit.fullname" -}}
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

{{- define "podinit.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "podinit.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The Secret with the serving certificate. */}}
{{- define "podinit.tlsSecret" -}}
{{- if eq .Values.certificates.mode "existingSecret" }}
{{- required "certificates.existingSecret.name is required with certificates.mode=existingSecret" .Values.certificates.existingSecret.name }}
{{- else }}
{{- default (printf "%s-tls" (include "podinit.fullname" .)) .Values.certificates.secretName }}
{{- end }}
{{- end }}

{{/* The webhook configuration is cluster-scoped: one per release. */}}
{{- define "podinit.webhookConfiguration" -}}
{{- include "podinit.fullname" . }}
{{- end }}

{{- define "podinit.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Labels ------------------------------------------------------------------------ */}}
{{- define "podinit.selectorLabels" -}}
app.kubernetes.io/name: {{ include "podinit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: webhook
{{- end }}

{{/* Without app.kubernetes.io/component, for objects that are not the webhook's. */}}
{{- define "podinit.commonLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "podinit.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/part-of: podinit
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "podinit.labels" -}}
{{ include "podinit.commonLabels" . }}
app.kubernetes.io/component: webhook
{{- end }}

{{/* Certificates -------------------------------------------------------------------- */}}
{{/* Where the server reads its serving certificate. selfManaged: the server writes what it
     keeps in the Secret to an emptyDir; otherwise the Secret is mounted. */}}
{{- define "podinit.tlsDir" -}}
{{- if eq .Values.certificates.mode "selfManaged" }}/run/podinit/tls{{ else }}/etc/podinit/tls{{ end }}
{{- end }}

{{/* The server's config file: the values' config plus what the chart decides. */}}
{{- define "podinit.config" -}}
{{- $c := deepCopy .Values.config }}
{{- $_ := set $c "certificates" (ternary "selfManaged" "files" (eq .Values.certificates.mode "selfManaged")) }}
{{- $_ = set $c "serviceName" (include "podinit.fullname" .) }}
{{- $_ = set $c "namespace" .Release.Namespace }}
{{- $_ = set $c "certificateSecret" (include "podinit.tlsSecret" .) }}
{{- $_ = set $c "webhookConfiguration" (include "podinit.webhookConfiguration" .) }}
{{- $_ = set $c "tlsCertFile" (printf "%s/tls.crt" (include "podinit.tlsDir" .)) }}
{{- $_ = set $c "tlsKeyFile" (printf "%s/tls.key" (include "podinit.tlsDir" .)) }}
{{- $_ = set $c "metricsPort" (include "podinit.metricsPort" . | int) }}
{{- if .Values.server.clientCA }}
{{- $_ = set $c "clientCaFile" "/etc/podinit/client-ca/ca.crt" }}
{{- end }}
{{- if .Values.podWatch.enabled }}
{{- $_ = set $c "podWatch" true }}
{{- $_ = set $c "leaseName" (printf "%s-leader" (include "podinit.fullname" .)) }}
{{- end }}
{{- if .Values.reconcile.enabled }}
{{- if not .Values.podWatch.enabled }}
{{- fail "reconcile.enabled needs podWatch.enabled: the reconciler acts on what the pod watch finds" }}
{{- end }}
{{- $r := .Values.reconcile }}
{{- $_ = set $c "reconcile" true }}
{{- $_ = set $c "reconcileDryRun" $r.dryRun }}
{{- $_ = set $c "reconcileEvictionsPerMinute" $r.evictionsPerMinute }}
{{- $_ = set $c "reconcileNamespaceEvictionsPerMinute" $r.namespaceEvictionsPerMinute }}
{{- $_ = set $c "reconcileReadyTimeoutSeconds" $r.readyTimeoutSeconds }}
{{- $_ = set $c "reconcileRetrySeconds" $r.retrySeconds }}
{{- $_ = set $c "reconcileStallSeconds" $r.stallSeconds }}
{{- $_ = set $c "reconcileSinglePodWorkloads" $r.singlePodWorkloads }}
{{- $_ = set $c "reconcileProbeNamespace" (include "podinit.probeNamespace" .) }}
{{- end }}
{{- toYaml $c }}
{{- end }}

{{- define "podinit.port" -}}
{{- .Values.config.port | default 8443 | int }}
{{- end }}

{{- define "podinit.metricsPort" -}}
{{- .Values.config.metricsPort | default 9443 | int }}
{{- end }}

{{/* The caBundle written into the webhook configuration, if the chart knows it: otherwise
     the server (selfManaged) or cainjector (certManager) writes it. */}}
{{- define "podinit.caBundle" -}}
{{- if .Values.webhook.caBundle }}
{{- .Values.webhook.caBundle }}
{{- else if eq .Values.certificates.mode "existingSecret" }}
{{- required "certificates.existingSecret.caBundle is required with certificates.mode=existingSecret" .Values.certificates.existingSecret.caBundle }}
{{- end }}
{{- end }}

{{/* The server reads pull secrets unless config.pullSecretLookups is false (its default is true). */}}
{{- define "podinit.pullSecretLookups" -}}
{{- if or (not (hasKey .Values.config "pullSecretLookups")) .Values.config.pullSecretLookups }}true{{ end }}
{{- end }}

{{/* The server writes Events unless config.events is false (its default is true). */}}
{{- define "podinit.events" -}}
{{- if or (not (hasKey .Values.config "events")) .Values.config.events }}true{{ end }}
{{- end }}

{{/* reconcile: the namespace of the serving probe's dry-run pods. */}}
{{- define "podinit.probeNamespace" -}}
{{- .Values.reconcile.probeNamespace | default (printf "%s-probe" .Release.Namespace) }}
{{- end }}
