"""Batch forecasting speed and memory: 1, 100 and 1,000 series of 56 days hourly through the ``forecast`` CLI,
in-process, with 2 local workers and on a 2-worker Dask LocalCluster, beside a single-series ``forecast`` call
and statsforecast on the same series; writes the "Batch forecasting" section of docs/benchmarks.md.

The fleet is built from the three development traces (hourly means of their native buckets): series ``i``
takes trace ``i mod 3``; nyc_taxi (215 days) gives a 56-day window starting at a random whole day; the
Twitter traces are only 55 days long, so their window is the whole trace with its second week's first day
copied in front (day 1 of 56 is a copy). Each series is scaled by a random factor in [0.5, 5] and multiplied
by 5% lognormal noise (seeded), then re-stamped to end at the same hour, as a fleet refreshed together would.

Every configuration runs as its own process (imports, file read and CSV write included) and is timed by wall
clock; peak memory is the largest sum of the resident sets of that process, its workers and (for Dask) the
cluster's workers, sampled every 50 ms. The single-series call is the same CLI on series 0 alone, timed in the
same run, so the ratio per-series-in-batch / single-call does not depend on the machine's load of the day.
``--baseline-root`` also times the single call of another checkout (e.g. the commit before the numeric core).

Usage: python benchmarks/batch_bench.py [--sizes 1,100,1000] [--repeat 3] [--baseline-root DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchdocs import TRACES, checkout, compile_bytecode, write_section  # noqa: E402

SECTION = "## Batch forecasting"
TRACE_NAMES = ("nyc_taxi", "Twitter_volume_AMZN", "Twitter_volume_IBM")
HOURS = 56 * 24
END = pd.Timestamp("2026-03-02 00:00", tz="UTC")


def build_fleet(n: int, seed: int = 0) -> pd.DataFrame:
    """Long frame unique_id, ds, y of ``n`` series (see the module docstring for how)."""
    from forecaster.series.io import load_history

    traces = {}
    for name in TRACE_NAMES:
        raw = load_history(TRACES / f"{name}.csv", timezone="UTC")
        traces[name] = raw.groupby(raw.index.floor("h")).mean().to_numpy()
    rng = np.random.default_rng(seed)
    ds = pd.date_range(end=END - pd.Timedelta(hours=1), periods=HOURS, freq="h")
    parts = []
    for i in range(n):
        name = TRACE_NAMES[i % 3]
        s = traces[name]
        if len(s) >= HOURS:
            off = int(rng.integers(0, (len(s) - HOURS) // 24 + 1)) * 24
            v = s[off : off + HOURS]
        else:
            v = np.concatenate([s[168 : 168 + HOURS - len(s)], s])
        v = v * rng.uniform(0.5, 5.0) * rng.lognormal(0.0, 0.05, HOURS)
        parts.append(pd.DataFrame({"unique_id": f"{name}-{i:04d}", "ds": ds, "y": v.round(3)}))
    return pd.concat(parts, ignore_index=True)


class PeakRSS:
    """Largest sum of resident set sizes of some process trees, sampled in a thread."""

    def __init__(self, roots: list[int]) -> None:
        import psutil

        self._ps = psutil
        self.roots = roots
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _total(self) -> int:
        total = 0
        for pid in self.roots:
            try:
                root = self._ps.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except self._ps.Error:
                continue
            for p in procs:
                with contextlib.suppress(self._ps.Error):
                    total += p.memory_info().rss
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._total())
            time.sleep(0.05)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


def cpu_of(pids: list[int]) -> float:
    """User + system CPU seconds used so far by these live processes and their live children."""
    import psutil

    total = 0.0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for p in [root, *root.children(recursive=True)]:
                t = p.cpu_times()
                total += t.user + t.system
        except psutil.Error:
            continue
    return total


def run_cli(
    root: Path, args: list[str], extra_roots: tuple[int, ...] | list[int] = ()
) -> tuple[float, float, str, float]:
    """(wall s, peak MB, stderr, CPU s) of ``python -m controller <args>`` run in ``root``; CPU counts the
    command, its reaped workers and the live ``extra_roots`` (Dask workers)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    extra_cpu = cpu_of(list(extra_roots))
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", *args],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    with PeakRSS([proc.pid, *extra_roots]) as mem:
        _, err = proc.communicate()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    cpu += cpu_of(list(extra_roots)) - extra_cpu
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{args}: exit {proc.returncode}: {err.strip()}")
    return wall, mem.peak / 2**20, err, cpu


