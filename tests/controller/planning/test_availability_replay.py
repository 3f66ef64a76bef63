"""An availability target is met in replay on every development trace, within a stated tolerance.

Each development trace (../shared/data/traces, RECHARGE_TRACES overrides) is replayed over its last 7 days
through the real ``decide()`` (forecasts refitted at each midnight from earlier data, the fast
``seasonal_median`` model; the cluster of the policy benchmark: the window's peak needs 20 replicas,
start-up 90 s + warm-up 30 s) at the targets 99%, 99.5% and 99.9%. The share of trace intervals whose
capacity covered the demand throughout must reach the target less :data:`TOLERANCE`; a higher target
must never cost fewer replica-hours. ``benchmarks/availability_bench.py`` measures the same on 14 days
with the product's ``auto`` model.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.config import ControllerConfig
from controller.planning.predictive import PredictivePolicy
from controller.planning.refits import pipeline_forecaster, shared
from controller.planning.simulate import SimParams, make_trace, simulate
from tests.support.tools import REPO_ROOT

TRACES = Path(os.environ.get("RECHARGE_TRACES") or REPO_ROOT.parent / "shared" / "data" / "traces")
TOLERANCE = 0.005  # 0.5 percentage points of intervals
TARGETS = (0.99, 0.995, 0.999)


def trace_files() -> list[Path]:
    return sorted(TRACES.glob("*.csv")) if TRACES.is_dir() else []


def load_rate(path: Path) -> pd.Series:
    """Bucket counts as a per-second rate (value / bucket seconds), as the benchmarks read them."""
    df = pd.read_csv(path)
    idx = pd.DatetimeIndex(pd.to_datetime(df["timestamp"])).tz_localize("UTC")
    s = pd.Series(df["value"].to_numpy(dtype=float), index=idx).sort_index()
    s = s[~s.index.duplicated(keep="last")]
    return s / (float(np.median(np.diff(s.index.as_unit("ns").asi8))) / 1e9)


@pytest.mark.slow
@pytest.mark.parametrize("path", trace_files(), ids=lambda p: p.stem)
def test_targets_are_met_in_replay(path: Path) -> None:
    rate = load_rate(path)
    start = (rate.index[-1] - pd.Timedelta(days=7)).ceil("D")
    window = rate[rate.index >= start]
    cap = float(window.max()) / 20.0
    params = SimParams(capacity_per_replica=cap, min_replicas=1, max_replicas=40,
                       startup=pd.Timedelta(seconds=90), warmup_time=pd.Timedelta(seconds=30))
    trace = make_trace(window, where=path.name)
    fit = shared(pipeline_forecaster("seasonal_median", "UTC"))
    hours = []
    for target in TARGETS:
        cfg = ControllerConfig(capacity_per_replica=cap, min_replicas=1, max_replicas=40,
                               availability_target=target)
        r = simulate(trace, PredictivePolicy(config=cfg, history=rate, forecaster=fit), params)
        assert r.availability >= target - TOLERANCE, f"{path.stem} at {target:.1%}: {r.availability:.3%}"
        hours.append(r.metrics.replica_hours)
    assert hours == sorted(hours), hours


def test_the_development_traces_are_there() -> None:
    if os.environ.get("CI") and not trace_files():
        pytest.fail(f"no development traces in {TRACES}")
    if not trace_files():
        pytest.skip(f"no development traces in {TRACES}")
    assert {p.stem for p in trace_files()} >= {"nyc_taxi"}
