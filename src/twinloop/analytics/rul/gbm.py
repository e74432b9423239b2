"""Data-driven RUL: gradient-boosted trees (LightGBM) on window features, with calibrated quantiles.

One mean-loss model gives the point estimate; one quantile-loss model per level gives the
distribution. Quantiles are *conformally calibrated* (split conformal): the quantile models are
trained on ``1 − calibration_share`` of the training units, and each level ``q`` is shifted by
the ``q``-quantile of ``truth − prediction`` on the held-out units, so the stated levels hold on
units the models never saw. The mean model, which gives the point, is trained on every unit.
Targets are capped (``cap``): far from failure, sensors cannot tell 200 from 300 cycles apart,
and the cap keeps the trees from chasing that noise. Calibration rows are those within
``calibration_horizon × cap`` of failure, where prognosis is asked for (uncapped truth).

``n_jobs`` defaults to 1: LightGBM's OpenMP threads spin-wait, and on a shared 2-core machine
two threads trained ten times slower than one.

The explanation is LightGBM's exact tree SHAP contributions of the mean model, summed per sensor.
"""

from __future__ import annotations

from typing import Any, Self

import lightgbm as lgb
import numpy as np

from twinloop.analytics.rul.distribution import Driver, RulDistribution
from twinloop.analytics.rul.features import sensor_of
from twinloop.analytics.rul.pipeline import FeaturePipeline
from twinloop.analytics.rul.protocol import check_fitted, one_unit, require_rul
from twinloop.analytics.rul.trajectories import Trajectories
from twinloop.core.errors import ValidationError

LEVELS = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)
TREE_PARAMS: dict[str, Any] = {
    "n_estimators": 500, "learning_rate": 0.03, "num_leaves": 15, "min_child_samples": 40,
    "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.5, "reg_lambda": 1.0,
}


class GbmPrognoser:
    """Quantile gradient boosting on regime-normalized window features (see the module docstring)."""

    def __init__(
        self,
        cap: float | None = 125.0,
        levels: tuple[float, ...] = LEVELS,
        calibration_share: float = 0.2,
        calibration_horizon: float = 1.2,
        n_regimes: int | str = "auto",
        tree_params: dict[str, Any] | None = None,
        n_jobs: int = 1,
        seed: int = 0,
    ) -> None:
        self.cap = cap
        self.levels = levels
        self.calibration_share = calibration_share
        self.calibration_horizon = calibration_horizon
        self.n_regimes = n_regimes
        self.tree_params = tree_params
        self.n_jobs = n_jobs
        self.seed = seed

    # --- training ---------------------------------------------------------------------------
    def _model(self, objective: str, alpha: float | None = None) -> lgb.LGBMRegressor:
        params = {**TREE_PARAMS, **(self.tree_params or {})}
        extra = {"alpha": alpha} if alpha is not None else {}
        return lgb.LGBMRegressor(objective=objective, random_state=self.seed, n_jobs=self.n_jobs,
                                 deterministic=True, force_col_wise=True, verbose=-1, **params, **extra)

    def fit(self, train: Trajectories) -> Self:
        require_rul(train)
        if any(not 0.0 < q < 1.0 for q in self.levels) or list(self.levels) != sorted(set(self.levels)):
            raise ValidationError("levels must be increasing and inside (0, 1)")
        self.pipeline_ = FeaturePipeline(self.n_regimes, self.seed).fit(train)
        x, self.feature_names_ = self.pipeline_.transform(train)
        assert train.rul is not None
        y = train.rul if self.cap is None else np.minimum(train.rul, self.cap)
        units = train.units
        rng = np.random.default_rng(self.seed)
        n_cal = int(round(self.calibration_share * len(units)))
        self.shifts_ = np.zeros(len(self.levels))
        fit_rows = np.ones(len(train), bool)
        if n_cal >= 2 and len(units) - n_cal >= 2:
            fit_rows = ~np.isin(train.unit, rng.choice(units, n_cal, replace=False))
        self.mean_model_ = self._model("regression").fit(x, y)  # the point estimate uses every unit
        self.quantile_models_ = [self._model("quantile", q).fit(x[fit_rows], y[fit_rows])
                                 for q in self.levels]
        horizon = np.inf if self.cap is None else self.calibration_horizon * self.cap
        rows = ~fit_rows & (train.rul <= horizon)
        if rows.sum() >= 20:
            pred = np.column_stack([m.predict(x[rows]) for m in self.quantile_models_])
            residual = train.rul[rows][:, None] - pred
            self.shifts_ = np.array([np.quantile(residual[:, i], q) for i, q in enumerate(self.levels)])
        self.time_unit_ = train.time_unit
        return self

    # --- prediction -------------------------------------------------------------------------
    def predict(self, history: Trajectories) -> RulDistribution:
        return self.predict_fleet(one_unit(history))[0]

    def predict_fleet(self, history: Trajectories) -> list[RulDistribution]:
        check_fitted(self, "mean_model_")
        rows = history.last_rows()
        x, _ = self.pipeline_.transform(history, rows)
        point = np.maximum(self.mean_model_.predict(x), 0.0)
        q = np.column_stack([m.predict(x) for m in self.quantile_models_]) + self.shifts_
        contrib = self.mean_model_.predict(x, pred_contrib=True)[:, :-1]
        return [
            RulDistribution.from_quantiles(self.levels, np.maximum(q[i], 0.0), unit=self.time_unit_,
                                           point=float(point[i]), drivers=self._drivers(contrib[i], x[i]),
                                           model="gbm")
            for i in range(len(rows))
        ]

    def _drivers(self, contrib: np.ndarray, x: np.ndarray, top: int = 5) -> list[Driver]:
        by_sensor: dict[str, float] = {}
        for name, c in zip(self.feature_names_, contrib, strict=True):
            key = sensor_of(name)
            by_sensor[key] = by_sensor.get(key, 0.0) + float(c)
        level = {sensor_of(n): float(v) for n, v in zip(self.feature_names_, x, strict=True)
                 if n.endswith(":mean5") or n == "age"}
        ranked = sorted(by_sensor.items(), key=lambda kv: -abs(kv[1]))[:top]
        return [Driver(name, round(c, 4), level.get(name)) for name, c in ranked]


__all__ = ["LEVELS", "GbmPrognoser"]
