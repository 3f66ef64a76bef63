"""Fleet controller: decision-round CPU and memory at 1,000 scalers, API calls per tick on a real API server.

Issue 13's targets, measured in one run:

(a) one decision round for 1,000 scalers <= 1 s of CPU, API latency excluded, and (b) controller RSS <=
512 MiB: benchmarks/fleet_inmemory.py runs the real FleetController against an in-memory API with the
informer caches pre-filled (objects copied from what the real API server returned), in a fresh process per
configuration, for the product's default forecast (24 h of 1-hour intervals) and a fine one (24 h of
5-minute intervals). With ``--baseline-root`` the same is measured on another checkout (before/after).

(c) API calls per tick proportional to the changes, not to the number of scalers: N scalers (Deployment,
HPA, forecast ConfigMap, PredictiveScaler each) on the real etcd + kube-apiserver of the test suite, one
FleetController; its ApiClient's requests are counted on the ticking thread (tests/support/apicalls.py).
After the fleet has settled: steady ticks, then k spec edits, then k new forecasts, each followed by ticks
until nothing is written.

Writes the "## Fleet controller" section of docs/benchmarks.md.

Usage: python benchmarks/fleet_bench.py [--scalers 1000] [--rounds 7] [--api-scalers 50,200]
       [--changes 1,10] [--baseline-root DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchdocs import write_section  # noqa: E402

SECTION = "## Fleet controller"
NAMESPACES = 4
FORECASTS = {"24 h x 1 h (default)": (24, 60), "24 h x 5 min": (24, 5)}


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.1f} / {five:.1f} / {fifteen:.1f}"


# -- the real API server ------------------------------------------------------------------------------------
def install_crd(env: Any) -> None:
    from kubernetes import client

    from controller.adapters.informer import wait_for
    from controller.fleet.spec import GROUP, PLURAL, crd

    ext = client.ApiextensionsV1Api(env.api_client())
    ext.create_custom_resource_definition(crd())

    def established() -> bool:
        conds = ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}").status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conds)

    assert wait_for(established, 30, 0.2), "CRD not established"


def templates(env: Any, path: Path) -> None:
    """One scaler's four objects as the API server returns them, for the in-memory rounds to copy: the
    Deployment is benchmarks/fleet_deployment.yaml applied with kubectl (a production-sized object with its
    last-applied annotation and managedFields)."""
    import pandas as pd

    from controller.fleet.spec import GROUP, PLURAL, VERSION
    from tests.controller.fleet.conftest import Cluster, artifact
    from tests.support.tools import require_tool

    c = Cluster(env, env.create_namespace("template"))
    now = pd.Timestamp.now(tz="UTC")
    kubectl = require_tool("kubectl")
    subprocess.run([kubectl, "apply", "-n", c.ns, "-f", str(ROOT / "benchmarks" / "fleet_deployment.yaml")],
                   env=env.env(), check=True, capture_output=True, timeout=120)
    c.hpa("svc")
    c.forecast("svc", artifact(now, 500.0))
    c.scaler("svc", "svc", load={"query": "q"})
    raw = {
        "deployment": c.apps.read_namespaced_deployment("svc", c.ns, _preload_content=False),
        "hpa": c.autoscaling.read_namespaced_horizontal_pod_autoscaler("svc", c.ns, _preload_content=False),
        "configmap": c.core.read_namespaced_config_map("svc-forecast", c.ns, _preload_content=False),
        "scaler": c.custom.get_namespaced_custom_object(GROUP, VERSION, c.ns, PLURAL, "svc",
                                                        _preload_content=False),
    }
    path.write_text(json.dumps({k: json.loads(r.data) for k, r in raw.items()}))


class ApiFleet:
    """N scalers on the real API server and one FleetController whose requests are counted."""

    def __init__(self, env: Any, n: int) -> None:
        import pandas as pd

        from controller.fleet.reconciler import FleetController, FleetDeps
        from forecaster.adapters.configmap_store import MANAGED_BY
        from tests.controller.fleet.conftest import Cluster, FakeLoad
        from tests.support.apicalls import ApiCalls

        self.n, self.now, self.ticks = n, pd.Timestamp.now(tz="UTC"), 0
        self.thread = threading.get_ident()
        self.clusters = [Cluster(env, env.create_namespace(f"bench{n}")) for _ in range(NAMESPACES)]
        self.levels = {f"svc-{i:03d}": 400.0 + 2.0 * (i % 100) for i in range(n)}
        self.where = {name: self.clusters[i % NAMESPACES] for i, name in enumerate(self.levels)}

        def create(name: str) -> None:
            c, lv = self.where[name], self.levels[name]
            c.deployment(name, replicas=10)
            c.hpa(name, lo=10, hi=60)
            c.core.create_namespaced_config_map(c.ns, {
                "metadata": {"name": f"{name}-forecast", "labels": dict(MANAGED_BY)},
                "data": {"forecast.json": self.forecast(self.now, lv)}})
            c.scaler(name, name, load={"query": "q"})

        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(create, self.levels))
        self.create_seconds = time.perf_counter() - t0
        self.capacity: dict[str, int] = {}
        api = env.api_client()
        self.calls = ApiCalls(api)
        self.fleet = FleetController(FleetDeps(
            api_client=api, namespaces=[c.ns for c in self.clusters],
            load_for=lambda cfg: FakeLoad(self.levels[cfg.require_target().name])))
        self.fleet.start(wait=120)

    @staticmethod
    def forecast(now: Any, level: float) -> str:
        """Flat at ``level`` with one higher interval 5 h ahead, so the status's next peak stays put."""
        from tests.controller.fleet.conftest import artifact

        return str(artifact(now, level, hours=6, peak_at=60).to_json())

    def tick(self) -> dict[str, Any]:
        import pandas as pd

        from controller.adapters.informer import wait_for
        from tests.controller.fleet.conftest import caught_up
        from tests.support.apicalls import summary

        c0 = time.thread_time()
        with self.calls.window() as made:
            out = self.fleet.tick(self.now + pd.Timedelta(seconds=30 * self.ticks))
        cpu = time.thread_time() - c0
        self.ticks += 1
        if not wait_for(lambda: caught_up(self.fleet), 120):
            raise RuntimeError("the informer caches did not catch up within 120 s")
        return {"cpu": cpu, "acted": out.acted, "status": out.status_writes, **summary(made)}

    def settle(self, limit: int = 10) -> list[dict[str, Any]]:
        out = []
        for _ in range(limit):
            out.append(self.tick())
            if out[-1]["writes"] == 0 and out[-1]["reads"] == 0:
                break
        return out

    def edit(self, k: int) -> None:
        """k scalers get another capacity per replica (50 <-> 30 req/s): a new generation, other needs."""
        from controller.adapters.informer import wait_for

        names = sorted(self.levels)[:k]
        gens = {n: self._scaler(n)["metadata"]["generation"] for n in names}
        for n in names:
            self.capacity[n] = 30 if self.capacity.get(n, 50) == 50 else 50
            self.where[n].patch_scaler(n, {"capacityPerReplica": self.capacity[n]})
        assert wait_for(lambda: all(self._scaler(n)["metadata"]["generation"] > gens[n] for n in names), 60)

    def new_forecasts(self, k: int) -> None:
        """k scalers get a new forecast, 1.5x higher, as the forecast job would store it."""
        import pandas as pd

        from controller.adapters.informer import wait_for

        names = sorted(self.levels)[-k:]
        when = self.now + pd.Timedelta(seconds=30 * self.ticks)
        rvs = {}
        for n in names:
            self.levels[n] *= 1.5
            c = self.where[n]
            body = {"data": {"forecast.json": self.forecast(when, self.levels[n])}}
            rvs[n] = c.core.patch_namespaced_config_map(f"{n}-forecast", c.ns, body).metadata.resource_version
        cms = self.fleet.configmaps
        assert wait_for(lambda: all(
            (cms.get(self.where[n].ns, f"{n}-forecast") or {})["metadata"]["resourceVersion"] == rvs[n]
            for n in names), 60)

    def _scaler(self, name: str) -> dict[str, Any]:
        return self.fleet.scalers.get(self.where[name].ns, name) or {"metadata": {"generation": 0}}

    def close(self) -> None:
        self.fleet.stop()
        self.calls.close()


