"""A real Kubernetes API server for the suite: etcd + kube-apiserver on loopback, started once per session.

The binaries are built from the official Go modules by ``scripts/build-kube-envtest.sh`` (``make test`` runs
it through ``scripts/install-test-tools.sh``) and linked into ``.tools/kube``. Like controller-runtime's
envtest, the session fixture :func:`kube_apiserver` starts etcd on a free loopback port with a temporary data
directory, then kube-apiserver with a static admin token (group ``system:masters``), RBAC authorization, a
service-account key pair (so the TokenRequest API mints real ServiceAccount tokens) and self-signed serving
certificates, waits for ``/readyz`` and yields a :class:`KubeEnvtest`: the kubeconfig that kubectl, helm and
the python client use, the URL, the admin token and the CA file.

Register it once in ``tests/conftest.py`` with ``pytest_plugins = ["tests.support.kube_envtest"]``; tests then
take ``kube_apiserver`` (and ``kube_namespace`` for a fresh namespace) and are marked ``@pytest.mark.kube``.

There is no kube-controller-manager and no scheduler, so the server stores and validates but nothing
reconciles: a Deployment gets no ReplicaSet or Pods and no status (its scale subresource still works), a
deleted namespace stays ``Terminating`` for ever (use a fresh namespace per test instead of deleting), and no
``default`` ServiceAccount is created in new namespaces (create the ServiceAccounts a test needs).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from tests.support.tools import REPO_ROOT

KUBE_TOOLS = REPO_ROOT / ".tools" / "kube"
BUILD_HINT = "run `bash scripts/build-kube-envtest.sh` (make test does; a cold build takes 7-16 min)"
ADMIN_USER = "envtest-admin"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
START_TIMEOUT_S = float(os.environ.get("RECHARGE_KUBE_START_TIMEOUT", "120"))
STOP_TIMEOUT_S = 20.0
ETCD_DATA = "etcd-data"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "kube: needs the real etcd + kube-apiserver (scripts/build-kube-envtest.sh) started by the suite",
    )


class KubeEnvtestError(RuntimeError):
    """etcd or kube-apiserver did not start; the message carries the tail of their logs."""


@dataclass
class _Proc:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()


@dataclass
class KubeEnvtest:
    """A running etcd + kube-apiserver. ``kubeconfig`` authenticates as the admin (``system:masters``)."""

    url: str
    kubeconfig: Path
    token: str
    ca_file: Path
    workdir: Path
    etcd_url: str
    apiserver_log: Path
    etcd_log: Path
    _procs: list[_Proc] = field(default_factory=list, repr=False)

    # --- clients --------------------------------------------------------------------------------------------

    def api_client(self, token: str | None = None, *, retries: bool = False) -> Any:
        """A ``kubernetes.client.ApiClient`` authenticated with ``token`` (the admin's by default).

        ``retries=False`` (the default) makes every request exactly one HTTP call, so tests see the server's
        own answer (a 409, a 403) instead of urllib3's retry of it.
        """
        from kubernetes import client

        cfg = client.Configuration()
        cfg.host = self.url
        cfg.ssl_ca_cert = str(self.ca_file)
        cfg.verify_ssl = True
        cfg.api_key = {"authorization": f"Bearer {token or self.token}"}
        if not retries:
            cfg.retries = False
        return client.ApiClient(cfg)

    def write_kubeconfig(self, path: Path, *, token: str | None = None, namespace: str = "default",
                         user: str = ADMIN_USER) -> Path:
        """Write a kubeconfig for this server that authenticates with ``token`` (the admin's by default)."""
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "envtest", "cluster": {"server": self.url,
                                                          "certificate-authority": str(self.ca_file)}}],
            "users": [{"name": user, "user": {"token": token or self.token}}],
            "contexts": [{"name": "envtest", "context": {"cluster": "envtest", "user": user,
                                                         "namespace": namespace}}],
            "current-context": "envtest",
            "preferences": {},
        }
        path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        path.chmod(0o600)
        return path

    def env(self, kubeconfig: Path | None = None) -> dict[str, str]:
        """``os.environ`` plus KUBECONFIG (admin by default) and a private kubectl discovery cache."""
        return {**os.environ, "KUBECONFIG": str(kubeconfig or self.kubeconfig),
                "KUBECACHEDIR": str(self.workdir / "kubectl-cache")}

    # --- objects --------------------------------------------------------------------------------------------

    def create_namespace(self, prefix: str = "test") -> str:
        """Create namespace ``<prefix>-<random>`` and return its name (never deleted: see the module doc)."""
        from kubernetes import client

        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        with self.api_client() as api:
            client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        return name

    def service_account_token(self, namespace: str, name: str, *, create: bool = True,
                              expiration_seconds: int = 3600, audiences: list[str] | None = None) -> str:
        """A token for ServiceAccount ``namespace/name`` minted by the TokenRequest API.

        With ``create`` the namespace and the ServiceAccount are created when missing. The token authenticates
        as ``system:serviceaccount:<namespace>:<name>`` with no permissions beyond what RBAC grants it.
        """
        from kubernetes import client
        from kubernetes.client.exceptions import ApiException

        with self.api_client() as api:
            core = client.CoreV1Api(api)
            if create:
                for create_call in (
                    lambda: core.create_namespace(
                        client.V1Namespace(metadata=client.V1ObjectMeta(name=namespace))),
                    lambda: core.create_namespaced_service_account(
                        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=name))),
                ):
                    try:
                        create_call()
                    except ApiException as exc:
                        if exc.status != 409:
                            raise
            request = client.AuthenticationV1TokenRequest(
                spec=client.V1TokenRequestSpec(audiences=audiences or [SERVICE_ACCOUNT_ISSUER],
                                               expiration_seconds=expiration_seconds))
            response = core.create_namespaced_service_account_token(name, namespace, request)
        assert response.status is not None, response
        return str(response.status.token)

    # --- lifecycle ------------------------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop kube-apiserver, then etcd (SIGTERM, then SIGKILL after a grace period); drop etcd's data.

        The logs stay in ``workdir`` (pytest keeps the last three runs' temporary directories).
        """
        while self._procs:
            self._procs.pop().stop()
        shutil.rmtree(self.workdir / ETCD_DATA, ignore_errors=True)  # 60+ MB of preallocated WAL


def binaries() -> tuple[Path, Path]:
    """(kube-apiserver, etcd) from ``.tools/kube``; fails the test with the build command when missing."""
    found = []
    for name in ("kube-apiserver", "etcd"):
        path = KUBE_TOOLS / name
        if not (path.is_file() and os.access(path, os.X_OK)):
            pytest.fail(f"{path} not found; {BUILD_HINT}")
        found.append(path)
    return found[0], found[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the test process dies, even by SIGKILL (Linux only)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _spawn(name: str, argv: list[str], workdir: Path) -> _Proc:
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                 cwd=workdir, preexec_fn=_die_with_parent)
    return _Proc(name, popen, log)


def _write_service_account_key(path: Path) -> None:
    """An RSA private key (PEM); kube-apiserver derives the public half from the same file."""
    try:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
    except ImportError:
        openssl = shutil.which("openssl")
        if openssl is None:
            pytest.fail("neither the python package cryptography nor the openssl command is available")
        subprocess.run([openssl, "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", str(path)], check=True, capture_output=True, timeout=60)
    else:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    path.chmod(0o600)


def _wait(proc: _Proc, check: Callable[[], str | None], what: str, deadline: float,
          others: list[_Proc]) -> None:
    """Poll ``check`` (None when ready, else what it saw) until ready, ``proc`` exits or the deadline."""
    last = "no answer yet"
    while True:
        if proc.popen.poll() is not None:
            raise KubeEnvtestError(_failure(f"{proc.name} exited with {proc.popen.returncode}", proc, others))
        try:
            seen = check()
        except (requests.RequestException, OSError, ValueError) as exc:
            seen = f"{type(exc).__name__}: {exc}"
        if seen is None:
            return
        last = seen
        if time.monotonic() > deadline:
            raise KubeEnvtestError(_failure(
                f"{what} not ready within {START_TIMEOUT_S:.0f}s; last answer: {last}", proc, others))
        time.sleep(0.25)


def _failure(headline: str, proc: _Proc, others: list[_Proc]) -> str:
    parts = [headline, f"--- last lines of {proc.log} ---", proc.tail()]
    for other in others:
        if other is not proc:
            parts += [f"--- last lines of {other.log} ---", other.tail(15)]
    return "\n".join(parts)


def start(workdir: Path) -> KubeEnvtest:
    """Start etcd + kube-apiserver in ``workdir`` and wait until ``/readyz`` answers 200.

    Retried on fresh ports when a free port was taken between choosing and binding it.
    """
    for attempt in range(3):
        try:
            return _start_once(workdir / f"run{attempt}")
        except KubeEnvtestError as exc:
            if "address already in use" not in str(exc) or attempt == 2:
                raise
    raise AssertionError("unreachable")


def _start_once(workdir: Path) -> KubeEnvtest:
    apiserver_bin, etcd_bin = binaries()
    workdir.mkdir(parents=True)
    procs: list[_Proc] = []
    try:
        client_port, peer_port, secure_port = _free_port(), _free_port(), _free_port()
        etcd_url = f"http://127.0.0.1:{client_port}"
        peer_url = f"http://127.0.0.1:{peer_port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        etcd = _spawn("etcd", [
            str(etcd_bin),
            "--name=envtest",
            f"--data-dir={workdir / ETCD_DATA}",
            f"--listen-client-urls={etcd_url}",
            f"--advertise-client-urls={etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=envtest={peer_url}",
            "--unsafe-no-fsync=true",  # throw-away data: no fsync, much faster on a shared CI disk
            "--log-level=warn",
        ], workdir)
        procs.append(etcd)

        def etcd_healthy() -> str | None:
            answer = requests.get(f"{etcd_url}/health", timeout=1)
            return None if answer.ok and answer.json().get("health") == "true" else answer.text[:500]

        _wait(etcd, etcd_healthy, "etcd /health", deadline, procs)

        token = secrets.token_hex(24)
        token_file = workdir / "tokens.csv"
        token_file.write_text(f'{token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n', encoding="utf-8")
        token_file.chmod(0o600)
        sa_key = workdir / "service-account.key"
        _write_service_account_key(sa_key)
        cert_dir = workdir / "certs"
        apiserver = _spawn("kube-apiserver", [
            str(apiserver_bin),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={secure_port}",
            f"--cert-dir={cert_dir}",
            f"--token-auth-file={token_file}",
            "--authorization-mode=RBAC",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={sa_key}",
            f"--service-account-signing-key-file={sa_key}",
            f"--service-cluster-ip-range={SERVICE_CLUSTER_IP_RANGE}",
            "--disable-admission-plugins=ServiceAccount",  # no controller creates `default` ServiceAccounts
            "--allow-privileged=true",
            "--endpoint-reconciler-type=none",  # 127.0.0.1 is not a valid Endpoints address
            "--profiling=false",
        ], workdir)
        procs.append(apiserver)
        url = f"https://127.0.0.1:{secure_port}"
        ca_file = cert_dir / "apiserver.crt"  # self-signed: the serving certificate followed by its CA

        def ready() -> str | None:
            if not ca_file.is_file():
                return f"{ca_file} not written yet"
            answer = requests.get(f"{url}/readyz?verbose", headers={"Authorization": f"Bearer {token}"},
                                  verify=str(ca_file), timeout=2)
            if answer.status_code == 200:
                return None
            failing = [line for line in answer.text.splitlines() if "failed" in line]
            return f"HTTP {answer.status_code} {'; '.join(failing) or answer.text[:500]}"

        _wait(apiserver, ready, "kube-apiserver /readyz", deadline, procs)
        cluster = KubeEnvtest(url=url, kubeconfig=workdir / "kubeconfig", token=token, ca_file=ca_file,
                              workdir=workdir, etcd_url=etcd_url, apiserver_log=apiserver.log,
                              etcd_log=etcd.log, _procs=procs)
        cluster.write_kubeconfig(cluster.kubeconfig)
        return cluster
    except BaseException:
        while procs:
            procs.pop().stop()
        shutil.rmtree(workdir / ETCD_DATA, ignore_errors=True)
        raise


_STARTED: list[str] = []  # for the terminal summary: how long the start took, and what answered


@pytest.fixture(scope="session")
def kube_apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeEnvtest]:
    """etcd + kube-apiserver for the whole session (see the module docstring for what it has and lacks)."""
    began = time.monotonic()
    cluster = start(tmp_path_factory.mktemp("kube-envtest"))
    _STARTED.append(f"etcd + kube-apiserver started in {time.monotonic() - began:.1f}s at {cluster.url}")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def kube_namespace(kube_apiserver: KubeEnvtest) -> str:
    """A fresh namespace on the session's server, for this test only."""
    return kube_apiserver.create_namespace()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    for line in _STARTED:
        terminalreporter.write_line(line)
