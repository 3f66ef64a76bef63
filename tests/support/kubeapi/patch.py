"""Patch semantics of the test API server: JSON merge patch, strategic merge patch and JSON patch.

The real API server implements these three content types for PATCH; clients (the ``kubernetes`` Python client,
kubectl) pick one per call. Strategic merge patch is implemented as a merge patch whose lists of objects are
merged by their ``name`` key (containers, env, ports, volumes): enough for the resources the product patches.
"""

from __future__ import annotations

import copy
from typing import Any

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
SUPPORTED = (MERGE, STRATEGIC, JSON_PATCH)


class PatchError(ValueError):
    """The patch document cannot be applied (maps to 422/400 in the server)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Merge patch where lists of objects that all carry ``name`` merge element-wise by that key."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):  # directives ($patch, $retainKeys, $setElementOrder/...) are not modelled
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and _named_list(value) and _named_list(result.get(key)):
            merged = {item["name"]: item for item in copy.deepcopy(result[key])}
            order = [item["name"] for item in result[key]]
            for item in value:
                if item.get("$patch") == "delete":
                    merged.pop(item["name"], None)
                    continue
                if item["name"] not in merged:
                    order.append(item["name"])
                merged[item["name"]] = strategic_merge_patch(merged.get(item["name"]), item)
            result[key] = [merged[n] for n in order if n in merged]
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    return result


def _named_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) and "name" in v for v in value)


def json_patch(target: Any, ops: Any) -> Any:
    """RFC 6902 JSON patch with add, remove, replace, test (and copy/move) operations."""
    if not isinstance(ops, list):
        raise PatchError("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in ops:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid json patch operation {op!r}")
        kind, path = op["op"], _pointer(op["path"])
        if kind in ("add", "replace"):
            doc = _set(doc, path, copy.deepcopy(op.get("value")), insert=(kind == "add"))
        elif kind == "remove":
            doc = _remove(doc, path)
        elif kind == "test":
            if _get(doc, path) != op.get("value"):
                raise PatchError(f"test operation failed at {op['path']}")
        elif kind in ("copy", "move"):
            src = _pointer(op["from"])
            value = copy.deepcopy(_get(doc, src))
            if kind == "move":
                doc = _remove(doc, src)
            doc = _set(doc, path, value, insert=True)
        else:
            raise PatchError(f"unsupported json patch op {kind!r}")
    return doc


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _get(doc: Any, path: list[str]) -> Any:
    cur = doc
    for part in path:
        try:
            cur = cur[int(part)] if isinstance(cur, list) else cur[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise PatchError(f"path /{'/'.join(path)} does not exist") from None
    return cur


def _set(doc: Any, path: list[str], value: Any, *, insert: bool) -> Any:
    if not path:
        return value
    parent = _get(doc, path[:-1])
    last = path[-1]
    if isinstance(parent, list):
        idx = len(parent) if last == "-" else int(last)
        if insert:
            parent.insert(idx, value)
        else:
            parent[idx] = value
    elif isinstance(parent, dict):
        if not insert and last not in parent:
            raise PatchError(f"path /{'/'.join(path)} does not exist")
        parent[last] = value
    else:
        raise PatchError(f"cannot set /{'/'.join(path)}")
    return doc


def _remove(doc: Any, path: list[str]) -> Any:
    parent = _get(doc, path[:-1])
    last = path[-1]
    try:
        if isinstance(parent, list):
            del parent[int(last)]
        else:
            del parent[last]
    except (KeyError, IndexError, ValueError, TypeError):
        raise PatchError(f"path /{'/'.join(path)} does not exist") from None
    return doc


def apply_patch(content_type: str, target: dict[str, Any], patch: Any) -> dict[str, Any]:
    """Apply ``patch`` of ``content_type`` (one of :data:`SUPPORTED`) to ``target``."""
    ctype = content_type.split(";")[0].strip()
    if ctype == MERGE:
        result = merge_patch(target, patch)
    elif ctype == STRATEGIC:
        result = strategic_merge_patch(target, patch)
    elif ctype == JSON_PATCH:
        result = json_patch(target, patch)
    else:
        raise PatchError(f"unsupported patch content type {ctype!r}")
    if not isinstance(result, dict):
        raise PatchError("patch must produce an object")
    return result