def measure_api(env: Any, n: int, changes: list[int], steady: int = 3) -> dict[str, Any]:
    f = ApiFleet(env, n)
    try:
        first = f.settle()
        rows: list[dict[str, Any]] = [{"what": "steady", "k": 0, "ticks": [f.tick() for _ in range(steady)]}]
        for k in changes:
            f.edit(k)
            rows.append({"what": "spec edit", "k": k, "ticks": f.settle()})
            f.new_forecasts(k)
            rows.append({"what": "new forecast", "k": k, "ticks": f.settle()})
        informer = [c for c in f.calls.calls if c.thread != f.thread]
        return {"n": n, "create_seconds": f.create_seconds, "settle": first, "rows": rows,
                "informer_calls": len(informer), "ticks": f.ticks}
    finally:
        f.close()


# -- in memory ----------------------------------------------------------------------------------------------
def in_memory(
    n: int, rounds: int, changes: int, hours: int, step: int, tpl: Path, root: Path
) -> dict[str, Any]:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "fleet_inmemory.py"), "--scalers", str(n), "--rounds",
           str(rounds), "--changes", str(changes), "--hours", str(hours), "--step", str(step), "--templates",
           str(tpl), "--root", str(root)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=3600)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


# -- the section --------------------------------------------------------------------------------------------
def _mib(x: float | None) -> str:
    return "n/a" if x is None else f"{x:,.0f}"


