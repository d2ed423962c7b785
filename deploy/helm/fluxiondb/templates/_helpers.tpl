{{/*
fluxiondb.name is the chart name, or nameOverride.
*/}}
{{- define "fluxiondb.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
fluxiondb.fullname names every object of the release. It is truncated to 63
characters because some Kubernetes name fields are limited to that (DNS-1123).
*/}}
{{- define "fluxiondb.fullname" -}}
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

{{/*
fluxiondb.headless is the headless Service's name: the fullname cut so that with its
"-headless" suffix it stays a valid Service name (63 characters at most).
*/}}
{{- define "fluxiondb.headless" -}}
{{- printf "%s-headless" (include "fluxiondb.fullname" . | trunc 54 | trimSuffix "-") }}
{{- end }}

{{/*
fluxiondb.chart is the chart name and version, for the helm.sh/chart label.
*/}}
{{- define "fluxiondb.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
fluxiondb.labels go on every object.
*/}}
{{- define "fluxiondb.labels" -}}
helm.sh/chart: {{ include "fluxiondb.chart" . }}
{{ include "fluxiondb.selectorLabels" . }}
app.kubernetes.io/version: {{ include "fluxiondb.versionLabel" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{/*
fluxiondb.selectorLabels select the server pod. They must never change for a
release: a StatefulSet's selector is immutable.
*/}}
{{- define "fluxiondb.selectorLabels" -}}
app.kubernetes.io/name: {{ include "fluxiondb.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
fluxiondb.serviceAccountName is the ServiceAccount the pod runs as.
*/}}
{{- define "fluxiondb.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "fluxiondb.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
fluxiondb.imageTag is image.tag, or the chart's appVersion when it is empty.
*/}}
{{- define "fluxiondb.imageTag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/*
fluxiondb.versionLabel is the image tag made a valid label value: a digest's
":" and a semver's "+" are not allowed there, nor more than 63 characters.
*/}}
{{- define "fluxiondb.versionLabel" -}}
{{- regexReplaceAll "[^A-Za-z0-9_.-]" (include "fluxiondb.imageTag" .) "_" | trunc 63 | trimAll "_.-" }}
{{- end }}

{{/*
fluxiondb.image is the full image reference. A tag starting with "sha256:"
is a digest and joins with "@".
*/}}
{{- define "fluxiondb.image" -}}
{{- $tag := include "fluxiondb.imageTag" . }}
{{- if hasPrefix "sha256:" $tag }}
{{- printf "%s@%s" .Values.image.repository $tag }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
fluxiondb.secretName is the Secret holding the master key, and
fluxiondb.secretKeyName the key inside it. The schema already demands one of
secret.secretKey and secret.existingSecret; the fail here is the same check
for a renderer that skips the schema.
*/}}
{{- define "fluxiondb.secretName" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecret }}
{{- else if .Values.secret.secretKey }}
{{- include "fluxiondb.fullname" . }}
{{- else }}
{{- fail "FluxionDB needs a master key: set secret.secretKey (--set secret.secretKey=...) or secret.existingSecret" }}
{{- end }}
{{- end }}

{{- define "fluxiondb.secretKeyName" -}}
{{- if .Values.secret.existingSecret }}
{{- .Values.secret.existingSecretKey }}
{{- else }}
{{- "secret-key" }}
{{- end }}
{{- end }}

{{/*
fluxiondb.dataVolume is the pod volume "data" mounted at /app/data: the
existingClaim (whether or not persistence.enabled is set: naming a claim is
asking for it), or an emptyDir when persistence is off. With persistence on and
no existingClaim it renders nothing, because the StatefulSet's
volumeClaimTemplates then provide "data" (one claim per pod, kept on delete).
*/}}
{{- define "fluxiondb.dataVolume" -}}
{{- if .Values.persistence.existingClaim }}
- name: data
  persistentVolumeClaim:
    claimName: {{ .Values.persistence.existingClaim }}
{{- else if not .Values.persistence.enabled }}
- name: data
  emptyDir: {}
{{- end }}
{{- end }}
