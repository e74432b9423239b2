"""Isolation forest (scikit-learn): abnormal rows are isolated by fewer random splits.

The forest gives no per-channel explanation, so the attribution is each channel's squared
standardized deviation from normal (its distance from the training centre): the channels that
stand out are the ones a person should look at first.
"""

from __future__ import annotations

import numpy as np
from sklearn.ensemble import IsolationForest

from twinloop.analytics.anomaly.base import BaseDetector


class IsolationForestDetector(BaseDetector):
    """``-score_samples`` of an isolation forest (about 0.35-0.45 on normal data, up to 1)."""

    name = "iforest"

    def __init__(
        self,
        n_trees: int = 200,
        max_samples: int = 256,
        seed: int = 0,
        window: int = 1,
        stationarize: float | None = None,
    ) -> None:
        super().__init__(window, stationarize)
        self.n_trees = n_trees
        self.max_samples = max_samples
        self.seed = seed

    def _fit(self, z: np.ndarray) -> None:
        self.forest_ = IsolationForest(
            n_estimators=self.n_trees, max_samples=min(self.max_samples, len(z)), random_state=self.seed
        ).fit(z)

    def _score(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return -self.forest_.score_samples(z), z**2


__all__ = ["IsolationForestDetector"]