def memory_table(results: list[tuple[str, dict[str, Any]]], rounds: int, changes: int) -> list[str]:
    out = [
        f"| code | forecast per scaler | steady round CPU s (median of {rounds}; min-max) | steady round "
        f"wall s | requests in the steady rounds | first round CPU s (cold) | round after {changes} new "
        "forecasts: CPU s, median of 3 (requests) | RSS after imports MiB | RSS with the fleet MiB (peak) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for label, r in results:
        changed = r["changed"]
        out.append(
            f"| {label} | {r['forecast']} ({r['intervals']} intervals, {r['artifact_bytes'] / 1024:.0f} KiB "
            f"JSON) | {r['steady_cpu_median']:.3f} ({r['steady_cpu_min']:.3f}-{r['steady_cpu_max']:.3f}) | "
            f"{r['steady_wall_median']:.2f} | {r['steady_calls']} | {r['cold']['cpu']:.2f} | "
            f"{changed['cpu']:.3f} ({sum(changed['calls'].values())}) | "
            f"{_mib(r['rss_after_imports'])} | {_mib(r['rss_end'])} ({_mib(r['peak_end'])}) |")
    return out


def _kinds(ticks: list[dict[str, Any]]) -> str:
    kinds: dict[str, int] = {}
    for t in ticks:
        for key, v in t.items():
            if " " in key and not key.startswith("GET"):
                kinds[key] = kinds.get(key, 0) + v
    return ", ".join(f"{v} {k}" for k, v in sorted(kinds.items())) or "-"


def api_table(results: list[dict[str, Any]]) -> list[str]:
    out = [
        "| scalers | what changed | ticks that wrote | reads | writes, first tick | writes until steady | "
        "writes per change | tick CPU ms (median) | the writes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for res in results:
        n = res["n"]
        for row in [{"what": "new", "k": n, "ticks": res["settle"]}, *res["rows"]]:
            ticks, k = row["ticks"], row["k"]
            writes = sum(t["writes"] for t in ticks)
            what = {"steady": f"nothing ({len(ticks)} steady ticks)", "spec edit": f"{k} spec edit(s)",
                    "new forecast": f"{k} new forecast(s)", "new": f"every scaler is new ({k})"}[row["what"]]
            settle = str(sum(1 for t in ticks if t["writes"]))
            per = f"{writes / k:.1f}" if k else "-"
            cpu = statistics.median(t["cpu"] for t in ticks) * 1000
            reads = sum(t["reads"] for t in ticks)
            out.append(f"| {n} | {what} | {settle} | {reads} | {ticks[0]['writes']} | {writes} | {per} | "
                       f"{cpu:.0f} | {_kinds(ticks)} |")
    return out


MEMORY_HOW = (
    "`benchmarks/fleet_inmemory.py`, one fresh process per row: the real FleetController (informer caches, "
    "one ControlLoop per scaler, status conditions, the Kubernetes client building every request) against "
    "an in-memory API that answers at once and applies each write to the caches as the watch would. The "
    "caches are filled with copies of the objects a real API server returned (the Deployment is "
    "`benchmarks/fleet_deployment.yaml`, a production-sized one applied with kubectl: 16.8 KB with its "
    "managedFields and last-applied annotation), {n:,} scalers in 10 namespaces, each with its own "
    "forecast (a daily shape at 200-1,700 req/s; 50 req/s per replica, 2-60 replicas) stored as the job "
    "writes it. CPU is the process's CPU time (no informer threads run here). The steady figure is the "
    "median over rounds 30 s apart once the fleet has climbed to its forecasts; the few requests in them "
    "come from scalers whose need moved with their forecast's daily shape. The cold first round parses "
    "every spec and artifact, builds every loop and writes every scaler's floor, status and Event. RSS is "
    "VmRSS / VmHWM of that process."
)
API_HOW = (
    "N scalers in 4 namespaces on the suite's etcd + kube-apiserver, one FleetController; every request of "
    "its ApiClient on the ticking thread is counted (`tests/support/apicalls.py`), and each tick runs once "
    "the caches hold the previous tick's writes (as 30 s later in production). Reads are GETs (the caches "
    "should serve them all). A spec edit changes `capacityPerReplica` (50 <-> 30 req/s); a new forecast is "
    "a 1.5x higher artifact in the scaler's ConfigMap. 'Writes until steady' counts the first tick and the "
    "ones after it until a tick writes nothing: the second tick reports the new replica count in the status. "
    "Tick CPU is the ticking thread's CPU time. Not counted here: each scaler's live-load query goes to "
    "Prometheus, one instant query per scaler per tick (not the Kubernetes API)."
)


def render(args: argparse.Namespace, mem: list[tuple[str, dict[str, Any]]], api: list[dict[str, Any]],
           started: dt.datetime, loads: tuple[str, str], seconds: float) -> str:
    head = (
        f"Measured {started:%Y-%m-%d %H:%M} UTC on `{platform.system()} {platform.release()} "
        f"{platform.machine()}`, {os.cpu_count()} CPUs shared with other builds (load average 1/5/15 min: "
        f"{loads[0]} at the start, {loads[1]} at the end), Python {platform.python_version()}, by `python "
        f"benchmarks/fleet_bench.py` ({seconds / 60:.1f} min in total)."
    )
    lines = [
        SECTION, "", head, "",
        "Targets (issue 13): with 1,000 scalers, one decision round <= 1 s of CPU excluding API latency and "
        "controller RSS <= 512 MiB; API calls per tick proportional to the changes made, not to the number "
        "of scalers.", "",
        f"### Decision round and memory: {args.scalers:,} scalers, no network", "",
        MEMORY_HOW.format(n=args.scalers), "",
        *memory_table(mem, args.rounds, args.changes_in_memory), "",
    ]
    for label, r in mem:
        if label != "this branch":
            continue
        cpu_ok = "meets" if r["steady_cpu_median"] <= 1.0 else "misses"
        rss_ok = "meets" if (r["peak_end"] or 0) <= 512 else "misses"
        per = ((r["peak_end"] or 0) - (r["rss_after_imports"] or 0)) * 1024 / r["scalers"]
        lines.append(
            f"- {r['forecast']}: steady round {r['steady_cpu_median']:.3f} s CPU ({cpu_ok} 1 s); peak RSS "
            f"{_mib(r['peak_end'])} MiB ({rss_ok} 512 MiB), {_mib(r['rss_after_imports'])} MiB of it the "
            f"imports, about {per:,.0f} KiB per scaler (its four cached objects, its parsed forecast, its "
            "loop and metrics).")
    base = {r["forecast"]: r for label, r in mem if label != "this branch"}
    for label, r in mem:
        b = base.get(r["forecast"]) if label == "this branch" else None
        if b is not None:
            cpu = f"{b['steady_cpu_median']:.3f} -> {r['steady_cpu_median']:.3f}"
            rss = f"{_mib(b['peak_end'])} -> {_mib(r['peak_end'])}"
            lines.append(f"- Against {args.baseline_label}, {r['forecast']}: steady round {cpu} s CPU, "
                         f"peak RSS {rss} MiB.")
    lines += ["", "### API calls per tick: real API server", "", API_HOW, "", *api_table(api), ""]
    for res in api:
        lines.append(
            f"- {res['n']} scalers: creating their {4 * res['n']} objects took {res['create_seconds']:.1f} s "
            f"(8 threads); over its {res['ticks']} ticks the informers made {res['informer_calls']} requests "
            "on their own threads (a list and a watch per kind and namespace, and re-watches), none per "
            "tick.")
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scalers", type=int, default=1000, help="scalers of the in-memory rounds")
    ap.add_argument("--rounds", type=int, default=7, help="steady rounds timed (median reported)")
    ap.add_argument("--changes-in-memory", type=int, default=100, help="new forecasts in the last round")
    ap.add_argument("--api-scalers", default="50,200", help="fleet sizes on the real API server")
    ap.add_argument("--changes", default="1,10", help="numbers of scalers changed at once")
    ap.add_argument("--baseline-root", type=Path, default=None, help="another checkout, measured in memory")
    ap.add_argument("--baseline-label", default="baseline", help="its name in the table, e.g. 'main 4fa8067'")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = ap.parse_args()
    from tests.support.kube_envtest import start

    started, t0, load0 = dt.datetime.now(dt.UTC), time.perf_counter(), load()
    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        env = start(Path(tmp) / "kube")
        try:
            install_crd(env)
            tpl = Path(tmp) / "templates.json"
            templates(env, tpl)
            mem = []
            for label, root in (("this branch", ROOT), (args.baseline_label, args.baseline_root)):
                for name, (hours, step) in FORECASTS.items() if root is not None else ():
                    print(f"in memory: {label}, {name}", file=sys.stderr, flush=True)
                    k = args.changes_in_memory
                    r = in_memory(args.scalers, args.rounds, k, hours, step, tpl, root)
                    mem.append((label, {**r, "forecast": name}))
            api = []
            for n in (int(x) for x in args.api_scalers.split(",")):
                print(f"real API server: {n} scalers", file=sys.stderr, flush=True)
                api.append(measure_api(env, n, [int(k) for k in args.changes.split(",")]))
        finally:
            env.stop()
    text = render(args, mem, api, started, (load0, load()), time.perf_counter() - t0)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
