{{/*
The product config file (the YAML read by `run` and `forecast-job`), rendered from the product sections of
the values with the in-cluster wiring filled in: target/store/lease namespaces and names, and the file paths
of the Prometheus credentials mounted from Secrets.
*/}}
{{- define "recharge-autoscaler.productConfig" -}}
{{- $secretDir := include "recharge-autoscaler.secretDir" . }}
{{- $targetNs := include "recharge-autoscaler.targetNamespace" . }}
{{- $auth := .Values.prometheusAuth }}
{{- $fleet := .Values.fleet.enabled }}

{{- $source := deepCopy .Values.source }}
{{- if and $fleet (ne $source.kind "prometheus") }}
{{- fail "fleet.enabled: the fleet reads every scaler's live load from Prometheus: set source.kind=prometheus and source.prometheus.url" }}
{{- end }}
{{- if eq $source.kind "prometheus" }}
{{- $prom := $source.prometheus }}
{{- $_ := required "source.prometheus.url is required when source.kind is prometheus (e.g. http://prometheus-operated.monitoring:9090)" $prom.url }}
{{- if $fleet }}
{{- if not $prom.query }}
{{- $_ := unset $prom "query" }}
{{- end }}
{{- else }}
{{- $_ := required "source.prometheus.query is required when source.kind is prometheus (PromQL returning the request rate)" $prom.query }}
{{- end }}
{{- if $auth.bearerToken.secretName }}
{{- $_ := set $prom "bearerTokenFile" (printf "%s/prometheus/token" $secretDir) }}
{{- end }}
{{- if and $auth.bearerToken.secretName $auth.basicAuth.secretName }}
{{- fail "prometheusAuth: set either bearerToken.secretName or basicAuth.secretName, not both" }}
{{- end }}
{{- if $auth.basicAuth.secretName }}
{{- $_ := set $prom "basicAuth" (dict "username" (required "prometheusAuth.basicAuth.username is required with prometheusAuth.basicAuth.secretName" $auth.basicAuth.username) "passwordFile" (printf "%s/prometheus/password" $secretDir)) }}
{{- end }}
{{- if $auth.ca.secretName }}
{{- $_ := set $prom "caFile" (printf "%s/prometheus/ca.crt" $secretDir) }}
{{- end }}
{{- else if not $source.prometheus.url }}
{{- $_ := unset $source "prometheus" }}
{{- end }}

{{- if $fleet }}
{{- /* The fleet's file: the Prometheus connection, what and when to forecast (the fleet forecast job; each
scaler brings its own query and calendar), logging, and the fleet section with the Lease filled in. */}}
{{- $section := omit (deepCopy .Values.fleet) "enabled" }}
{{- $_ := set $section.leaderElection "leaseName" (include "recharge-autoscaler.fleetLeaseName" .) }}
{{- $_ := set $section.leaderElection "leaseNamespace" (include "recharge-autoscaler.fleetLeaseNamespace" .) }}
{{- $_ := unset $source "file" }}
{{- toYaml (dict "source" $source "forecast" .Values.forecast "schedule" .Values.schedule "metrics" .Values.metrics "logging" .Values.logging "fleet" $section) }}
{{- else }}
{{- $store := deepCopy .Values.store }}
{{- $_ := set $store.configmap "name" (include "recharge-autoscaler.forecastConfigMapName" .) }}
{{- $_ := set $store.configmap "namespace" (include "recharge-autoscaler.storeNamespace" .) }}

{{- $controller := deepCopy .Values.controller }}
{{- $_ := set $controller.target "name" (required "controller.target.name is required: the Deployment that serves recharge traffic" $controller.target.name) }}
{{- $_ := set $controller.target "namespace" $targetNs }}
{{- $_ := set $controller.leaderElection "leaseName" (include "recharge-autoscaler.leaseName" .) }}
{{- $_ := set $controller.leaderElection "leaseNamespace" (include "recharge-autoscaler.leaseNamespace" .) }}
{{- if $controller.availabilityTarget }}
{{- /* The target replaces the band and headroom; the product refuses both, and headroom always has a value here. */}}
{{- $_ := unset $controller "headroom" }}
{{- end }}

{{- $config := dict "source" $source "forecast" .Values.forecast "store" $store "schedule" .Values.schedule "metrics" .Values.metrics "logging" .Values.logging "controller" $controller }}
{{- toYaml $config }}
{{- end }}
{{- end }}

