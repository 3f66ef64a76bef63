"""The two regressors of the learned family: LightGBM with an L1 loss, and ridge regression in numpy.

Both fit ``z = f(X)`` on the feature matrix of :mod:`forecaster.models.features` (the target is the value over
its recent weekly level). They differ where it matters: trees take NaN features and split on time of day by
themselves, a linear model needs gaps filled and time of day one-hot encoded, and is cheaper by two orders of
magnitude. LightGBM is imported only when a tree model is fitted (it is a heavy import, and the forecast path
must not pay it unless a learned model runs); it runs single-threaded and deterministic, so a forecast does
not depend on the machine's load or core count.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

# Tree settings: small trees, many of them, L1 loss (robust to bursts), fixed seed and one thread.
LGBM_PARAMS: dict[str, Any] = {
    "objective": "l1",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 20,
    "feature_fraction": 0.9,
    "lambda_l2": 1.0,
    "num_threads": 1,
    "deterministic": True,
    "force_row_wise": True,
    "seed": 7,
    "verbose": -1,
}
LGBM_ROUNDS = 150
RIDGE_ALPHAS = (0.1, 1.0, 10.0, 100.0)
MAX_HOUR_SLOTS = 24


class Regressor(Protocol):
    """fit(X, z) -> predict(X); X (rows, features), NaN allowed."""

    def fit(self, x: np.ndarray, z: np.ndarray, names: list[str]) -> Regressor: ...

    def predict(self, x: np.ndarray) -> np.ndarray: ...


class LGBMRegressor:
    """Gradient-boosted trees, L1 objective (LightGBM's native API, no scikit-learn)."""

    def __init__(self, rounds: int = LGBM_ROUNDS, **params: Any) -> None:
        self.rounds = rounds
        self.params = LGBM_PARAMS | params
        self._booster: Any = None

    def fit(self, x: np.ndarray, z: np.ndarray, names: list[str]) -> LGBMRegressor:
        import lightgbm as lgb

        data = lgb.Dataset(x, label=z, feature_name=names, free_raw_data=True, params={"verbose": -1})
        self._booster = lgb.train(self.params, data, num_boost_round=self.rounds)
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self._booster is None:
            raise RuntimeError("fit() must be called before predict()")
        return np.asarray(self._booster.predict(x, num_threads=1), dtype=float)


class RidgeRegressor:
    """L2-regularised least squares on standardised features, the penalty chosen by generalised CV.

    Time of day (bucketed to at most 24 slots) and weekday are one-hot; NaN lags take the seasonal median's
    value, other NaN features their training mean.
    """

    def __init__(self, alphas: tuple[float, ...] = RIDGE_ALPHAS) -> None:
        self.alphas = alphas
        self._names: list[str] = []
        self._fill: np.ndarray | None = None
        self._mu: np.ndarray | None = None
        self._sd: np.ndarray | None = None
        self._coef: np.ndarray | None = None
        self._slots = 1
        self.alpha = float("nan")

    def _design(self, x: np.ndarray) -> np.ndarray:
        assert self._fill is not None
        names = self._names
        x = x.copy()
        smed = names.index("smed")
        for j, name in enumerate(names):
            if name.startswith("lag_"):
                x[:, j] = np.where(np.isfinite(x[:, j]), x[:, j], x[:, smed])
        x = np.where(np.isfinite(x), x, self._fill)
        slot = x[:, names.index("slot")]
        weekday = x[:, names.index("weekday")].astype(int)
        hour = np.minimum((slot * self._slots / self._period).astype(int), self._slots - 1)
        keep = [j for j, name in enumerate(names) if name not in ("slot", "weekday")]
        one_hot_h = np.eye(self._slots)[np.clip(hour, 0, self._slots - 1)][:, 1:]
        one_hot_w = np.eye(7)[np.clip(weekday, 0, 6)][:, 1:]
        return np.hstack([x[:, keep], one_hot_h, one_hot_w])

    def fit(self, x: np.ndarray, z: np.ndarray, names: list[str]) -> RidgeRegressor:
        self._names = list(names)
        finite = np.isfinite(x)
        fill = np.where(finite, x, 0.0).sum(axis=0) / np.maximum(finite.sum(axis=0), 1)
        self._fill = np.where(finite.any(axis=0), fill, 1.0)
        slot = x[:, names.index("slot")]
        self._period = float(np.nanmax(slot)) + 1.0 if np.isfinite(slot).any() else 1.0
        self._slots = int(min(MAX_HOUR_SLOTS, self._period))
        d = self._design(x)
        self._mu = d.mean(axis=0)
        sd = d.std(axis=0)
        self._sd = np.where(sd > 1e-12, sd, 1.0)
        a = (d - self._mu) / self._sd
        zc = z - z.mean()
        u, s, vt = np.linalg.svd(a, full_matrices=False)
        uz = u.T @ zc
        best = (np.inf, self.alphas[0])
        n = len(z)
        for alpha in self.alphas:
            shrink = s**2 / (s**2 + alpha)
            resid = zc - u @ (shrink * uz)
            dof = shrink.sum()
            gcv = float(resid @ resid) / max(n - dof, 1.0) ** 2
            if gcv < best[0]:
                best = (gcv, alpha)
        self.alpha = best[1]
        beta = vt.T @ (s / (s**2 + self.alpha) * uz)
        self._coef = np.concatenate([[z.mean() - float((self._mu / self._sd) @ beta)], beta / self._sd])
        return self

    def predict(self, x: np.ndarray) -> np.ndarray:
        if self._coef is None:
            raise RuntimeError("fit() must be called before predict()")
        d = self._design(x)
        return np.asarray(self._coef[0] + d @ self._coef[1:], dtype=float)


def make_regressor(kind: str) -> Regressor:
    """A fresh regressor: ``lgbm`` or ``ridge``."""
    if kind == "lgbm":
        return LGBMRegressor()
    if kind == "ridge":
        return RidgeRegressor()
    raise ValueError(f"unknown regressor {kind!r}")
