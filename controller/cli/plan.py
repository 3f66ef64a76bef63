"""``recharge-autoscaler plan``: flags in, :func:`controller.planning.plan.build_plan` out as CSV.

The planning itself (forecast after the history, the ``decide()`` replay) lives in
:mod:`controller.planning.plan`; this module only reads the flags and prints.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import pandas as pd

from controller.cli.args import (
    add_calendar_arguments,
    add_controller_arguments,
    add_history_arguments,
    calendar_from_args,
    check_initial_replicas,
    controller_config,
    load_clean_history,
)
from controller.cli.progress import Progress
from controller.planning.declared import describe_windows, target_cost, window_rows
from controller.planning.plan import build_plan, forecast_after
from controller.planning.warmups import count_warmups
from forecaster.durations import format_duration, parse_duration
from forecaster.series.io import VALUE_COLUMNS, round_values


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "plan",
        help="offline replica and warm-up plan for the next horizon from a history file",
        description="Forecast the horizon after a history of request rates (req/s) and write the replicas "
        "the controller would have ready in each interval, with the warm-ups it would issue.",
    )
    add_history_arguments(p)
    add_calendar_arguments(p)
    add_controller_arguments(p)
    p.add_argument("--horizon", default="24h", metavar="DURATION", help="how far ahead to plan (default 24h)")
    p.add_argument("--initial-replicas", type=int, default=None, metavar="N",
                   help="replicas running when the horizon starts (default: what the first decision needs)")
    p.add_argument("--model", default="auto", help="forecasting model alias, or auto (default: auto)")
    p.add_argument("--no-warmup", action="store_true", help="do not plan cache warm-ups")
    p.add_argument("--output", "-o", default="-", metavar="FILE", help="CSV to write; - for stdout (default)")
    p.add_argument("--quiet", "-q", action="store_true",
                   help="do not print progress or the summary on stderr")
    p.set_defaults(func=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    config = controller_config(args)  # flag mistakes first: cheap and before any file is read
    check_initial_replicas(args)
    horizon = parse_duration(args.horizon, what="--horizon")

    from forecaster.series.io import write_frame

    t0 = time.perf_counter()
    with Progress("plan", stages=2, enabled=not args.quiet) as progress:
        series = load_clean_history(args)
        progress.stage("forecasting (backtesting the models)")
        result, artifact = forecast_after(
            series, horizon, model=args.model, calendar=calendar_from_args(args),
            source=f"file:{args.history}", progress=progress,
        )
        progress.stage(f"replaying decide() over {format_duration(horizon)}")
        frame, decisions = build_plan(
            artifact, config, initial_replicas=args.initial_replicas, progress=progress.step
        )
    numbers = ("replicas", "yhat", "yhat_lower", "yhat_upper", "peak_upper", "need", "requested")
    write_frame(round_values(frame, VALUE_COLUMNS), args.output, finite=numbers)
    if not args.quiet:
        from controller.cli.forecast import print_summary

        print_summary(result, time.perf_counter() - t0, sys.stderr)
        hours = frame["replicas"].sum() * artifact.interval_seconds / 3600
        warmups = count_warmups(w.reason for d in decisions for w in d.warmups)
        print(
            f"plan: {len(frame)} rows, replicas {frame['replicas'].min()}..{frame['replicas'].max()}, "
            f"{hours:,.1f} replica-hours, warm-ups {warmups.describe()}",
            file=sys.stderr,
        )
        cost = target_cost(artifact, config, frame, initial_replicas=args.initial_replicas)
        if cost is not None:
            print(f"plan: {cost.describe()}", file=sys.stderr)
        if config.scaling_windows:
            end = frame["ds"].iloc[-1] + pd.Timedelta(seconds=artifact.interval_seconds)
            rows = window_rows(config, frame["ds"].iloc[0], end, frame)
            for line in describe_windows(config, rows):
                print(f"plan: {line}", file=sys.stderr)
    return 0
