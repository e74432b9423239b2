"""The physics-residual detector: scores an estimator's innovations (measured − predicted).

An estimator that tracks a twin with its physics model leaves residuals that are small and
roughly Gaussian while the asset behaves like its model. This detector takes those residual
channels as input (one column per residual, e.g. ``flow``, ``bearing.temperature``), learns
their normal mean and spread (and, with ``covariance``, their correlation), and scores the
normalized innovation squared per channel — a χ²-like statistic divided by the channel count.
Attribution: each channel's term of that sum (``z_j·(Σ⁻¹z)_j``, clipped at 0).
"""

from __future__ import annotations

import numpy as np

from twinloop.analytics.anomaly.base import BaseDetector


class ResidualDetector(BaseDetector):
    """Normalized innovation squared of residual channels; ``covariance`` uses their correlation."""

    name = "residual"

    def __init__(
        self,
        covariance: bool = False,
        ridge: float = 1e-3,
        window: int = 1,
        stationarize: float | None = None,
    ) -> None:
        super().__init__(window, stationarize)
        self.covariance = covariance
        self.ridge = ridge

    def _fit(self, z: np.ndarray) -> None:
        m = z.shape[1]
        if self.covariance and m > 1:
            corr = np.cov(z, rowvar=False).reshape(m, m) + self.ridge * np.eye(m)
            self.precision_ = np.linalg.pinv(corr)
        else:
            self.precision_ = np.eye(m)

    def _score(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        terms = z * (z @ self.precision_)
        return terms.sum(axis=1) / z.shape[1], np.clip(terms, 0.0, None)


__all__ = ["ResidualDetector"]
