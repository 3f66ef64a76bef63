{{/*
Names, labels and small computed values, defined once and used by every template.
*/}}

{{/* Chart name, overridable with nameOverride. */}}
{{- define "recharge-autoscaler.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name (release-qualified, 63 chars max, DNS-1123). fullnameOverride wins; a release
named like the chart is not repeated.
*/}}
{{- define "recharge-autoscaler.fullname" -}}
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

{{/* chart label value: name-version */}}
{{- define "recharge-autoscaler.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels: stable for the life of a release (never add version here). */}}
{{- define "recharge-autoscaler.selectorLabels" -}}
app.kubernetes.io/name: {{ include "recharge-autoscaler.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/* Common labels on every object. */}}
{{- define "recharge-autoscaler.labels" -}}
helm.sh/chart: {{ include "recharge-autoscaler.chart" . }}
{{ include "recharge-autoscaler.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: recharge-autoscaler
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Labels of the controller pods (selector + component). */}}
{{- define "recharge-autoscaler.controllerSelectorLabels" -}}
{{ include "recharge-autoscaler.selectorLabels" . }}
app.kubernetes.io/component: controller
{{- end }}

{{/* ServiceAccount name. */}}
{{- define "recharge-autoscaler.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "recharge-autoscaler.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* Container image reference: repository:tag, or repository@digest when a digest is pinned. */}}
{{- define "recharge-autoscaler.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if and (eq $tag "latest") (not .Values.image.digest) }}
{{- fail "image.tag: 'latest' is not a pinned tag; use a release tag such as 0.1.0, or set image.digest" }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/* Namespace of the scaled workload (defaults to the release namespace). */}}
{{- define "recharge-autoscaler.targetNamespace" -}}
{{- default .Release.Namespace .Values.controller.target.namespace }}
{{- end }}

{{/* Name of the ConfigMap holding the product config file. */}}
{{- define "recharge-autoscaler.configName" -}}
{{- printf "%s-config" (include "recharge-autoscaler.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of the ConfigMap where the forecast job stores the forecast and the controller reads it. */}}
{{- define "recharge-autoscaler.forecastConfigMapName" -}}
{{- default (printf "%s-forecast" (include "recharge-autoscaler.fullname" .) | trunc 63 | trimSuffix "-") .Values.store.configmap.name }}
{{- end }}

{{/* Name of the leader-election Lease. */}}
{{- define "recharge-autoscaler.leaseName" -}}
{{- default (printf "%s-leader" (include "recharge-autoscaler.fullname" .) | trunc 63 | trimSuffix "-") .Values.controller.leaderElection.leaseName }}
{{- end }}

{{/* Name of the ConfigMap where the controller keeps its state (the product derives it from the Lease name). */}}
{{- define "recharge-autoscaler.stateConfigMapName" -}}
{{- printf "%s-state" (include "recharge-autoscaler.leaseName" .) }}
{{- end }}

{{/* Where secrets are mounted inside the pods. */}}
{{- define "recharge-autoscaler.secretDir" -}}/var/run/secrets/recharge-autoscaler{{- end }}

{{/* Port of /healthz and /readyz: the fleet controller's in fleet mode, else the controller's. */}}
{{- define "recharge-autoscaler.healthPort" -}}
{{- ternary .Values.fleet.healthPort .Values.controller.healthPort (eq (toString .Values.fleet.enabled) "true") }}
{{- end }}

{{/* Port of /metrics: the fleet controller's in fleet mode, else the controller's. */}}
{{- define "recharge-autoscaler.metricsPort" -}}
{{- ternary .Values.fleet.metricsPort .Values.controller.metricsPort (eq (toString .Values.fleet.enabled) "true") }}
{{- end }}

{{/* Name of the fleet controller's Lease. */}}
{{- define "recharge-autoscaler.fleetLeaseName" -}}
{{- default (printf "%s-leader" (include "recharge-autoscaler.fullname" .) | trunc 63 | trimSuffix "-") .Values.fleet.leaderElection.leaseName }}
{{- end }}

{{/* Namespace of the fleet controller's Lease (default: the release namespace). */}}
{{- define "recharge-autoscaler.fleetLeaseNamespace" -}}
{{- default .Release.Namespace .Values.fleet.leaderElection.leaseNamespace }}
{{- end }}
