"""``recharge-autoscaler report``: flags in, :func:`controller.planning.report.build_report` writes the page.

The forecast is made as ``plan`` makes it (same loader, calendar, creation time), so the report's replica
plan is the plan ``plan`` writes for the same history and flags. Scenarios use ``whatif``'s syntax.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from controller.cli.args import (
    DEFAULT_HISTORY_HELP,
    add_calendar_arguments,
    add_controller_arguments,
    add_history_arguments,
    calendar_from_args,
    controller_config,
    history_spec,
    price_from_args,
)
from controller.cli.progress import Progress
from controller.planning.plan import forecast_after
from controller.planning.report import ReportOptions, build_report, default_scenarios, simulate_recent
from controller.planning.simulate import sim_params
from controller.planning.whatif import EventWindow, Scenario, outside_horizon, parse_event, parse_growth
from forecaster.durations import format_duration, parse_duration
from forecaster.errors import InputError, UserError
from forecaster.series.io import load_history
from forecaster.series.load import load_rate, load_series
from forecaster.tempfiles import write_staged


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML capacity report (forecast, plan, scenarios, outlook, cost, "
        "simulation)",
        description="Forecast the history and write index.html plus CSVs to --output: forecast with band, "
        "events and excluded outages; replica plan with the range the band implies and a day-by-day summary "
        "(every scale-up and warm-up in CSVs); risks; growth and promotion scenarios; weekly and monthly "
        "peaks ahead; cost; forecast quality; and a simulated comparison of predictive vs reactive (HPA) vs "
        "cron vs oracle scaling (and the replicas actually run, with --replicas-history).",
    )
    add_history_arguments(p, required=False,
                          help="history file (required without --fleet): " + DEFAULT_HISTORY_HELP)
    fleet = p.add_argument_group("a fleet (instead of --history and the replica flags)")
    fleet.add_argument("--fleet", metavar="SCALERS.yaml", default=None,
                       help="one report across every PredictiveScaler in this YAML (`kubectl get "
                            "predictivescalers -A -o yaml`): per service and total peak replicas, "
                            "replica-hours and cost, who hits max when, a calendar of the coming peaks")
    fleet.add_argument("--history-dir", metavar="DIR", default=None,
                       help="with --fleet: one history file per scaler, DIR/<namespace>/<name>.csv (or "
                            ".parquet), else DIR/<name>.csv; the history flags apply to every file")
    add_calendar_arguments(p)
    add_controller_arguments(p, price=True)
    p.add_argument("--output", required=True, metavar="DIR", help="directory for index.html and the CSVs")
    p.add_argument("--horizon", default="7d", help="forecast horizon (default 7d)")
    p.add_argument("--model", default="auto", help="forecasting model alias for the outlook (default: auto)")
    p.add_argument(
        "--simulate-days",
        default="7d",
        metavar="DURATION",
        help="replay this much recent history through the policies (0 to skip; default 7d)",
    )
    p.add_argument(
        "--sim-model",
        default="seasonal_median",
        help="fast model used by the simulated predictive policy (refitted daily)",
    )
    p.add_argument("--replicas-history", metavar="FILE", default=None,
                   help="CSV/Parquet of the replicas actually run (time column, and a 'replicas' or value "
                        "column) to compare with the simulated policies")
    p.add_argument("--quota-tps", type=float, default=None, help="downstream quota in req/s to flag")
    p.add_argument("--growth", action="append", default=[], metavar="PCT",
                   help="a growth scenario, e.g. 10%% (repeatable; default: 25%% and a promotion x2 for 6h "
                        "around the peak)")
    p.add_argument("--event", action="append", default=[], metavar="'START/DURATION xFACTOR'",
                   help="a promotion scenario in whatif's syntax, e.g. '2026-12-01T00:00/6h x3' (repeatable)")
    p.add_argument("--no-scenarios", action="store_true", help="skip the scenarios section")
    p.add_argument("--no-warmup", action="store_true", help="do not plan cache warm-ups (as `plan`)")
    p.add_argument("--quiet", "-q", action="store_true", help="do not print progress on stderr")
    p.set_defaults(func=run)


def _scenario_flags(args: argparse.Namespace) -> tuple[list[Scenario], list[EventWindow]]:
    """``--growth`` and ``--event`` parsed (before any work, so a typo fails fast)."""
    growth = [Scenario(f"growth {g.strip()}", growth=parse_growth(g)) for g in args.growth]
    return growth, [parse_event(e, timezone=args.timezone) for e in args.event]


def _scenarios(
    args: argparse.Namespace, growth: list[Scenario], events: list[EventWindow], artifact: Any
) -> tuple[Scenario, ...]:
    if args.no_scenarios:
        return ()
    for ev in outside_horizon(tuple(events), artifact):
        raise UserError(f"--event {ev.text!r}: lies outside the report's horizon and would change nothing")
    promos = [Scenario(f"event {ev.text}", events=(ev,)) for ev in events]
    return tuple(growth + promos) or default_scenarios(artifact)


def _replicas(args: argparse.Namespace) -> pd.Series | None:
    if not args.replicas_history:
        return None
    try:
        return load_history(args.replicas_history, value_column="replicas", timezone=args.timezone)
    except InputError:  # no 'replicas' column: fall back to the usual value columns
        return load_history(args.replicas_history, timezone=args.timezone)


def run(args: argparse.Namespace) -> int:
    if args.fleet:
        from controller.cli.fleet_report import run_fleet

        return run_fleet(args)
    if not args.history:
        raise UserError("--history: required (or --fleet SCALERS.yaml --history-dir DIR for a fleet)")
    if args.history_dir:
        raise UserError("--history-dir: only with --fleet")
    cfg = controller_config(args)
    price = price_from_args(args)
    horizon = parse_duration(args.horizon, what="--horizon")
    sim_span = parse_duration(args.simulate_days, what="--simulate-days", allow_zero=True)
    if args.quota_tps is not None and not args.quota_tps > 0:
        raise UserError(f"--quota-tps must be > 0 requests per second, got {args.quota_tps:g}")
    if args.replicas_history and sim_span <= pd.Timedelta(0):
        raise UserError("--replicas-history: is compared in the simulation; give --simulate-days > 0")
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--output {out}: cannot create the directory ({exc.strerror})") from None
    spec = history_spec(args)
    growth, events = _scenario_flags(args)
    replicas = _replicas(args)
    stages = 3 if sim_span > pd.Timedelta(0) else 2
    with Progress("report", stages=stages, enabled=not args.quiet) as progress:
        series = load_series(spec)
        rate = load_rate(spec)
        calendar = calendar_from_args(args)
        progress.stage("forecasting (backtesting the models)")
        # Created at the history's end, as `plan` and `whatif` do: the same forecast gives the same plan.
        result, artifact = forecast_after(
            series, horizon, model=args.model, calendar=calendar, source=f"file:{args.history}",
            progress=progress,
        )
        sim = None
        if sim_span > pd.Timedelta(0):
            progress.stage(f"replaying the last {format_duration(sim_span)} through the policies")
            sim = simulate_recent(
                rate, cfg, sim_params(cfg, price or 0.0), sim_span, calendar=calendar, model=args.sim_model,
                timezone=spec.timezone, where=args.history, replicas=replicas,
                progress=lambda what, done, total: progress.step(done, total, what),
            )
        progress.stage("replaying decide() for the plan and the scenarios; drawing")
        options = ReportOptions(
            timezone=spec.timezone, source=args.history, price=price, currency=(args.currency or "").strip(),
            quota=args.quota_tps, scenarios=_scenarios(args, growth, events, artifact),
        )
        write_staged(out, lambda staging: build_report(
            staging, rate=rate, result=result, artifact=artifact, cfg=cfg, options=options, series=series,
            sim=sim, progress=lambda what, done, total: progress.step(done, total, what),
        ))
    print(f"report written to {out / 'index.html'}")
    return 0
