"""``recharge-autoscaler report``: flags in, :func:`controller.planning.report.build_report` writes the page.

The forecast is made as ``plan`` makes it (same loader, calendar, creation time), so the report's replica
plan is the plan ``plan`` writes for the same history and flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import pandas as pd

from controller.cli.args import (
    add_calendar_arguments,
    add_controller_arguments,
    add_history_arguments,
    calendar_from_args,
    controller_config,
    history_spec,
)
from controller.planning.plan import forecast_after
from controller.planning.report import build_report, simulate_recent
from controller.planning.simulate import sim_params
from forecaster.durations import parse_duration
from forecaster.errors import UserError
from forecaster.series.load import load_rate, load_series


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "report",
        help="write a self-contained HTML capacity report (forecast, plan, cost, simulation)",
        description="Forecast the history and write index.html plus CSVs to --output: forecast with band and "
        "events, replica plan with scale-up times, peak days, cost, forecast quality and a "
        "simulated comparison of predictive vs reactive (HPA) vs oracle scaling.",
    )
    add_history_arguments(p)
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
    p.add_argument("--quota-tps", type=float, default=None, help="downstream quota in req/s to flag")
    p.add_argument("--no-warmup", action="store_true", help="do not plan cache warm-ups (as `plan`)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    cfg = controller_config(args)
    horizon = parse_duration(args.horizon, what="--horizon")
    sim_span = parse_duration(args.simulate_days, what="--simulate-days", allow_zero=True)
    if args.quota_tps is not None and not args.quota_tps > 0:
        raise UserError(f"--quota-tps must be > 0 requests per second, got {args.quota_tps:g}")
    out = Path(args.output)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"--output {out}: cannot create the directory ({exc.strerror})") from None
    spec = history_spec(args)
    series = load_series(spec)
    rate = load_rate(spec)
    calendar = calendar_from_args(args)
    # Created at the history's end, as `plan` and `whatif` do: the same forecast gives the same plan.
    result, artifact = forecast_after(
        series, horizon, model=args.model, calendar=calendar, source=f"file:{args.history}"
    )
    sim = None
    if sim_span > pd.Timedelta(0):
        sim = simulate_recent(
            rate, cfg, sim_params(cfg, args.price_per_replica_hour), sim_span,
            calendar=calendar, model=args.sim_model, timezone=spec.timezone, where=args.history,
        )
    build_report(
        out,
        rate=rate,
        result=result,
        cfg=cfg,
        price=args.price_per_replica_hour,
        quota=args.quota_tps,
        timezone=spec.timezone,
        source=args.history,
        sim=sim,
        artifact=artifact,
    )
    print(f"report written to {out / 'index.html'}")
    return 0
