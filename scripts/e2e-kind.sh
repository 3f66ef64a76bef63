#!/usr/bin/env bash
# End-to-end check of `recharge-autoscaler run` against a real Kubernetes cluster (kind, by default).
#
#   scripts/e2e-kind.sh                 # uses the current kubeconfig context; it must be a kind-* context
#   E2E_CREATE_KIND=1 scripts/e2e-kind.sh   # creates kind cluster "recharge-e2e" first if none is reachable
#
# It creates namespace $E2E_NAMESPACE (default recharge-e2e) with a dummy Deployment "recharge" (pause
# container, 1 replica) and an HPA (min 1, max 6), writes a forecast whose peak needs 3 replicas, runs the
# controller once in HPA-floor mode, and checks that the HPA's minReplicas was raised, that the decision
# annotation is on the HPA, that a ScaledUp Event exists and that the leader Lease was released.
# The namespace is deleted afterwards unless E2E_KEEP=1.
#
# Safety: the script refuses any context whose name does not start with "kind-" unless
# E2E_ALLOW_CONTEXT=<that exact context name> is set, so it never touches a production cluster by accident.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

NS=${E2E_NAMESPACE:-recharge-e2e}
CLUSTER=${E2E_KIND_CLUSTER:-recharge-e2e}
PY=${PYTHON:-$ROOT/.venv/bin/python}
KUBECTL=${KUBECTL:-}
if [ -z "$KUBECTL" ]; then
  if [ -x "$ROOT/.tools/bin/kubectl" ]; then KUBECTL=$ROOT/.tools/bin/kubectl; else KUBECTL=$(command -v kubectl || true); fi
fi
[ -n "$KUBECTL" ] || { echo "e2e-kind: kubectl not found; run scripts/install-test-tools.sh" >&2; exit 2; }
k() { "$KUBECTL" --request-timeout=20s "$@"; }

if ! k cluster-info >/dev/null 2>&1; then
  if [ "${E2E_CREATE_KIND:-0}" = "1" ] && command -v kind >/dev/null 2>&1; then
    kind create cluster --name "$CLUSTER" --wait 120s
  else
    echo "e2e-kind: no reachable cluster (kubectl cluster-info failed); start kind or set E2E_CREATE_KIND=1" >&2
    exit 2
  fi
fi
CONTEXT=$(k config current-context 2>/dev/null || echo "")
if [[ "$CONTEXT" != kind-* && "${E2E_ALLOW_CONTEXT:-}" != "$CONTEXT" ]]; then
  echo "e2e-kind: refusing context '$CONTEXT' (not kind-*); set E2E_ALLOW_CONTEXT=$CONTEXT to allow it" >&2
  exit 2
fi

WORK=$(mktemp -d)
cleanup() {
  rm -rf "$WORK"
  if [ "${E2E_KEEP:-0}" != "1" ]; then k delete namespace "$NS" --wait=false >/dev/null 2>&1 || true; fi
}
trap cleanup EXIT

echo "e2e-kind: context $CONTEXT, namespace $NS"
echo "{\"apiVersion\": \"v1\", \"kind\": \"Namespace\", \"metadata\": {\"name\": \"$NS\"}}" >"$WORK/ns.json"
k get namespace "$NS" >/dev/null 2>&1 || k create -f "$WORK/ns.json" >/dev/null
cat >"$WORK/workload.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: recharge, namespace: $NS, labels: {app: recharge}}
spec:
  replicas: 1
  selector: {matchLabels: {app: recharge}}
  template:
    metadata: {labels: {app: recharge}}
    spec:
      containers:
        - name: recharge
          image: registry.k8s.io/pause:3.9
          resources: {requests: {cpu: 10m, memory: 16Mi}, limits: {memory: 32Mi}}
---
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: recharge, namespace: $NS}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: recharge}
  minReplicas: 1
  maxReplicas: 6
  metrics:
    - type: Resource
      resource: {name: cpu, target: {type: Utilization, averageUtilization: 80}}
EOF
for kind_name in deployment/recharge horizontalpodautoscaler/recharge; do
  k -n "$NS" delete "$kind_name" --ignore-not-found >/dev/null
done
k create -f "$WORK/workload.yaml" >/dev/null

# A fresh forecast whose peak (250 req/s at 100 req/s per replica, +10% headroom) needs 3 replicas, and a live
# load sample of 120 req/s taken just now.
"$PY" - "$WORK" <<'EOF'
import sys
from pathlib import Path

import pandas as pd

from forecaster.artifact import ForecastArtifact, Interval
from forecaster.adapters.store import FileStore

work = Path(sys.argv[1])
now = pd.Timestamp.now(tz="UTC").floor("s")
start = now.floor("h") - pd.Timedelta("1h")
ivs = tuple(Interval(start + pd.Timedelta(hours=i), 150.0, 120.0, 200.0, 250.0) for i in range(8))
FileStore(work / "forecast.json").write(ForecastArtifact(
    created_at=now - pd.Timedelta("2min"), model="e2e", timezone="UTC", interval_seconds=3600, band_level=0.9,
    history_start=start - pd.Timedelta("7D"), history_end=start, history_points=168, source="e2e",
    horizon_seconds=8 * 3600, intervals=ivs))
(work / "load.csv").write_text(
    f"timestamp,value\n{(now - pd.Timedelta('1min')).isoformat()},110\n{now.isoformat()},120\n")
EOF
cat >"$WORK/config.yaml" <<EOF
store: {kind: file, file: {path: forecast.json}}
controller:
  capacityPerReplica: 100
  headroom: 0.1
  minReplicas: 1
  maxReplicas: 6
  target: {name: recharge, namespace: $NS, mode: hpa}
  load: {kind: file, path: load.csv}
  leaderElection: {enabled: true, leaseName: recharge-autoscaler-e2e}
EOF

echo "e2e-kind: running the controller once"
"$PY" -c 'import sys; from controller.cli import main; sys.exit(main())' --log-level INFO \
  run --config "$WORK/config.yaml" --once ${KUBECONFIG:+--kubeconfig "$KUBECONFIG"}

fail() { echo "e2e-kind: FAILED: $*" >&2; exit 1; }
MIN=$(k -n "$NS" get hpa recharge -o jsonpath='{.spec.minReplicas}')
[ "$MIN" = "3" ] || fail "HPA minReplicas is '$MIN', expected 3"
NOTE=$(k -n "$NS" get hpa recharge -o jsonpath='{.metadata.annotations.recharge-autoscaler\.io/decision}')
[[ "$NOTE" == *'"replicas":3'* ]] || fail "decision annotation missing or wrong: '$NOTE'"
EVENTS=$(k -n "$NS" get events -o jsonpath='{range .items[*]}{.reason}{"\n"}{end}')
grep -qx ScaledUp <<<"$EVENTS" || fail "no ScaledUp Event in $NS (events: $(tr '\n' ' ' <<<"$EVENTS"))"
HOLDER=$(k -n "$NS" get lease recharge-autoscaler-e2e -o jsonpath='{.spec.holderIdentity}')
[ -z "$HOLDER" ] || fail "lease still held by '$HOLDER' after --once"
echo "e2e-kind: OK (HPA minReplicas 1 -> $MIN, annotation $NOTE)"
