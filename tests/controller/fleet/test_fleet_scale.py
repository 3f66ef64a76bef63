"""200 scalers on the real API server under one FleetController (issue 13's test target).

Every scaler reaches Ready; a steady tick makes no API request at all; a spec edit is acted on within one
tick; a broken scaler (missing target, invalid spec) has its own condition while the others reconcile; and
the writes of a tick follow the number of scalers that changed, not the size of the fleet. Requests are
counted on the controller's own ApiClient (:mod:`tests.support.apicalls`), on the ticking thread only: the
informers' watches run on their own threads and are not part of a tick.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pytest

from controller.adapters.informer import wait_for
from controller.fleet.reconciler import FleetController, FleetDeps, FleetTick
from controller.fleet.spec import GROUP, PLURAL, VERSION
from forecaster.adapters.configmap_store import MANAGED_BY
from tests.controller.fleet.conftest import Cluster, FakeLoad, artifact, caught_up
from tests.support.apicalls import ApiCalls, Call, summary
from tests.support.kube_envtest import KubeEnvtest

pytestmark = [pytest.mark.kube, pytest.mark.slow]

SCALERS = 200
NAMESPACES = 4
CAPACITY = 50.0
FLOOR = 10  # every HPA starts at this floor; the forecasts need 10-19 replicas, one scale-up step away


def level(i: int) -> float:
    """Scaler i's forecast level (req/s): its need at the peak band (x1.2) is ceil(1.2 level / 50)."""
    return 400.0 + 2.0 * i


def forecast(now: pd.Timestamp, rate: float) -> Any:
    """A flat forecast at ``rate`` with one higher interval 5 h ahead: the status's next peak stays put
    while the test runs (on a flat forecast it would move with every interval)."""
    return artifact(now, rate, hours=6, peak_at=60)


def need(rate: float, capacity: float = CAPACITY) -> int:
    return math.ceil(1.2 * rate / capacity - 1e-9)


@dataclass
class Fleet:
    """The fleet under test: its namespaces, the controller, the request counter, the scalers by name."""

    clusters: list[Cluster]
    controller: FleetController
    calls: ApiCalls
    levels: dict[str, float] = field(default_factory=dict)
    where: dict[str, Cluster] = field(default_factory=dict)
    now: pd.Timestamp = field(default_factory=lambda: pd.Timestamp.now(tz="UTC"))
    ticks: int = 0

    def tick(self) -> tuple[FleetTick, list[Call]]:
        """One tick 30 s after the previous one, then wait until the caches hold what it wrote (so the next
        tick reads current objects, as it would 30 s later in production)."""
        with self.calls.window() as made:
            out = self.controller.tick(self.now + pd.Timedelta(seconds=30 * self.ticks))
        self.ticks += 1
        assert wait_for(lambda: caught_up(self.controller), 60), "the caches did not catch up in 60 s"
        return out, made


def _create(cluster: Cluster, name: str, rate: float, now: pd.Timestamp) -> None:
    cluster.deployment(name, replicas=FLOOR)
    cluster.hpa(name, lo=FLOOR, hi=60)
    body = {"metadata": {"name": f"{name}-forecast", "labels": dict(MANAGED_BY)},
            "data": {"forecast.json": forecast(now, rate).to_json()}}
    cluster.core.create_namespaced_config_map(cluster.ns, body)  # one call (the store would GET first)
    cluster.scaler(name, name, load={"query": "q"})


@pytest.fixture(scope="module")
def fleet(crd_installed: KubeEnvtest) -> Iterator[Fleet]:
    env = crd_installed
    clusters = [Cluster(env, env.create_namespace("scale")) for _ in range(NAMESPACES)]
    now = pd.Timestamp.now(tz="UTC")
    levels = {f"svc-{i:03d}": level(i) for i in range(SCALERS)}
    where = {name: clusters[i % NAMESPACES] for i, name in enumerate(levels)}
    with ThreadPoolExecutor(8) as pool:  # ~800 creates: in parallel, the API server is not the bottleneck
        for f in [pool.submit(_create, where[n], n, r, now) for n, r in levels.items()]:
            f.result()
    broken = clusters[0]
    broken.scaler("no-target", "missing", load={"query": "q"})
    broken.scaler("bad-spec", "svc-000", load={"kind": "file"})  # valid for the CRD, not for the controller

    api = env.api_client()
    calls = ApiCalls(api)
    deps = FleetDeps(api_client=api, namespaces=[c.ns for c in clusters],
                     load_for=lambda cfg: FakeLoad(levels.get(cfg.require_target().name, 0.0)))
    controller = FleetController(deps).start(wait=60)
    try:
        assert len(controller.scalers) == SCALERS + 2
        yield Fleet(clusters, controller, calls, levels, where, now)
    finally:
        controller.stop()
        calls.close()


