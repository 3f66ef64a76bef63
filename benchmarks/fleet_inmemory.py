"""A fleet's decision round without a network: CPU per round and the controller's memory, for N scalers.

The real :class:`~controller.fleet.reconciler.FleetController` (informer caches, one ControlLoop per scaler,
status conditions, the Kubernetes client's request building) runs against an in-memory API: the informer
caches are filled directly, as a synced list + watch leaves them, and the client's HTTP pool is replaced by
:class:`InMemoryApi`, which answers each write at once and applies it to the caches as the watch would.
So a round costs what the controller costs, without API latency. Objects are copies of what a real API
server returned (``--templates``, written by benchmarks/fleet_bench.py: managedFields and all), else small
stand-ins. Each scaler has its own forecast artifact (24 h of 5-minute intervals by default, a daily shape
at its own level), stored as JSON in its ConfigMap as the forecast job writes it.

Rounds: the first (cold: every spec parsed, every artifact parsed, every loop built, every scaler writes),
then rounds until one makes no request (the fleet has climbed to its forecasts), then ``--rounds`` steady
rounds (timed: the median is the figure), then three rounds each after ``--changes`` other scalers got a new
forecast (the median is reported).
CPU is ``time.process_time`` of this process (no other thread runs: there are no informer threads here).
RSS is ``ru_maxrss`` (the peak) and psutil's current RSS, also right after the imports.

Prints one JSON object. ``--root`` runs another checkout's controller (to compare before and after a
change); this script imports nothing from tests/ for that reason.

Usage: python benchmarks/fleet_inmemory.py [--scalers 1000] [--rounds 7] [--templates FILE] [--root DIR]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def _status_mib(field: str) -> float | None:
    """A field of /proc/self/status in MiB (Linux); None elsewhere."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return None


def rss_mib() -> float | None:
    """The resident set now (VmRSS; psutil's figure is the same)."""
    return _status_mib("VmRSS")


def peak_mib() -> float | None:
    """The highest resident set of this process image (VmHWM). Not ``ru_maxrss``: that survives exec, so a
    child started by a larger parent reports the parent's peak."""
    return _status_mib("VmHWM")


class _Response:
    """What the client reads of a urllib3 response."""

    def __init__(self, data: bytes, status: int = 200) -> None:
        from urllib3._collections import HTTPHeaderDict

        self.status, self.reason, self.data = status, "OK" if status < 400 else "Not Found", data
        self.headers = HTTPHeaderDict({"content-type": "application/json"})


def _merge(into: dict[str, Any], patch: dict[str, Any]) -> None:
    for k, v in patch.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v


class InMemoryApi:
    """Stands in for the client's urllib3 pool: answers at once, applies writes to the fleet's caches."""

    def __init__(self, fleet: Any) -> None:
        self.fleet = fleet
        self.calls: Counter[str] = Counter()
        self.rv = 10**7

    def request(self, method: str, url: str, body: Any = None, **_: Any) -> _Response:
        path = url.split("://", 1)[-1].split("/", 1)[-1].split("?", 1)[0]
        parts = path.split("/")
        i = parts.index("namespaces") if "namespaces" in parts else -1
        ns, resource_, name = (parts[i + 1], parts[i + 2], parts[i + 3] if len(parts) > i + 3 else "") \
            if i >= 0 else ("", "", "")
        sub = parts[i + 4] if i >= 0 and len(parts) > i + 4 else ""
        self.calls[f"{method} {resource_}{'/' + sub if sub else ''}"] += 1
        inf = {"horizontalpodautoscalers": self.fleet.hpas, "deployments": self.fleet.deployments,
               "predictivescalers": self.fleet.scalers}.get(resource_)
        if inf is None or not name:  # Events: accepted as sent
            return _Response(body.encode() if isinstance(body, str) else b"{}")
        cached = inf.get(ns, name)
        if cached is None:
            return _Response(b'{"kind":"Status","code":404}', 404)
        if method != "PATCH":
            return _Response(json.dumps(cached).encode())
        obj = json.loads(json.dumps(cached))
        patch = json.loads(body)
        patch.get("metadata", {}).pop("resourceVersion", None)
        _merge(obj, patch)
        self.rv += 1
        obj["metadata"]["resourceVersion"] = str(self.rv)
        store(inf, obj)  # what the watch event would do
        return _Response(json.dumps(obj).encode())


