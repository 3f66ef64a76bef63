{{/*
Least-privilege RBAC, computed once. "recharge-autoscaler.rbacRules" renders a YAML mapping
{namespace: [PolicyRule, ...]} for one identity ("controller" or "job"); role.yaml turns each entry into a
Role + RoleBinding in that namespace. Every rule names its objects with resourceNames except `create`,
which Kubernetes cannot restrict by name (the object does not exist yet), and `patch` on Events, whose
names are generated per event.

What the product does (controller/adapters/kube.py, controller/adapters/lease.py, controller/loop.py,
forecaster/adapters/configmap_store.py), and therefore what it gets:
  controller  target Deployment: get (ready replicas, pause annotation)
              'hpa' mode: the HPA get, and unless dryRun patch (minReplicas + decision annotation)
              'scale' mode: unless dryRun, deployments/scale patch and the Deployment patch (annotation)
              unless dryRun, events: create, patch (repeats bump count; names are generated, so no
              resourceNames) and its state ConfigMap <leaseName>-state: get, update (+ create)
              (a dry run logs its events and keeps its state in memory)
              Lease: get, update (+ create) when leader election is enabled, unless dryRun (a dry run
              never acts, so it takes no lease)
              forecast ConfigMap: get
  job         forecast ConfigMap: get, update (+ create)
In forecastJob.mode=inProcess both run under the controller's ServiceAccount, which then gets both sets.
*/}}
{{- define "recharge-autoscaler.rbacRules" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- if $v.fleet.enabled }}
{{- include "recharge-autoscaler.fleetRbacRules" (dict "root" $root "who" .who) }}
{{- else }}
{{- $inProcess := eq $v.forecastJob.mode "inProcess" }}
{{- $rules := dict }}
{{- $targetNs := include "recharge-autoscaler.targetNamespace" $root }}
{{- $storeNs := include "recharge-autoscaler.storeNamespace" $root }}
{{- $leaseNs := include "recharge-autoscaler.leaseNamespace" $root }}
{{- $cm := include "recharge-autoscaler.forecastConfigMapName" $root }}
{{- $writes := not $v.controller.dryRun }}
{{- if eq .who "controller" }}
{{- $target := $v.controller.target.name }}
{{- $list := get $rules $targetNs | default list }}
{{- $list = append $list (dict "apiGroups" (list "apps") "resources" (list "deployments") "resourceNames" (list $target) "verbs" (ternary (list "get" "patch") (list "get") (and $writes (eq $v.controller.target.mode "scale")))) }}
{{- if eq $v.controller.target.mode "scale" }}
{{- if $writes }}
{{- $list = append $list (dict "apiGroups" (list "apps") "resources" (list "deployments/scale") "resourceNames" (list $target) "verbs" (list "patch")) }}
{{- end }}
{{- else }}
{{- $hpa := default $target $v.controller.target.hpaName }}
{{- $list = append $list (dict "apiGroups" (list "autoscaling") "resources" (list "horizontalpodautoscalers") "resourceNames" (list $hpa) "verbs" (ternary (list "get" "patch") (list "get") $writes)) }}
{{- end }}
{{- if $writes }}
{{- $list = append $list (dict "apiGroups" (list "") "resources" (list "events") "verbs" (list "create" "patch")) }}
{{- $list = append $list (dict "apiGroups" (list "") "resources" (list "configmaps") "resourceNames" (list (include "recharge-autoscaler.stateConfigMapName" $root)) "verbs" (list "get" "update")) }}
{{- $list = append $list (dict "apiGroups" (list "") "resources" (list "configmaps") "verbs" (list "create")) }}
{{- end }}
{{- $_ := set $rules $targetNs $list }}
{{- if and $v.controller.leaderElection.enabled $writes }}
{{- $lease := include "recharge-autoscaler.leaseName" $root }}
{{- $list = get $rules $leaseNs | default list }}
{{- $list = append $list (dict "apiGroups" (list "coordination.k8s.io") "resources" (list "leases") "resourceNames" (list $lease) "verbs" (list "get" "update")) }}
{{- $list = append $list (dict "apiGroups" (list "coordination.k8s.io") "resources" (list "leases") "verbs" (list "create")) }}
{{- $_ := set $rules $leaseNs $list }}
{{- end }}
{{- if not $inProcess }}
{{- $list = get $rules $storeNs | default list }}
{{- $list = append $list (dict "apiGroups" (list "") "resources" (list "configmaps") "resourceNames" (list $cm) "verbs" (list "get")) }}
{{- $_ := set $rules $storeNs $list }}
{{- end }}
{{- end }}
{{- if or (eq .who "job") (and (eq .who "controller") $inProcess) }}
{{- $list := get $rules $storeNs | default list }}
{{- $list = append $list (dict "apiGroups" (list "") "resources" (list "configmaps") "resourceNames" (list $cm) "verbs" (list "get" "update")) }}
{{- $list = append $list (dict "apiGroups" (list "") "resources" (list "configmaps") "verbs" (list "create")) }}
{{- $_ := set $rules $storeNs $list }}
{{- end }}
{{- toYaml $rules }}
{{- end }}
{{- end }}

