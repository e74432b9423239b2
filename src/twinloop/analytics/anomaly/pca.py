"""PCA with Hotelling's T² and the Q statistic (squared prediction error): the classic multivariate
control chart. T² catches unusual values *along* the normal correlations, Q catches readings that
break them (one sensor disagreeing with the channels it normally moves with).

Score: ``(T²/k + Q/Q̄)/2`` — each part scaled to about 1 on normal data (``k`` components kept,
``Q̄`` the mean training Q). Attribution: each channel's share of Q (its squared residual) plus
its contribution to T² (``z_j · Σ_k p_jk t_k / λ_k``, clipped at 0), which sum to the score.
"""

from __future__ import annotations

import numpy as np

from twinloop.analytics.anomaly.base import BaseDetector
from twinloop.core.errors import ValidationError


class PcaDetector(BaseDetector):
    """Hotelling T² + Q on the principal components that explain ``variance`` of normal data."""

    name = "pca"

    def __init__(
        self, variance: float = 0.9, window: int = 1, stationarize: float | None = None
    ) -> None:
        super().__init__(window, stationarize)
        self.variance = variance

    def _fit(self, z: np.ndarray) -> None:
        if not 0.0 < self.variance <= 1.0:
            raise ValidationError(f"pca: variance must be in (0, 1], got {self.variance}")
        cov = np.cov(z, rowvar=False).reshape(z.shape[1], z.shape[1])
        eigval, eigvec = np.linalg.eigh(cov)
        order = np.argsort(eigval)[::-1]
        eigval, eigvec = np.clip(eigval[order], 0.0, None), eigvec[:, order]
        explained = np.cumsum(eigval) / max(eigval.sum(), 1e-12)
        k = int(np.searchsorted(explained, self.variance - 1e-12) + 1)
        k = min(max(k, 1), max(z.shape[1] - 1, 1))
        self.components_ = eigvec[:, :k]
        self.eigenvalues_ = np.maximum(eigval[:k], 1e-6 * max(eigval[0], 1e-12))
        _, q = self._parts(z)
        self.q_mean_ = max(float(q.mean()), 1e-9)

    def _parts(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        t = z @ self.components_
        resid = z - t @ self.components_.T
        return t, (resid**2).sum(axis=1)

    def _score(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p, lam = self.components_, self.eigenvalues_
        t = z @ p
        resid = z - t @ p.T
        k = p.shape[1]
        t2_contrib = np.clip(z * ((t / lam) @ p.T), 0.0, None) / k
        q_contrib = resid**2 / self.q_mean_
        weights = 0.5 * (t2_contrib + q_contrib)
        t2 = (t**2 / lam).sum(axis=1)
        scores = 0.5 * (t2 / k + q_contrib.sum(axis=1))
        return scores, weights


__all__ = ["PcaDetector"]