def store(informer: Any, obj: dict[str, Any]) -> None:
    """Put ``obj`` in the informer's cache as its list or watch would (through its transform, if any)."""
    transform = getattr(informer, "transform", None)  # a baseline checkout may have none
    if transform is not None:
        obj = transform(obj)
    meta = obj["metadata"]
    with informer._lock:
        informer._cache[(meta["namespace"], meta["name"])] = obj


def _stand_ins() -> dict[str, dict[str, Any]]:
    meta = {"name": "x", "namespace": "ns", "resourceVersion": "1", "uid": "u"}
    return {
        "scaler": {"apiVersion": "autoscaling.recharge-autoscaler.io/v1alpha1", "kind": "PredictiveScaler",
                   "metadata": {**meta, "generation": 1}, "spec": {}},
        "deployment": {"metadata": dict(meta), "spec": {"replicas": 3}, "status": {"readyReplicas": 3}},
        "hpa": {"metadata": dict(meta), "spec": {"minReplicas": 2, "maxReplicas": 60}},
        "configmap": {"metadata": dict(meta), "data": {}},
    }


def forecast_json(level: float, now: Any, hours: int, step_min: int, seed: int) -> str:
    """A valid artifact: a daily shape at ``level`` req/s (evening peak), band +-10%, peak band +20%."""
    import pandas as pd

    from forecaster.artifact import ForecastArtifact, Interval

    step = pd.Timedelta(minutes=step_min)
    start = now.floor(step) - step
    n = hours * 60 // step_min
    ivs = []
    for j in range(n):
        t = start + j * step
        hour = t.hour + t.minute / 60
        v = level * (0.6 + 0.4 * math.exp(-((hour - 19) ** 2) / 8)) * (1 + 0.01 * (seed % 7))
        ivs.append(Interval(t, v, v * 0.9, v * 1.1, v * 1.2))
    return ForecastArtifact(
        created_at=now, model="seasonal_median", timezone="UTC", interval_seconds=step_min * 60,
        band_level=0.9, history_start=start - pd.Timedelta(days=28), history_end=start, history_points=8064,
        source="bench", horizon_seconds=n * step_min * 60, intervals=tuple(ivs),
        backtest={"wape": 0.05, "mape": 0.06, "bias": 0.0, "coverage": 0.9, "folds": 14.0},
    ).to_json()


def level_of(i: int) -> float:
    return 200.0 + (i * 37) % 1500  # 200-1,700 req/s: 4-41 replicas at 50 req/s each


def build(n: int, templates: dict[str, Any], now: Any, hours: int, step_min: int) -> tuple[Any, InMemoryApi]:
    from kubernetes import client

    from controller.fleet.reconciler import FleetController, FleetDeps
    from controller.ports import ObservedLoad

    class Load:
        def __init__(self, rate: float) -> None:
            self.rate = rate

        def describe(self) -> str:
            return "in-memory"

        def current(self, at: Any) -> ObservedLoad:
            return ObservedLoad(self.rate, at)

    levels = {f"svc-{i:04d}": level_of(i) for i in range(n)}
    cfg = client.Configuration()
    cfg.host = "http://in-memory"
    api = client.ApiClient(cfg)
    fleet = FleetController(FleetDeps(
        api_client=api, load_for=lambda c: Load(0.6 * levels[c.require_target().name])))
    fake = InMemoryApi(fleet)
    api.rest_client.pool_manager = fake
    rv = 0

    def obj(kind: str, name: str, ns: str, i: int) -> dict[str, Any]:
        nonlocal rv
        rv += 1
        o = copy.deepcopy(templates[kind])
        o["metadata"].update(name=name, namespace=ns, resourceVersion=str(rv), uid=f"uid-{kind}-{i}")
        return dict(o)

    for i, (name, lv) in enumerate(levels.items()):
        ns = f"team-{i % 10:02d}"
        s = obj("scaler", name, ns, i)
        s["spec"] = {"scaleTargetRef": {"name": name}, "capacityPerReplica": 50, "minReplicas": 2,
                     "maxReplicas": 60, "load": {"query": f'sum(rate(requests_total{{app="{name}"}}[1m]))'}}
        s.pop("status", None)
        d = obj("deployment", name, ns, i)
        d["spec"]["replicas"] = 3
        h = obj("hpa", name, ns, i)
        h["spec"].update(minReplicas=2, maxReplicas=60)
        h["spec"].setdefault("scaleTargetRef", {})["name"] = name
        c = obj("configmap", f"{name}-forecast", ns, i)
        c["data"] = {"forecast.json": forecast_json(lv, now, hours, step_min, i)}
        for inf, o in ((fleet.scalers, s), (fleet.deployments, d), (fleet.hpas, h), (fleet.configmaps, c)):
            store(inf, o)  # what the list would do
    for inf in fleet._informers:
        inf.synced.set()
    return fleet, fake