{{/*
Fleet mode (fleet.enabled): the scalers' targets are not known at install time, so rules cannot name them
(no resourceNames); what bounds the grant is the namespace. What the fleet controller does
(controller/fleet/reconciler.py, controller/adapters/{informer,cached,status,kube,lease}.py), per watched
namespace:
  predictivescalers: list, watch (the scaler informer; no GET: the cache serves every read)
  predictivescalers/status: patch (the status, written only when it changes)
  deployments, horizontalpodautoscalers: list, watch (informers), get (a write that met a stale cache
    re-reads live and retries), patch (the HPA floor / the decision annotation)
  deployments/scale: patch ('scale' mode)
  configmaps: list, watch (the forecast informer; RBAC cannot restrict list/watch to a label selector,
    so this reads every ConfigMap of the namespace: keep Secrets, not ConfigMaps, for secrets)
  events: create, patch (Events on the scalers)
and in the Lease namespace (the release's by default) the Lease: get, update [name] and create.
The fleet forecast job (`forecast-job --fleet`: controller/fleet/forecast_job.py,
forecaster/adapters/configmap_store.py), per watched namespace: predictivescalers list (one list per run),
configmaps get, create, update (each scaler's forecast ConfigMap; names come from the scalers, so no
resourceNames). In forecastJob.mode=inProcess the controller's ServiceAccount gets both sets.
"recharge-autoscaler.fleetNamespaceRules" is one identity's per-namespace list: a Role in each of
fleet.namespaces, or one ClusterRole (clusterrole.yaml) when fleet.namespaces is empty (every namespace).
*/}}
{{- define "recharge-autoscaler.fleetNamespaceRules" -}}
{{- $inProcess := eq .root.Values.forecastJob.mode "inProcess" }}
{{- if eq .who "controller" }}
- apiGroups: ["autoscaling.recharge-autoscaler.io"]
  resources: ["predictivescalers"]
  verbs: ["list", "watch"]
- apiGroups: ["autoscaling.recharge-autoscaler.io"]
  resources: ["predictivescalers/status"]
  verbs: ["patch"]
- apiGroups: ["apps"]
  resources: ["deployments"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: ["apps"]
  resources: ["deployments/scale"]
  verbs: ["patch"]
- apiGroups: ["autoscaling"]
  resources: ["horizontalpodautoscalers"]
  verbs: ["get", "list", "watch", "patch"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["list", "watch"]
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create", "patch"]
{{- end }}
{{- if or (eq .who "job") (and (eq .who "controller") $inProcess) }}
- apiGroups: ["autoscaling.recharge-autoscaler.io"]
  resources: ["predictivescalers"]
  verbs: ["list"]
- apiGroups: [""]
  resources: ["configmaps"]
  verbs: ["get", "create", "update"]
{{- end }}
{{- end }}

{{/* One identity's namespaced fleet rules, {namespace: [PolicyRule, ...]} as rbacRules renders them. */}}
{{- define "recharge-autoscaler.fleetRbacRules" -}}
{{- $root := .root }}
{{- $v := $root.Values }}
{{- $rules := dict }}
{{- range $ns := $v.fleet.namespaces }}
{{- $_ := set $rules $ns (include "recharge-autoscaler.fleetNamespaceRules" $ | fromYamlArray) }}
{{- end }}
{{- if and (eq .who "controller") $v.fleet.leaderElection.enabled }}
{{- $leaseNs := include "recharge-autoscaler.fleetLeaseNamespace" $root }}
{{- $lease := include "recharge-autoscaler.fleetLeaseName" $root }}
{{- $list := get $rules $leaseNs | default list }}
{{- $list = append $list (dict "apiGroups" (list "coordination.k8s.io") "resources" (list "leases") "resourceNames" (list $lease) "verbs" (list "get" "update")) }}
{{- $list = append $list (dict "apiGroups" (list "coordination.k8s.io") "resources" (list "leases") "verbs" (list "create")) }}
{{- $_ := set $rules $leaseNs $list }}
{{- end }}
{{- toYaml $rules }}
{{- end }}

{{/* ServiceAccount of the forecast CronJob: its own (write access to the forecast ConfigMap only). */}}
{{- define "recharge-autoscaler.jobServiceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- printf "%s-forecast-job" (include "recharge-autoscaler.serviceAccountName" .) | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- include "recharge-autoscaler.serviceAccountName" . }}
{{- end }}
{{- end }}
