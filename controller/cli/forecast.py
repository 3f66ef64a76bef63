"""The ``forecast`` and ``backtest`` subcommands: forecast a history file, or measure how well we would have.

Other tools depend on the ``forecast`` output: CSV columns ``ds,yhat,yhat_lower,yhat_upper,peak_upper`` (ISO
8601 stamps with offset), one row per interval right after the history's last timestamp. Keep it stable.
A long file (an id column, many series) is handed to :mod:`controller.cli.many`.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from typing import Any, TextIO

import pandas as pd

from forecaster.durations import format_duration, parse_duration
from forecaster.errors import UserError
from forecaster.models import AUTO_CANDIDATES, available_models


def register(subparsers: Any) -> None:
    """Add ``forecast`` and ``backtest`` to the ``recharge-autoscaler`` command."""
    from controller.cli.args import add_calendar_arguments, add_history_arguments
    from controller.cli.many import add_batch_arguments

    models = ", ".join(available_models())
    fc = subparsers.add_parser(
        "forecast",
        help="forecast the intervals after a history file's last timestamp",
        description="Forecast request volume for the next --horizon after the history's last timestamp, "
        "with a "
        "calibrated band and the peak inside each interval. Writes CSV columns "
        "ds,yhat,yhat_lower,yhat_upper,peak_upper (values in the history's unit, mean per interval).",
    )
    add_history_arguments(fc)
    _common(fc, models)
    fc.add_argument(
        "--output", "-o", metavar="FILE", default="-", help="CSV file to write, '-' for stdout (default: -)"
    )
    fc.add_argument("--quiet", "-q", action="store_true",
                    help="do not print progress or the summary on stderr (a failed series of a long file "
                    "is still named, with its error)")
    fc.add_argument(
        "--digits", metavar="N", type=int, default=4,
        help="round the values to N significant digits of the largest one, at least one decimal "
        "(default: 4, e.g. 25327.1 or 15.24; 0 = unrounded)",
    )
    add_calendar_arguments(fc)
    add_batch_arguments(fc)
    fc.set_defaults(func=forecast_command)

    bt = subparsers.add_parser(
        "backtest",
        help="rolling-origin accuracy of every model on a history file",
        description="Replay forecasts made at the same time of day on each of the last --folds days "
        "and report WAPE, MAPE, bias and band coverage per model, best first, and for the model 'auto' "
        "would choose. The table also lists every model that was not run and why (--candidates all runs "
        "them all).",
    )
    add_history_arguments(bt)
    _common(bt, models)
    bt.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    add_calendar_arguments(bt)
    add_batch_arguments(bt)
    bt.set_defaults(func=backtest_command)


def _common(p: argparse.ArgumentParser, models: str) -> None:
    g = p.add_argument_group("forecast")
    g.add_argument(
        "--horizon",
        metavar="DURATION",
        default="24h",
        help="how far ahead to forecast, e.g. 30m, 24h, 7d (default: 24h)",
    )
    g.add_argument(
        "--freq",
        metavar="DURATION",
        default=None,
        help="output interval, a whole multiple of the history's interval, e.g. 1h "
        "(default: the history's own interval)",
    )
    g.add_argument(
        "--model",
        metavar="ALIAS",
        default="auto",
        help=f"model alias, or 'auto' to pick/blend by backtest (default: auto); one of: {models}",
    )
    g.add_argument(
        "--candidates",
        metavar="A,B",
        default=None,
        help="comma-separated models that --model auto backtests and blends, or 'all' for every model "
        f"(default: {','.join(AUTO_CANDIDATES)}; lgbm and ridge (learned, 10-50x the time) and prophet, "
        "prophet_default, mstl_ets (30-100x) are opt-in)",
    )
    g.add_argument(
        "--band-level",
        metavar="P",
        type=float,
        default=0.9,
        help="nominal coverage of [yhat_lower, yhat_upper], a fraction in [0.5, 1) (default: 0.9)",
    )
    g.add_argument(
        "--covariates",
        metavar="FILE",
        default=None,
        help="CSV/Parquet of known-future covariates: a time column and one column per covariate, with a "
        "value at every interval of the horizon (used by the learned models and Prophet)",
    )
    g.add_argument(
        "--folds",
        metavar="N",
        type=int,
        default=None,
        help="backtest folds (days, one per fold) used to choose the model and calibrate the band "
        "(default: 7)",
    )


def _run(args: argparse.Namespace, progress: Any = None) -> tuple[Any, Any]:
    from controller.cli.args import calendar_from_args, load_clean_history
    from forecaster.pipeline import check_model, run_forecast

    check_model(args.model)
    horizon = parse_duration(args.horizon, what="--horizon")
    freq = parse_duration(args.freq, what="--freq") if args.freq else None
    if args.folds is not None and args.folds < 0:
        raise UserError(f"--folds: must be zero or positive, got {args.folds}")
    series = load_clean_history(args)
    calendar = calendar_from_args(args)
    covariates = None
    if getattr(args, "covariates", None):
        from forecaster.series.covariates import load_covariates

        covariates = load_covariates(args.covariates, timezone=series.timezone)
    result = run_forecast(
        series,
        horizon,
        freq=freq,
        model=args.model,
        calendar=calendar,
        band_level=args.band_level,
        folds=args.folds,
        progress=progress,
        candidates=parse_candidates(args.candidates),
        covariates=covariates,
    )
    return series, result


def parse_candidates(text: str | None) -> list[str] | None:
    """``--candidates``: None (the default set), ``all`` (every registered model) or a comma list."""
    if not text:
        return None
    if text.strip().lower() == "all":
        return available_models()
    return [c.strip() for c in text.split(",") if c.strip()]


def forecast_command(args: argparse.Namespace) -> int:
    from controller.cli.many import find_id_column, forecast_many_command
    from controller.cli.progress import Progress
    from forecaster.series.io import round_values, write_frame

    id_column = find_id_column(args)
    if id_column is not None:  # a long file: many series (controller.cli.many)
        return forecast_many_command(args, id_column)

    t0 = time.perf_counter()
    with Progress("forecast", enabled=not args.quiet) as progress:
        progress.stage("backtesting the models")
        _, result = _run(args, progress=progress)
    columns = ["ds", "yhat", "yhat_lower", "yhat_upper", "peak_upper"]
    frame = round_values(result.frame[columns], digits=args.digits)
    write_frame(frame, args.output, finite=tuple(columns[1:]))
    if not args.quiet:
        print_summary(result, time.perf_counter() - t0, sys.stderr)
    return 0


def _fmt(x: float, pct: bool = True) -> str:
    if x is None or not math.isfinite(float(x)):
        return "n/a"
    return f"{100 * float(x):.1f}%" if pct else f"{float(x):.2f}"


def print_summary(result: Any, seconds: float, out: TextIO) -> None:
    """The forecast summary users read on stderr: model, backtest error, events and data-quality notes."""
    bt = result.backtest or {}
    print(
        f"model: {result.model}  intervals: {len(result.frame)} x {format_duration(result.freq)}  "
        f"band: {result.band_level:.0%}  took {seconds:.1f}s",
        file=out,
    )
    if bt:
        print(
            f"backtest ({int(bt.get('folds', 0))} folds): WAPE {_fmt(bt['wape'])}  bias {_fmt(bt['bias'])}  "
            f"band coverage {_fmt(bt['coverage'])}",
            file=out,
        )
    for _, ev in result.events.iterrows():
        print(f"event: {ev['kind']} {ev['name']} {pd.Timestamp(ev['start']).isoformat()}", file=out)
    for note in result.notes:
        print(f"{note.severity}: {note.code}: {note.message}", file=out)


# Registered but not in AUTO_CANDIDATES, and why (docs/benchmarks.md has the measurements).
OPT_IN = {
    "mstl_ets": "opt-in, 30-100x slower",
    "prophet": "opt-in, 30-100x slower",
    "prophet_default": "opt-in, 30-100x slower",
    "lgbm": "opt-in learned model, 10-50x slower, little gain in blends",
    "lgbm_direct": "opt-in learned model, 10-50x slower, little gain in blends",
    "ridge": "opt-in learned model, 10-50x slower, little gain in blends",
    "ridge_recursive": "opt-in learned model, 10-50x slower, little gain in blends",
}


def not_run(result: Any, args: argparse.Namespace) -> dict[str, str]:
    """Every registered model the backtest has no score for, with the reason."""
    failed: dict[str, str] = {}
    for note in result.notes:
        m = re.match(r"model (\S+) failed(?: in backtest)?(?: and was skipped)?: (.*)", note.message)
        if note.code == "model_failed" and m:
            failed.setdefault(m.group(1), m.group(2))
    asked = parse_candidates(args.candidates)
    out = {}
    for alias in available_models():
        if alias in result.scores.index:
            continue
        if alias in failed:
            out[alias] = f"failed: {failed[alias]}"
        elif args.model != "auto":
            out[alias] = f"not run: --model {args.model} backtests that model only"
        elif asked is not None:
            out[alias] = "not run: not in --candidates"
        elif alias in OPT_IN:
            out[alias] = f"not run: {OPT_IN[alias]} (--candidates all, or add it to --candidates)"
        else:
            out[alias] = "not run: not an auto candidate"
    return out


def backtest_command(args: argparse.Namespace) -> int:
    from controller.cli.many import backtest_many_command, find_id_column
    from controller.cli.progress import Progress

    id_column = find_id_column(args)
    if id_column is not None:
        return backtest_many_command(args, id_column)
    with Progress("backtest") as progress:
        progress.stage("backtesting the models")
        _, result = _run(args, progress=progress)
    table = result.scores.copy().sort_values("wape", na_position="last", kind="stable")
    skipped = not_run(result, args)
    report: dict[str, Any] = {
        "chosen": result.model,
        "horizon": args.horizon,
        "band_level": result.band_level,
        "models": {
            alias: {k: (None if not math.isfinite(v) else float(v)) for k, v in row.items()}
            for alias, row in table.iterrows()
        },
        "not_run": skipped,
        "chosen_scores": None
        if result.backtest is None
        else {k: (None if not math.isfinite(v) else float(v)) for k, v in result.backtest.items()},
        "notes": [{"code": n.code, "severity": n.severity, "message": n.message} for n in result.notes],
    }
    if args.json:
        json.dump(report, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 0
    rows = list(table.iterrows())
    if result.backtest is not None:
        rows.append((f"chosen: {result.model}", pd.Series(result.backtest | {"seconds": math.nan})))
    width = max([len(str(alias)) for alias, _ in rows] + [len(a) for a in skipped] + [5])
    head = f"{'WAPE':>8} {'MAPE':>8} {'bias':>8} {'coverage':>9} {'folds':>6} {'seconds':>8}"
    print(f"{'model':<{width}} {head}")
    for alias, row in rows:
        print(
            f"{alias:<{width}} {_fmt(row['wape']):>8} {_fmt(row['mape']):>8} {_fmt(row['bias']):>8} "
            f"{_fmt(row['coverage']):>9} {int(row['folds']) if math.isfinite(row['folds']) else 0:>6} "
            f"{_fmt(row['seconds'], pct=False):>8}"
        )
    for alias, why in skipped.items():
        print(f"{alias:<{width}} {why}")
    for note in result.notes:
        if note.code != "model_failed":
            print(f"{note.severity}: {note.code}: {note.message}", file=sys.stderr)
    return 0
