"""Thresholds: turn detector scores into an on/off alarm, separately from how scores are made.

A `QuantileThreshold` is calibrated on scores of normal operation (ideally out-of-sample, see
`twinloop.analytics.anomaly.holdout_scores`):

* ``level`` = the ``quantile`` of normal scores, raised by ``margin`` times its distance from the
  normal median (``margin=1/3`` is the "4/3 of the 99.9th percentile" rule of thumb);
* **hysteresis**: once on, the alarm stays on until the score falls below ``release`` =
  ``level − hysteresis·(level − median)``, so a score hovering at the level does not flap;
* **minimum duration**: the score must stay above the level for ``min_on`` consecutive rows to
  switch on, and below the release for ``min_off`` rows to switch off.

The state machine runs over runs of rows, not rows, and carries its state between batches, so a
stream scored in pieces gives the same alarm as the whole series at once.

>>> t = QuantileThreshold(quantile=0.9, min_on=2).calibrate(np.arange(100.0))
>>> mask, state = t.apply(np.array([0, 95, 95, 80, 50, 95, 0.0]))  # 80: above the release
>>> mask.astype(int).tolist(), state.on
([0, 0, 1, 1, 0, 0, 0], False)
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from twinloop.core.errors import ConflictError, ValidationError


@dataclass(frozen=True)
class AlarmState:
    """Where the alarm stands after a batch: on or off, and how long the pending condition has held."""

    on: bool = False
    run: int = 0


@dataclass
class QuantileThreshold:
    """A calibrated alarm level with hysteresis and minimum on/off durations (in rows)."""

    quantile: float = 0.99
    margin: float = 0.0
    hysteresis: float = 0.5
    min_on: int = 1
    min_off: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.quantile < 1.0:
            raise ValidationError(f"quantile must be in (0, 1), got {self.quantile}")
        if not 0.0 <= self.hysteresis <= 1.0:
            raise ValidationError(f"hysteresis must be in [0, 1], got {self.hysteresis}")
        if self.min_on < 1 or self.min_off < 1:
            raise ValidationError("min_on and min_off must be at least 1 row")
        if self.margin < 0:
            raise ValidationError(f"margin must be >= 0, got {self.margin}")

    def calibrate(self, normal_scores: np.ndarray) -> QuantileThreshold:
        """Set the level and release from scores of normal operation; returns self."""
        s = np.asarray(normal_scores, dtype=np.float64)
        s = s[np.isfinite(s)]
        if s.size < 2:
            raise ValidationError(f"need at least 2 finite normal scores to calibrate, got {s.size}")
        median, q = np.quantile(s, [0.5, self.quantile])
        spread = max(float(q - median), 1e-12 * max(abs(float(q)), 1.0))
        self.median_ = float(median)
        self.level_ = float(q) + self.margin * spread
        self.release_ = self.level_ - self.hysteresis * (self.level_ - self.median_)
        return self

    def at(self, level: float, median: float = 0.0) -> QuantileThreshold:
        """Set the level directly, for a score that means something by itself (spreads outside a
        learned range); ``median`` is the score of typical operation. Returns self.

        >>> QuantileThreshold(hysteresis=0.5).at(3.0).release_
        1.5
        """
        if not level > median:
            raise ValidationError(f"the alarm level ({level}) must lie above the typical score ({median})")
        self.median_, self.level_ = float(median), float(level)
        self.release_ = self.level_ - self.hysteresis * (self.level_ - self.median_)
        return self

    def apply(self, scores: np.ndarray, state: AlarmState | None = None) -> tuple[np.ndarray, AlarmState]:
        """The alarm for each row of ``scores`` and the state to pass with the next batch."""
        if not hasattr(self, "level_"):
            raise ConflictError("threshold is not calibrated", hint="call calibrate(normal_scores) first")
        s = np.nan_to_num(np.asarray(scores, dtype=np.float64), nan=-np.inf)
        state = state or AlarmState()
        out = np.zeros(len(s), dtype=bool)
        if len(s) == 0:
            return out, state
        # 2: above the level, 1: between release and level, 0: below the release.
        cat = np.where(s > self.level_, 2, np.where(s >= self.release_, 1, 0))
        starts = np.flatnonzero(np.r_[True, cat[1:] != cat[:-1]])
        ends = np.r_[starts[1:], len(s)]
        on, run = state.on, state.run
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            c, length = cat[a], b - a
            if not on:
                if c == 2:
                    need = self.min_on - run
                    if length >= need:
                        out[a + need - 1 : b] = True
                        on, run = True, 0
                    else:
                        run += length
                else:
                    run = 0
            else:
                if c == 0:
                    need = self.min_off - run
                    if length >= need:
                        out[a : a + need - 1] = True
                        on, run = False, 0
                    else:
                        out[a:b] = True
                        run += length
                else:
                    out[a:b] = True
                    run = 0
        return out, AlarmState(on, run)


def episodes(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` row ranges where ``mask`` is true.

    >>> episodes(np.array([0, 1, 1, 0, 1], bool))
    [(1, 3), (4, 5)]
    """
    m = np.asarray(mask, dtype=np.int8)
    edges = np.flatnonzero(np.diff(np.r_[0, m, 0]))
    return [(int(a), int(b)) for a, b in edges.reshape(-1, 2)]


__all__ = ["AlarmState", "QuantileThreshold", "episodes"]