def timed_round(fleet: Any, fake: InMemoryApi, at: Any) -> dict[str, Any]:
    fake.calls.clear()
    c0, w0 = time.process_time(), time.perf_counter()
    out = fleet.tick(at)
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    return {"cpu": cpu, "wall": wall, "acted": out.acted, "status_writes": out.status_writes,
            "failed": out.failed, "calls": dict(fake.calls)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scalers", type=int, default=1000)
    ap.add_argument("--rounds", type=int, default=7, help="steady rounds timed (median reported)")
    ap.add_argument("--changes", type=int, default=100, help="scalers given a new forecast in the last round")
    ap.add_argument("--hours", type=int, default=24, help="forecast horizon of each artifact")
    ap.add_argument("--step", type=int, default=5, help="forecast interval in minutes")
    ap.add_argument("--templates", type=Path, default=None, help="raw objects from a real API server (JSON)")
    ap.add_argument("--root", type=Path, default=ROOT, help="checkout whose controller is measured")
    ap.add_argument("--profile", action="store_true", help="print a cProfile of one steady round to stderr")
    args = ap.parse_args()
    sys.path.insert(0, str(args.root.resolve()))

    import logging

    import pandas as pd

    import controller.fleet.reconciler  # noqa: F401  (the imports a fleet process has)

    logging.basicConfig(level=logging.ERROR)
    after_imports = {"rss": rss_mib(), "peak": peak_mib()}
    templates = json.loads(args.templates.read_text()) if args.templates else _stand_ins()
    now = pd.Timestamp("2026-12-01T12:00:00Z")
    t0 = time.process_time()
    fleet, fake = build(args.scalers, templates, now, args.hours, args.step)
    build_cpu = time.process_time() - t0
    artifact_bytes = statistics.median(
        len(o["data"]["forecast.json"]) for o in fleet.configmaps.items()[:50])
    ticks = iter(range(10**6))

    def at() -> Any:  # every round 30 s after the previous one
        return now + pd.Timedelta(seconds=30 * next(ticks))

    cold = timed_round(fleet, fake, at())
    settle = []
    for _ in range(15):
        settle.append(timed_round(fleet, fake, at()))
        if not settle[-1]["calls"]:
            break
    steady = [timed_round(fleet, fake, at()) for _ in range(args.rounds)]
    if args.profile:
        import cProfile
        import pstats

        prof = cProfile.Profile()
        prof.runcall(fleet.tick, at())
        pstats.Stats(prof, stream=sys.stderr).sort_stats("tottime").print_stats(25)
    changes = []
    items = fleet.configmaps.items()
    for rep in range(3):  # 3 rounds, each after other scalers got a new forecast, 1.5x higher
        when = at()
        for i, cm in enumerate(items[rep * args.changes: (rep + 1) * args.changes], start=rep * args.changes):
            new = copy.deepcopy(cm)
            new["data"]["forecast.json"] = forecast_json(1.5 * level_of(i), when, args.hours, args.step, i)
            new["metadata"]["resourceVersion"] = f"{cm['metadata']['resourceVersion']}-new"
            store(fleet.configmaps, new)
        changes.append(timed_round(fleet, fake, when))
        for _ in range(5):  # the next tick reports the new replicas in the status: not part of the round
            if not timed_round(fleet, fake, at())["calls"]:
                break
    changed = sorted(changes, key=lambda r: r["cpu"])[1]  # the median of 3
    cpus = [r["cpu"] for r in steady]
    print(json.dumps({
        "scalers": args.scalers, "artifact_bytes": artifact_bytes, "intervals": args.hours * 60 // args.step,
        "templates": bool(args.templates), "root": str(args.root), "build_cpu": build_cpu,
        "cold": cold, "settle": settle, "steady": steady, "changed": changed, "changes": args.changes,
        "steady_cpu_median": statistics.median(cpus), "steady_cpu_min": min(cpus),
        "steady_cpu_max": max(cpus),
        "steady_wall_median": statistics.median(r["wall"] for r in steady),
        "steady_calls": sum(sum(r["calls"].values()) for r in steady),
        "rss_after_imports": after_imports["rss"], "peak_after_imports": after_imports["peak"],
        "rss_end": rss_mib(), "peak_end": peak_mib(),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
