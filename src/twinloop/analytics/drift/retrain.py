"""Retrain a detector after drift — validated before and after, rolled back when the new one is worse.

When the process really changed, yesterday's normal is today's false alarm; when only a sensor
drifted, retraining would teach the detector to accept a broken sensor. So retraining is a
guarded swap: a candidate learns from recent normal data, both candidate and incumbent are
scored on *held-out* recent data, and the candidate replaces the incumbent only if it is not
worse. "Worse" weighs both failure modes of a detector:

* false alarms — the share of held-out normal rows above the alarm level;
* blindness — the share of synthetic faults it misses: each channel of the held-out rows in
  turn shifted by ``shift`` standard deviations (so a candidate cannot win by going deaf).

The report of both validations is kept with the outcome, for the audit trail. Before any of
this, `still_moving` tells a process that settled at a new level (retrain) from one still moving
away, as a developing fault does (wait: retraining would learn the fault as normal).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twinloop.analytics.anomaly import ChannelFrame, Detector, crossval_scores
from twinloop.analytics.thresholds import QuantileThreshold
from twinloop.core.errors import ValidationError


@dataclass(frozen=True)
class Validation:
    """How a detector did on held-out recent data: false-alarm rate, miss rate, and their sum."""

    false_alarm_rate: float
    miss_rate: float

    @property
    def loss(self) -> float:
        return self.false_alarm_rate + self.miss_rate


@dataclass(frozen=True)
class GuardedModel:
    """A learned detector with its calibrated threshold."""

    detector: Detector
    threshold: QuantileThreshold


@dataclass(frozen=True)
class RetrainOutcome:
    """What a guarded retrain did: ``accepted`` the candidate, or rolled back to the incumbent."""

    accepted: bool
    before: Validation
    after: Validation
    model: GuardedModel


def fit_model(
    detector: Detector, frame: ChannelFrame, threshold: dict[str, Any] | None = None
) -> GuardedModel:
    """Learn ``detector`` (a clone) on ``frame`` and calibrate its threshold out of sample."""
    learned = detector.clone().learn(frame)
    level = QuantileThreshold(**(threshold or {})).calibrate(crossval_scores(learned, frame))
    return GuardedModel(learned, level)


def validate(model: GuardedModel, holdout: ChannelFrame, shift: float = 4.0) -> Validation:
    """False-alarm rate on ``holdout`` (normal) and miss rate on it with one channel shifted at a time."""
    scores, _ = model.detector.score(holdout)
    false_alarms = float(model.threshold.apply(scores)[0].mean())
    x = holdout.values
    spread = np.nanstd(x, axis=0)
    spread = np.where(spread > 0, spread, 1.0)
    missed = []
    for j in range(x.shape[1]):
        faulty = x.copy()
        faulty[:, j] += shift * spread[j]
        s, _ = model.detector.score(ChannelFrame(holdout.ts_ns, holdout.channels, faulty, holdout.asset_id))
        missed.append(1.0 - float(model.threshold.apply(s)[0].mean()))
    return Validation(false_alarms, float(np.mean(missed)) if missed else 0.0)


def still_moving(
    reference: ChannelFrame,
    train: ChannelFrame,
    holdout: ChannelFrame,
    channels: Sequence[str],
    sigma: float = 1.0,
) -> list[str]:
    """The ``channels`` whose mean moved by more than ``sigma`` reference spreads between ``train``
    and ``holdout`` (the older and newer part of the data since a change).

    A changed process settles at a new level; a developing fault keeps moving. Retraining on data
    that is still moving would learn the fault as normal, so it waits until this is empty.
    """
    out = []
    with np.errstate(all="ignore"):
        for c in channels:
            if c not in reference.channels or c not in train.channels or c not in holdout.channels:
                continue
            spread = float(np.nanstd(reference.values[:, reference.channels.index(c)]))
            a = float(np.nanmean(train.values[:, train.channels.index(c)]))
            b = float(np.nanmean(holdout.values[:, holdout.channels.index(c)]))
            if np.isfinite(a) and np.isfinite(b) and abs(b - a) > sigma * max(spread, 1e-9):
                out.append(c)
    return out


def guarded_retrain(
    incumbent: GuardedModel,
    recent: ChannelFrame,
    holdout_share: float = 0.3,
    threshold: dict[str, Any] | None = None,
    tolerance: float = 0.0,
    candidate_factory: Callable[[], Detector] | None = None,
) -> RetrainOutcome:
    """Learn a candidate on the older part of ``recent``, validate both on the newer part, keep the better.

    The candidate is accepted when its loss is at most the incumbent's plus ``tolerance``.
    """
    if not 0.0 < holdout_share < 1.0:
        raise ValidationError(f"holdout_share must be in (0, 1), got {holdout_share}")
    cut = int(round(len(recent) * (1.0 - holdout_share)))
    if cut < 16 or len(recent) - cut < 8:
        raise ValidationError(f"need more recent rows to retrain and validate, got {len(recent)}")
    train, holdout = recent.rows(0, cut), recent.rows(cut)
    before = validate(incumbent, holdout)
    base = candidate_factory() if candidate_factory else incumbent.detector
    candidate = fit_model(base, train, threshold)
    after = validate(candidate, holdout)
    accepted = after.loss <= before.loss + tolerance
    return RetrainOutcome(accepted, before, after, candidate if accepted else incumbent)


__all__ = ["GuardedModel", "RetrainOutcome", "Validation", "fit_model", "guarded_retrain", "still_moving",
           "validate"]