def statsforecast_run(path: Path, model: str, workers: int) -> dict[str, Any]:
    """statsforecast on the same series, in its own process: JIT warm-up excluded, then timed."""
    code = f"""
import json, time, os, resource
import pandas as pd
from statsforecast import StatsForecast
from statsforecast.models import MSTL, SeasonalNaive
df = pd.read_parquet({str(path)!r})
df["ds"] = df["ds"].dt.tz_localize(None)
snaive = {model!r} == "snaive"
make = lambda: [SeasonalNaive(season_length=168)] if snaive else [MSTL(season_length=[24, 168])]
one = df[df["unique_id"] == df["unique_id"].iloc[0]]
StatsForecast(models=make(), freq="h", n_jobs=1).forecast(df=one, h=24)  # numba compile
sf = StatsForecast(models=make(), freq="h", n_jobs={workers})
t0 = time.perf_counter()
if snaive:
    sf.cross_validation(df=df, h=24, n_windows=14, step_size=24)
else:
    sf.forecast(df=df, h=24)
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    with PeakRSS([proc.pid]) as mem:
        out, err = proc.communicate()
    if proc.returncode:
        return {"error": (err.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.strip().splitlines()[-1]) | {"peak_mb": mem.peak / 2**20}


def took(stderr: str) -> float:
    """The batch's own time from the CLI summary ('took 12.3s'), imports and file I/O excluded."""
    for line in stderr.splitlines():
        if line.startswith("series:") and "took " in line:
            return float(line.rsplit("took ", 1)[1].rstrip("s"))
    return float("nan")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="1,100,1000")
    p.add_argument("--repeat", type=int, default=3, help="runs per configuration below 1,000 series")
    p.add_argument("--baseline-root", type=Path, default=None)
    p.add_argument("--no-write", action="store_true")
    p.add_argument("--no-statsforecast", action="store_true")
    args = p.parse_args()
    if not args.no_statsforecast and importlib.util.find_spec("statsforecast") is None:
        raise SystemExit(
            "batch_bench: statsforecast (the outside reference) is not installed: run `make bench`, or "
            "`.venv/bin/pip install -e '.[bench]'`, or pass --no-statsforecast"
        )
    sizes = [int(s) for s in args.sizes.split(",")]
    compile_bytecode(ROOT, args.baseline_root)
    started = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        fleet = build_fleet(max(sizes))
        files = {}
        for n in sizes:
            ids = fleet["unique_id"].unique()[:n]
            files[n] = Path(tmp) / f"fleet{n}.parquet"
            fleet[fleet["unique_id"].isin(ids)].to_parquet(files[n], index=False)
        single = Path(tmp) / "single.csv"
        first = fleet[fleet["unique_id"] == fleet["unique_id"].iloc[0]]
        first[["ds", "y"]].to_csv(single, index=False)
        out = str(Path(tmp) / "out.csv")
        fc = ["forecast", "--horizon", "24h", "-o", out]
        # The single-series call, ours and (optionally) the baseline's, interleaved: (wall, CPU) per run.
        singles: dict[str, list[tuple[float, float]]] = {"this": [], "baseline": []}
        for _ in range(max(args.repeat, 5)):
            r = run_cli(ROOT, [*fc, "-q", "--history", str(single)])
            singles["this"].append((r[0], r[3]))
            if args.baseline_root:
                b = run_cli(args.baseline_root, [*fc, "-q", "--history", str(single)])
                singles["baseline"].append((b[0], b[3]))
        base = Single(singles["this"])
        print(f"single forecast call: {base.wall:.2f} s wall, {base.cpu:.2f} s CPU", flush=True)
        for n in sizes:
            reps = args.repeat if n < 1000 else 1
            for label, flags in (
                ("in-process", ["--workers", "1"]),
                ("2 worker processes", ["--workers", "2"]),
            ):
                runs = [run_cli(ROOT, [*fc, "--history", str(files[n]), *flags]) for _ in range(reps)]
                rows.append(_row(n, label, runs, base))
                print(rows[-1], flush=True)
            rows.append(_dask_row(n, files[n], fc, reps, base))
            print(rows[-1], flush=True)
            if args.no_statsforecast:
                continue
            for model, label in (("snaive", "SeasonalNaive, 14-window CV"), ("mstl", "MSTL, fit+forecast")):
                if model == "mstl" and n > MSTL_MAX:
                    rows.append({"n": n, "config": f"statsforecast {label}", "error": MSTL_SKIPPED})
                    continue
                for w in (1, 2):
                    r2 = statsforecast_run(files[n], model, w)
                    rows.append({"n": n, "config": f"statsforecast {label}, n_jobs={w}", **r2})
                    print(rows[-1], flush=True)
    text = render(rows, singles, args, time.perf_counter() - started)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)
    return 0


