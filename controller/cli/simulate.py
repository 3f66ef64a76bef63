"""The ``simulate`` subcommand: replay a traffic trace through the scaling policies and compare them.

Wires files and flags to the pure simulator (:mod:`controller.planning.simulate`,
:mod:`controller.planning.policies`,
:mod:`controller.planning.predictive`) and prints a side-by-side table (or JSON). The part of the trace before
``--start`` is history only: it feeds the first forecasts and the default cron schedule; metrics cover the
rest. Declared scaling windows (``--config``) apply to the predictive policy (through ``decide()``) and to
the cron policy (on top of its schedule); the windows' openings and the intervals each set are listed.
With an availability target, the predictive policy also runs with the fixed headroom for comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from typing import Any

import pandas as pd

from controller.cli.args import (
    add_controller_arguments,
    add_history_arguments,
    controller_config,
    cost_label,
    history_spec,
    price_from_args,
)
from controller.cli.progress import Progress
from controller.core.schedule import listing
from controller.planning.declared import fixed_name, replay_line
from controller.planning.policies import (
    POLICY_NAMES,
    CronPolicy,
    HpaSettings,
    OraclePolicy,
    ReactivePolicy,
    cron_from_history,
)
from controller.planning.replay import replay_all
from controller.planning.simulate import (
    Policy,
    SimParams,
    SimResult,
    Trace,
    compare,
    make_trace,
    sim_params,
)
from controller.planning.warmups import WHY_NONE, WHY_OFF
from forecaster.durations import format_duration, parse_duration
from forecaster.engine import ProcessPoolEngine
from forecaster.errors import UserError
from forecaster.series.load import load_rate


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "simulate",
        help="replay a traffic trace through predictive, reactive (HPA), cron and oracle scaling",
        description="Replay a request-rate trace through scaling policies and compare shortfalls and cost.",
    )
    add_history_arguments(p, flag="--trace", help="CSV/Parquet of request rate per second (or --counts)")
    p.add_argument("--policy", default="all", help=f"one of {', '.join(POLICY_NAMES)} or all (default: all)")
    add_controller_arguments(p, price=True)
    p.add_argument(
        "--start",
        default=None,
        metavar="DURATION",
        help="history used before the simulated window, e.g. 7d (default: 7d, or half a short trace)",
    )
    p.add_argument(
        "--target-utilization",
        type=float,
        default=0.7,
        help="reactive (HPA) target utilisation of capacity, 0-1 (default: 0.7)",
    )
    p.add_argument(
        "--cron",
        default=None,
        metavar="N,N,...",
        help="cron policy: 24 comma-separated replica counts by local hour, or one fixed count "
        "(default: the peak need per hour over the history window)",
    )
    p.add_argument(
        "--refit",
        default="24h",
        metavar="DURATION",
        help="predictive: refit the forecast this often from data before the refit time (default 24h)",
    )
    p.add_argument(
        "--model",
        default="seasonal_median",
        help="predictive: forecasting model alias (default: seasonal_median, fast)",
    )
    p.add_argument("--no-warmup", action="store_true",
                   help="predictive: do not plan cache warm-ups (as `plan`; default: planned)")
    p.add_argument(
        "--step",
        default=None,
        metavar="DURATION",
        help="simulation tick, e.g. 1m or 5m; must divide the trace interval. Coarser ticks run faster; "
        "start-up + warm-up is rounded up to whole ticks (default: the largest divisor of the interval "
        "up to 15s)",
    )
    p.add_argument(
        "--workers",
        metavar="N",
        type=int,
        default=None,
        help="worker processes beside this one: they fit the predictive policy's coming forecast refits and "
        "replay the other policies while this one replays the predictive policy (default: the cores this "
        "process may use; 0 = all in this process)",
    )
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print progress on stderr")
    p.set_defaults(func=run)


def parse_policies(text: str) -> list[str]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if names == ["all"]:
        return list(POLICY_NAMES)
    bad = [n for n in names if n not in POLICY_NAMES]
    if bad or not names:
        raise UserError(
            f"--policy: unknown policy {', '.join(bad) or repr(text)}; use {', '.join(POLICY_NAMES)} or all"
        )
    return names


def parse_cron(text: str) -> CronPolicy:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"--cron: {text!r} must be 24 comma-separated integers or one integer") from None
    if len(values) == 1:
        return CronPolicy(fixed=values[0])
    if len(values) != 24:
        raise UserError(f"--cron: needs 24 hourly replica counts (local hours 0..23), got {len(values)}")
    return CronPolicy(hourly=values)


def split_start(rate: pd.Series, start: str | None) -> pd.Timestamp:
    span = rate.index[-1] - rate.index[0]
    if start is None:
        warm = min(pd.Timedelta(days=7), span / 2)
    else:
        warm = parse_duration(start, what="--start", allow_zero=True)
        if warm >= span:
            raise UserError(
                f"--start: {start} leaves nothing to simulate in a trace of {format_duration(span)}"
            )
    first = rate.index[0] + warm
    return pd.Timestamp(rate.index[rate.index >= first][0])


def build_policies(
    names: list[str],
    args: argparse.Namespace,
    cfg: Any,
    params: SimParams,
    history: pd.Series,
    full: pd.Series,
    engine: ProcessPoolEngine | None = None,
) -> list[Policy]:
    """The policies ``names`` asks for; the predictive one fits its refits ahead on ``engine`` when given."""
    out: list[Policy] = []
    for name in names:
        if name == "reactive":
            out.append(ReactivePolicy(HpaSettings(target_utilization=args.target_utilization)))
        elif name == "cron":
            windows = cfg if cfg.scaling_windows else None
            if args.cron:
                out.append(dataclasses.replace(parse_cron(args.cron), windows=windows))
            else:
                hourly = cron_from_history(history, params, args.timezone)
                out.append(CronPolicy(hourly=hourly, windows=windows))
        elif name == "oracle":
            out.append(OraclePolicy())
        elif name == "predictive":
            from controller.planning.predictive import PredictivePolicy
            from controller.planning.refits import FitAhead, ForecastFn, pipeline_forecaster, shared

            refit = parse_duration(args.refit, what="--refit")
            fit: ForecastFn = pipeline_forecaster(args.model, args.timezone)
            if engine is not None:
                fit = FitAhead(fit, engine)
            if cfg.availability_target is not None:
                fit = shared(fit)  # the fixed-headroom replay beside it sees the same forecasts
            out.append(PredictivePolicy(config=cfg, history=full, refit=refit, forecaster=fit))
            if cfg.availability_target is not None:
                fixed = cfg.evolve(availability_target=None)
                out.append(PredictivePolicy(config=fixed, history=full, refit=refit, forecaster=fit,
                                            name=fixed_name(cfg)))
    return out



def run(args: argparse.Namespace) -> int:
    names = parse_policies(args.policy)
    cfg = controller_config(args)
    price = price_from_args(args)
    params = sim_params(cfg, price or 0.0)
    rate = load_rate(history_spec(args))
    start = split_start(rate, args.start)
    history, window = rate[rate.index < start], rate[rate.index >= start]
    learners = [n for n in names if n == "predictive" or (n == "cron" and not args.cron)]
    if learners and history.dropna().empty:
        raise UserError(
            f"--start: {args.start} leaves no history before the simulated window, and the "
            f"{' and '.join(learners)} {'policy learns' if len(learners) == 1 else 'policies learn'} from "
            "it; start later (e.g. --start 7d), give --cron, or leave them out with --policy"
        )
    step = parse_duration(args.step, what="--step") if args.step else None
    trace = make_trace(window, step=step, where=args.history)
    pool = worker_pool(args.workers, names)
    try:
        policies = build_policies(names, args, cfg, params, history, rate, pool)
        with Progress("simulate", stages=len(policies), enabled=not args.quiet) as progress:

            def stage(policy: Policy) -> None:
                progress.stage(f"replaying {policy.name} over {format_duration(trace.end - trace.start)}")
                if hasattr(policy, "progress"):
                    policy.progress = progress.step

            results, timings = replay_all(trace, policies, params, pool=pool, stage=stage)
    finally:
        if pool is not None:
            pool.close()
    return report(args, cfg, price, params, trace, results, timings)


def worker_pool(workers: int | None, names: list[str]) -> ProcessPoolEngine | None:
    """Worker processes beside this one (None: everything here): they fit the predictive policy's coming
    refits and replay the other policies while this process replays the predictive one."""
    from forecaster.engine import default_workers

    n = default_workers() if workers is None else workers
    if n < 0:
        raise UserError(f"--workers: must be 0 or more, got {n}")
    return ProcessPoolEngine(n) if n > 0 and "predictive" in names else None


def report(
    args: argparse.Namespace,
    cfg: Any,
    price: float | None,
    params: SimParams,
    trace: Trace,
    results: list[SimResult],
    timings: dict[str, float],
) -> int:
    """Print the comparison of the replayed policies (a table, or JSON with --json)."""
    table = compare(results)
    notes = [f"{r.policy}: {note}" for r in results for note in r.notes] + warmup_notes(results)
    windows = listing(cfg, trace.start, trace.end) if cfg.scaling_windows else []
    target = _target_line(cfg, results)
    if args.json:
        doc = {
            "trace": args.history,
            "start": trace.start.isoformat(),
            "end": trace.end.isoformat(),
            "step_seconds": trace.step_s,
            "interval_seconds": trace.interval.total_seconds(),
            "params": {
                "capacity_per_replica": params.capacity_per_replica,
                "startup_seconds": params.startup.total_seconds(),
                "warmup_seconds": params.warmup_time.total_seconds(),
                "min_replicas": params.min_replicas,
                "max_replicas": params.max_replicas,
                "price_per_replica_hour": price,
                "currency": args.currency,
            },
            "policies": {
                r.policy: {
                    **{k: v for k, v in r.metrics.as_dict().items() if k != "policy"},
                    "cost": None if price is None else r.metrics.cost,
                    "issues_warmups": r.issues_warmups,
                    "vs_oracle_replica_hours": _num(table, r.policy, "vs_oracle_replica_hours"),
                    "seconds": round(timings[r.policy], 3),
                    "notes": r.notes,
                    "availability": r.availability,
                    "window_intervals": r.window_intervals,
                }
                for r in results
            },
            "notes": notes,
            "availability_target": cfg.availability_target,
            "windows": [
                {**w, **{k: w[k].isoformat() for k in ("start", "end", "requested_from")}} for w in windows
            ],
        }
        json.dump(doc, sys.stdout, indent=1)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(
            f"Trace {args.history}: {trace.start.isoformat()} .. {trace.end.isoformat()} "
            f"({format_duration(trace.end - trace.start)} in {trace.n:,} steps of "
            f"{format_duration(trace.step)})\n"
        )
        warms = {r.policy: r.issues_warmups for r in results}
        sys.stdout.write(format_table(table, price=price, cost=cost_label(args), warms=warms) + "\n")
        if target:
            sys.stdout.write(target + "\n")
        for line in _window_lines(cfg, windows, results):
            sys.stdout.write(line + "\n")
        for note in notes:
            sys.stdout.write(f"note: {note}\n")
    return 0


def _target_line(cfg: Any, results: list[SimResult]) -> str:
    """The replay's achieved share and cost at the availability target against the fixed headroom."""
    by = {r.policy: r for r in results}
    fixed = by.get(fixed_name(cfg))
    if cfg.availability_target is None or "predictive" not in by or fixed is None:
        return ""
    p = by["predictive"]
    return replay_line(cfg.availability_target, p.availability, p.metrics.replica_hours, fixed.availability,
                       fixed.metrics.replica_hours, cfg.headroom)


