"""Streaming detectors from river (Half-Space Trees) behind the batch interface.

river learns and scores one reading dict at a time; this adapter feeds it the rows of a frame.
Learning replays the normal batch through ``learn_one``; scoring calls only ``score_one``, so
scoring never changes the model and is repeatable. Features are scaled so the training range
fills the middle of [0, 1] (Half-Space Trees split that cube), leaving room for excursions.
Attribution: each channel's squared standardized deviation, as for the isolation forest.
"""

from __future__ import annotations

import numpy as np

from twinloop.analytics.anomaly.base import BaseDetector


class HalfSpaceTreesDetector(BaseDetector):
    """river's ``HalfSpaceTrees`` (score in [0, 1]); the mass window is at most half the training rows."""

    name = "hst"

    def __init__(
        self,
        n_trees: int = 25,
        height: int = 12,
        window_size: int = 250,
        seed: int = 0,
        window: int = 1,
        stationarize: float | None = None,
    ) -> None:
        super().__init__(window, stationarize)
        self.n_trees = n_trees
        self.height = height
        self.window_size = window_size
        self.seed = seed

    def _unit(self, z: np.ndarray) -> np.ndarray:
        span = np.where(self.hi_ - self.lo_ > 1e-9, self.hi_ - self.lo_, 1.0)
        return np.clip(0.25 + 0.5 * (z - self.lo_) / span, 0.0, 1.0)

    def _fit(self, z: np.ndarray) -> None:
        from river.anomaly import HalfSpaceTrees  # river is heavy to import; only load it when used

        self.lo_, self.hi_ = z.min(axis=0), z.max(axis=0)
        self.keys_ = [f"x{j}" for j in range(z.shape[1])]
        model = HalfSpaceTrees(
            n_trees=self.n_trees,
            height=self.height,
            window_size=max(2, min(self.window_size, len(z) // 2)),
            seed=self.seed,
        )
        for row in self._unit(z):
            model.learn_one(dict(zip(self.keys_, row.tolist(), strict=True)))
        self.model_ = model

    def _score(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keys = self.keys_
        scores = np.fromiter(
            (self.model_.score_one(dict(zip(keys, row.tolist(), strict=True))) for row in self._unit(z)),
            dtype=np.float64,
            count=len(z),
        )
        return scores, z**2


__all__ = ["HalfSpaceTreesDetector"]
