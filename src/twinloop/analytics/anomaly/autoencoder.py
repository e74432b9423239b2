"""An autoencoder (scikit-learn ``MLPRegressor``, no deep-learning stack needed).

The network learns to reproduce normal readings through a narrow middle layer, so it can only
reproduce the correlations it saw. Score: mean squared reconstruction error of the standardized
channels; attribution: each channel's squared reconstruction error.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPRegressor

from twinloop.analytics.anomaly.base import BaseDetector


class AutoencoderDetector(BaseDetector):
    """A ``channels → hidden → bottleneck → hidden → channels`` tanh network; bottleneck None = m//2."""

    name = "autoencoder"

    def __init__(
        self,
        hidden: int = 16,
        bottleneck: int | None = None,
        max_iter: int = 400,
        alpha: float = 1e-3,
        seed: int = 0,
        window: int = 1,
        stationarize: float | None = None,
    ) -> None:
        super().__init__(window, stationarize)
        self.hidden = hidden
        self.bottleneck = bottleneck
        self.max_iter = max_iter
        self.alpha = alpha
        self.seed = seed

    def _fit(self, z: np.ndarray) -> None:
        b = self.bottleneck or max(1, z.shape[1] // 2)
        self.network_ = MLPRegressor(
            hidden_layer_sizes=(self.hidden, b, self.hidden),
            activation="tanh",
            alpha=self.alpha,
            max_iter=self.max_iter,
            random_state=self.seed,
            tol=1e-5,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter is the budget we chose
            self.network_.fit(z, z)

    def _score(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        recon = self.network_.predict(z).reshape(z.shape)
        resid2 = (z - recon) ** 2
        return resid2.mean(axis=1), resid2


__all__ = ["AutoencoderDetector"]
