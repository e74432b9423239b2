"""An MSET-like similarity model: estimate each reading from remembered normal states.

The memory holds the training rows at each channel's minimum and maximum (so the whole normal
range is covered) plus evenly spread rows up to ``memory`` vectors. A reading is estimated as a
weighted blend of memory vectors, weights from MSET's similarity operator (a Gaussian kernel)
solved against the memory's own similarity matrix (``w = (G + ridge·I)⁻¹ k``, normalized to sum
to 1). Score: mean squared residual of the standardized channels; attribution: each channel's
squared residual — the sensor that disagrees with the remembered state drives the alert.
"""

from __future__ import annotations

import numpy as np

from twinloop.analytics.anomaly.base import BaseDetector
from twinloop.core.errors import ValidationError


def _similarity(a: np.ndarray, b: np.ndarray, bandwidth: float) -> np.ndarray:
    d2 = (a**2).sum(1)[:, None] + (b**2).sum(1)[None, :] - 2.0 * a @ b.T
    return np.exp(-np.clip(d2, 0.0, None) / (2.0 * bandwidth**2))


class MsetDetector(BaseDetector):
    """Similarity-based state estimation; ``bandwidth`` None means ``sqrt(channels)``."""

    name = "mset"

    def __init__(
        self,
        memory: int = 200,
        bandwidth: float | None = None,
        ridge: float = 1e-3,
        window: int = 1,
        stationarize: float | None = None,
    ) -> None:
        super().__init__(window, stationarize)
        self.memory = memory
        self.bandwidth = bandwidth
        self.ridge = ridge

    def _fit(self, z: np.ndarray) -> None:
        if self.memory < 2:
            raise ValidationError(f"mset: memory must be >= 2, got {self.memory}")
        extremes = np.unique(np.concatenate([z.argmin(axis=0), z.argmax(axis=0)]))
        rest = np.setdiff1d(np.arange(len(z)), extremes)
        n_more = max(self.memory - len(extremes), 0)
        if n_more and len(rest):
            pick = rest[np.linspace(0, len(rest) - 1, min(n_more, len(rest))).round().astype(int)]
            extremes = np.union1d(extremes, pick)
        self.memory_ = z[extremes]
        self.bandwidth_ = float(self.bandwidth or np.sqrt(z.shape[1]))
        g = _similarity(self.memory_, self.memory_, self.bandwidth_)
        regularized = g + self.ridge * np.eye(len(g))
        try:  # symmetric positive definite with a ridge: a solve, several times cheaper than pinv's SVD
            self.inverse_ = np.linalg.solve(regularized, np.eye(len(g)))
        except np.linalg.LinAlgError:  # ridge 0 on repeated memory rows
            self.inverse_ = np.linalg.pinv(regularized)

    @property
    def score_floor(self) -> float:
        """A residual under a tenth of a channel's normal variance means nothing: on few, quiet
        channels MSET reproduces normal rows almost exactly, so its normal scores alone would
        make every small novelty look enormous."""
        return 0.1

    def estimate(self, z: np.ndarray) -> np.ndarray:
        """The remembered normal state closest to each standardized row."""
        w = _similarity(z, self.memory_, self.bandwidth_) @ self.inverse_
        total = w.sum(axis=1, keepdims=True)
        w = np.where(np.abs(total) > 1e-12, w / np.where(np.abs(total) > 1e-12, total, 1.0), 0.0)
        return w @ self.memory_

    def _score(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        resid2 = (z - self.estimate(z)) ** 2
        return resid2.mean(axis=1), resid2


__all__ = ["MsetDetector"]
