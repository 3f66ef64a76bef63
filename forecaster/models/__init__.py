"""Forecasting models, each behind :class:`forecaster.models.base.Model` and registered by alias.

``MODELS`` maps an alias to a zero-argument factory returning a fresh, unfitted model. ``AUTO_CANDIDATES``
are the models the pipeline backtests when the user asks for ``--model auto``.
"""

from __future__ import annotations

from collections.abc import Callable

from forecaster.models.base import Model
from forecaster.models.baselines import (
    SeasonalDayRatio,
    SeasonalMedian,
    SeasonalMedianLevel,
    SeasonalMedianSmooth,
    SeasonalNaive,
    SeasonalWeightedMean,
)
from forecaster.models.learned import LGBMDirect, LGBMRecursive, RidgeDirect, RidgeRecursive
from forecaster.models.prophet_models import ProphetDefault, ProphetTraffic
from forecaster.models.stl import MSTLETS

MODELS: dict[str, Callable[[], Model]] = {
    SeasonalNaive.alias: SeasonalNaive,
    SeasonalMedian.alias: SeasonalMedian,
    SeasonalMedianLevel.alias: SeasonalMedianLevel,
    SeasonalMedianSmooth.alias: SeasonalMedianSmooth,
    SeasonalWeightedMean.alias: SeasonalWeightedMean,
    SeasonalDayRatio.alias: SeasonalDayRatio,
    MSTLETS.alias: MSTLETS,
    LGBMDirect.alias: LGBMDirect,
    RidgeDirect.alias: RidgeDirect,
    LGBMRecursive.alias: LGBMRecursive,
    RidgeRecursive.alias: RidgeRecursive,
    ProphetTraffic.alias: ProphetTraffic,
    ProphetDefault.alias: ProphetDefault,
}

# Prophet and MSTL are opt-in (--model prophet / mstl_ets): on the development traces they backtest worse than
# the seasonal blends at 30-100x the cost (docs/benchmarks.md), and auto refits every candidate on every fold.
# The learned family is opt-in too (--candidates ...,lgbm,ridge, or --global-model for a batch): in blends it
# moves the development traces' WAPE by a few percent at most, at 10-100x a seasonal candidate's cost per
# series ("Forecast accuracy by model family" in docs/benchmarks.md), which would undo the batch speed-up.
AUTO_CANDIDATES: tuple[str, ...] = (
    "seasonal_median_level",
    "seasonal_median",
    "seasonal_median_smooth",
    "seasonal_wmean",
    "seasonal_dayratio",
    "snaive",
)

# Tried in order when the requested model (or every auto candidate) fails: the simplest models fail least.
FALLBACK_CHAIN: tuple[str, ...] = ("seasonal_median", "snaive")


def available_models() -> list[str]:
    """Registered aliases, sorted, for help texts and error messages."""
    return sorted(MODELS)
