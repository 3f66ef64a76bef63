"""Many series in one call: per-series results equal one-by-one forecasts, on every engine; bad series are
reported and never stop the others; work goes out in bounded chunks."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pytest

from forecaster.batch import BatchSettings, chunk_size, forecast_many, split_long
from forecaster.engine import DaskEngine, InProcessEngine, ProcessPoolEngine, make_engine
from forecaster.errors import OperationalError, UserError
from forecaster.pipeline import run_forecast
from forecaster.series.cleaning import clean

T = TypeVar("T")
R = TypeVar("R")
DAY = pd.Timedelta(days=1)
SETTINGS = BatchSettings(horizon=DAY, folds=5)


def raw(seed: int, days: int = 21, scale: float = 1.0) -> pd.Series:
    idx = pd.date_range("2026-02-01", periods=days * 24, freq="h", tz="UTC", name="ds")
    y = 200 + 150 * np.sin(2 * np.pi * (idx.hour - 6) / 24) ** 2 + 40 * (idx.day_of_week >= 5)
    y = scale * y * np.random.default_rng(seed).lognormal(0, 0.1, len(idx))
    return pd.Series(np.asarray(y, dtype=float), index=idx, name="y")


def fleet(n: int) -> list[tuple[str, pd.Series]]:
    return [(f"s{i}", raw(i, scale=1 + i / 10)) for i in range(n)]


def frames(result: Any) -> dict[str, pd.DataFrame]:
    return {o.id: o.frame for o in result.outcomes if o.ok}


def test_each_series_gets_the_forecast_it_would_get_alone() -> None:
    items = fleet(3)
    res = forecast_many(items, SETTINGS)
    assert [o.id for o in res.outcomes] == ["s0", "s1", "s2"] and not res.failed
    for sid, series in items:
        alone = run_forecast(clean(series, where="t"), DAY, folds=5)
        out = next(o for o in res.outcomes if o.id == sid)
        assert out.model == alone.model
        pd.testing.assert_frame_equal(out.frame, alone.frame[out.frame.columns])


def test_per_series_settings_apply_to_their_series_only_and_artifacts_come_back() -> None:
    from dataclasses import replace

    items = fleet(3)
    created = pd.Timestamp("2026-02-22T00:00:00Z")
    base = replace(SETTINGS, created_at=created, source="test")
    res = forecast_many(items, base, per_series={"s1": replace(base, horizon=2 * DAY, source="s1 query")},
                        chunk=2)
    by = {o.id: o for o in res.outcomes}
    assert [len(by[s].frame) for s in ("s0", "s1", "s2")] == [24, 48, 24]  # type: ignore[arg-type]
    for sid, o in by.items():
        assert o.artifact is not None and o.artifact.created_at == created
        assert [i.yhat for i in o.artifact.intervals] == pytest.approx(list(o.frame["yhat"]))  # type: ignore[index]
        assert o.artifact.source == ("s1 query" if sid == "s1" else "test")
    assert all(o.artifact is None for o in forecast_many(items[:1], SETTINGS).outcomes)


def test_a_bad_series_is_reported_and_the_others_are_forecast() -> None:
    nan = raw(7).where(lambda s: s < 0)  # every value NaN
    items = [("good", raw(1)), ("empty", nan), ("short", raw(2, days=1).iloc[:1]), ("also-good", raw(3))]
    res = forecast_many(items, SETTINGS, errors=[("unreadable", "file row 3: bad stamp")])
    status = {o.id: o.error for o in res.outcomes}
    assert status["good"] is None and status["also-good"] is None
    assert "no values" in (status["empty"] or "")
    assert status["short"] and status["unreadable"] == "file row 3: bad stamp"
    summary = res.summary()
    assert summary.set_index("unique_id").loc["empty", "status"] == "failed"
    assert (summary["status"] == "ok").sum() == 2
    assert set(res.forecasts()["unique_id"]) == {"good", "also-good"}


def test_a_crashing_model_on_one_series_does_not_stop_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import forecaster.batch as batch

    real = batch.run_chunk

    def crash_on_s1(chunk: Any) -> Any:
        if any(sid == "s1" for sid, _ in chunk.series):
            monkeypatch.setattr("forecaster.pipeline.peak_ratio", _boom)
        try:
            return real(chunk)
        finally:
            monkeypatch.undo()

    res = forecast_many(fleet(3), SETTINGS, engine=_Recording(crash_on_s1), chunk=1)
    assert [o.ok for o in res.outcomes] == [True, False, True]
    assert "RuntimeError: boom" in (res.outcomes[1].error or "")


def _boom(*_: Any, **__: Any) -> Any:
    raise RuntimeError("boom")


class _Recording:
    """In-process engine that records the size of every task and may wrap the task function."""

    name = "recording"
    workers = 3

    def __init__(self, wrap: Callable[[Any], Any] | None = None) -> None:
        self.sizes: list[int] = []
        self.wrap = wrap

    def map(self, fn: Callable[[T], R], items: Iterable[T]) -> Iterator[Any]:
        for item in items:
            self.sizes.append(len(item.series))  # type: ignore[attr-defined]
            yield (self.wrap or fn)(item)

    def close(self) -> None:
        pass


def test_work_is_sent_in_bounded_chunks_of_whole_series() -> None:
    eng = _Recording()
    res = forecast_many(fleet(7), BatchSettings(horizon=DAY, model="snaive", folds=2), engine=eng)
    assert sum(eng.sizes) == 7 and max(eng.sizes) == chunk_size(7, 3) == 1
    assert len(res.outcomes) == 7
    assert chunk_size(100_000, 2) == 50 and chunk_size(10, 2) == 2


def test_long_frame_is_split_by_id_in_order_of_appearance() -> None:
    a, b = raw(1, days=2), raw(2, days=2)
    long = pd.concat(
        [
            pd.DataFrame({"unique_id": "b", "ds": b.index.tz_localize(None), "y": b.to_numpy()}),
            pd.DataFrame({"unique_id": "a", "ds": a.index.tz_localize(None), "y": a.to_numpy()}),
        ]
    )
    parts = split_long(long, timezone="Asia/Jakarta")
    assert [sid for sid, _ in parts] == ["b", "a"]
    assert str(parts[0][1].index.tz) == "Asia/Jakarta"
    np.testing.assert_allclose(parts[1][1].to_numpy(), a.to_numpy())
    with pytest.raises(UserError, match="missing column"):
        split_long(long.drop(columns="y"))


def test_bad_settings_fail_once_before_any_work() -> None:
    with pytest.raises(UserError, match="--model"):
        forecast_many(fleet(2), BatchSettings(horizon=DAY, model="nope"))
    with pytest.raises(UserError, match="--workers"):
        make_engine(0)


def test_process_pool_equals_in_process() -> None:
    items = fleet(5)
    ref = forecast_many(items, SETTINGS, engine=InProcessEngine())
    pool = ProcessPoolEngine(2)
    try:
        got = forecast_many(items, SETTINGS, engine=pool, chunk=2)
    finally:
        pool.close()
    assert got.engine == "processes(2)" and got.chunks == 3
    _assert_same(ref, got)


def _assert_same(ref: Any, got: Any) -> None:
    assert [o.id for o in got.outcomes] == [o.id for o in ref.outcomes]
    assert [o.model for o in got.outcomes] == [o.model for o in ref.outcomes]
    for sid, frame in frames(ref).items():
        pd.testing.assert_frame_equal(frames(got)[sid], frame)


@pytest.mark.slow
def test_dask_local_cluster_equals_in_process() -> None:
    distributed = pytest.importorskip("distributed")
    items = [*fleet(4), ("empty", raw(9).where(lambda s: s < 0))]
    ref = forecast_many(items, SETTINGS)
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=False,
        protocol="tcp",
        host="127.0.0.1",
        dashboard_address=None,
    ) as cluster:
        engine = DaskEngine(cluster.scheduler_address)  # by address, as --dask-scheduler does
        try:
            assert engine.workers == 2
            got = forecast_many(items, SETTINGS, engine=engine, chunk=2)
        finally:
            engine.close()
    _assert_same(ref, got)
    assert got.outcomes[-1].error == ref.outcomes[-1].error and got.outcomes[-1].error


def test_unreachable_dask_scheduler_is_an_operational_error() -> None:
    pytest.importorskip("distributed")
    with pytest.raises(OperationalError, match="cannot reach the Dask scheduler"):
        DaskEngine("tcp://127.0.0.1:9", timeout=1)
