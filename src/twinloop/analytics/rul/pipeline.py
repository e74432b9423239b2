"""From raw trajectories to a feature matrix: regime normalization, then window features.

Shared by the data-driven prognosers so that training and prediction see exactly the same
transformation (fitted on the training fleet only).
"""

from __future__ import annotations

import numpy as np

from twinloop.analytics.rul.features import window_features
from twinloop.analytics.rul.regimes import RegimeNormalizer
from twinloop.analytics.rul.trajectories import Trajectories
from twinloop.core.errors import ValidationError


class FeaturePipeline:
    """Regime-normalized window features; ``sensors_`` are the informative sensors kept."""

    def __init__(self, n_regimes: int | str = "auto", seed: int = 0) -> None:
        self.n_regimes = n_regimes
        self.seed = seed

    def fit(self, train: Trajectories) -> FeaturePipeline:
        self.normalizer_ = RegimeNormalizer(self.n_regimes, self.seed).fit(train.settings, train.sensors)
        self.input_names_ = train.sensor_names
        self.setting_names_ = train.setting_names
        self.sensors_ = tuple(n for n, keep in zip(train.sensor_names, self.normalizer_.informative_,
                                                   strict=True) if keep)
        if not self.sensors_:
            raise ValidationError("no sensor varies in the training data; nothing to learn from")
        return self

    def normalized(self, traj: Trajectories) -> np.ndarray:
        """Regime-normalized informative sensors of every row."""
        if not hasattr(self, "normalizer_"):
            raise ValidationError("FeaturePipeline is not fitted", hint="call fit(train) first")
        if traj.sensor_names != self.input_names_ or traj.setting_names != self.setting_names_:
            raise ValidationError(
                "these trajectories have other sensors/settings than the training data",
                hint=f"expected sensors {list(self.input_names_)}, settings {list(self.setting_names_)}",
            )
        z = self.normalizer_.transform(traj.settings, traj.sensors)
        return z[:, self.normalizer_.informative_]

    def transform(self, traj: Trajectories, rows: np.ndarray | None = None) -> tuple[np.ndarray, list[str]]:
        """Features at ``rows`` (default: every row) and their names."""
        z = self.normalized(traj)
        return window_features(z, traj.time, traj.row_starts(), self.sensors_, rows)


__all__ = ["FeaturePipeline"]
