"""A stand-in for kube-apiserver speaking the real REST API, for tests of everything that talks to Kubernetes.

Both the unmodified ``kubernetes`` Python client and the real ``kubectl`` work against it. It serves
apps/v1 Deployments (with the ``scale`` and ``status`` subresources), autoscaling/v2 HorizontalPodAutoscalers,
coordination.k8s.io/v1 Leases, core/v1 ConfigMaps, Events and Namespaces, events.k8s.io/v1 Events, and the
discovery documents kubectl reads first. Semantics follow the real server where the product depends on them:
a global ``resourceVersion`` bumped on every write, 409 Conflict for a stale ``resourceVersion`` on update,
409 AlreadyExists on create, ``Status`` objects for errors, merge/strategic/JSON patch, ``<Kind>List`` lists.

Tests drive it from Python: :meth:`KubeApiServer.seed_deployment` and friends create objects,
:meth:`KubeApiServer.fail` makes the next N matching requests fail (403/409/500/...) or be slow, and
:attr:`KubeApiServer.requests` records what clients sent. Readiness can lag ``spec.replicas`` by
``ready_delay`` seconds and an optional HPA emulation keeps a Deployment inside its HPA's min/max.

Not modelled: watches (405), protobuf/CBOR bodies (415, so ``kubectl create namespace`` fails: use
``kubectl create -f`` with a manifest), OpenAPI documents (``kubectl create/apply`` need
``--validate=false``), authentication/RBAC (403s come only from :meth:`KubeApiServer.fail`), namespace
existence and cascading deletion, and server-side apply.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tests.support.kubeapi import handlers
from tests.support.kubeapi import resources as res
from tests.support.kubeapi.faults import Fault, Recorded
from tests.support.kubeapi.handlers import _Route
from tests.support.kubeapi.patch import SUPPORTED, PatchError, apply_patch
from tests.support.kubeapi.resources import ApiError, Resource

Key = tuple[Resource, str, str]  # resource, namespace ("" for cluster-scoped), name
JSONDict = dict[str, Any]


def _now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class KubeApiServer:
    """Threaded HTTP server on 127.0.0.1 (free port). Use as a context manager or call start()/stop()."""

    def __init__(
        self,
        *,
        ready_delay: float = 0.0,
        hpa_controller: bool = False,
        clock: Callable[[], float] = time.monotonic,
        user: str = "system:serviceaccount:payments:recharge-autoscaler",
    ) -> None:
        self.ready_delay = ready_delay
        self.hpa_controller = hpa_controller
        self.clock = clock
        self.user = user
        self.requests: list[Recorded] = []
        self._objects: dict[Key, JSONDict] = {}
        self._pending_ready: dict[Key, tuple[int, float]] = {}  # previous ready count, time of spec change
        self._faults: list[Fault] = []
        self._rv = itertools.count(1000)
        self._lock = threading.RLock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle ----
    def start(self) -> KubeApiServer:
        handler = type("Handler", (_Handler,), {"api": self})
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="kubeapi", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> KubeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_kubeconfig(self, path: str | Path, *, namespace: str = "default") -> Path:
        """A kubeconfig whose current context points at this server (for kubectl and ``load_kube_config``)."""
        cfg = {
            "apiVersion": "v1",
            "kind": "Config",
            "current-context": "test",
            "clusters": [{"name": "test", "cluster": {"server": self.url}}],
            "users": [{"name": "test", "user": {"token": "test-token"}}],
            "contexts": [
                {"name": "test", "context": {"cluster": "test", "user": "test", "namespace": namespace}}
            ],
        }
        p = Path(path)
        p.write_text(json.dumps(cfg), encoding="utf-8")
        return p

    # ---- fault injection ----
    def fail(
        self,
        status: int,
        count: int = 1,
        *,
        method: str | None = None,
        path: str | None = None,
        delay: float = 0.0,
        message: str | None = None,
    ) -> Fault:
        """Make the next ``count`` matching requests answer ``status`` (after sleeping ``delay`` seconds)."""
        fault = Fault(status, count, method, path, delay, message)
        with self._lock:
            self._faults.append(fault)
        return fault

    def slow(
        self, delay: float, count: int = 1, *, method: str | None = None, path: str | None = None
    ) -> Fault:
        """Delay the next ``count`` matching requests by ``delay`` seconds, then serve them normally."""
        return self.fail(0, count, method=method, path=path, delay=delay)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.count -= 1
                    fault.hits += 1
                    return fault
        return None

    # ---- object access from tests ----
    def create(self, obj: JSONDict) -> JSONDict:
        """Store ``obj`` (any served kind) as if created through the API; returns the stored copy."""
        r = res.by_kind(obj.get("apiVersion", ""), obj.get("kind", ""))
        if r is None:
            raise ValueError(f"unsupported kind {obj.get('apiVersion')}/{obj.get('kind')}")
        ns = obj.get("metadata", {}).get("namespace", "default") if r.namespaced else ""
        with self._lock:
            return copy.deepcopy(self._create(_Route(r, ns, None, None), copy.deepcopy(obj)))

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> JSONDict | None:
        r = res.by_kind(api_version, kind)
        assert r is not None, f"unsupported kind {api_version}/{kind}"
        with self._lock:
            obj = self._objects.get((r, namespace if r.namespaced else "", name))
            if obj is not None:
                self._refresh(r, (r, namespace, name), obj)
            return copy.deepcopy(obj)

    def objects(self, api_version: str, kind: str, namespace: str | None = None) -> list[JSONDict]:
        r = res.by_kind(api_version, kind)
        assert r is not None
        with self._lock:
            return [
                copy.deepcopy(o)
                for (rr, ns, _), o in sorted(self._objects.items(), key=lambda kv: kv[0][1:])
                if rr == r and (namespace is None or ns == namespace)
            ]

    def deployment(self, namespace: str, name: str) -> JSONDict | None:
        return self.get("apps/v1", "Deployment", namespace, name)

    def hpa(self, namespace: str, name: str) -> JSONDict | None:
        return self.get("autoscaling/v2", "HorizontalPodAutoscaler", namespace, name)

    def lease(self, namespace: str, name: str) -> JSONDict | None:
        return self.get("coordination.k8s.io/v1", "Lease", namespace, name)

    def configmap(self, namespace: str, name: str) -> JSONDict | None:
        return self.get("v1", "ConfigMap", namespace, name)

    def events(self, namespace: str | None = None) -> list[JSONDict]:
        """core/v1 and events.k8s.io/v1 Events, oldest first."""
        evs = self.objects("v1", "Event", namespace) + self.objects("events.k8s.io/v1", "Event", namespace)
        return sorted(evs, key=lambda e: int(e["metadata"]["resourceVersion"]))

    def seed_deployment(
        self, namespace: str, name: str, replicas: int = 3, *, annotations: dict[str, str] | None = None
    ) -> JSONDict:
        labels = {"app": name}
        return self.create(
            {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": labels,
                    "annotations": annotations or {},
                },
                "spec": {
                    "replicas": replicas,
                    "selector": {"matchLabels": labels},
                    "template": {
                        "metadata": {"labels": labels},
                        "spec": {"containers": [{"name": name, "image": f"example/{name}:1"}]},
                    },
                },
            }
        )

    def seed_hpa(
        self,
        namespace: str,
        name: str,
        *,
        min_replicas: int = 2,
        max_replicas: int = 20,
        target: str | None = None,
        current: int | None = None,
        annotations: dict[str, str] | None = None,
    ) -> JSONDict:
        return self.create(
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target or name},
                    "minReplicas": min_replicas,
                    "maxReplicas": max_replicas,
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {"type": "Utilization", "averageUtilization": 60},
                            },
                        }
                    ],
                },
                "status": {
                    "currentReplicas": current or min_replicas,
                    "desiredReplicas": current or min_replicas,
                },
            }
        )

    # ---- core semantics ----
    def _next_rv(self) -> str:
        return str(next(self._rv))

    def _key(self, route: _Route, name: str) -> Key:
        return (route.resource, route.namespace if route.resource.namespaced else "", name)

    def _not_found(self, r: Resource, name: str) -> ApiError:
        return ApiError(
            404,
            f'{r.group_resource} "{name}" not found',
            "NotFound",
            {"name": name, "group": r.group, "kind": r.plural},
        )

    def _create(self, route: _Route, body: JSONDict) -> JSONDict:
        r = route.resource
        meta = body.setdefault("metadata", {})
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise ApiError(
                    422,
                    f"{r.kind} is invalid: metadata.name: Required value: name or generateName is required",
                    "Invalid",
                    {"kind": r.kind},
                )
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        name = meta["name"]
        if r.namespaced:
            if meta.get("namespace") and meta["namespace"] != route.namespace:
                raise ApiError(
                    400,
                    "the namespace of the provided object does not match the namespace sent on the request",
                    "BadRequest",
                )
            meta["namespace"] = route.namespace
        key = self._key(route, name)
        if key in self._objects:
            raise ApiError(
                409,
                f'{r.group_resource} "{name}" already exists',
                "AlreadyExists",
                {"name": name, "group": r.group, "kind": r.plural},
            )
        body["apiVersion"], body["kind"] = r.api_version, r.kind
        meta.update(
            uid=str(uuid.uuid4()), resourceVersion=self._next_rv(), creationTimestamp=_now_iso(), generation=1
        )
        if r.kind == "HorizontalPodAutoscaler":  # Go serialises desiredReplicas even when 0
            body.setdefault("status", {}).setdefault("desiredReplicas", 0)
        if r.kind == "Deployment":
            replicas = int(body.setdefault("spec", {}).setdefault("replicas", 1))
            body["status"] = {
                "observedGeneration": 1,
                "replicas": replicas,
                "updatedReplicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
            }
        self._objects[key] = body
        self._after_write(r, key)
        return body

    def _check_rv(self, route: _Route, name: str, sent: Any, current: JSONDict) -> None:
        if sent and str(sent) != current["metadata"]["resourceVersion"]:
            r = route.resource
            raise ApiError(
                409,
                f'Operation cannot be fulfilled on {r.group_resource} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                "Conflict",
                {"name": name, "group": r.group, "kind": r.plural},
            )

    def _store_update(self, route: _Route, name: str, old: JSONDict, new: JSONDict) -> JSONDict:
        """Write ``new`` over ``old`` (same object), keeping server-owned metadata; bump rv and generation."""
        r = route.resource
        meta = new.setdefault("metadata", {})
        if meta.get("name", name) != name:
            raise ApiError(
                400,
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})",
                "BadRequest",
            )
        for k in ("uid", "creationTimestamp", "namespace", "name"):
            if k in old["metadata"]:
                meta[k] = old["metadata"][k]
        new["apiVersion"], new["kind"] = r.api_version, r.kind
        generation = int(old["metadata"].get("generation", 1))
        if route.sub != "status" and new.get("spec") != old.get("spec"):
            generation += 1
        if route.sub == "status":
            new = {**copy.deepcopy(old), "status": new.get("status", {})}
            new["metadata"] = copy.deepcopy(old["metadata"])
        elif "status" in r.subresources:
            new["status"] = copy.deepcopy(old.get("status", {}))
        new["metadata"]["generation"] = generation
        new["metadata"]["resourceVersion"] = self._next_rv()
        key = self._key(route, name)
        if r.kind == "Deployment" and route.sub != "status":
            old_spec = int(old.get("spec", {}).get("replicas", 1))
            if int(new.get("spec", {}).get("replicas", 1)) != old_spec:
                ready = int(old.get("status", {}).get("readyReplicas", 0))
                self._pending_ready[key] = (ready, self.clock())
        self._objects[key] = new
        self._after_write(r, key)
        return new

    def _refresh(self, r: Resource, key: Key, obj: JSONDict) -> None:
        """Simulated readiness: readyReplicas reaches spec.replicas ``ready_delay`` seconds after a change."""
        if r.kind != "Deployment":
            return
        want = int(obj.get("spec", {}).get("replicas", 1))
        status = obj.setdefault("status", {})
        pending = self._pending_ready.get(key)
        ready = want
        if pending is not None:
            before, since = pending
            if want > before and self.clock() - since < self.ready_delay:
                ready = before
            else:
                self._pending_ready.pop(key, None)
        status.update(
            replicas=want,
            updatedReplicas=want,
            readyReplicas=ready,
            availableReplicas=ready,
            observedGeneration=obj["metadata"].get("generation", 1),
        )

    def _after_write(self, r: Resource, key: Key) -> None:
        self._refresh(r, key, self._objects[key])
        if not self.hpa_controller or r.kind not in ("Deployment", "HorizontalPodAutoscaler"):
            return
        for (rr, ns, _), hpa in list(self._objects.items()):
            if rr.kind != "HorizontalPodAutoscaler" or ns != key[1]:
                continue
            ref = hpa["spec"].get("scaleTargetRef", {})
            dkey = (res.DEPLOYMENTS, ns, ref.get("name", ""))
            dep = self._objects.get(dkey)
            if dep is None:
                continue
            cur = int(dep["spec"].get("replicas", 1))
            want = max(int(hpa["spec"].get("minReplicas", 1)), min(int(hpa["spec"]["maxReplicas"]), cur))
            if want != cur:
                self._pending_ready[dkey] = (
                    int(dep.get("status", {}).get("readyReplicas", 0)),
                    self.clock(),
                )
                dep["spec"]["replicas"] = want
                dep["metadata"]["generation"] = int(dep["metadata"].get("generation", 1)) + 1
                dep["metadata"]["resourceVersion"] = self._next_rv()
                self._refresh(dkey[0], dkey, dep)
            hpa.setdefault("status", {}).update(currentReplicas=want, desiredReplicas=want)

    # ---- request handling (called by the HTTP handler) ----
    def handle(
        self, method: str, raw_path: str, content_type: str, body: Any, accept: str = "application/json"
    ) -> tuple[int, JSONDict]:
        parts = urlsplit(raw_path)
        path, query = parts.path.rstrip("/") or "/", parse_qs(parts.query)
        fault = self._take_fault(method, path)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.status:
                code, payload = handlers.fault_response(self, fault, method, path, query)
                with self._lock:
                    self.requests.append(Recorded(method, path, query, content_type, body, code))
                return code, payload
        with self._lock:
            try:
                status, payload = handlers.dispatch(self, method, path, query, content_type, body)
                if status == 200 and method == "GET" and "as=Table" in accept and "kind" in payload:
                    payload = handlers.as_table(payload)
            except ApiError as exc:
                status, payload = exc.code, exc.status()
            self.requests.append(Recorded(method, path, query, content_type, body, status))
        return status, payload


class _Handler(BaseHTTPRequestHandler):
    api: KubeApiServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        ctype = self.headers.get("Content-Type", "")
        try:
            if "protobuf" in ctype or "cbor" in ctype:
                raise TypeError(ctype)
            body = json.loads(raw) if raw else None
        except TypeError:
            status, payload = (
                415,
                ApiError(
                    415,
                    f"the body of the request was in an unknown format - "
                    f"{ctype} is not served by the test API server",
                ).status(),
            )
        except ValueError:
            status, payload = 400, ApiError(400, "request body is not valid JSON").status()
        else:
            status, payload = self.api.handle(
                self.command, self.path, ctype, body, self.headers.get("Accept", "application/json")
            )
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Audit-Id", str(uuid.uuid4()))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (timeout tests)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


__all__ = ["SUPPORTED", "ApiError", "Fault", "KubeApiServer", "PatchError", "Recorded", "apply_patch"]
