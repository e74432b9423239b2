"""Combine detectors: each member's score is normalized on out-of-sample normal data, then averaged.

Raw scores live on different scales (a T² statistic, an isolation depth, a reconstruction
error), so the ensemble learns, per member, how its scores are distributed on normal data it
did not train on (cross-validated over contiguous blocks of the training batch) and maps new scores onto that:

* ``robust``: ``(s − median) / (q90 − median)`` — keeps magnitude, 0 is typical, ~1 is a
  90th-percentile normal score;
* ``rank``: the empirical tail probability as ``−log10(1 − p)`` — robust to outliers but bounded
  by the calibration size.

Normalized scores are combined by their weighted ``mean`` (agreement counts) or their ``max``
(any member that is sure counts: a data-quality member next to value-based ones). The combined
attribution mixes the members' attributions, each weighted by how abnormal that
member found the row.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np

from twinloop.analytics.anomaly.base import BaseDetector, Detector, align, crossval_scores, shares
from twinloop.analytics.anomaly.frame import FrameLike, as_frame
from twinloop.core.errors import ValidationError

NORMALIZATIONS = ("robust", "rank")
COMBINATIONS = ("mean", "max")


class EnsembleDetector(BaseDetector):
    """A weighted mean of normalized member scores; ``members`` maps a name to an unlearned detector."""

    name = "ensemble"

    def __init__(
        self,
        members: Mapping[str, Detector],
        weights: Mapping[str, float] | None = None,
        normalize: str = "robust",
        folds: int = 4,
        combine: str = "mean",
    ) -> None:
        super().__init__()
        self.members = members
        self.weights = weights
        self.normalize = normalize
        self.folds = folds
        self.combine = combine

    def clone(self) -> EnsembleDetector:
        return EnsembleDetector(
            {k: d.clone() for k, d in self.members.items()},
            copy.deepcopy(self.weights),
            self.normalize,
            self.folds,
            self.combine,
        )

    def get_params(self) -> dict[str, Any]:
        return {"members": dict(self.members), "weights": self.weights, "normalize": self.normalize,
                "folds": self.folds, "combine": self.combine}

    @property
    def history_rows(self) -> int:
        return max((int(getattr(d, "history_rows", 0)) for d in self.members.values()), default=0)

    def learn(self, data: FrameLike) -> EnsembleDetector:
        if not self.members:
            raise ValidationError("an ensemble needs at least one member detector")
        if self.normalize not in NORMALIZATIONS:
            raise ValidationError(
                f"unknown normalization {self.normalize!r}", hint=f"one of {NORMALIZATIONS}"
            )
        if self.combine not in COMBINATIONS:
            raise ValidationError(f"unknown combination {self.combine!r}", hint=f"one of {COMBINATIONS}")
        unknown = set(self.weights or {}) - set(self.members)
        if unknown:
            raise ValidationError(f"weights name unknown members {sorted(unknown)}")
        frame = as_frame(data)
        self.learned_ = {k: d.clone().learn(frame) for k, d in self.members.items()}
        held_out = {k: crossval_scores(d, frame, self.folds) for k, d in self.members.items()}
        self.calibration_ = {k: np.sort(s) for k, s in held_out.items()}
        w = np.array([float((self.weights or {}).get(k, 1.0)) for k in self.members])
        if (w < 0).any() or w.sum() <= 0:
            raise ValidationError("ensemble weights must be non-negative and not all zero")
        self.weight_ = w / w.sum()
        self.channels_ = frame.channels
        # the ensemble's own out-of-sample scores, from its members' (what a threshold calibrates
        # on): cross-validating the whole ensemble again would learn every member folds² times more
        parts = np.array([self._normalized(k, held_out[k]) for k in self.members])
        self.oos_scores_ = self.weight_ @ parts if self.combine == "mean" else parts.max(axis=0)
        return self

    def _normalized(self, name: str, s: np.ndarray) -> np.ndarray:
        cal = self.calibration_[name]
        if self.normalize == "rank":
            p = np.searchsorted(cal, s, side="right") / (len(cal) + 1.0)
            return -np.log10(1.0 - p)
        med, q90 = np.quantile(cal, [0.5, 0.9])
        floor = float(getattr(self.learned_[name], "score_floor", 0.0))
        return (s - med) / max(q90 - med, floor, 1e-12)

    def score(self, data: FrameLike) -> tuple[np.ndarray, np.ndarray]:
        self._check_learned()
        frame = align(as_frame(data), self.channels_, positional=isinstance(data, np.ndarray), who=self.name)
        parts = np.zeros((len(self.learned_), len(frame)))
        mix = np.zeros((len(frame), len(self.channels_)))
        for k, (w, (name, model)) in enumerate(zip(self.weight_, self.learned_.items(), strict=True)):
            s, a = model.score(frame)
            parts[k] = self._normalized(name, s)
            mix += (w * np.clip(parts[k], 0.0, None))[:, None] * a
        total = self.weight_ @ parts if self.combine == "mean" else parts.max(axis=0)
        if len(frame) == 0:
            return total, mix
        return total, shares(mix)


__all__ = ["COMBINATIONS", "NORMALIZATIONS", "EnsembleDetector"]
