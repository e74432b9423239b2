"""Operating-condition normalization: cluster the operating settings, standardize sensors per regime.

A turbofan at cruise and one at take-off read very different temperatures with the same wear;
C-MAPSS FD002/FD004 mix six such regimes. Clustering the settings (k-means) and standardizing
each sensor within its regime leaves what is left: degradation. ``n_regimes="auto"`` picks the
smallest k whose clusters are tight (within-cluster spread < 1 % of the total), so single-regime
data (FD001, FD003) gets one regime and plain standardization.

>>> rng = np.random.default_rng(0)
>>> settings = rng.choice([0.0, 10.0, 20.0], 300)[:, None] + rng.normal(0, 0.01, (300, 1))
>>> sensors = settings * 5.0 + rng.normal(0, 1.0, (300, 1))
>>> norm = RegimeNormalizer().fit(settings, sensors)
>>> norm.n_regimes_, bool(abs(norm.transform(settings, sensors).std() - 1.0) < 0.1)
(3, True)
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans

from twinloop.core.errors import ValidationError

MAX_AUTO_REGIMES = 8
TIGHT = 0.01
MIN_STD = 1e-8


class RegimeNormalizer:
    """Per-regime standardization of sensors; the regime of a row is the nearest settings centroid."""

    def __init__(self, n_regimes: int | str = "auto", seed: int = 0) -> None:
        self.n_regimes = n_regimes
        self.seed = seed

    def fit(self, settings: np.ndarray, sensors: np.ndarray) -> RegimeNormalizer:
        settings, sensors = _check(settings, sensors)
        self.scale_ = np.where(settings.std(axis=0) > MIN_STD, settings.std(axis=0), 1.0) if settings.size \
            else np.ones(settings.shape[1])
        z = settings / self.scale_
        self.centroids_ = self._cluster(z)
        regime = self.regimes(settings)
        k = len(self.centroids_)
        self.n_regimes_ = k
        self.mean_ = np.zeros((k, sensors.shape[1]))
        self.std_ = np.ones((k, sensors.shape[1]))
        for r in range(k):
            rows = sensors[regime == r]
            if len(rows):
                self.mean_[r] = rows.mean(axis=0)
                self.std_[r] = rows.std(axis=0)
        # A sensor that never moves within any regime carries no information (C-MAPSS has several).
        self.informative_ = np.any(self.std_ > MIN_STD * (1.0 + np.abs(self.mean_)), axis=0)
        self.std_ = np.where(self.std_ > MIN_STD * (1.0 + np.abs(self.mean_)), self.std_, 1.0)
        return self

    def _cluster(self, z: np.ndarray) -> np.ndarray:
        if z.shape[1] == 0:
            return np.zeros((1, 0))
        if isinstance(self.n_regimes, int):
            if self.n_regimes < 1:
                raise ValidationError("n_regimes must be >= 1 or 'auto'")
            return self._kmeans(z, self.n_regimes).cluster_centers_
        if self.n_regimes != "auto":
            raise ValidationError(f"n_regimes must be an int or 'auto', not {self.n_regimes!r}")
        total = float(((z - z.mean(axis=0)) ** 2).sum())
        if total <= 0.0:
            return z.mean(axis=0, keepdims=True)
        sample = z if len(z) <= 20_000 else z[np.random.default_rng(self.seed).choice(len(z), 20_000, False)]
        total = float(((sample - sample.mean(axis=0)) ** 2).sum())
        for k in range(2, MAX_AUTO_REGIMES + 1):
            if k > len(np.unique(sample.round(6), axis=0)):
                break
            km = self._kmeans(sample, k)
            if km.inertia_ < TIGHT * total:
                return km.cluster_centers_
        return sample.mean(axis=0, keepdims=True)

    def _kmeans(self, z: np.ndarray, k: int) -> KMeans:
        return KMeans(n_clusters=k, n_init=4, random_state=self.seed).fit(z)

    def regimes(self, settings: np.ndarray) -> np.ndarray:
        """The regime (0 … k−1) of every row: nearest centroid in scaled settings space."""
        settings = np.asarray(settings, dtype=np.float64)
        if settings.shape[1] == 0 or len(self.centroids_) == 1:
            return np.zeros(len(settings), dtype=np.int64)
        z = settings / self.scale_
        d = ((z[:, None, :] - self.centroids_[None, :, :]) ** 2).sum(axis=2)
        return d.argmin(axis=1)

    def transform(self, settings: np.ndarray, sensors: np.ndarray) -> np.ndarray:
        """Sensors standardized within each row's regime (same shape as ``sensors``)."""
        if not hasattr(self, "mean_"):
            raise ValidationError("RegimeNormalizer is not fitted", hint="call fit(settings, sensors) first")
        settings, sensors = _check(settings, sensors)
        if sensors.shape[1] != self.mean_.shape[1]:
            raise ValidationError(f"expected {self.mean_.shape[1]} sensors, got {sensors.shape[1]}")
        r = self.regimes(settings)
        return (sensors - self.mean_[r]) / self.std_[r]


def _check(settings: np.ndarray, sensors: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sensors = np.asarray(sensors, dtype=np.float64)
    settings = np.asarray(settings, dtype=np.float64).reshape(len(sensors), -1)
    if sensors.ndim != 2:
        raise ValidationError("sensors must be a (rows, sensors) matrix")
    return settings, sensors


__all__ = ["RegimeNormalizer"]
