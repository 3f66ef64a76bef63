"""Verb handlers of the test API server: get, list, create, update (PUT), patch and delete, per resource.

Separated from :mod:`tests.support.kubeapi.server` (transport, store, fault injection) so each stays short.
The
``scale`` subresource is served as an autoscaling/v1 ``Scale`` view of a Deployment, like the real server.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from tests.support.kubeapi import resources as res
from tests.support.kubeapi.patch import SUPPORTED, PatchError, apply_patch
from tests.support.kubeapi.resources import ApiError, Resource

if TYPE_CHECKING:
    from tests.support.kubeapi.faults import Fault
    from tests.support.kubeapi.server import KubeApiServer

JSONDict = dict[str, Any]
_VERBS = {"GET": "get", "POST": "create", "PUT": "update", "PATCH": "patch", "DELETE": "delete"}


@dataclass
class _Route:
    resource: Resource
    namespace: str
    name: str | None
    sub: str | None
    query: dict[str, list[str]] = field(default_factory=dict)


def fault_response(
    api: KubeApiServer, fault: Fault, method: str, path: str, query: dict[str, list[str]]
) -> tuple[int, JSONDict]:
    route = route_of(path, query)
    code = int(fault.status or 500)
    if route is None:
        err = ApiError(code, fault.message or f"injected failure {code}")
    else:
        r, name = route.resource, route.name or ""
        plural = f"{r.plural}/{route.sub}" if route.sub else r.plural
        verb = "list" if method == "GET" and route.name is None else _VERBS.get(method, method.lower())
        details = {"name": name, "group": r.group, "kind": r.plural}
        if code == 403:
            where = f' in the namespace "{route.namespace}"' if r.namespaced else " at the cluster scope"
            msg = (
                f'{r.group_resource} "{name}" is forbidden: User "{api.user}" cannot {verb} resource '
                f'"{plural}" in API group "{r.group}"{where}'
            )
        elif code == 409:
            msg = (
                f'Operation cannot be fulfilled on {r.group_resource} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again"
            )
        else:
            msg = f"injected failure {code} for {verb} {plural}"
        err = ApiError(code, fault.message or msg, None, details)
    return code, err.status()


def route_of(path: str, query: dict[str, list[str]]) -> _Route | None:
    p = path.strip("/").split("/")
    if p[0] == "api" and len(p) >= 3:
        group, version, rest = "", p[1], p[2:]
    elif p[0] == "apis" and len(p) >= 4:
        group, version, rest = p[1], p[2], p[3:]
    else:
        return None
    ns = ""
    if rest[0] == "namespaces" and len(rest) >= 3:
        ns, rest = rest[1], rest[2:]
    r = res.find(group, version, rest[0])
    if r is None or len(rest) > 3:
        return None
    return _Route(r, ns, rest[1] if len(rest) > 1 else None, rest[2] if len(rest) > 2 else None, query)


def dispatch(
    api: KubeApiServer, method: str, path: str, query: dict[str, list[str]], content_type: str, body: Any
) -> tuple[int, JSONDict]:
    if path == "/version":
        return 200, dict(res.VERSION_INFO)
    if path == "/api":
        return 200, res.api_versions()
    if path == "/apis":
        return 200, res.api_group_list()
    p = path.strip("/").split("/")
    if (p[0] == "api" and len(p) == 2) or (p[0] == "apis" and len(p) == 3):
        group, version = ("", p[1]) if p[0] == "api" else (p[1], p[2])
        doc = res.resource_list(group, version)
        if doc is None:
            raise ApiError(404, "the server could not find the requested resource", "NotFound")
        return 200, doc
    route = route_of(path, query)
    if route is None:
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    if route.sub is not None and route.sub not in route.resource.subresources:
        raise ApiError(404, "the server could not find the requested resource", "NotFound")
    return serve(api, route, method, content_type, body)


def serve(
    api: KubeApiServer, route: _Route, method: str, content_type: str, body: Any
) -> tuple[int, JSONDict]:
    if method == "GET":
        if route.name is None:
            if route.query.get("watch", ["false"])[0] in ("true", "1"):
                raise ApiError(405, "watch is not supported by the test API server", "MethodNotAllowed")
            return 200, _list(api, route)
        return 200, _view(route, _current(api, route))
    if method == "POST":
        if route.name is not None or route.sub is not None:
            raise ApiError(405, "create must target the collection", "MethodNotAllowed")
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        _validate(route, body)
        if _dry_run(route):
            return 201, body
        return 201, copy.deepcopy(api._create(route, copy.deepcopy(body)))
    if route.name is None:
        raise ApiError(405, f"{method} requires an object name", "MethodNotAllowed")
    if method == "PUT":
        if not isinstance(body, dict):
            raise ApiError(400, "request body must be a JSON object")
        return 200, _update(api, route, body)
    if method == "PATCH":
        return 200, _patch(api, route, content_type, body)
    if method == "DELETE":
        current = _current(api, route)
        del api._objects[api._key(route, route.name)]
        return 200, {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": route.name,
                "group": route.resource.group,
                "kind": route.resource.plural,
                "uid": current["metadata"]["uid"],
            },
        }
    raise ApiError(405, f"method {method} not allowed", "MethodNotAllowed")


def _dry_run(route: _Route) -> bool:
    return bool(route.query.get("dryRun"))


def _current(api: KubeApiServer, route: _Route) -> JSONDict:
    assert route.name is not None
    key = api._key(route, route.name)
    obj = api._objects.get(key)
    if obj is None:
        raise api._not_found(route.resource, route.name)
    api._refresh(route.resource, key, obj)
    return obj


def _scale_view(dep: JSONDict) -> JSONDict:
    meta = dep["metadata"]
    labels = dep.get("spec", {}).get("selector", {}).get("matchLabels", {})
    return {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {
            k: meta[k]
            for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
            if k in meta
        },
        "spec": {"replicas": int(dep.get("spec", {}).get("replicas", 1))},
        "status": {
            "replicas": int(dep.get("status", {}).get("replicas", 0)),
            "selector": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        },
    }


def _view(route: _Route, obj: JSONDict) -> JSONDict:
    return _scale_view(obj) if route.sub == "scale" else copy.deepcopy(obj)


def _field(obj: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        obj = obj.get(part) if isinstance(obj, dict) else None
    return obj


def _selector_matches(selector: str, get: Any) -> bool:
    for term in filter(None, (t.strip() for t in selector.split(","))):
        if "!=" in term:
            k, v = term.split("!=", 1)
            if str(get(k.strip())) == v.strip():
                return False
        elif "=" in term:
            k, v = term.replace("==", "=").split("=", 1)
            if get(k.strip()) is None or str(get(k.strip())) != v.strip():
                return False
        elif get(term) is None:  # label existence
            return False
    return True


def _list(api: KubeApiServer, route: _Route) -> JSONDict:
    r = route.resource
    labels = route.query.get("labelSelector", [""])[0]
    fields = route.query.get("fieldSelector", [""])[0]
    items = []
    for (rr, ns, _), obj in sorted(api._objects.items(), key=lambda kv: kv[0][1:]):
        if rr != r or (route.namespace and ns != route.namespace):
            continue
        api._refresh(rr, (rr, ns, obj["metadata"]["name"]), obj)
        lbl = obj["metadata"].get("labels") or {}
        if not _selector_matches(labels, lbl.get):
            continue
        if not _selector_matches(fields, lambda k, o=obj: _field(o, k)):
            continue
        items.append(copy.deepcopy(obj))
    return {
        "kind": f"{r.kind}List",
        "apiVersion": r.api_version,
        "metadata": {"resourceVersion": api._next_rv()},
        "items": items,
    }


def _apply_scale(api: KubeApiServer, route: _Route, current: JSONDict, scale: JSONDict) -> JSONDict:
    assert route.name is not None
    api._check_rv(route, route.name, scale.get("metadata", {}).get("resourceVersion"), current)
    replicas = scale.get("spec", {}).get("replicas")
    if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
        raise ApiError(
            422,
            f'Scale.autoscaling "{route.name}" is invalid: spec.replicas: Invalid value: '
            f"{replicas!r}: must be greater than or equal to 0",
            "Invalid",
            {"name": route.name, "group": "autoscaling", "kind": "Scale"},
        )
    new = copy.deepcopy(current)
    new["spec"]["replicas"] = replicas
    main = type(route)(route.resource, route.namespace, route.name, None, route.query)
    return _scale_view(api._store_update(main, route.name, current, new))


_MICROTIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|[+-]\d\d:\d\d)$")


def _validate(route: _Route, obj: JSONDict) -> None:
    kind = route.resource.kind
    spec = obj.get("spec") or {}
    if (
        kind == "Lease"
    ):  # kube-apiserver parses MicroTime with the exact layout 2006-01-02T15:04:05.000000Z07:00
        for fld in ("acquireTime", "renewTime"):
            value = spec.get(fld)
            if value is not None and not (isinstance(value, str) and _MICROTIME.match(value)):
                raise ApiError(
                    400,
                    f'parsing time "{value}" as "2006-01-02T15:04:05.000000Z07:00": cannot parse',
                    "BadRequest",
                )
    if kind == "Deployment":
        rep = spec.get("replicas", 1)
        if not isinstance(rep, int) or isinstance(rep, bool) or rep < 0:
            raise ApiError(
                422,
                f'Deployment.apps "{route.name}" is invalid: spec.replicas: Invalid value: {rep!r}: '
                "must be greater than or equal to 0",
                "Invalid",
            )
    if kind == "HorizontalPodAutoscaler":
        lo, hi = spec.get("minReplicas", 1), spec.get("maxReplicas")
        if not isinstance(hi, int) or not isinstance(lo, int) or lo < 1 or lo > hi:
            raise ApiError(
                422,
                f'HorizontalPodAutoscaler.autoscaling "{route.name}" is invalid: spec.minReplicas: '
                f"Invalid value: {lo!r}: must be >= 1 and <= maxReplicas ({hi!r})",
                "Invalid",
            )
    if kind == "ConfigMap":
        size = sum(len(k) + len(str(v)) for k, v in (obj.get("data") or {}).items())
        size += sum(len(k) + len(str(v)) for k, v in (obj.get("binaryData") or {}).items())
        if size > 1024 * 1024:
            raise ApiError(
                422,
                f'ConfigMap "{route.name}" is invalid: []: Too long: must have at most 1048576 bytes',
                "Invalid",
            )


def _update(api: KubeApiServer, route: _Route, body: JSONDict) -> JSONDict:
    assert route.name is not None
    current = _current(api, route)
    if route.sub == "scale":
        return _apply_scale(api, route, current, body)
    api._check_rv(route, route.name, body.get("metadata", {}).get("resourceVersion"), current)
    _validate(route, body)
    if _dry_run(route):
        return body
    return copy.deepcopy(api._store_update(route, route.name, current, copy.deepcopy(body)))


def _patch(api: KubeApiServer, route: _Route, content_type: str, body: Any) -> JSONDict:
    assert route.name is not None
    ctype = content_type.split(";")[0].strip()
    if ctype not in SUPPORTED:
        raise ApiError(
            415,
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(SUPPORTED)}",
            "UnsupportedMediaType",
        )
    current = _current(api, route)
    try:
        patched = apply_patch(ctype, _view(route, current), body)
    except PatchError as exc:
        raise ApiError(422, str(exc), "Invalid") from None
    if route.sub == "scale":
        return _apply_scale(api, route, current, patched)
    api._check_rv(route, route.name, patched.get("metadata", {}).get("resourceVersion"), current)
    _validate(route, patched)
    if _dry_run(route):
        return patched
    return copy.deepcopy(api._store_update(route, route.name, current, patched))


def _age(meta: JSONDict) -> str:
    try:
        born = datetime.strptime(meta["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    except (KeyError, ValueError):
        return "<unknown>"
    secs = int((datetime.now(UTC) - born).total_seconds())
    return f"{secs}s" if secs < 120 else f"{secs // 60}m" if secs < 7200 else f"{secs // 3600}h"


def as_table(payload: JSONDict) -> JSONDict:
    """meta.k8s.io/v1 Table for ``kubectl get`` (Deployments get kubectl's usual columns)."""
    items = payload.get("items")
    objs = items if isinstance(items, list) else [payload]
    is_deploy = (bool(objs) and objs[0].get("kind") == "Deployment") or payload.get(
        "kind"
    ) == "DeploymentList"
    names = ["Name", "Ready", "Up-to-date", "Available", "Age"] if is_deploy else ["Name", "Age"]
    rows = []
    for o in objs:
        meta = o.get("metadata", {})
        if is_deploy:
            st, want = o.get("status", {}), o.get("spec", {}).get("replicas", 1)
            cells: list[Any] = [
                meta.get("name"),
                f"{st.get('readyReplicas', 0)}/{want}",
                st.get("updatedReplicas", 0),
                st.get("availableReplicas", 0),
                _age(meta),
            ]
        else:
            cells = [meta.get("name"), _age(meta)]
        rows.append(
            {
                "cells": cells,
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta},
            }
        )
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": payload.get("metadata", {}).get("resourceVersion", "")},
        "columnDefinitions": [
            {
                "name": n,
                "type": "string",
                "format": "name" if n == "Name" else "",
                "description": n,
                "priority": 0,
            }
            for n in names
        ],
        "rows": rows,
    }
