"""A year replayed: ``simulate --policy all`` over one year of hourly traffic, end to end, and its memory.

The trace: nyc_taxi's hourly totals as a per-second rate (2014-07-01 .. 2015-01-31, 215 days) followed by the
same series shifted 31 weeks later (so weekdays stay aligned), cut at 372 days: 7 days of history and 365
days replayed (a 15 s grid: 2,102,400 steps; a decision every 30 s: 1,051,200 ``decide()`` calls; 365 daily
refits). Each configuration runs the real CLI in a fresh process (imports included), ``--runs`` times,
interleaved round robin so a shared machine's load shifts hit every row alike; the table gives the median
wall time, the CPU time of the process and its workers, and the peak RSS of the main process.

Baseline, measured in the same run: everything in one process (``--workers 0``). A pure-Python loop timed
before each round says how fast the machine was at that moment (a VM's speed drifts). Memory against trace
length: the same replay over 1, 3, 6 and 12 months (``--workers 0``, one run each).

Writes the "## Simulator: a year" section of docs/benchmarks.md.

``--baseline-root DIR`` also runs another checkout (the simulator before refits ran ahead and counts were
kept as runs) with the same command, interleaved, and its memory at each length.

Usage: python benchmarks/sim_year_bench.py [--runs 3] [--baseline-root DIR] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchdocs import TRACES, checkout, compile_bytecode, write_section  # noqa: E402

SECTION = "## Simulator: a year"
BASELINE = "all in one process (`--workers 0`, baseline)"
BEFORE = "before: the same command on `--baseline-root` (one process)"
CLI = [str(Path(sys.executable).with_name("recharge-autoscaler"))]
COMMON = ["--policy", "all", "--capacity-per-replica", "0.5", "--max-replicas", "60", "-q"]
CONFIGS = {
    BASELINE: ["--workers", "0"],
    "default (refits ahead and baselines on 2 worker processes)": [],
    "default with `--step 1m`": ["--step", "1m"],
}


def year_trace(path: Path, days: int = 372) -> None:
    df = pd.read_csv(TRACES / "nyc_taxi.csv", parse_dates=["timestamp"])
    hourly = df.set_index("timestamp")["value"].resample("1h").sum() / 3600.0
    later = hourly.copy()
    later.index = later.index + pd.Timedelta(weeks=31)
    full = pd.concat([hourly, later[later.index > hourly.index[-1]]])
    full = full[full.index < full.index[0] + pd.Timedelta(days=days)]
    full.rename("value").rename_axis("timestamp").to_csv(path)


def run(trace: Path, extra: list[str], root: Path | None = None) -> tuple[float, float, float]:
    """(wall s, CPU s of the process and its workers, peak RSS MiB of the process) of one CLI run; ``root``
    runs another checkout's code instead (its packages first on the path)."""
    env = {**os.environ, "PYTHONPATH": str(root)} if root is not None else None
    t0 = time.perf_counter()
    proc = subprocess.Popen([*CLI, "simulate", "--trace", str(trace), *COMMON, *extra], cwd=root or ROOT,
                            stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"simulate {' '.join(extra)} failed")
    # ru_*time of wait4 covers the process itself; its workers are its children, waited by it, so counted
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024


def python_loop() -> float:
    t = time.perf_counter()
    s = 0
    for i in range(10_000_000):
        s += i
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3, help="timed runs per configuration (median reported)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    ap.add_argument("--baseline-root", type=Path, default=None,
                    help="another checkout timed with the same command, interleaved")
    args = ap.parse_args()
    compile_bytecode(ROOT, args.baseline_root)
    configs = dict(CONFIGS)
    if args.baseline_root is not None:
        configs = {BEFORE: [], **configs}
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "year.csv"
        year_trace(trace)
        results: dict[str, list[tuple[float, float, float]]] = {name: [] for name in configs}
        loops = []
        for _ in range(args.runs):
            loops.append(python_loop())
            for name, extra in configs.items():
                results[name].append(run(trace, extra, args.baseline_root if name == BEFORE else None))
                print(f"{name}: {results[name][-1][0]:.1f} s", flush=True)
        sizes = []
        for days, label in ((37, "1 month"), (97, "3 months"), (190, "6 months"), (372, "12 months")):
            part = Path(tmp) / f"part{days}.csv"
            year_trace(part, days)
            wall, _, rss = run(part, ["--workers", "0"])
            before = run(part, [], args.baseline_root)[2] if args.baseline_root is not None else None
            sizes.append((label, days - 7, wall, rss, before))
            print(f"{label}: {rss:.0f} MiB", flush=True)
    base = statistics.median(r[0] for r in results[BASELINE])
    rows = []
    for name, rs in results.items():
        wall = statistics.median(r[0] for r in rs)
        rows.append(f"| {name} | {wall:.1f} | {min(r[0] for r in rs):.1f}-{max(r[0] for r in rs):.1f} | "
                    f"{statistics.median(r[1] for r in rs):.1f} | {max(r[2] for r in rs):.0f} | "
                    f"{wall / base:.2f} |")
    years = (sizes[-1][1] - sizes[0][1]) / 365
    slope = (sizes[-1][3] - sizes[0][3]) / years
    first_before, last_before = sizes[0][4], sizes[-1][4]
    before_slope = None
    if first_before is not None and last_before is not None:
        before_slope = (last_before - first_before) / years
    lines = [
        SECTION,
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on {platform.machine()}, "
        f"{os.cpu_count()} CPUs (shared VM), Python {platform.python_version()}, "
        f"by `benchmarks/sim_year_bench.py --runs {args.runs}`."
        + (f" Before: {checkout(args.baseline_root)}." if args.baseline_root is not None else ""),
        "",
        "`simulate --policy all` (predictive with daily refits of `seasonal_median`, reactive HPA, cron, "
        "oracle) over 365 days of hourly traffic after 7 days of history: nyc_taxi's hourly rate followed by "
        "itself 31 weeks later. 2,102,400 grid steps of 15 s; 1,051,200 real `decide()` calls (30 s loop); "
        "365 refits. Fresh CLI process per run (imports included), runs interleaved round robin.",
        "",
        f"Machine speed: a 10M-iteration pure-Python loop took {statistics.median(loops):.2f} s (median; "
        f"{min(loops):.2f}-{max(loops):.2f} s across rounds).",
        "",
        "| configuration | median wall s | range s | CPU s (process + workers) | peak RSS MiB (main) | "
        "wall vs baseline |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Peak RSS of the main process against the length replayed (`--workers 0`, one run each):",
        "",
        "| replayed | days | wall s | peak RSS MiB | peak RSS MiB, before |",
        "|---|---|---|---|---|",
        *[f"| {label} | {days} | {wall:.1f} | {rss:.0f} | {'' if old is None else f'{old:.0f}'} |"
          for label, days, wall, rss, old in sizes],
        "",
        f"Growth: {slope:.0f} MiB per replayed year (1 to 12 months)"
        + (f"; before: {before_slope:.0f} MiB per year." if before_slope is not None else "."),
        "",
    ]
    text = "\n".join(lines)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
