"""The forecast artifact round-trips through JSON and refuses documents a controller must not act on."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from forecaster.artifact import Event, ForecastArtifact, Interval, QualityNote
from forecaster.errors import StoreError

T0 = pd.Timestamp("2026-11-26T00:00:00+00:00")


def make_artifact(n: int = 3) -> ForecastArtifact:
    return ForecastArtifact(
        created_at=T0 - pd.Timedelta("5min"),
        model="seasonal_median",
        timezone="Asia/Jakarta",
        interval_seconds=3600,
        band_level=0.9,
        history_start=T0 - pd.Timedelta("56D"),
        history_end=T0 - pd.Timedelta("1h"),
        history_points=56 * 24,
        source="file:data/nyc_taxi.csv",
        horizon_seconds=n * 3600,
        intervals=tuple(
            Interval(T0 + pd.Timedelta(hours=i), 100.0 + i, 90.0 + i, 110.0 + i, 120.0 + i) for i in range(n)
        ),
        events=(Event("Month start", "month_start", T0, T0 + pd.Timedelta("1D"), 1.2),),
        quality=(QualityNote("gap", "warning", "2 missing intervals"),),
        backtest={"wape": 0.04, "mape": 0.05, "bias": -0.01, "coverage": 0.9, "folds": 4},
    )


def test_round_trip() -> None:
    art = make_artifact()
    back = ForecastArtifact.from_json(art.to_json())
    assert back == art
    assert list(back.frame().columns) == ["ds", "yhat", "yhat_lower", "yhat_upper", "peak_upper"]
    assert back.age(T0) == pd.Timedelta("5min")


def _mutate(doc: dict, path: list, value: object) -> dict:
    target = doc
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return doc


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (["schema"], "other", "schema is 'other'"),
        (["version"], 99, "schema version 99 is not supported"),
        (["intervals"], [], "has no intervals"),
        (["intervals", 1, "yhat"], float("nan"), "non-finite"),
        (["intervals", 1, "yhat_lower"], 500.0, "must satisfy"),
        (["intervals", 1, "peak_upper"], 1.0, "must satisfy"),
        (["intervals", 1, "ds"], "2026-11-25T00:00:00+00:00", "ascending"),
        (["intervals", 0, "yhat_lower"], -1.0, "negative"),
        (["created_at"], "2026-11-26T00:00:00", "malformed"),
        (["history"], None, "malformed"),
    ],
    ids=[
        "schema",
        "version",
        "empty",
        "nan",
        "inverted",
        "peak-below-band",
        "order",
        "negative",
        "naive-ts",
        "hist",
    ],
)
def test_rejects_bad_documents(path: list, value: object, message: str) -> None:
    doc = json.loads(make_artifact().to_json())
    with pytest.raises(StoreError, match=message):
        ForecastArtifact.from_dict(_mutate(doc, path, value))


def test_not_json() -> None:
    with pytest.raises(StoreError, match="not valid JSON"):
        ForecastArtifact.from_json("{oops")


def test_to_json_validates() -> None:
    bad = replace(make_artifact(), intervals=())
    with pytest.raises(StoreError):
        bad.to_json()
