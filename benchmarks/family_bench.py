"""Accuracy by model family on the development traces, all in one run; writes the "Forecast accuracy by model
family" section of docs/benchmarks.md.

Protocol (as benchmarks/forecast_bench.py): midnight origins over the last ``--weeks`` weeks of each trace, up
to 56 days of history, the next 24 hours at hourly resolution, scored against the hourly sums of the native
buckets. Per origin:

- ``auto``: the product as the CLI runs it (clean, backtest, pick or blend, per-step band, event effects);
- every family alone: each registered model fitted on the same cleaned hourly history (seasonal members,
  the learned family direct and recursive), seconds = its 14-fold backtest plus the final fit;
- ``blend (seasonal+learned)``: auto's choice when the learned family joins the candidates (same folds);
- seasonal naive (the hourly sum 168 h earlier), Prophet with its defaults, and statsforecast's MSTL and
  AutoETS (season 24 h) on the hourly sums, as outside references.

nyc_taxi is also scored on its ordinary days (no NAB anomaly window, no US public holiday in the next 24 h).

Usage: python benchmarks/family_bench.py [--weeks 4] [--ordinary-weeks 40] [--traces a,b] [--no-write]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from benchdocs import TRACES, write_section  # noqa: E402
from forecast_bench import CALENDARS, HISTORY, HOUR, hourly_sums, midnight_origins, ordinary  # noqa: E402

from forecaster import numeric  # noqa: E402
from forecaster import pipeline as P  # noqa: E402
from forecaster.backtest import coverage, cutoffs, wape  # noqa: E402
from forecaster.batch import earliest_cut  # noqa: E402
from forecaster.models import AUTO_CANDIDATES  # noqa: E402
from forecaster.models.base import FitContext  # noqa: E402
from forecaster.models.global_learned import fit_global, global_factory  # noqa: E402
from forecaster.models.prophet_models import ProphetDefault  # noqa: E402
from forecaster.series.calendar import EventCalendar  # noqa: E402
from forecaster.series.cleaning import clean, resample  # noqa: E402
from forecaster.series.event_effects import apply_effects, learn_effects  # noqa: E402
from forecaster.series.io import load_history  # noqa: E402

DAY = pd.Timedelta(days=1)
SECTION = "## Forecast accuracy by model family"
LEARNED = ("lgbm", "ridge", "lgbm_direct", "ridge_recursive")
SEASONAL = tuple(AUTO_CANDIDATES)


def outside(hist: pd.Series) -> dict[str, tuple[np.ndarray, float]]:
    """statsforecast MSTL and AutoETS on the hourly sums (skipped when statsforecast is not installed)."""
    try:
        from statsforecast import StatsForecast
        from statsforecast.models import MSTL, AutoETS
    except ImportError:
        return {}
    df = pd.DataFrame({"unique_id": "s", "ds": hist.index.tz_localize(None), "y": hist.to_numpy()})
    out = {}
    for name, model in (
        ("statsforecast MSTL", MSTL(season_length=[24, 168])),
        ("statsforecast AutoETS", AutoETS(season_length=24)),
    ):
        t0 = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fc = StatsForecast(models=[model], freq="h", n_jobs=1).forecast(df=df, h=24)
        out[name] = (fc.iloc[:, -1].to_numpy(dtype=float), time.perf_counter() - t0)
    return out


def hourly_history(raw: pd.Series, origin: pd.Timestamp) -> pd.DataFrame:
    """The cleaned hourly history auto sees at ``origin``."""
    window = raw[(raw.index >= origin - HISTORY) & (raw.index < origin)]
    return resample(clean(window, where="trace"), HOUR, "mean").frame()


def global_models(raws: dict[str, pd.Series], origins: dict[str, list[pd.Timestamp]]) -> dict[Any, Any]:
    """Per main-origin index, one global LightGBM fitted on every trace's history at its own i-th origin
    (the batch a fleet would give it); keyed by (trace, origin)."""
    out: dict[Any, Any] = {}
    for i in range(min(len(o) for o in origins.values())):
        hists = [hourly_history(raws[n], origins[n][i]) for n in raws]
        batch = [(h, FitContext(HOUR, "UTC"), earliest_cut(h, HOUR, 24, P.DEFAULT_FOLDS)) for h in hists]
        gm = fit_global(batch, 24)
        for n in raws:
            out[(n, origins[n][i])] = gm
    return out


def run_origin(
    raw: pd.Series, truth: pd.Series, origin: pd.Timestamp, cal: Any, full: bool, gm: Any
) -> dict[str, Any]:
    per_hour = HOUR / pd.Timedelta(pd.Series(raw.index).diff().median())
    window = raw[(raw.index >= origin - HISTORY) & (raw.index < origin)]
    row: dict[str, Any] = {
        "origin": origin,
        "actual": truth.reindex(pd.date_range(origin, periods=24, freq="h")),
    }
    row["actual"] = row["actual"].to_numpy(dtype=float)
    t0 = time.perf_counter()
    series = clean(window, where="trace")
    res = P.run_forecast(series, DAY, freq=HOUR, model="auto", calendar=cal, band_level=0.9)
    f = res.frame
    row["auto"] = (f["yhat"].to_numpy() * per_hour, time.perf_counter() - t0)
    row["band"] = (f["yhat_lower"].to_numpy() * per_hour, f["yhat_upper"].to_numpy() * per_hour)
    row["holiday"] = bool((res.events["kind"] == "holiday").any()) if len(res.events) else False
    row["model"] = res.model
    # The families on the same cleaned hourly history and folds as auto.
    hist = resample(series, HOUR, "mean").frame()
    events = P._events(cal, hist["ds"].iloc[0], origin + DAY)
    ctx = FitContext(HOUR, "UTC", events, 0.9)
    models = dict(P.MODELS)
    pool = list(SEASONAL + LEARNED)
    if gm is not None:
        models[gm.alias] = global_factory(gm)
        pool.append(gm.alias)
        row["global seconds"] = gm.seconds
    prep = P._Prepared(
        hist,
        ctx,
        24,
        cutoffs(hist["ds"], HOUR, 24, P.DEFAULT_FOLDS),
        numeric.SeriesArrays.build(hist, ctx, 24),
        models=models,
    )
    tested, _ = P._backtest_all(prep, pool, None)
    fits = {}
    for c in tested:
        t1 = time.perf_counter()
        fc = P._try_fit(prep, c.alias, [])
        if fc is not None:
            fits[c.alias] = fc
            row[c.alias] = (fc["yhat"].to_numpy() * per_hour, c.seconds + time.perf_counter() - t1)
    effects = learn_effects(hist, events)
    pools = [
        ("seasonal auto", SEASONAL),
        ("blend (seasonal+learned)", SEASONAL + LEARNED),
        ("blend (seasonal+lgbm_global)", (*SEASONAL, "lgbm_global")),
        ("blend (seasonal+learned+lgbm_global)", (*SEASONAL, *LEARNED, "lgbm_global")),
    ]
    for label, members_pool in pools:
        if gm is None and "lgbm_global" in members_pool:
            continue
        ranked = sorted([c for c in tested if c.alias in members_pool and c.alias in fits], key=P._wape)
        members = P._choose(ranked)
        frame = fits[members[0].alias][["ds"]].copy()
        frame["yhat"] = np.mean([fits[m.alias]["yhat"].to_numpy() for m in members], axis=0)
        frame["yhat_lower"] = frame["yhat_upper"] = frame["yhat"]
        frame, _, _ = apply_effects(frame, P._in_window(events, origin, origin + DAY), effects)
        secs = sum(c.seconds for c in ranked) + sum(row[m.alias][1] - m.seconds for m in members)
        row[label] = (frame["yhat"].to_numpy() * per_hour, secs)
    row["seasonal naive"] = (
        truth.reindex(pd.date_range(origin - 7 * DAY, periods=24, freq="h")).to_numpy(dtype=float),
        0.0,
    )
    if full:
        past = truth[(truth.index >= origin - HISTORY) & (truth.index < origin)].dropna()
        t1 = time.perf_counter()
        p = ProphetDefault().fit(
            pd.DataFrame({"ds": past.index, "y": past.to_numpy()}), FitContext(HOUR, "UTC")
        )
        row["Prophet default"] = (p.predict(24)["yhat"].to_numpy(), time.perf_counter() - t1)
        row.update(outside(past.asfreq("h").interpolate(limit_direction="both")))
    return row


def main_origins(raw: pd.Series, weeks: int) -> list[pd.Timestamp]:
    return midnight_origins(hourly_sums(raw), weeks, raw.index[0] + pd.Timedelta(days=14))


def run_trace(name: str, weeks: int, ordinary_weeks: int, gms: dict[Any, Any]) -> dict[str, Any]:
    raw = load_history(TRACES / f"{name}.csv", timezone="UTC")
    truth = hourly_sums(raw)
    cfg = CALENDARS.get(name)
    cal = EventCalendar(cfg, "UTC") if cfg else None
    main = main_origins(raw, weeks)
    extra = midnight_origins(truth, ordinary_weeks, raw.index[0] + HISTORY) if name == "nyc_taxi" else []
    rows = []
    origins = sorted(set(main) | set(extra))
    for i, origin in enumerate(origins):
        gm = gms.get((name, origin))
        rows.append(run_origin(raw, truth, origin, cal, origin in main, gm) | {"main": origin in main})
        print(f"\r{name}: {i + 1}/{len(origins)}", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    return {"trace": name, "rows": rows}


def score(rows: list[dict[str, Any]], key: str) -> tuple[float, float]:
    have = [r for r in rows if key in r]
    a = np.concatenate([r["actual"] for r in have])
    p = np.concatenate([r[key][0] for r in have])
    return wape(a, p), float(np.median([r[key][1] for r in have]))


def band_coverage(rows: list[dict[str, Any]]) -> float:
    a = np.concatenate([r["actual"] for r in rows])
    return coverage(
        a, np.concatenate([r["band"][0] for r in rows]), np.concatenate([r["band"][1] for r in rows])
    )


COLUMNS = (
    "auto",
    "seasonal auto",
    "blend (seasonal+learned)",
    "blend (seasonal+lgbm_global)",
    "blend (seasonal+learned+lgbm_global)",
    *SEASONAL,
    *LEARNED,
    "lgbm_global",
    "seasonal naive",
    "Prophet default",
    "statsforecast MSTL",
    "statsforecast AutoETS",
)


def render(results: list[dict[str, Any]], args: argparse.Namespace, elapsed: float) -> str:
    uname = platform.uname()
    lines = [
        SECTION,
        "",
        f"Measured {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC on `{uname.system} {uname.machine}`, "
        f"{os.cpu_count()} CPUs (shared, load average {os.getloadavg()[0]:.0f} at the end: seconds are "
        f"inflated), Python {platform.python_version()}, by `python benchmarks/family_bench.py`, "
        f"{elapsed / 60:.0f} min.",
        "",
        "Same protocol as the table above (midnight origins of the last "
        f"{args.weeks} weeks, 56 days of history, next 24 h hourly, scored on hourly sums). `auto` is the "
        "product as shipped (seasonal candidates, per-step band, event effects including learned holiday "
        "effects); `seasonal auto` and `blend (seasonal+learned)` are auto's pick over the same folds "
        "without and with the learned family. Each cell: WAPE / median seconds per series (backtest of "
        "14 folds + final fit for the product's models; one fit for the outside references).",
        "",
        "| model | " + " | ".join(r["trace"] for r in results) + " | mean WAPE |",
        "|---|" + "---|" * (len(results) + 1),
    ]
    for key in COLUMNS:
        cells, ws = [], []
        for r in results:
            main = [x for x in r["rows"] if x["main"]]
            if not any(key in x for x in main):
                cells.append("-")
                continue
            w, s = score(main, key)
            ws.append(w)
            cells.append(f"{w:.1%} / {s:.2f}")
        mean = f"{np.mean(ws):.1%}" if len(ws) == len(results) else "-"
        lines.append(f"| {key} | " + " | ".join(cells) + f" | {mean} |")
    gsec = [x["global seconds"] for r in results for x in r["rows"] if "global seconds" in x]
    if gsec:
        lines.append(
            f"| lgbm_global fit, once per batch of {len(results)} series (median s) | "
            + " | ".join("" for _ in results)
            + f" | {np.median(gsec):.2f} |"
        )
    cov = " | ".join(f"{band_coverage([x for x in r['rows'] if x['main']]):.1%}" for r in results)
    lines.append(f"| 90% band coverage (auto) | {cov} | |")
    for r in results:
        nyc = r["trace"] == "nyc_taxi"
        ordn = [x for x in r["rows"] if nyc and not x["holiday"] and ordinary(x["origin"])]
        if ordn:
            w_auto, _ = score(ordn, "auto")
            w_blend, _ = score(ordn, "blend (seasonal+learned)")
            w_seas, _ = score(ordn, "seasonal auto")
            kept = [x for x in r["rows"] if ordinary(x["origin"])]
            lines += [
                "",
                f"nyc_taxi ordinary days ({len(ordn)} origins {ordn[0]['origin']:%Y-%m-%d} .. "
                f"{ordn[-1]['origin']:%Y-%m-%d}, no NAB anomaly window, no US public holiday): WAPE auto "
                f"{w_auto:.1%}, seasonal auto {w_seas:.1%}, blend (seasonal+learned) {w_blend:.1%}; band "
                f"coverage {band_coverage(ordn):.1%}. With the {len(kept) - len(ordn)} public-holiday days "
                f"kept: auto {score(kept, 'auto')[0]:.1%}, seasonal auto "
                f"{score(kept, 'seasonal auto')[0]:.1%}.",
            ]
    return "\n".join(lines) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--weeks", type=int, default=4)
    ap.add_argument("--ordinary-weeks", type=int, default=40)
    ap.add_argument("--traces", default="")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    t0 = time.perf_counter()
    names = args.traces.split(",") if args.traces else sorted(p.stem for p in TRACES.glob("*.csv"))
    raws = {n: load_history(TRACES / f"{n}.csv", timezone="UTC") for n in names}
    gms = global_models(raws, {n: main_origins(r, args.weeks) for n, r in raws.items()})
    results = [run_trace(n, args.weeks, max(args.ordinary_weeks, args.weeks), gms) for n in names]
    text = render(results, args, time.perf_counter() - t0)
    print(text)
    if not args.no_write:
        write_section(text, SECTION)
    return 0


if __name__ == "__main__":
    sys.exit(main())