{{/* Namespace of the forecast ConfigMap (default: the release namespace). */}}
{{- define "recharge-autoscaler.storeNamespace" -}}
{{- default .Release.Namespace .Values.store.configmap.namespace }}
{{- end }}

{{/* Namespace of the leader Lease (default: the target's namespace, as the product does). */}}
{{- define "recharge-autoscaler.leaseNamespace" -}}
{{- default (include "recharge-autoscaler.targetNamespace" .) .Values.controller.leaderElection.leaseNamespace }}
{{- end }}

{{/* True ("true") when a Prometheus credential Secret must be mounted. */}}
{{- define "recharge-autoscaler.hasPrometheusSecrets" -}}
{{- $a := .Values.prometheusAuth }}
{{- if or $a.bearerToken.secretName $a.basicAuth.secretName $a.ca.secretName }}true{{- end }}
{{- end }}

{{/* Volumes shared by the controller and forecast job pods: config, /tmp, Prometheus credentials. */}}
{{- define "recharge-autoscaler.commonVolumes" -}}
- name: config
  configMap:
    name: {{ include "recharge-autoscaler.configName" . }}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpSizeLimit }}
{{- if include "recharge-autoscaler.hasPrometheusSecrets" . }}
{{- $a := .Values.prometheusAuth }}
- name: prometheus-auth
  projected:
    defaultMode: 0440
    sources:
      {{- if $a.bearerToken.secretName }}
      - secret:
          name: {{ $a.bearerToken.secretName }}
          items:
            - key: {{ $a.bearerToken.key }}
              path: token
      {{- end }}
      {{- if $a.basicAuth.secretName }}
      - secret:
          name: {{ $a.basicAuth.secretName }}
          items:
            - key: {{ $a.basicAuth.passwordKey }}
              path: password
      {{- end }}
      {{- if $a.ca.secretName }}
      - secret:
          name: {{ $a.ca.secretName }}
          items:
            - key: {{ $a.ca.key }}
              path: ca.crt
      {{- end }}
{{- end }}
{{- end }}

{{/* Volume mounts matching commonVolumes. */}}
{{- define "recharge-autoscaler.commonVolumeMounts" -}}
- name: config
  mountPath: /etc/recharge-autoscaler
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if include "recharge-autoscaler.hasPrometheusSecrets" . }}
- name: prometheus-auth
  mountPath: {{ include "recharge-autoscaler.secretDir" . }}/prometheus
  readOnly: true
{{- end }}
{{- end }}

{{/* Environment common to every product container. */}}
{{- define "recharge-autoscaler.commonEnv" -}}
- name: POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: POD_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- end }}

{{/* Global CLI flags (before the subcommand): log level and format from the logging section. */}}
{{- define "recharge-autoscaler.logArgs" -}}
- --log-level
- {{ .Values.logging.level | default "INFO" | quote }}
{{- if .Values.logging.json }}
- --log-json
{{- end }}
{{- end }}

{{/*
Engine flags of the forecast job (forecastJob.engine), after --fleet: `--workers N` (local processes) or
`--dask-scheduler ADDR` (an existing Dask cluster). Both are flags of `forecast-job --fleet` only (the
single-workload job forecasts one series in-process), and with a scheduler the Dask workers run the series,
so workers would be ignored: either misuse fails the render instead.
*/}}
{{- define "recharge-autoscaler.engineArgs" -}}
{{- $e := .Values.forecastJob.engine }}
{{- if and (or $e.daskScheduler $e.workers) (not .Values.fleet.enabled) }}
{{- fail "forecastJob.engine.workers and forecastJob.engine.daskScheduler apply to the fleet forecast job only (`forecast-job --fleet`): set fleet.enabled=true, or leave them empty (the single-workload job forecasts one series in this process)" }}
{{- end }}
{{- if and $e.daskScheduler $e.workers }}
{{- fail "forecastJob.engine: set workers (local processes) or daskScheduler (the Dask cluster's workers run the series), not both" }}
{{- end }}
{{- with $e.workers }}
- --workers
- {{ int . | quote }}
{{- end }}
{{- with $e.daskScheduler }}
- --dask-scheduler
- {{ . | quote }}
{{- end }}
{{- end }}

{{/* Path of the config file inside the pods. */}}
{{- define "recharge-autoscaler.configPath" -}}/etc/recharge-autoscaler/config.yaml{{- end }}
