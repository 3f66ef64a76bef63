"""Availability targets on the development traces: the share of intervals covered and what it costs.

``controller.availabilityTarget`` promises a share of intervals whose capacity covers the demand. This
benchmark replays, in one run, each development trace's last ``--days`` days through the product (the
real ``decide()`` every 30 s on forecasts refitted at each midnight from data strictly before it, as
``benchmarks/policy_bench.py`` does, same cluster: capacity so the window's peak needs 20 replicas,
start-up 90 s + warm-up 30 s, min 1, max 40) sized four ways: the fixed-headroom default (band and
``headroom`` 0.1) and the targets 99%, 99.5% and 99.9%. All four share the same forecasts. It reports the
share of trace intervals covered (no shortfall at any moment inside), the backtest's own estimate at the
target (the artifact's cross-validated share, averaged over the refits), replica-hours against the
fixed headroom and the oracle, and whether each target was met within ``--tolerance``.

Writes the "## Availability targets" section of docs/benchmarks.md. Usage:
``.venv/bin/python benchmarks/availability_bench.py [--days 14] [--model auto] [--no-write]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchdocs import TRACES, write_section  # noqa: E402
from policy_bench import load_rate  # noqa: E402

from controller.config import ControllerConfig, WarmupConfig  # noqa: E402
from controller.planning.policies import OraclePolicy  # noqa: E402
from controller.planning.predictive import PredictivePolicy  # noqa: E402
from controller.planning.refits import pipeline_forecaster, shared  # noqa: E402
from controller.planning.simulate import SimParams, make_trace, simulate  # noqa: E402

SECTION = "## Availability targets"
TARGETS = (0.99, 0.995, 0.999)
TOLERANCE = 0.005  # the stated tolerance: a target counts as met at no more than 0.5 points below it


def bench_trace(path: Path, days: int, model: str) -> list[dict[str, Any]]:
    rate = load_rate(path)
    start = (rate.index[-1] - pd.Timedelta(days=days)).ceil("D")
    window = rate[rate.index >= start]
    cap = float(window.max()) / 20.0
    params = SimParams(capacity_per_replica=cap, min_replicas=1, max_replicas=40,
                       startup=pd.Timedelta(seconds=90), warmup_time=pd.Timedelta(seconds=30))
    cfg = ControllerConfig(capacity_per_replica=cap, min_replicas=1, max_replicas=40,
                           warmup=WarmupConfig(enabled=True, url="http://warmup.invalid/warm"))
    trace = make_trace(window, where=path.name)
    fit = pipeline_forecaster(model, "UTC")
    artifacts: list[Any] = []

    def recorded(history: pd.Series, origin: pd.Timestamp, horizon: pd.Timedelta) -> Any:
        art = fit(history, origin, horizon)
        artifacts.append(art)
        return art

    fc = shared(recorded)
    t0 = time.perf_counter()
    oracle = simulate(trace, OraclePolicy(), params).metrics.replica_hours
    rows: list[dict[str, Any]] = []
    for target in (None, *TARGETS):
        policy = PredictivePolicy(config=cfg.evolve(availability_target=target), history=rate,
                                  forecaster=fc, refit=pd.Timedelta(days=1))
        r = simulate(trace, policy, params)
        tables = [a.error_quantiles for a in artifacts if a is not None and a.error_quantiles is not None]
        rows.append({
            "trace": path.stem,
            "window": f"{trace.start:%Y-%m-%d}..{trace.end:%Y-%m-%d}",
            "sizing": "fixed headroom 0.1" if target is None else f"target {target:.1%}",
            "target": target,
            "achieved": r.availability,
            "backtest": float(np.mean([t.achieved(target) for t in tables])) if target and tables else None,
            "requests_short": r.metrics.short_request_share,
            "replica_hours": r.metrics.replica_hours,
            "vs_oracle": r.metrics.replica_hours / oracle if oracle else float("nan"),
            "refits": len(artifacts),
        })
    base = rows[0]["replica_hours"]
    for row in rows:
        row["vs_fixed"] = row["replica_hours"] / base if base else float("nan")
        row["met"] = None if row["target"] is None else row["achieved"] >= row["target"] - TOLERANCE
    print(f"{path.name}: {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    return rows


def render(rows: list[dict[str, Any]], args: argparse.Namespace, total: float) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    lines = [
        SECTION,
        "",
        f"Measured {when} on {machine} by `benchmarks/availability_bench.py --days {args.days} --model "
        f"{args.model}` ({total:.0f} s in total, all traces and targets in one run).",
        "",
        f"Each trace's last {args.days} days are replayed through the product (the real `decide()` every "
        f"30 s, forecasts from the `{args.model}` model refitted at each midnight from data strictly before "
        "it; "
        "capacity so the window's peak needs 20 replicas, start-up 90 s + warm-up 30 s, min 1, max 40), "
        "sized by the fixed-headroom default (peak upper band or mean + 10%) and by "
        "`controller.availabilityTarget` 99%, 99.5% and 99.9% on the same forecasts. *achieved* is the "
        "share of trace intervals (the trace's buckets) whose ready capacity covered the demand at every "
        "moment; *backtest* is what the forecast's own error table promised at the target (each backtest "
        "fold judged by a table built from the others, averaged over the refits). A target counts as met "
        f"when achieved >= target - {TOLERANCE:.1%} (the stated tolerance).",
        "",
        "| trace | window | sizing | achieved | backtest | met | requests short | replica-hours | "
        "vs fixed headroom | vs oracle |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        backtest = "-" if r["backtest"] is None else f"{r['backtest']:.2%}"
        met = "-" if r["met"] is None else ("yes" if r["met"] else "**no**")
        lines.append(
            f"| {r['trace']} | {r['window']} | {r['sizing']} | {r['achieved']:.2%} | {backtest} | {met} | "
            f"{r['requests_short']:.3%} | {r['replica_hours']:,.0f} | {r['vs_fixed']:.2f}x | "
            f"{r['vs_oracle']:.2f}x |"
        )
    missed = [r for r in rows if r["met"] is False]
    lines.append("")
    for trace in dict.fromkeys(r["trace"] for r in rows):
        mine = [r for r in rows if r["trace"] == trace]
        fixed = mine[0]
        costs = ", ".join(f"{r['target']:.1%} covers {r['achieved']:.2%} at {r['vs_fixed']:.2f}x"
                          for r in mine[1:])
        lines.append(f"- {trace}: the fixed headroom covers {fixed['achieved']:.2%} of intervals; "
                     f"{costs} its replica-hours.")
    lines += [
        "",
        f"{sum(1 for r in rows if r['met'])} of {sum(1 for r in rows if r['met'] is not None)} "
        "(trace, target) pairs met within the tolerance"
        + (": missed " + ", ".join(f"{r['trace']} {r['sizing']} ({r['achieved']:.2%})" for r in missed)
           if missed else "."),
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=14, help="days replayed at the end of each trace")
    ap.add_argument("--model", default="auto", help="forecast model (default: auto, the product's)")
    ap.add_argument("--traces", nargs="*", default=None, help="trace files (default: all development traces)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = ap.parse_args()
    paths = [Path(p) for p in args.traces] if args.traces else sorted(TRACES.glob("*.csv"))
    t0 = time.perf_counter()
    rows = [row for path in paths for row in bench_trace(path, args.days, args.model)]
    text = render(rows, args, time.perf_counter() - t0)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
