"""Benchmark of scaling policies on the development traces: predictive (the product) vs HPA vs cron vs oracle.

For each trace in ../shared/data/traces/*.csv (bucket counts, converted to per-second rates: value / bucket
seconds), capacity per replica is set so the peak of the evaluated window needs 20 replicas. The last
``--days`` days (>= 14) are replayed; the predictive policy refits its forecast at every midnight (rolling
daily origins) from data strictly before it and runs the real ``decide()``; the cron schedule is the peak
need per hour of the four weeks before the window; the reactive policy is the Kubernetes HPA algorithm at
70% target utilisation. All policies are measured in the same run against the oracle.

Writes the table to the "## Scaling policies" section of docs/benchmarks.md (other sections are kept) and
prints it. Usage: ``.venv/bin/python benchmarks/policy_bench.py [--days 14] [--model auto]``.
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

from controller.config import ControllerConfig, WarmupConfig  # noqa: E402
from controller.planning.policies import CronPolicy, OraclePolicy, ReactivePolicy, cron_from_history  # noqa: E402
from controller.planning.predictive import PredictivePolicy  # noqa: E402
from controller.planning.refits import pipeline_forecaster  # noqa: E402
from controller.planning.simulate import Policy, SimParams, compare, make_trace, simulate  # noqa: E402

SECTION = "## Scaling policies"


def load_rate(path: Path) -> pd.Series:
    df = pd.read_csv(path)
    idx = pd.DatetimeIndex(pd.to_datetime(df["timestamp"])).tz_localize("UTC")
    s = pd.Series(df["value"].to_numpy(dtype=float), index=idx).sort_index()
    s = s[~s.index.duplicated(keep="last")]
    bucket = pd.Timedelta(int(np.median(np.diff(s.index.as_unit("ns").asi8))), unit="ns")
    return s / bucket.total_seconds()


def bench_trace(
    path: Path, days: int, model: str, headroom: float, extra: list[float], level_row: bool = True
) -> tuple[pd.DataFrame, dict[str, float]]:
    rate = load_rate(path)
    end = rate.index[-1]
    start = (end - pd.Timedelta(days=days)).ceil("D")
    window = rate[rate.index >= start]
    history = rate[rate.index < start]
    cap = float(window.max()) / 20.0
    params = SimParams(
        capacity_per_replica=cap,
        min_replicas=1,
        max_replicas=40,
        startup=pd.Timedelta(seconds=90),
        warmup_time=pd.Timedelta(seconds=30),
        price_per_replica_hour=1.0,
    )
    cfg = ControllerConfig(
        capacity_per_replica=cap,
        min_replicas=1,
        max_replicas=40,
        headroom=headroom,
        warmup=WarmupConfig(enabled=True, url="http://warmup.invalid/warm"),
    )
    trace = make_trace(window, where=path.name)
    timings: dict[str, float] = {}
    fits = {"n": 0, "seconds": 0.0}
    fc = pipeline_forecaster(model, "UTC")

    cache: dict[tuple[pd.Timestamp, pd.Timedelta], Any] = {}

    def timed_fc(hist: pd.Series, origin: pd.Timestamp, horizon: pd.Timedelta) -> Any:
        # The predictive variants share one forecast per origin (same data, same model).
        if (origin, horizon) in cache:
            return cache[(origin, horizon)]
        t0 = time.perf_counter()
        try:
            cache[(origin, horizon)] = fc(hist, origin, horizon)
            return cache[(origin, horizon)]
        finally:
            fits["n"] += 1
            fits["seconds"] += time.perf_counter() - t0

    cron = CronPolicy(
        hourly=cron_from_history(history[history.index >= start - pd.Timedelta(days=28)], params, "UTC")
    )
    policies: list[Policy] = [
        PredictivePolicy(config=cfg, history=rate, forecaster=timed_fc, refit=pd.Timedelta(days=1)),
        *(
            PredictivePolicy(
                config=cfg.evolve(headroom=h),
                history=rate,
                forecaster=timed_fc,
                refit=pd.Timedelta(days=1),
                name=f"predictive (headroom {h:g})",
            )
            for h in extra
        ),
        *(
            [
                PredictivePolicy(
                    config=cfg.evolve(level_correction=cfg.level_correction.evolve(enabled=False)),
                    history=rate,
                    forecaster=timed_fc,
                    refit=pd.Timedelta(days=1),
                    name="predictive (no level correction)",
                )
            ]
            if level_row
            else []
        ),
        ReactivePolicy(),
        cron,
        OraclePolicy(),
    ]
    results = []
    for p in policies:
        t0, fit0 = time.perf_counter(), fits["seconds"]
        results.append(simulate(trace, p, params))
        timings[p.name] = time.perf_counter() - t0 - (fits["seconds"] - fit0)  # excluding forecast fits
    timings["forecast_fits"] = fits["seconds"]
    timings["fits"] = fits["n"]
    table = compare(results)
    table.attrs["window"] = (trace.start, trace.end)
    table.attrs["notes"] = [n for r in results for n in r.notes]
    by = {r.policy: pd.Series(r.requested, index=trace.times).resample("D").sum() for r in results}
    daily = (by["predictive"] / by["oracle"]).dropna()
    table.attrs["daily"] = daily
    return table, timings


def render(rows: list[dict[str, Any]], args: argparse.Namespace, total: float) -> str:
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}"
    lines = [
        SECTION,
        "",
        f"Measured {when} on {machine} by `benchmarks/policy_bench.py --days {args.days} --model "
        f"{args.model}` "
        f"({total:.0f} s in total).",
        "",
        "Each trace's bucket counts are replayed as per-second rates (value / bucket seconds) over its last "
        f"{args.days} days; capacity per replica is set so the window's peak needs 20 replicas; "
        f"start-up 90 s + "
        "warm-up 30 s; min 1, max 40 replicas. *predictive* is the product: the real `decide()` every 30 s "
        f"(headroom {args.headroom:g}) on forecasts from the `{args.model}` model refitted at each "
        f"midnight from "
        "data strictly before it (rolling daily origins). *reactive* is the Kubernetes HPA "
        "algorithm (target 70%, "
        "sync 15 s, tolerance 0.1, 300 s scale-down stabilisation, default behaviour policies). "
        "*cron* is the peak "
        "need per hour of day over the 4 weeks before the window. *oracle* knows the future (the "
        "physical limit). *predictive (headroom h)* rows are the same product with another `headroom` "
        "setting (sensitivity; the product default is 0.1); *predictive (no level correction)* is the "
        "product with `levelCorrection.enabled: false` (the forecast is never rescaled from the live load). "
        "Headroom is a margin on the forecast mean: the forecast need is the larger of the peak upper band "
        "and the mean x (1 + headroom).",
        "",
        "An interval is *short* when demand exceeds ready capacity at any moment inside it "
        "(intervals are the "
        "trace's buckets). Replica-hours are relative to the oracle's.",
        "",
        "| trace | window | policy | intervals short | time short | requests short | worst shortfall | "
        "replica-hours vs oracle | warm-ups all / ramp (before ramp) | sim seconds (excl. fits) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['trace']} | {r['window']} | {r['policy']} | {r['short_interval_share']:.2%} | "
            f"{r['short_time_share']:.2%} | {r['short_request_share']:.3%} | "
            f"{r['worst_shortfall_pct']:.0%} | "
            f"{r['vs_oracle']:.2f}x | {r['warmups']} | {r['seconds']:.1f} |"
        )
    lines += [
        "",
        "Targets on the regular trace (nyc_taxi): predictive at most 0.5% of intervals short at no more "
        "than 1.3x oracle replica-hours, and better than reactive on both.",
        "",
    ]
    for r in rows:
        if r["policy"] == "predictive":
            ok_short = r["short_interval_share"] <= 0.005
            ok_cost = r["vs_oracle"] <= 1.3
            rr = next(x for x in rows if x["trace"] == r["trace"] and x["policy"] == "reactive")
            both = r["short_interval_share"] < rr["short_interval_share"] and r["vs_oracle"] < rr["vs_oracle"]
            lines.append(
                f"- {r['trace']}: {'better' if both else 'not better'} than reactive on both "
                f"({r['short_interval_share']:.2%} vs {rr['short_interval_share']:.2%} short, "
                f"{r['vs_oracle']:.3f}x vs {rr['vs_oracle']:.3f}x); "
                f"predictive {r['short_interval_share']:.2%} short "
                f"({'meets' if ok_short else 'misses'} 0.5%), {r['vs_oracle']:.2f}x oracle "
                f"({'meets' if ok_cost else 'misses'} 1.3x); forecast fits "
                f"{r['fits']} in {r['fit_seconds']:.1f} s. "
                f"Predictive replica-hours per day vs oracle: median "
                f"{r['daily_median']:.2f}x, highest {r['worst_days']}."
            )
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=14, help="days replayed at the end of each trace (>= 14)")
    ap.add_argument(
        "--model", default="auto", help="forecast model of the predictive policy (default: auto)"
    )
    ap.add_argument(
        "--headroom", type=float, default=0.1, help="controller headroom (default: product default)"
    )
    ap.add_argument(
        "--extra-headroom",
        type=float,
        nargs="*",
        default=[0.0],
        help="also run the predictive policy with these headroom values (sensitivity rows; default: 0)",
    )
    ap.add_argument(
        "--no-level-row", action="store_true",
        help="skip the sensitivity row with the level correction switched off",
    )
    ap.add_argument("--traces", nargs="*", default=None, help="trace files (default: all development traces)")
    ap.add_argument("--no-write", action="store_true", help="print only; do not update docs/benchmarks.md")
    args = ap.parse_args()
    if args.days < 14:
        ap.error("--days must be at least 14")
    paths = [Path(p) for p in args.traces] if args.traces else sorted(TRACES.glob("*.csv"))
    rows: list[dict[str, Any]] = []
    t_all = time.perf_counter()
    for path in paths:
        table, timings = bench_trace(
            path, args.days, args.model, args.headroom, args.extra_headroom, not args.no_level_row
        )
        a, b = table.attrs["window"]
        daily = table.attrs["daily"]
        worst = daily.sort_values(ascending=False).head(2)
        worst_text = ", ".join(f"{d:%m-%d} {v:.2f}x" for d, v in worst.items())
        for pol, m in table.iterrows():
            rows.append(
                {
                    "trace": path.stem,
                    "window": f"{a:%Y-%m-%d}..{b:%Y-%m-%d}",
                    "policy": pol,
                    "short_interval_share": m["short_interval_share"],
                    "short_time_share": m["short_time_share"],
                    "short_request_share": m["short_request_share"],
                    "worst_shortfall_pct": m["worst_shortfall_pct"],
                    "vs_oracle": m["vs_oracle_replica_hours"],
                    "warmups": f"{int(m['warmups_issued'])} / {int(m['ramp_warmups'])} "
                    f"({int(m['warmups_before_ramp'])})",
                    "seconds": timings[str(pol)],
                    "fits": timings["fits"],
                    "fit_seconds": timings["forecast_fits"],
                    "daily_median": float(daily.median()),
                    "worst_days": worst_text,
                }
            )
        print(f"{path.name}: done ({'; '.join(sorted(set(table.attrs['notes'])))})", file=sys.stderr)
    text = render(rows, args, time.perf_counter() - t_all)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
