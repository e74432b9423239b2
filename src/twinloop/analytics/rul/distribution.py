"""`RulDistribution`: remaining useful life as a distribution, never a bare number.

Every prognoser returns one. It answers the questions people ask — "how long, how sure, how
likely to fail before the next shutdown?" — and says what drove the prediction:

>>> d = RulDistribution.from_quantiles([0.1, 0.5, 0.9], [20.0, 50.0, 90.0], unit="h")
>>> round(d.quantile(0.5)), d.p_fail_within(0.0), d.p_fail_within(1e9)
(50, 0.0, 1.0)
>>> d.p_fail_within(20.0) <= d.p_fail_within(50.0) <= d.p_fail_within(90.0)
True
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twinloop.core.errors import ValidationError
from twinloop.core.uncertainty import Samples

#: Quantile levels kept in summaries and events: fine enough to read P(fail within h) off them.
SUMMARY_LEVELS: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.9, 0.95, 0.99,
)


@dataclass(frozen=True)
class Driver:
    """One feature or state that moved the prediction: ``contribution`` in RUL units (− shortens)."""

    name: str
    contribution: float
    value: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "contribution": self.contribution, "value": self.value}


class RulDistribution:
    """Remaining useful life in ``unit`` (``"h"``, ``"cycle"``) as sorted non-negative samples.

    ``point`` is the prognoser's best single estimate (a mean-loss model's output, say); when it
    is not given, the sample mean stands in. ``mean`` returns it, so metrics like RMSE use it.
    ``basis`` says what the prediction stood on (``"estimator"``, ``"sensors"``, …) and why, when
    a live prognoser had to fall back from its first choice.
    """

    __slots__ = ("_s", "unit", "_point", "drivers", "model", "basis")

    def __init__(
        self,
        samples: np.ndarray | Sequence[float],
        *,
        unit: str = "h",
        point: float | None = None,
        drivers: Iterable[Driver] = (),
        model: str = "",
        basis: str = "",
    ) -> None:
        x = np.asarray(samples, dtype=np.float64)
        if x.size == 0 or not np.all(np.isfinite(x)):
            raise ValidationError("an RUL distribution needs finite samples", hint=f"model {model!r}")
        self._s = Samples(np.maximum(x, 0.0))
        self.unit = unit
        self._point = None if point is None else max(float(point), 0.0)
        self.drivers = tuple(drivers)
        self.model = model
        self.basis = basis

    @classmethod
    def from_quantiles(
        cls,
        levels: Sequence[float],
        values: Sequence[float],
        *,
        n: int = 400,
        **kwargs: Any,
    ) -> RulDistribution:
        """Deterministic samples of the piecewise-linear quantile function through the given points.

        Values are sorted first (quantile regressors may cross); the tails beyond the outermost
        levels are extended linearly, clipped at zero.
        """
        q = np.asarray(levels, dtype=np.float64)
        v = np.sort(np.asarray(values, dtype=np.float64))
        if q.ndim != 1 or q.size != v.size or q.size < 2 or np.any(np.diff(q) <= 0):
            raise ValidationError("from_quantiles needs >= 2 increasing levels and one value each")
        if q[0] <= 0.0 or q[-1] >= 1.0:
            raise ValidationError("quantile levels must lie strictly inside (0, 1)")
        lo = v[0] - (v[1] - v[0]) / (q[1] - q[0]) * q[0]
        hi = v[-1] + (v[-1] - v[-2]) / (q[-1] - q[-2]) * (1.0 - q[-1])
        grid = (np.arange(n) + 0.5) / n
        samples = np.interp(grid, np.r_[0.0, q, 1.0], np.r_[lo, v, hi])
        return cls(samples, **kwargs)

    # --- the Distribution protocol --------------------------------------------------------
    @property
    def samples(self) -> np.ndarray:
        return self._s.samples

    @property
    def mean(self) -> float:
        return self._point if self._point is not None else self._s.mean

    @property
    def std(self) -> float:
        return self._s.std

    def quantile(self, q: float) -> float:
        return self._s.quantile(q)

    def cdf(self, x: float) -> float:
        return self._s.cdf(x)

    def interval(self, level: float = 0.8) -> tuple[float, float]:
        return self._s.interval(level)

    # --- prognostics ----------------------------------------------------------------------
    def p_fail_within(self, horizon: float) -> float:
        """P(RUL <= horizon): the chance the event happens within ``horizon`` (same unit)."""
        if not np.isfinite(horizon) and horizon > 0:
            return 1.0
        if horizon < 0:
            raise ValidationError(f"horizon must be >= 0, got {horizon}")
        return self._s.cdf(float(horizon))

    def summary(
        self, levels: Sequence[float] = SUMMARY_LEVELS, horizons: Sequence[float] = ()
    ) -> dict[str, Any]:
        """Plain, JSON-ready summary: mean, std, quantiles, P(fail within each horizon), drivers."""
        return {
            "unit": self.unit,
            "model": self.model,
            "mean": self.mean,
            "std": self.std,
            "quantiles": {f"{q:g}": self.quantile(q) for q in levels},
            "p_fail": {f"{h:g}": self.p_fail_within(h) for h in horizons},
            "drivers": [d.to_dict() for d in self.drivers],
        }

    def __repr__(self) -> str:
        lo, hi = self.interval(0.8)
        return f"RulDistribution(mean={self.mean:.4g} {self.unit}, 80% [{lo:.4g}, {hi:.4g}], {self.model!r})"


def cdf_from_quantiles(quantiles: dict[str, float], horizon: float) -> float:
    """P(RUL <= horizon) read off a stored quantile summary (linear between levels).

    >>> cdf_from_quantiles({"0.1": 10.0, "0.5": 20.0, "0.9": 40.0}, 30.0)
    0.7
    """
    if horizon < 0 or not np.isfinite(horizon):
        raise ValidationError(f"horizon must be a finite number >= 0, got {horizon}")
    levels = np.array([float(k) for k in quantiles], dtype=np.float64)
    values = np.array(list(quantiles.values()), dtype=np.float64)
    order = np.argsort(levels)
    levels, values = levels[order], np.maximum.accumulate(values[order])
    if horizon < values[0]:
        return float(levels[0] * horizon / values[0]) if values[0] > 0 else float(levels[0])
    if horizon >= values[-1]:
        return 1.0 if horizon > values[-1] else float(levels[-1])
    # right-most level whose value <= horizon, then linear inside the step
    return round(float(np.interp(horizon, values, levels)), 12)


__all__ = ["SUMMARY_LEVELS", "Driver", "RulDistribution", "cdf_from_quantiles"]
