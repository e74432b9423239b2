"""The learned-range check: a channel that leaves the range it kept in normal operation.

A sensor drifting away (a thermometer reading 6 °C high after an hour) changes one channel
slowly. Multivariate detectors judge it against how their scores varied in training, and a training
stretch that holds a warm-up transient (a machine cooling to its running temperature) gives those
scores a long tail, so the alarm level sits above what a slow drift reaches for hours. This check
needs no calibration on scores: per channel it learns the range of normal readings and their
spread, and scores a row by how far its trailing mean lies outside that range, in spreads. A score
of ``margin`` is an alarm whatever the training data looked like.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> normal = rng.normal(20.0, 0.5, size=(300, 2))
>>> d = LimitsDetector(window=1).learn(normal)
>>> scores, shares = d.score(np.array([[20.0, 20.0], [20.0, 24.0]]))
>>> bool(scores[0] == 0.0), bool(scores[1] > 3.0), int(shares[1].argmax())
(True, True, 1)
"""

from __future__ import annotations

import numpy as np

from twinloop.analytics.anomaly.base import BaseDetector, trailing_mean

#: Alarm level of this check's score (spreads outside the learned range).
MARGIN = 3.0


class LimitsDetector(BaseDetector):
    """How many spreads the trailing mean of each channel lies outside its learned range."""

    name = "limits"
    rescale_features = False

    def __init__(self, window: int = 10, quantile: float = 0.001, margin: float = MARGIN) -> None:
        super().__init__(window=window)
        self.quantile = quantile
        self.margin = margin

    @property
    def level(self) -> float:
        """The score at which this check alarms."""
        return float(self.margin)

    def _standardize(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64)  # ranges are learned on the readings themselves

    def _transform(self, z: np.ndarray) -> np.ndarray:
        # a missing reading is the middle of the normal range (gaps are the quality check's business)
        with np.errstate(all="ignore"):
            mid = getattr(self, "mid_", None)
            if mid is None:
                mid = np.nan_to_num(np.nanmedian(np.where(np.isfinite(z), z, np.nan), axis=0)
                                    if len(z) else np.zeros(z.shape[1]))
        return trailing_mean(np.where(np.isfinite(z), z, mid), int(self.window))

    def _fit(self, z: np.ndarray) -> None:
        q = float(self.quantile)
        self.mid_ = np.median(z, axis=0)
        self.low_, self.high_ = np.quantile(z, [q, 1.0 - q], axis=0)
        # a channel's spread: the noise of its trailing mean, or a tenth of its normal range, never ~0
        noise = np.std(np.diff(z, axis=0), axis=0) / np.sqrt(2.0) if len(z) > 1 else np.zeros(z.shape[1])
        self.spread_ = np.maximum(noise, np.maximum(0.1 * (self.high_ - self.low_),
                                                    1e-3 * np.maximum(np.abs(self.high_), 1.0)))

    def _score(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        outside = np.maximum(z - self.high_, self.low_ - z)
        excess = np.clip(outside / self.spread_, 0.0, None)
        return excess.max(axis=1), excess


__all__ = ["MARGIN", "LimitsDetector"]