def _window_lines(cfg: Any, windows: list[dict[str, Any]], results: list[SimResult]) -> list[str]:
    if not cfg.scaling_windows:
        return []
    out = ["scaling windows (intervals in which each window set the requested replicas, per policy):"]
    for w in cfg.scaling_windows:
        mine = [o for o in windows if o["window"] == w.name]
        first = f", first {mine[0]['start'].isoformat()}" if mine else ""
        set_by = ", ".join(f"{r.policy} {r.window_intervals.get(w.name, 0)}" for r in results
                           if r.policy == "predictive" or r.policy == "cron")
        out.append(f"  {w.describe()}: {len(mine)} opening(s){first}; set {set_by or 'none'}")
    return out


def warmup_notes(results: list[SimResult]) -> list[str]:
    """Why a policy shows no warm-ups (:mod:`controller.planning.warmups`)."""
    out = []
    silent = [r.policy for r in results if not r.issues_warmups and not r.policy.startswith("predictive")]
    if silent:
        out.append(f"warm-ups: {', '.join(silent)} show '-': {WHY_NONE}")
    if any(r.policy == "predictive" and not r.issues_warmups for r in results):
        out.append(f"warm-ups: predictive shows '-': {WHY_OFF}")
    return out


def _num(table: pd.DataFrame, row: str, col: str) -> float | None:
    if col not in table.columns:
        return None
    v = table.loc[row, col]
    return None if pd.isna(v) else float(v)


