"""A local cache of Kubernetes objects kept current by list + watch: the fleet controller's cluster view.

A controller that scales hundreds of workloads cannot GET each scaler, target and forecast on every tick:
the API calls would grow with the fleet instead of with what changes. An :class:`Informer` lists a kind
once (per watched namespace, or cluster-wide), then watches from the list's ``resourceVersion`` and applies
each ADDED / MODIFIED / DELETED event to an in-memory map of raw objects (dicts). When the watch expires
(410 Gone) or breaks, it lists again and carries on; readers always see the last consistent state and
:attr:`Informer.synced` tells whether the first list has completed. This mirrors client-go's reflector and
store. It is written here because the Python client ships ``watch.Watch`` (the event stream, which this
uses) but no informer; kopf has one inside its framework but not as a reusable piece (see
docs/architecture.md, "Why not kopf").

Objects are kept as the API server sent them (``raw_object``): no model deserialisation per object, and the
same shape for built-in kinds and custom resources. A ``transform`` (client-go's ``SetTransform``) may
drop what no reader uses before an object is stored: :func:`strip_bookkeeping` drops ``managedFields`` and
kubectl's last-applied annotation, which are most of a production Deployment's size and which the fleet
would otherwise hold for every Deployment of its namespaces (see docs/benchmarks.md, "Fleet controller").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
Handler = Callable[[str, dict[str, Any]], None]
Transform = Callable[[dict[str, Any]], dict[str, Any]]
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


@dataclass(frozen=True)
class Kind:
    """An API resource: ``group`` is empty for the core group (ConfigMaps, Events ...)."""

    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


CONFIGMAPS = Kind("", "v1", "configmaps")
DEPLOYMENTS = Kind("apps", "v1", "deployments")


def strip_bookkeeping(obj: dict[str, Any]) -> dict[str, Any]:
    """Drop ``metadata.managedFields`` (server-side apply's field ownership) and kubectl's last-applied
    annotation (a second copy of the object): no reader of a cache uses them. Modifies ``obj`` in place."""
    meta = obj.get("metadata")
    if isinstance(meta, dict):
        meta.pop("managedFields", None)
        annotations = meta.get("annotations")
        if isinstance(annotations, dict):
            annotations.pop(LAST_APPLIED, None)
    return obj


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


class Informer:
    """List + watch ``kind`` in ``namespaces`` (None: all) into a thread-safe cache of raw objects."""

    def __init__(
        self,
        api_client: Any,
        kind: Kind,
        *,
        namespaces: Sequence[str] | None = None,
        label_selector: str | None = None,
        on_event: Handler | None = None,
        transform: Transform | None = None,
        watch_seconds: int = 300,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
    ) -> None:
        self.api_client, self.kind = api_client, kind
        self.namespaces = list(namespaces) if namespaces else None
        self.label_selector, self.on_event = label_selector, on_event
        self.transform = transform  # applied to every object before it is stored (and handlers see it)
        self.watch_seconds, self.backoff, self.max_backoff = watch_seconds, backoff, max_backoff
        self._cache: dict[Key, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watches: list[Any] = []
        self.synced = threading.Event()
        self._synced_scopes: set[str] = set()
        self.lists = 0  # list calls made (relists included): watch health, and tests count them
        self.last_error: str | None = None

    # -- reading -------------------------------------------------------------------------------------------
    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            return self._cache.get((namespace, name))

    def items(self, namespace: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [o for (ns, _), o in self._cache.items() if namespace is None or ns == namespace]

    def __len__(self) -> int:
        with self._lock:
            return len(self._cache)

    def wait_synced(self, timeout: float) -> bool:
        return self.synced.wait(timeout)

    # -- running -------------------------------------------------------------------------------------------
    def start(self) -> Informer:
        scopes: Iterable[str | None] = self.namespaces if self.namespaces else [None]
        for ns in scopes:
            t = threading.Thread(
                target=self._run, args=(ns,), name=f"informer-{self.kind.plural}-{ns or 'all'}", daemon=True
            )
            self._threads.append(t)
            t.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        for w in list(self._watches):
            w.stop()
        for t in self._threads:
            t.join(timeout)

    def _run(self, namespace: str | None) -> None:
        delay = self.backoff
        while not self._stop.is_set():
            try:
                rv: str | None = self._list(namespace)
                delay = self.backoff
                while rv is not None and not self._stop.is_set():
                    rv = self._watch(namespace, rv)  # None: expired, list again
            except Exception as exc:  # any failure: back off, list again; the thread never dies
                if self._stop.is_set():
                    return  # stop() broke the watch on purpose
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("informer %s (%s): %s; listing again in %.1fs", self.kind.plural,
                            namespace or "all namespaces", self.last_error, delay)
                if self._stop.wait(delay):
                    return
                delay = min(delay * 2, self.max_backoff)

    def _list_fn(self, namespace: str | None) -> Callable[..., Any]:
        from kubernetes import client

        k = self.kind
        if not k.group:
            core = client.CoreV1Api(self.api_client)
            name = k.plural.rstrip("s").replace("configmap", "config_map")
            if namespace:
                fn = getattr(core, f"list_namespaced_{name}")
                return lambda **kw: fn(namespace, **kw)
            all_fn: Callable[..., Any] = getattr(core, f"list_{name}_for_all_namespaces")
            return all_fn
        custom = client.CustomObjectsApi(self.api_client)
        if namespace:
            return lambda **kw: custom.list_namespaced_custom_object(
                k.group, k.version, namespace, k.plural, **kw
            )
        return lambda **kw: custom.list_cluster_custom_object(k.group, k.version, k.plural, **kw)

    def _list(self, namespace: str | None) -> str:
        import json

        fn = self._list_fn(namespace)
        kw: dict[str, Any] = {"_preload_content": False, "_request_timeout": 60}
        if self.label_selector:
            kw["label_selector"] = self.label_selector
        resp = fn(**kw)
        data = json.loads(resp.data)
        self.lists += 1
        items = data.get("items") or []
        if self.transform is not None:
            items = [self.transform(o) for o in items]
        fresh = {key_of(o): o for o in items}
        scope = namespace or ""
        with self._lock:
            stale = [k for k in self._cache if (not namespace or k[0] == namespace) and k not in fresh]
            for k in stale:
                gone = self._cache.pop(k)
                self._notify("DELETED", gone)
            for k, o in fresh.items():
                old = self._cache.get(k)
                self._cache[k] = o
                if old is None or _rv(old) != _rv(o):
                    self._notify("ADDED" if old is None else "MODIFIED", o)
            self._synced_scopes.add(scope)
            if len(self._synced_scopes) >= len(self.namespaces or [None]):
                self.synced.set()
        return str((data.get("metadata") or {}).get("resourceVersion") or "")

    def _watch(self, namespace: str | None, rv: str) -> str | None:
        """Apply watch events from ``rv`` until the server ends the watch; None when ``rv`` has expired."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        w = watch.Watch()
        self._watches.append(w)
        kw: dict[str, Any] = {
            "resource_version": rv, "allow_watch_bookmarks": True, "timeout_seconds": self.watch_seconds,
            "_request_timeout": self.watch_seconds + 30,
        }
        if self.label_selector:
            kw["label_selector"] = self.label_selector
        try:
            for event in w.stream(self._list_fn(namespace), **kw):
                kind, obj = event.get("type"), event.get("raw_object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        return None
                    raise RuntimeError(f"watch error: {obj.get('message') or obj}")
                new_rv = (obj.get("metadata") or {}).get("resourceVersion")
                if kind == "BOOKMARK":
                    rv = new_rv or rv
                    continue
                if self.transform is not None:
                    obj = self.transform(obj)
                with self._lock:
                    if kind == "DELETED":
                        self._cache.pop(key_of(obj), None)
                    else:
                        self._cache[key_of(obj)] = obj
                    self._notify(str(kind), obj)
                rv = new_rv or rv
        except ApiException as exc:
            if exc.status == 410:
                return None
            raise
        finally:
            self._watches.remove(w)
        return rv

    def _notify(self, kind: str, obj: dict[str, Any]) -> None:
        if self.on_event is not None:
            try:
                self.on_event(kind, obj)
            except Exception:
                log.exception("informer %s: event handler failed", self.kind.plural)


def _rv(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")


def wait_for(predicate: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    """Poll ``predicate`` until true or ``timeout``: for callers that need the cache to catch up."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(step)
    return predicate()



def list_objects(
    api_client: Any,
    kind: Kind,
    *,
    namespaces: Sequence[str] | None = None,
    label_selector: str | None = None,
    retries: int = 3,
    hint: str = "",
) -> list[dict[str, Any]]:
    """Every object of ``kind`` in ``namespaces`` (None: all), one list call per namespace and no watch, for
    a one-shot reader (the fleet forecast job). Calls follow the shared policy
    (:func:`forecaster.adapters.kube.call_api`): a missing RBAC grant is one line naming the verb and the
    resource, an unknown resource (a CRD not installed) is ``KubeNotFound`` ending with ``hint``."""
    from forecaster.adapters.kube import call_api, read_json

    lister = Informer(api_client, kind, namespaces=namespaces, label_selector=label_selector)
    out: list[dict[str, Any]] = []
    kw: dict[str, Any] = {"_preload_content": False, "_request_timeout": 60}
    if label_selector:
        kw["label_selector"] = label_selector
    scopes: list[str | None] = list(lister.namespaces) if lister.namespaces else [None]
    for ns in scopes:
        fn = lister._list_fn(ns)
        resp = call_api(lambda: fn(**kw), verb="list", resource=kind.plural,  # noqa: B023 (called at once)
                        namespace=ns or "(all namespaces)", retries=retries, hint=hint)
        out.extend(read_json(resp).get("items") or [])
    return out