def _scalers(fleet: Fleet) -> dict[str, dict[str, Any]]:
    """Every scaler as the API server has it: one LIST per namespace (not 200 GETs)."""
    out = {}
    for c in fleet.clusters:
        for obj in c.custom.list_namespaced_custom_object(GROUP, VERSION, c.ns, PLURAL)["items"]:
            out[obj["metadata"]["name"]] = obj
    return out


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    conds = {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}
    return conds.get("Ready", {})


def test_200_scalers_reach_ready_and_a_steady_tick_makes_no_request(fleet: Fleet) -> None:
    t0 = time.monotonic()
    history = []
    for _ in range(8):  # act, then report the new replicas, then steady
        out, made = fleet.tick()
        history.append((out, summary(made)))
        if out.acted == 0 and out.status_writes == 0:
            break
    first = history[0][0]
    assert (first.scalers, first.invalid, first.failed) == (SCALERS + 2, 1, 1), history[0]
    assert first.acted == SCALERS  # every HPA floor goes from 10 to its forecast's need in one tick
    assert len(history) <= 4, [h[1] for h in history]  # settled within a few ticks
    objs = _scalers(fleet)
    for name, rate in fleet.levels.items():
        obj = objs[name]
        assert _ready(obj).get("status") == "True", (name, obj.get("status"))
        assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 1
        assert obj["status"]["desiredReplicas"] == need(rate), name
    hpas = {h.metadata.name: h.spec.min_replicas for c in fleet.clusters
            for h in c.autoscaling.list_namespaced_horizontal_pod_autoscaler(c.ns).items}
    assert all(hpas[n] == need(r) for n, r in fleet.levels.items())

    for _ in range(3):
        out, made = fleet.tick()
        assert (out.scalers, out.acted, out.status_writes) == (SCALERS + 2, 0, 0)
        assert made == [], summary(made)  # no read (the caches serve them) and nothing to write
    print(f"200 scalers: settled in {len(history)} ticks, {time.monotonic() - t0:.1f}s; first tick "
          f"{history[0][1]}")


def test_broken_scalers_are_isolated(fleet: Fleet) -> None:
    if fleet.ticks == 0:
        fleet.tick()
    objs = _scalers(fleet)
    missing, bad = _ready(objs["no-target"]), _ready(objs["bad-spec"])
    assert (missing["status"], missing["reason"]) == ("False", "TargetNotFound")
    assert "missing" in missing["message"]
    assert (bad["status"], bad["reason"]) == ("False", "InvalidSpec")
    assert "spec.load.path" in bad["message"]
    # The healthy scaler in the broken ones' namespace, and every other, reconciled.
    assert all(_ready(objs[n]).get("status") == "True" for n in fleet.levels)


def _edit(fleet: Fleet, names: list[str], capacity: float) -> None:
    for n in names:
        fleet.where[n].patch_scaler(n, {"capacityPerReplica": capacity})
    cache = fleet.controller.scalers
    assert wait_for(lambda: all(
        (cache.get(fleet.where[n].ns, n) or {})["metadata"]["generation"] > 1 for n in names
    ), 30)


@pytest.mark.parametrize("k", [1, 10])
def test_spec_edits_act_within_one_tick_and_writes_follow_the_changes(fleet: Fleet, k: int) -> None:
    while True:  # from a steady fleet
        out, _ = fleet.tick()
        if out.acted == 0 and out.status_writes == 0:
            break
    names = sorted(fleet.levels)[k: 2 * k] if k > 1 else ["svc-150"]
    before = {n: _scalers(fleet)[n]["metadata"]["generation"] for n in names}
    capacity = CAPACITY * 0.6  # each replica serves less: more replicas (within one scale-up step)
    _edit(fleet, names, capacity)
    out, made = fleet.tick()
    objs = _scalers(fleet)
    for n in names:
        c = fleet.where[n]
        status = objs[n]["status"]
        assert status["observedGeneration"] == before[n] + 1 == objs[n]["metadata"]["generation"]
        assert status["desiredReplicas"] == need(fleet.levels[n], capacity) > need(fleet.levels[n])
        assert c.hpa_floor(n) == need(fleet.levels[n], capacity)
    counts = summary(made)
    assert counts["reads"] == 0, counts
    assert out.acted == k and out.status_writes == k
    # Per edited scaler: its HPA floor, its status, one Event (ScaledUp). Nothing for the other scalers.
    assert counts["writes"] == 3 * k, counts
    named = [c for c in made if c.resource != "events"]
    assert {c.name for c in named} == set(names), counts
    assert counts.get("POST events", 0) == k
