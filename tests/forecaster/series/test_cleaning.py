"""Cleaning: regular grid, honest gaps, outage flags on real traces, DST-stable daily shape, resampling."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import InputError, UserError
from forecaster.series.cleaning import CleanSeries, clean, resample
from forecaster.series.io import load_history

TRACES = Path(__file__).resolve().parents[4] / "shared" / "data" / "traces"


def series(values, start="2026-01-05", freq="1h", tz="UTC", index=None) -> pd.Series:
    idx = index if index is not None else pd.date_range(start, periods=len(values), freq=freq, tz=tz)
    return pd.Series(np.asarray(values, dtype=float), index=idx, name="y")


def codes(cs: CleanSeries) -> list[str]:
    return [n.code for n in cs.notes]


def daily_shape(days: int, freq: str = "1h", tz: str = "UTC", start: str = "2026-01-05", base: float = 100.0):
    """Busy series with a clear daily cycle in local time (peak at 18:00, trough at 04:00)."""
    idx = pd.date_range(start, periods=int(pd.Timedelta(days=days) / pd.Timedelta(freq)), freq=freq, tz=tz)
    hour = idx.hour + idx.minute / 60
    values = base * (1.5 + np.cos((hour - 18) / 24 * 2 * np.pi))
    return series(values, index=idx)


@pytest.mark.parametrize("freq", ["5min", "30min", "1h", "1D"], ids=["5m", "30m", "1h", "1d"])
def test_regular_series_is_kept_as_is(freq: str) -> None:
    raw = series(np.arange(1, 41), freq=freq)
    cs = clean(raw, where="f.csv")
    assert cs.freq == pd.Timedelta(freq)
    assert cs.y.equals(raw.rename("y").rename_axis("ds")) or np.allclose(cs.y, raw)
    assert not cs.missing.any() and not cs.outage.any()
    assert cs.y.index.name == "ds" and str(cs.y.index.tz) == "UTC"
    assert "gap" not in codes(cs) and "outage" not in codes(cs)


def test_unsorted_is_sorted_and_noted() -> None:
    raw = series([1, 2, 3, 4])
    cs = clean(raw.iloc[[2, 0, 3, 1]], where="f.csv")
    assert cs.y.tolist() == [1, 2, 3, 4]
    assert "unsorted" in codes(cs)


def test_identical_duplicates_are_dropped_and_noted() -> None:
    raw = series([1, 2, 3, 4])
    cs = clean(pd.concat([raw, raw.iloc[[1]]]), where="f.csv")
    assert cs.y.tolist() == [1, 2, 3, 4]
    assert "duplicates" in codes(cs)


def test_duplicates_with_different_values_name_stamp_and_rows() -> None:
    raw = series([1, 2, 3, 4])
    dup = pd.concat([raw, series([9], start="2026-01-05 01:00")])
    with pytest.raises(InputError, match=r"f.csv: timestamp 2026-01-05T01:00:00\+00:00 .*row 2: 2, row 5: 9"):
        clean(dup, where="f.csv")


def test_gaps_are_nan_not_zero_and_noted() -> None:
    raw = series(np.arange(1, 49))
    cs = clean(raw.drop(raw.index[10:13]), where="f.csv")
    assert len(cs.y) == 48
    assert cs.y.iloc[10:13].isna().all()
    assert cs.missing.iloc[10:13].all() and cs.missing.sum() == 3
    assert (cs.y.fillna(-1) != 0).all()
    gap = next(n for n in cs.notes if n.code == "gap")
    assert "3 missing interval(s)" in gap.message and "longest 3h" in gap.message


def test_mostly_missing_series_still_finds_its_step() -> None:
    # Every other 5-minute interval missing: the most common spacing is 10m, the grid is still 5m.
    idx = pd.date_range("2026-01-05", periods=200, freq="5min", tz="UTC")
    keep = np.r_[0:100:2, 100:200]
    cs = clean(series(np.ones(len(keep)), index=idx[keep]), where="f.csv")
    assert cs.freq == pd.Timedelta("5min")
    assert int(cs.missing.sum()) == 50


def test_source_step_is_used_as_the_grid_when_the_stamps_fit_it() -> None:
    # A Prometheus range query at step 1m with many lost samples: the grid stays 1m, gaps are missing.
    idx = pd.date_range("2026-01-05", periods=120, freq="1min", tz="UTC")
    keep = np.r_[0:40, 40:100:2, 100:120]
    cs = clean(series(np.ones(len(keep)), index=idx[keep]), where="prom", freq=pd.Timedelta("1min"))
    assert cs.freq == pd.Timedelta("1min") and len(cs.y) == 120 and int(cs.missing.sum()) == 30
    assert "resampled" not in codes(cs)


def test_edges_without_values_are_trimmed() -> None:
    raw = series([np.nan, 1, 2, 3, np.nan])
    cs = clean(raw, where="f.csv")
    assert cs.y.tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    ("days", "short"), [(3, True), (13, True), (14, False), (30, False)], ids=["3d", "13d", "14d", "30d"]
)
def test_short_history_is_a_warning_not_a_crash(days: int, short: bool) -> None:
    cs = clean(daily_shape(days), where="f.csv")
    notes = [n for n in cs.notes if n.code == "short_history"]
    assert bool(notes) is short
    if short:
        assert notes[0].severity == "warning"


def test_requested_coarser_interval_is_resampled() -> None:
    cs = clean(series(np.arange(8), freq="30min"), where="f.csv", freq=pd.Timedelta("1h"))
    assert cs.freq == pd.Timedelta("1h")
    assert cs.y.tolist() == [0.5, 2.5, 4.5, 6.5]
    assert "resampled" in codes(cs)


@pytest.mark.parametrize("freq", ["15min", "45min"], ids=["finer", "not-a-multiple"])
def test_requested_interval_must_fit_the_data(freq: str) -> None:
    with pytest.raises(InputError, match="does not fit the data's 30m interval"):
        clean(series(np.arange(8), freq="30min"), where="f.csv", freq=pd.Timedelta(freq))


@pytest.mark.parametrize("bad", [-1.0, np.inf], ids=["negative", "infinite"])
def test_negative_or_infinite_values_from_any_source_are_rejected(bad: float) -> None:
    with pytest.raises(InputError, match=r"prometheus: value .* at 2026-01-05T02:00:00\+00:00 \(row 3\)"):
        clean(series([1, 2, bad, 4]), where="prometheus")


def test_irregular_stamps_are_rejected_naming_the_row() -> None:
    idx = pd.DatetimeIndex(["2026-01-05 00:00", "2026-01-05 00:30", "2026-01-05 01:00", "2026-01-05 01:17",
                            "2026-01-05 01:30"], tz="UTC")
    with pytest.raises(InputError, match=r"f.csv: irregular timestamps: row 4 \(2026-01-05T01:17:00\+00:00\) "
                       r"is 17m after"):
        clean(series(np.ones(5), index=idx), where="f.csv")


# --- DST: the daily shape stays at the same local hour ------------------------------------------------------


@pytest.mark.parametrize(
    "start", ["2026-03-20", "2026-10-18"], ids=["spring-forward", "fall-back"]
)
def test_daily_peak_stays_at_the_same_local_hour_across_dst(write_csv, start: str) -> None:
    # A Berlin service peaking at 18:00 local, exported in UTC; across the DST change the UTC hour moves.
    local = daily_shape(14, tz="Europe/Berlin", start=start)
    path = write_csv(rows=[f"{t.tz_convert('UTC').isoformat()},{v}" for t, v in local.items()])
    cs = clean(load_history(path, timezone="Europe/Berlin"), where=str(path))
    assert cs.timezone == "Europe/Berlin" and cs.freq == pd.Timedelta("1h")
    assert not cs.missing.any() and not cs.outage.any()
    by_day = cs.y.groupby(cs.y.index.date)
    peaks = by_day.idxmax()[by_day.size() >= 23]  # whole local days (23 h on spring-forward day)
    assert len(peaks) >= 13
    assert {t.hour for t in peaks} == {18}
    utc_peaks = {t.tz_convert("UTC").hour for t in peaks}
    assert utc_peaks == {16, 17}  # the instant moved, the local hour did not


def test_daily_series_across_dst_stays_on_local_midnight() -> None:
    idx = pd.date_range("2026-03-20", periods=20, freq="D", tz="Europe/Berlin")
    cs = clean(series(np.arange(1, 21), index=idx), where="f.csv")
    assert cs.freq == pd.Timedelta(days=1)
    assert len(cs.y) == 20 and not cs.missing.any()
    assert {t.hour for t in cs.y.index} == {0}


# --- outages ------------------------------------------------------------


def test_nyc_blizzard_is_an_outage_and_ordinary_nights_are_not(nyc_taxi_path: Path) -> None:
    cs = clean(load_history(nyc_taxi_path), where=str(nyc_taxi_path))
    flagged = cs.outage[cs.outage]
    assert cs.outage["2015-01-27 00:00":"2015-01-27 06:00"].all()  # single-digit counts
    assert cs.y["2015-01-27 03:00":"2015-01-27 05:00"].isna().all()  # masked for the models ...
    assert cs.observed["2015-01-27 03:00"] == 8  # ... but kept for reports
    assert flagged.index.min() >= pd.Timestamp("2015-01-26", tz="UTC")
    assert flagged.index.max() < pd.Timestamp("2015-01-28", tz="UTC")
    nights = cs.outage[(cs.outage.index.hour >= 1) & (cs.outage.index.hour < 6)]
    assert not nights[:"2015-01-25"].any()
    assert "outage" in codes(cs)


def test_bundled_sample_load_and_clean_is_fast(nyc_taxi_path: Path) -> None:
    start = time.perf_counter()
    clean(load_history(nyc_taxi_path), where="nyc")
    assert time.perf_counter() - start < 1.0


def test_outage_in_a_short_history_is_still_flagged() -> None:
    raw = daily_shape(3, freq="15min")
    raw.iloc[150:162] = 0.0
    cs = clean(raw, where="f.csv")
    assert cs.outage.iloc[150:162].all() and int(cs.outage.sum()) <= 16
    assert {"short_history", "outage"} <= set(codes(cs))


def test_zero_run_in_a_busy_series_is_an_outage() -> None:
    raw = daily_shape(21, freq="15min")
    raw.iloc[1000:1012] = 0.0  # 3 hours of zeros
    cs = clean(raw, where="f.csv")
    assert cs.outage.iloc[1000:1012].all()
    assert cs.outage.sum() >= 12 and cs.outage.sum() <= 16
    assert cs.y.iloc[1000:1012].isna().all() and (cs.observed.iloc[1000:1012] == 0).all()
    assert not cs.missing.any()


def test_sharp_drop_without_zeros_is_an_outage() -> None:
    raw = daily_shape(21, freq="30min", base=1000)
    raw.iloc[500:520] = raw.iloc[500:520] * 0.02
    cs = clean(raw, where="f.csv")
    assert cs.outage.iloc[500:520].all()
    assert not cs.outage.iloc[:495].any() and not cs.outage.iloc[525:].any()


def test_isolated_zeros_in_a_sparse_series_are_not_outages() -> None:
    rng = np.random.default_rng(7)
    raw = series(rng.poisson(2.0, size=21 * 288), freq="5min")
    assert (raw == 0).sum() > 500
    cs = clean(raw, where="f.csv")
    assert not cs.outage.any()


def test_quiet_nights_that_are_always_zero_are_not_outages() -> None:
    raw = daily_shape(21)
    raw[(raw.index.hour >= 1) & (raw.index.hour < 5)] = 0.0
    cs = clean(raw, where="f.csv")
    assert not cs.outage.any()


@pytest.mark.parametrize("days", [15, 28], ids=["two-weeks", "four-weeks"])
def test_a_service_closed_at_weekends_is_not_an_outage(days: int) -> None:
    raw = daily_shape(days, freq="15min")  # starts on a Monday
    raw[raw.index.day_of_week >= 5] = 0.0
    cs = clean(raw, where="f.csv")
    assert not cs.outage.any()


@pytest.mark.skipif(not TRACES.is_dir(), reason="development traces are not next to this checkout")
@pytest.mark.parametrize("name", ["Twitter_volume_IBM", "Twitter_volume_AMZN"], ids=["ibm", "amzn"])
def test_twitter_traces_flag_only_the_shared_collection_outage(name: str) -> None:
    cs = clean(load_history(TRACES / f"{name}.csv"), where=name)
    zeros = cs.observed == 0
    window = slice("2015-03-11 07:00", "2015-03-11 09:10")
    assert cs.outage[window][zeros[window]].all()  # 26 zeros in both series at the same time
    outside = cs.outage.copy()
    outside[window] = False
    assert int(outside.sum()) <= 1
    if name == "Twitter_volume_IBM":
        assert int(zeros.sum()) > 1500 and int((zeros & ~cs.outage).sum()) > 1500


# --- resample ----------------------------------------------------------


def test_resample_sum_and_any_missing_input_is_nan() -> None:
    raw = series(np.arange(1, 13, dtype=float), freq="30min")  # 00:00 .. 05:30
    cs = clean(raw.drop(raw.index[3]), where="f.csv")
    out = resample(cs, pd.Timedelta("1h"), "sum")
    assert out.freq == pd.Timedelta("1h")
    assert out.y.tolist()[:1] == [3.0]
    assert np.isnan(out.y.iloc[1]) and out.missing.iloc[1]
    assert out.y.tolist()[2:] == [11.0, 15.0, 19.0, 23.0]
    assert "resampled" in codes(out)


def test_resample_drops_incomplete_edges_and_keeps_outage() -> None:
    raw = daily_shape(21, freq="15min", start="2026-01-05 00:30")
    raw.iloc[1000:1012] = 0.0
    cs = clean(raw, where="f.csv")
    out = resample(cs, pd.Timedelta("1h"), "mean")
    assert out.y.index[0] == pd.Timestamp("2026-01-05 01:00", tz="UTC")
    assert out.outage.sum() >= 3
    assert out.y[out.outage].isna().all()
    assert not out.observed[out.outage].isna().any()


def test_resample_to_days_across_dst_counts_local_days() -> None:
    idx = pd.date_range("2026-03-27", "2026-04-01", freq="h", tz="Europe/Berlin", inclusive="left")
    cs = clean(series(np.ones(len(idx)), index=idx), where="f.csv")
    out = resample(cs, pd.Timedelta(days=1), "sum")
    assert out.y.tolist() == [24.0, 24.0, 23.0, 24.0, 24.0]
    assert {t.hour for t in out.y.index} == {0}


@pytest.mark.parametrize("freq", ["45min", "15min"], ids=["not-a-multiple", "finer"])
def test_resample_rejects_intervals_that_do_not_fit(freq: str) -> None:
    cs = clean(series(np.ones(10), freq="30min"), where="f.csv")
    with pytest.raises(UserError, match="whole multiple of the history's 30m"):
        resample(cs, pd.Timedelta(freq))