MSTL_MAX = 100
MSTL_SKIPPED = "not run above 100 series (about 0.6 s per series here: 1,000 would take 10 min)"


class Single:
    """Median wall and CPU seconds of the single-series calls."""

    def __init__(self, runs: list[tuple[float, float]]) -> None:
        self.wall = statistics.median(r[0] for r in runs)
        self.cpu = statistics.median(r[1] for r in runs)


def _row(n: int, label: str, runs: list[tuple[float, float, str, float]], single: Single) -> dict[str, Any]:
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[3] for r in runs)
    return {
        "n": n,
        "config": label,
        "seconds": wall,
        "batch_seconds": statistics.median(took(r[2]) for r in runs),
        "cpu": cpu,
        "peak_mb": max(r[1] for r in runs),
        "ratio": (wall / n) / single.wall,
        "cpu_ratio": (cpu / n) / single.cpu,
        "failed": sum(1 for line in runs[-1][2].splitlines() if line.startswith("error: ")),
    }


def _dask_row(n: int, path: Path, fc: list[str], reps: int, single: Single) -> dict[str, Any]:
    import psutil
    from distributed import LocalCluster

    os.environ["PYTHONPATH"] = str(ROOT)  # the cluster's worker processes import this checkout
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        workers = [c.pid for c in psutil.Process().children()]
        address = ["--dask-scheduler", cluster.scheduler_address]
        runs = [run_cli(ROOT, [*fc, "--history", str(path), *address], workers) for _ in range(reps)]
    return _row(n, "Dask LocalCluster, 2 workers", runs, single)


