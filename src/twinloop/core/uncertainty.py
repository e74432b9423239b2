"""Uncertainty as a type: every estimate, forecast and RUL is a distribution, never a bare number.

>>> g = Gaussian(mean=10.0, std=2.0)
>>> round(g.quantile(0.5), 6), round(g.interval(0.8)[1], 3)
(10.0, 12.563)
>>> s = Samples(np.arange(101.0))
>>> s.mean, s.quantile(0.9)
(50.0, 90.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Any, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class Distribution(Protocol):
    """What every uncertain quantity offers."""

    @property
    def mean(self) -> float: ...

    @property
    def std(self) -> float: ...

    def quantile(self, q: float) -> float: ...

    def cdf(self, x: float) -> float: ...


def _interval(d: Distribution, level: float) -> tuple[float, float]:
    if not 0.0 < level < 1.0:
        raise ValueError("level must lie in (0, 1)")
    tail = (1.0 - level) / 2.0
    return d.quantile(tail), d.quantile(1.0 - tail)


@dataclass(frozen=True)
class Gaussian:
    """A normal distribution, the natural output of a Kalman-type estimator."""

    mean: float
    std: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.mean) and math.isfinite(self.std)) or self.std < 0:
            raise ValueError("Gaussian needs a finite mean and a finite, non-negative std")

    def quantile(self, q: float) -> float:
        if self.std == 0:
            return self.mean
        return NormalDist(self.mean, self.std).inv_cdf(q)

    def cdf(self, x: float) -> float:
        if self.std == 0:
            return float(x >= self.mean)
        return NormalDist(self.mean, self.std).cdf(x)

    def interval(self, level: float = 0.8) -> tuple[float, float]:
        """Central interval holding ``level`` of the probability mass."""
        return _interval(self, level)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "gaussian", "mean": self.mean, "std": self.std}


class Samples:
    """An empirical distribution from Monte Carlo samples (e.g. RUL from a particle filter)."""

    __slots__ = ("_x",)

    def __init__(self, samples: np.ndarray) -> None:
        x = np.asarray(samples, dtype=np.float64).ravel()
        if x.size == 0 or not np.all(np.isfinite(x)):
            raise ValueError("Samples needs at least one sample, all finite")
        self._x = np.sort(x)

    @property
    def samples(self) -> np.ndarray:
        return self._x

    @property
    def mean(self) -> float:
        return float(self._x.mean())

    @property
    def std(self) -> float:
        return float(self._x.std())

    def quantile(self, q: float) -> float:
        return float(np.quantile(self._x, q))

    def cdf(self, x: float) -> float:
        return float(np.searchsorted(self._x, x, side="right") / self._x.size)

    def interval(self, level: float = 0.8) -> tuple[float, float]:
        return _interval(self, level)

    def to_dict(self, quantiles: tuple[float, ...] = (0.1, 0.5, 0.9)) -> dict[str, Any]:
        return {
            "kind": "samples",
            "mean": self.mean,
            "std": self.std,
            "n": int(self._x.size),
            "quantiles": {str(q): self.quantile(q) for q in quantiles},
        }


__all__ = ["Distribution", "Gaussian", "Samples"]
