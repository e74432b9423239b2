"""Change detectors on residual streams: Page-Hinkley (numpy, all channels at once) and ADWIN (river).

Both answer one question per channel: *when* did its residual's mean move away from normal?
They watch residuals (measured − expected, from an estimator or a detector's reconstruction), so
operating changes the model explains do not count as drift.

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> x = rng.normal(size=(600, 2)); x[300:, 1] += 1.5
>>> ph = PageHinkley().learn(x[:200])
>>> onset = ph.onsets(x)
>>> int(onset[0]), 300 <= int(onset[1]) < 330
(-1, True)
"""

from __future__ import annotations

from typing import Protocol, Self, runtime_checkable

import numpy as np

from twinloop.core.errors import ConflictError, ValidationError


@runtime_checkable
class DriftDetector(Protocol):
    """Learns normal residuals, then finds the first row where each channel's mean moved."""

    def learn(self, reference: np.ndarray) -> Self: ...

    def onsets(self, residuals: np.ndarray) -> np.ndarray:
        """Per channel, the row where drift was detected, or -1."""
        ...


def _reference(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or len(x) < 8:
        raise ValidationError(f"drift detectors need a (rows ≥ 8, channels) reference, got shape {x.shape}")
    with np.errstate(all="ignore"):
        mu, sd = np.nanmean(x, axis=0), np.nanstd(x, axis=0)
    return np.nan_to_num(mu), np.maximum(np.nan_to_num(sd), 1e-9)


class PageHinkley:
    """Two-sided Page-Hinkley test on standardized residuals (``delta`` tolerance, ``threshold`` alarm)."""

    def __init__(self, delta: float = 0.25, threshold: float = 20.0) -> None:
        self.delta = delta
        self.threshold = threshold

    def learn(self, reference: np.ndarray) -> PageHinkley:
        self.mean_, self.scale_ = _reference(reference)
        return self

    def onsets(self, residuals: np.ndarray) -> np.ndarray:
        if not hasattr(self, "mean_"):
            raise ConflictError("Page-Hinkley has not learned a reference", hint="call learn() first")
        z = np.nan_to_num((np.asarray(residuals, dtype=np.float64) - self.mean_) / self.scale_)
        up = np.cumsum(z - self.delta, axis=0)
        down = np.cumsum(-z - self.delta, axis=0)
        # Distance of the cumulative sum above its running minimum (the Page-Hinkley statistic).
        stat = np.maximum(up - np.minimum.accumulate(np.minimum(up, 0.0), axis=0),
                          down - np.minimum.accumulate(np.minimum(down, 0.0), axis=0))
        hit = stat > self.threshold
        return np.where(hit.any(axis=0), hit.argmax(axis=0), -1)


class Adwin:
    """river's ADWIN per channel on standardized residuals (adaptive windows; ``delta`` confidence)."""

    def __init__(self, delta: float = 0.002, clock: int = 8) -> None:
        self.delta = delta
        self.clock = clock

    def learn(self, reference: np.ndarray) -> Adwin:
        self.mean_, self.scale_ = _reference(reference)
        self.reference_ = (np.asarray(reference, dtype=np.float64) - self.mean_) / self.scale_
        return self

    def onsets(self, residuals: np.ndarray) -> np.ndarray:
        from river.drift import ADWIN  # river is heavy to import; only load it when used

        if not hasattr(self, "mean_"):
            raise ConflictError("ADWIN has not learned a reference", hint="call learn() first")
        z = np.nan_to_num((np.asarray(residuals, dtype=np.float64) - self.mean_) / self.scale_)
        out = np.full(z.shape[1], -1)
        for j in range(z.shape[1]):
            detector = ADWIN(delta=self.delta, clock=self.clock)
            for v in np.nan_to_num(self.reference_[:, j]).tolist():  # start from normal behaviour
                detector.update(v)
            for i, v in enumerate(z[:, j].tolist()):
                detector.update(v)
                if detector.drift_detected:
                    out[j] = i
                    break
        return out


__all__ = ["Adwin", "DriftDetector", "PageHinkley"]