def render(
    rows: list[dict[str, Any]],
    singles: dict[str, list[tuple[float, float]]],
    args: argparse.Namespace,
    elapsed: float,
) -> str:
    uname = platform.uname()
    one = Single(singles["this"])
    walls = ", ".join(f"{w:.2f}" for w, _ in singles["this"])
    lines = [
        SECTION,
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on `{uname.system} {uname.release} "
        f"{uname.machine}`, {os.cpu_count()} CPUs shared with other builds (load average "
        f"{os.getloadavg()[0]:.1f} at the end), Python {platform.python_version()}, by "
        f"`python benchmarks/batch_bench.py{' --baseline-root ...' if args.baseline_root else ''}`; "
        f"whole run {elapsed / 60:.1f} min."
        + (f" Baseline: {checkout(args.baseline_root)}." if args.baseline_root else ""),
        "",
        "Workload: `recharge-autoscaler forecast --horizon 24h` (model auto: 6 candidates x 14 daily folds, "
        "blend choice, conformal band, month-start calendar) on series of 56 days hourly (1,344 points) "
        "built from the three development traces: series i is a window of trace i mod 3 (nyc_taxi: a "
        "random whole-day offset; the 55-day Twitter traces: the whole trace with one copied day in front), "
        "scaled by a random factor in [0.5, 5] with 5% lognormal noise, all ending at the same hour. 's' is "
        "wall clock of the whole command (start-up with the bytecode compiled, as an installed package has "
        "it; Parquet read, CSV write included); 'batch s' the batch alone as the command reports it; 'CPU "
        "s' user+system time of the command, its workers and the Dask workers (what the wall time would be "
        "on an idle core). Peak MB is the largest summed resident set "
        f"of those processes. Medians of {args.repeat} runs below 1,000 series, one run at 1,000.",
        "",
        f"Single-series call (the same command on series 0 alone, a one-series CSV), {len(singles['this'])} "
        f"runs: median {one.wall:.2f} s wall ({walls}), {one.cpu:.2f} s CPU.",
    ]
    if singles["baseline"]:
        old = Single(singles["baseline"])
        lines[-1] += (
            f" The baseline checkout, interleaved with it: median {old.wall:.2f} s wall "
            f"({', '.join(f'{w:.2f}' for w, _ in singles['baseline'])}), {old.cpu:.2f} s CPU."
        )
    lines += [
        "",
        "| series | configuration | s | batch s | CPU s | per series wall / single call | "
        "per series CPU / single call | peak MB | failed |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['n']:,} | {r['config']} | {r['error']} | | | | | | |")
        elif "ratio" in r:
            lines.append(
                f"| {r['n']:,} | {r['config']} | {r['seconds']:.1f} | {r['batch_seconds']:.1f} | "
                f"{r['cpu']:.1f} | 1/{1 / r['ratio']:.1f} | 1/{1 / r['cpu_ratio']:.1f} | "
                f"{r['peak_mb']:.0f} | {r['failed']} |"
            )
        else:
            lines.append(
                f"| {r['n']:,} | {r['config']} | | {r['seconds']:.2f} (fit/CV only) | | | | "
                f"{r['peak_mb']:.0f} | |"
            )
    lines += ["", *reading(rows, singles)]
    return "\n".join(lines)


def reading(rows: list[dict[str, Any]], singles: dict[str, list[tuple[float, float]]]) -> list[str]:
    """The targets of issue 12 read off the table (largest fleet measured)."""
    ours = [r for r in rows if "ratio" in r]
    if not ours:
        return []
    n = max(r["n"] for r in ours)
    at = {r["config"]: r for r in ours if r["n"] == n}
    one = Single(singles["this"])
    out = [f"Reading the table against the targets ({n:,} series):", ""]
    inproc, pool = at.get("in-process"), at.get("2 worker processes")
    if inproc and pool:
        per = (inproc["cpu"] - one.cpu) / n * 1000
        out.append(
            f"- Wall: {pool['seconds']:.0f} s with 2 workers, {inproc['seconds']:.0f} s in-process (target "
            f"<= 60 s) on this machine (the single call's own wall time ranged "
            f"{min(w for w, _ in singles['this']):.2f}-{max(w for w, _ in singles['this']):.2f} s). The CPU "
            f"time is the load-independent measure: {inproc['cpu']:.0f} s in-process, about {per:.0f} ms per "
            f"series after start-up, so two idle cores would need about {inproc['cpu'] / 2:.0f} s (an "
            "estimate from CPU time, not a measurement)."
        )
        out.append(
            f"- Per series in the batch vs one `forecast` call: 1/{1 / pool['ratio']:.0f} by wall time, 2 "
            f"workers, 1/{1 / inproc['cpu_ratio']:.0f} by CPU time (target 1/30). The single call costs "
            f"{one.cpu:.2f} s CPU, mostly imports; what a series costs in the batch is cleaning, the event "
            "effects, the backtest and the selection."
        )
    if singles["baseline"]:
        old = Single(singles["baseline"])
        out.append(
            f"- Single call vs the baseline checkout: {one.wall:.2f} s vs {old.wall:.2f} s wall (medians, "
            f"interleaved), {one.cpu:.2f} s vs {old.cpu:.2f} s CPU (target <= 1.5 s wall)."
        )
    sf = [
        r
        for r in rows
        if r["n"] == n and r["config"].startswith("statsforecast SeasonalNaive") and "seconds" in r
    ]
    if sf and inproc:
        best = min(sf, key=lambda r: r["seconds"])
        out.append(
            f"- Outside reference: statsforecast's seasonal naive, 14-window cross-validation, {n:,} series: "
            f"{best['seconds']:.1f} s ({best['config'].rsplit(', ', 1)[1]}); ours runs 6 candidates x 14 "
            f"folds plus cleaning, selection, calibration and event effects in {inproc['cpu']:.0f} s CPU."
        )
    out.append(
        "- Memory: the summed resident sets count pages that forked workers share with the command once per "
        "process, so the pool and Dask figures are upper bounds; a task carries at most 50 series."
    )
    return out


if __name__ == "__main__":
    sys.exit(main())
