"""``forecast`` and ``backtest`` on a long history file (many series): flags, engine choice, output, summary.

Why this module exists: :mod:`controller.cli.forecast` owns the one-series commands and their stable output;
when the history file has an id column (``unique_id``, ``series`` or ``id``, or ``--id-column``) it hands the
parsed arguments here. This module wires the file reader (:mod:`forecaster.series.longform`), the engine
(:mod:`forecaster.engine`) and the batch API (:mod:`forecaster.batch`) and writes:

- ``forecast``: CSV columns ``<id>,ds,yhat,yhat_lower,yhat_upper,peak_upper,error``; a series that failed has
  one row with its id and its error and no values. Exit code 1 when any series failed (the others are
  written), 0 otherwise.
- ``backtest``: the per-model table per series (or JSON with ``--json``); failed series are listed with
  their error.

The summary on stderr gives the counts, the engine and the time, and one line per failed series.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections import Counter
from typing import Any, TextIO

import pandas as pd

from forecaster.durations import parse_duration
from forecaster.errors import UserError


def add_batch_arguments(parser: argparse.ArgumentParser) -> None:
    """``--id-column``, ``--workers``, ``--dask-scheduler``, ``--global-model``."""
    g = parser.add_argument_group("many series (long-format history)")
    add_global_argument(g)
    g.add_argument(
        "--id-column",
        metavar="NAME",
        default=None,
        help="column naming the series of each row in a long file (default: first of unique_id, series, id; "
        "a file without one is a single series)",
    )
    g.add_argument(
        "--workers",
        metavar="N",
        type=int,
        default=None,
        help="local worker processes for a long file (default: the cores this process may use; "
        "1 = in-process)",
    )
    g.add_argument(
        "--dask-scheduler",
        metavar="ADDR",
        default=None,
        help="run a long file's series on this Dask scheduler instead, e.g. tcp://dask-scheduler:8786",
    )


def add_global_argument(parser: Any) -> None:
    """``--global-model``."""
    parser.add_argument(
        "--global-model",
        choices=("lgbm", "ridge"),
        default=None,
        help="for a long file: fit one learned model across all its series first; each series' auto then "
        "backtests it as one more candidate (lgbm_global / ridge_global)",
    )


def find_id_column(args: argparse.Namespace) -> str | None:
    """The id column of ``--history``, or None for a one-series file."""
    from forecaster.series.longform import find_id_column as find

    column = find(args.history, getattr(args, "id_column", None))
    if column is None and (getattr(args, "dask_scheduler", None)):
        raise UserError("--dask-scheduler: needs a long history file with an id column (see --id-column)")
    return column


def run_many(args: argparse.Namespace, id_column: str, progress: Any = None) -> Any:
    """Load the long file and forecast every series on the engine the flags ask for (a BatchResult)."""
    from controller.cli.args import calendar_from_args
    from forecaster.batch import BatchSettings, forecast_many
    from forecaster.engine import make_engine
    from forecaster.series.io import check_timezone
    from forecaster.series.longform import load_long_history

    if args.folds is not None and args.folds < 0:
        raise UserError(f"--folds: must be zero or positive, got {args.folds}")
    timezone = check_timezone(args.timezone or "UTC")
    calendar = calendar_from_args(args)
    settings = BatchSettings(
        horizon=parse_duration(args.horizon, what="--horizon"),
        freq=parse_duration(args.freq, what="--freq") if args.freq else None,
        model=args.model,
        band_level=args.band_level,
        folds=args.folds,
        candidates=tuple(c.strip() for c in args.candidates.split(",") if c.strip())
        if args.candidates
        else None,
        calendar=calendar.config,
        timezone=timezone,
        source=str(args.history),
        global_model=getattr(args, "global_model", None),
    )
    if args.workers is not None and args.workers < 1:
        raise UserError(f"--workers: must be at least 1, got {args.workers}")
    data = load_long_history(
        args.history,
        id_column,
        time_column=args.time_column,
        value_column=args.value_column,
        timezone=timezone,
        counts=bool(getattr(args, "counts", False)),
    )
    workers = args.workers
    if workers is None and not args.dask_scheduler and len(data.series) < 2:
        workers = 1  # one series: a pool would only add its start-up
    engine = make_engine(workers, args.dask_scheduler)
    try:
        return forecast_many(
            data.series,
            settings,
            engine=engine,
            errors=data.errors,
            id_column=id_column,
            progress=progress,
            order=data.ids,
        )
    finally:
        engine.close()


def forecast_many_command(args: argparse.Namespace, id_column: str) -> int:
    from forecaster.batch import FORECAST_COLUMNS
    from forecaster.series.io import _iso_column, round_values, write_frame

    result = run_many(args, id_column, progress=_progress(sys.stderr, args.quiet))
    columns = [id_column, *FORECAST_COLUMNS, "error"]
    parts = []
    for o in result.outcomes:  # input order; a failed series is one row: its id and its error
        if o.frame is not None:
            # Each series rounded to its own magnitude, as a one-series forecast is (--digits).
            rounded = round_values(o.frame, digits=getattr(args, "digits", 4))
            part = rounded.assign(ds=_iso_column(o.frame["ds"]))
            parts.append(part.assign(**{id_column: o.id, "error": ""}))
        else:
            parts.append(pd.DataFrame({id_column: [o.id], "error": [o.error]}))
    out = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    write_frame(out.reindex(columns=columns), args.output)
    if not args.quiet:
        print_many_summary(result, sys.stderr)
    else:  # quiet drops the summary, not the reason a series has no forecast
        for o in result.failed:
            print(_error_line(o.id, o.error), file=sys.stderr)
    return 1 if result.failed else 0


def print_many_summary(result: Any, out: TextIO) -> None:
    """Counts, engine and time; models chosen; one line per failed series."""
    ok = [o for o in result.outcomes if o.ok]
    print(
        f"series: {len(ok)} ok, {len(result.failed)} failed  engine: {result.engine}  "
        f"took {result.seconds:.1f}s",
        file=out,
    )
    if ok:
        models = Counter(o.model for o in ok).most_common(5)
        print("models: " + ", ".join(f"{m} x{n}" for m, n in models), file=out)
        warned = sum(1 for o in ok if any(n.severity == "warning" for n in o.notes))
        if warned:
            print(f"warnings: {warned} series have data-quality warnings (see backtest --json)", file=out)
    for o in result.failed:
        print(_error_line(o.id, o.error), file=out)


def _error_line(sid: str, error: str | None) -> str:
    """``error: ...`` naming the series once (the message may already name it)."""
    return f"error: {error}" if f"series {sid!r}" in (error or "") else f"error: series {sid!r}: {error}"


def backtest_many_command(args: argparse.Namespace, id_column: str) -> int:
    result = run_many(args, id_column, progress=_progress(sys.stderr, False))
    reports = {o.id: _report(o, args.horizon) for o in result.outcomes if o.ok}
    failed = {o.id: o.error for o in result.failed}
    if args.json:
        json.dump({"series": reports, "failed": failed}, sys.stdout, indent=1)
        sys.stdout.write("\n")
        return 1 if failed else 0
    for sid, rep in reports.items():
        print(f"== {id_column} {sid}: chosen {rep['chosen']}")
        rows = list(rep["models"].items())
        if rep["chosen_scores"] is not None:
            rows.append((f"chosen: {rep['chosen']}", rep["chosen_scores"] | {"seconds": None}))
        width = max(len(str(a)) for a, _ in rows)
        print(f"{'model':<{width}} {'WAPE':>8} {'MAPE':>8} {'bias':>8} {'coverage':>9} {'folds':>6}")
        for alias, row in rows:
            print(
                f"{alias:<{width}} {_pct(row['wape']):>8} {_pct(row['mape']):>8} {_pct(row['bias']):>8} "
                f"{_pct(row['coverage']):>9} {int(row['folds'] or 0):>6}"
            )
    for sid, err in failed.items():
        print(_error_line(sid, err), file=sys.stderr)
    return 1 if failed else 0


def _report(o: Any, horizon: str) -> dict[str, Any]:
    def clean(d: dict[str, Any]) -> dict[str, Any]:
        return {k: (None if v is None or not math.isfinite(float(v)) else float(v)) for k, v in d.items()}

    return {
        "chosen": o.model,
        "horizon": horizon,
        "models": {alias: clean(dict(row)) for alias, row in o.scores.iterrows()},
        "chosen_scores": None if o.backtest is None else clean(o.backtest),
        "notes": [{"code": n.code, "severity": n.severity, "message": n.message} for n in o.notes],
    }


def _pct(x: Any) -> str:
    return "n/a" if x is None or not math.isfinite(float(x)) else f"{100 * float(x):.1f}%"


def _progress(out: TextIO, quiet: bool) -> Any:
    """Progress on stderr: a bar on a terminal, a line every 10 s otherwise; nothing with --quiet."""
    if quiet:
        return None
    state = {"last": time.monotonic()}

    def report(done: int, total: int) -> None:
        if out.isatty():
            filled = int(30 * done / max(total, 1))
            out.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {done}/{total} series")
            if done >= total:
                out.write("\r" + " " * 60 + "\r")
            out.flush()
        elif time.monotonic() - state["last"] >= 10 or done >= total:
            state["last"] = time.monotonic()
            print(f"progress: {done}/{total} series", file=out)

    return report
