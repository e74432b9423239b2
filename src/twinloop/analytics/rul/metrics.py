"""Scores of RUL predictions: RMSE, the PHM08 asymmetric score, and interval coverage.

The PHM08 score punishes late predictions (predicted RUL above the truth: the asset fails
before we act) harder than early ones: ``e^(−d/13) − 1`` for ``d < 0``, ``e^(d/10) − 1`` else,
``d = predicted − true``, summed over units.

>>> rmse([10, 20], [13, 16])
3.5355339059327378
>>> round(phm08_score([10, 20], [13, 16]), 6)  # d = -3 → e^(3/13)−1; d = 4 → e^(4/10)−1
0.751393
>>> coverage([5, 50], [0, 60], [10, 70])
0.5
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from twinloop.core.errors import ValidationError

Values = Sequence[float] | np.ndarray


def _pair(pred: Values, truth: Values) -> tuple[np.ndarray, np.ndarray]:
    p, t = np.asarray(pred, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if p.shape != t.shape or p.ndim != 1 or p.size == 0:
        raise ValidationError(f"need two equal-length, non-empty vectors, got {p.shape} and {t.shape}")
    return p, t


def rmse(pred: Values, truth: Values) -> float:
    """Root mean squared error."""
    p, t = _pair(pred, truth)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def phm08_score(pred: Values, truth: Values) -> float:
    """The PHM08 challenge score (lower is better; see the module docstring)."""
    p, t = _pair(pred, truth)
    d = p - t
    return float(np.sum(np.where(d < 0, np.expm1(-d / 13.0), np.expm1(d / 10.0))))


def coverage(truth: Values, lower: Values, upper: Values) -> float:
    """Share of truths inside their ``[lower, upper]`` interval."""
    t, lo = _pair(truth, lower)
    _, hi = _pair(truth, upper)
    return float(np.mean((t >= lo) & (t <= hi)))


__all__ = ["coverage", "phm08_score", "rmse"]
