"""Similarity-based RUL: match a unit's recent health-index path against the fleet's run-to-failure paths.

A linear health index (1 healthy … 0 at failure, fitted on the regime-normalized sensors) turns
each training run into one smoothed curve. The last ``window`` points of a unit's history slide
along every curve; at the best offset the training unit had ``life − offset`` left, which is one
candidate RUL. The ``neighbours`` closest candidates, weighted by ``exp(−distance / scale)``,
form the distribution (Wang et al., PHM 2008, simplified): no training assumption about the
shape of degradation, and an explanation anyone can check — "it looks like units 17 and 42 did,
80 cycles before they failed".
"""

from __future__ import annotations

from typing import Self

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from twinloop.analytics.rul.distribution import Driver, RulDistribution
from twinloop.analytics.rul.pipeline import FeaturePipeline
from twinloop.analytics.rul.protocol import check_fitted, one_unit, require_rul
from twinloop.analytics.rul.trajectories import Trajectories

N_SAMPLES = 400


def _smooth(values: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """Centered moving average within each unit (shrinking at the ends), over the whole fleet."""
    cs = np.r_[0.0, np.cumsum(values)]
    rows = np.arange(values.size)
    first = np.repeat(starts, lengths)
    last = first + np.repeat(lengths, lengths) - 1
    lo = np.maximum(first, rows - width // 2)
    hi = np.minimum(last, rows + width // 2)
    return (cs[hi + 1] - cs[lo]) / (hi - lo + 1)


class SimilarityPrognoser:
    """Trajectory-similarity RUL (see the module docstring)."""

    def __init__(
        self,
        cap: float | None = 125.0,
        window: int = 40,
        neighbours: int = 15,
        smooth: int = 11,
        n_regimes: int | str = "auto",
        seed: int = 0,
    ) -> None:
        self.cap = cap
        self.window = window
        self.neighbours = neighbours
        self.smooth = smooth
        self.n_regimes = n_regimes
        self.seed = seed

    def fit(self, train: Trajectories) -> Self:
        require_rul(train)
        assert train.rul is not None
        self.pipeline_ = FeaturePipeline(self.n_regimes, self.seed).fit(train)
        z = self.pipeline_.normalized(train)
        life = np.maximum(train.rul + train.time - train.time[train.row_starts()], 1e-9)
        cap = self.cap if self.cap is not None else float(np.median(life[train.starts]))
        target = np.minimum(train.rul, cap) / cap
        design = np.column_stack([z, np.ones(len(z))])
        self.coef_, *_ = np.linalg.lstsq(design, target, rcond=None)
        hi = _smooth(design @ self.coef_, train.starts, train.lengths, self.smooth)
        width = int(train.lengths.max())
        self.curves_ = np.full((len(train.units), width), np.nan)
        self.curve_rul_ = np.full((len(train.units), width), np.nan)
        for i, (s, n) in enumerate(zip(train.starts, train.lengths, strict=True)):
            self.curves_[i, :n] = hi[s:s + n]
            self.curve_rul_[i, :n] = train.rul[s:s + n]
        self.train_units_ = train.units
        self.time_unit_ = train.time_unit
        return self

    def health_index(self, history: Trajectories) -> np.ndarray:
        """The smoothed health index of every row (1 healthy … 0 failed)."""
        check_fitted(self, "coef_")
        z = self.pipeline_.normalized(history)
        raw = np.column_stack([z, np.ones(len(z))]) @ self.coef_
        return _smooth(raw, history.starts, history.lengths, self.smooth)

    def predict(self, history: Trajectories) -> RulDistribution:
        return self.predict_fleet(one_unit(history))[0]

    def predict_fleet(self, history: Trajectories) -> list[RulDistribution]:
        check_fitted(self, "coef_")
        hi = self.health_index(history)
        return [self._match(hi[s:s + n]) for s, n in zip(history.starts, history.lengths, strict=True)]

    def _match(self, path: np.ndarray) -> RulDistribution:
        w = int(min(self.window, path.size, self.curves_.shape[1]))
        recent = path[-w:]
        windows = sliding_window_view(self.curves_, w, axis=1)  # (units, offsets, w)
        d = np.mean((windows - recent) ** 2, axis=2)  # NaN where a window runs past a curve's end
        d = np.where(np.isnan(d), np.inf, d)
        best = np.argmin(d, axis=1)
        dist = d[np.arange(len(d)), best]
        rul = self.curve_rul_[np.arange(len(d)), best + w - 1]
        ok = np.isfinite(dist) & np.isfinite(rul)
        order = np.argsort(np.where(ok, dist, np.inf))[: max(1, min(self.neighbours, int(ok.sum())))]
        dist, rul = dist[order], rul[order]
        scale = max(float(np.median(dist)), 1e-12)
        weight = np.exp(-dist / scale)
        weight /= weight.sum()
        # deterministic weighted quantile samples of the candidate RULs
        sort = np.argsort(rul, kind="stable")
        cum = np.cumsum(weight[sort]) - 0.5 * weight[sort]
        grid = (np.arange(N_SAMPLES) + 0.5) / N_SAMPLES
        samples = np.interp(grid, cum, rul[sort])
        capped = rul if self.cap is None else np.minimum(rul, self.cap)
        point = float(weight @ capped)
        drivers = [Driver("health_index", 0.0, round(float(path[-1]), 4))] + [
            Driver(f"like unit {int(self.train_units_[j])}", round(float(r - point), 2), round(float(dd), 5))
            for j, r, dd in zip(order[:3], rul[:3], dist[:3], strict=False)
        ]
        return RulDistribution(samples, unit=self.time_unit_, point=point, drivers=drivers,
                               model="similarity")


__all__ = ["SimilarityPrognoser"]