ROWS = (
    ("short_time_share", "time short of capacity", "pct"),
    ("short_interval_share", "intervals short", "pct"),
    ("short_request_share", "requests short", "pct"),
    ("worst_shortfall_rps", "worst shortfall (req/s)", "num"),
    ("worst_shortfall_pct", "worst shortfall (% of demand)", "pct"),
    ("replica_hours", "replica-hours", "num"),
    ("vs_oracle_replica_hours", "replica-hours vs oracle", "x"),
    ("cost", "cost", "cost"),
    ("peak_replicas", "peak replicas", "int"),
    ("scaling_actions", "scaling actions", "int"),
    ("warmups_issued", "warm-ups issued", "warm"),
    ("ramp_warmups", "ramp and event warm-ups", "warm"),
    ("warmups_before_ramp", "  issued before their ramp", "warm"),
)


def format_table(
    table: pd.DataFrame,
    *,
    price: float | None = None,
    cost: str = "cost",
    warms: dict[str, bool] | None = None,
) -> str:
    """Metrics as rows, policies as columns, aligned for a terminal.

    Cost reads ``n/a`` without a price; warm-up counts read ``-`` for a policy that makes no warm-up calls
    (``warms[policy]`` false), so a zero always means "none were needed".
    """
    head = ["metric", *table.index]
    lines = [head]
    for key, label, kind in ROWS:
        if key not in table.columns:
            continue
        cells = [cost if kind == "cost" else label]
        for pol in table.index:
            v = table.loc[pol, key]
            if kind == "cost" and price is None:
                cells.append("n/a")
            elif (kind == "warm" and warms is not None and not warms.get(str(pol), False)) or pd.isna(v):
                cells.append("-")
            elif kind == "pct":
                cells.append(f"{100 * float(v):.2f}%")
            elif kind == "x":
                cells.append(f"{float(v):.2f}x")
            elif kind in ("int", "warm"):
                cells.append(f"{int(v)}")
            elif kind == "cost":
                cells.append(f"{float(v):,.2f}")
            else:
                cells.append(f"{float(v):,.1f}")
        lines.append(cells)
    widths = [max(len(row[i]) for row in lines) for i in range(len(head))]
    out = []
    for n, row in enumerate(lines):
        out.append("  ".join(c.ljust(widths[0]) if i == 0 else c.rjust(widths[i]) for i, c in enumerate(row)))
        if n == 0:
            out.append("  ".join("-" * w for w in widths))
    return "\n".join(out)
