"""Physics-based RUL: Monte Carlo of a `PhysicsModel` from the estimated state to its failure event.

Each sample path starts from a draw of the estimated state (mean, covariance), takes a draw of
the uncertain parameters (log-normal spread, e.g. the bearing's wear rate, which varies a lot
between units) and a path of operating regimes from the load forecast, and is stepped with
the model's own ``next_state`` until ``event_state`` reaches 0. The times of crossing (linear
inside the step) are the RUL samples; paths that survive ``max_horizon_h`` count as that
horizon (the distribution is then right-censored and says so in ``model``). All units' paths
are one state matrix: no loop over units or samples.

A unit's `StateEstimate` may bring its own load forecast and parameter spread (a live twin's
duty and the estimator's uncertainty about its wear rate); otherwise the prognoser's apply.
Steps grow geometrically from ``dt_min_h`` to ``dt_h``: a bearing hours from failure is
resolved to minutes, a new one in day-long steps (the model's exact exponential solutions keep
long steps stable), so a prediction costs about a thousand steps whatever the horizon.

The explanation regresses the RUL samples on the standardized initial states and parameter
draws: how many hours one standard deviation of each moves the RUL.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Self

import numpy as np

from twinloop.analytics.rul.distribution import Driver, RulDistribution
from twinloop.core.errors import ValidationError
from twinloop.physics.model import PhysicsModel, default_parameters, index, names


@dataclass(frozen=True)
class LoadForecast:
    """Future inputs as regimes: each path draws a regime (an ``inputs`` row, by ``weights``) every
    ``switch_h`` hours; ``first``, when given, is the regime of the first ``switch_h`` (the duty the
    unit runs at now)."""

    inputs: np.ndarray
    weights: np.ndarray | None = None
    switch_h: float = 120.0
    first: int | None = None

    def probabilities(self) -> np.ndarray:
        u = np.atleast_2d(self.inputs)
        w = np.ones(len(u)) if self.weights is None else np.asarray(self.weights, dtype=np.float64)
        if w.shape != (len(u),) or np.any(w < 0) or w.sum() <= 0:
            raise ValidationError("load forecast weights must be one non-negative number per regime")
        return w / w.sum()


@dataclass(frozen=True)
class StateEstimate:
    """An estimated state: ``mean`` (n_states,), ``cov`` (n_states, n_states), optional parameters,
    and optionally this unit's own load forecast and parameter spread (see the module docstring)."""

    mean: np.ndarray
    cov: np.ndarray
    parameters: np.ndarray | None = None
    load: LoadForecast | None = None
    parameter_spread: Mapping[str, float] | None = None


class PhysicsPrognoser:
    """Monte Carlo RUL to ``event`` under ``load`` (see the module docstring)."""

    def __init__(
        self,
        model: PhysicsModel,
        load: LoadForecast,
        event: str | None = None,
        parameter_spread: Mapping[str, float] | None = None,
        n_samples: int = 500,
        dt_h: float = 24.0,
        max_horizon_h: float = 50_000.0,
        seed: int = 0,
        dt_min_h: float = 0.02,
        growth: float = 1.05,
    ) -> None:
        self.model = model
        self.load = load
        self.event = event
        self.parameter_spread = parameter_spread
        self.n_samples = n_samples
        self.dt_h = dt_h
        self.max_horizon_h = max_horizon_h
        self.seed = seed
        self.dt_min_h = dt_min_h
        self.growth = growth

    def fit(self, train: object | None = None) -> Self:
        """Nothing to learn from data: checks the configuration against the model's declarations."""
        m = self.model
        self.event_index_ = 0 if self.event is None else list(m.events).index(self.event) \
            if self.event in m.events else _unknown("event", self.event, m.events)
        self.spread_ = {index(m.parameters, k): float(v) for k, v in (self.parameter_spread or {}).items()}
        self.regime_inputs_ = self._inputs(self.load)
        self.regime_p_ = self.load.probabilities()
        if self.n_samples < 2 or self.dt_h <= 0 or self.max_horizon_h <= self.dt_h:
            raise ValidationError("need n_samples >= 2, dt_h > 0 and max_horizon_h > dt_h")
        if not 0 < self.dt_min_h <= self.dt_h or self.growth < 1.0:
            raise ValidationError("need 0 < dt_min_h <= dt_h and growth >= 1")
        self.times_h_ = _time_grid(self.dt_min_h, self.dt_h, self.growth, self.max_horizon_h)
        return self

    def _inputs(self, load: LoadForecast) -> np.ndarray:
        m = self.model
        u = np.atleast_2d(np.asarray(load.inputs, dtype=np.float64))
        if u.shape[1] != len(m.inputs):
            raise ValidationError(f"load forecast has {u.shape[1]} inputs, {m.name} declares {len(m.inputs)}",
                                  hint=f"inputs: {names(m.inputs)}")
        return u

    def predict(self, history: StateEstimate) -> RulDistribution:
        if not isinstance(history, StateEstimate):
            raise ValidationError("predict takes one StateEstimate", hint="use predict_fleet for many units")
        return self.predict_fleet([history])[0]

    def predict_fleet(self, history: Sequence[StateEstimate]) -> list[RulDistribution]:
        if not hasattr(self, "regime_inputs_"):
            raise ValidationError("PhysicsPrognoser is not fitted", hint="call fit() first")
        m, n_s = self.model, self.n_samples
        n_x, n_units = len(m.states), len(history)
        if n_units == 0:
            return []
        n_switch = int(self.times_h_[-1] // self.load.switch_h) + 2
        x0, p, z_p, sigma, regime, tables = [], [], [], [], [], []
        offset = 0
        for h in history:  # per-unit draws from a per-unit stream: a unit's answer never depends on its fleet
            rng = np.random.default_rng([self.seed, zlib.crc32(np.asarray(h.mean, np.float64).tobytes())])
            x0.append(_draw(h, n_x, n_s, rng))
            p.append(np.tile(self._parameters(h), (n_s, 1)))
            z_p.append(rng.standard_normal((n_s, len(self.spread_))))
            sigma.append(np.tile(self._spread(h), (n_s, 1)))
            inputs, prob = (self.regime_inputs_, self.regime_p_) if h.load is None else \
                (self._inputs(h.load), h.load.probabilities())
            drawn = rng.choice(len(prob), (n_switch, n_s), p=prob)
            first = self.load.first if h.load is None else h.load.first
            if first is not None:
                drawn[0] = first
            regime.append(offset + drawn)
            tables.append(inputs)
            offset += len(inputs)
        x0_all, p_all, z_all, s_all = np.vstack(x0), np.vstack(p), np.vstack(z_p), np.vstack(sigma)
        for j, col in enumerate(self.spread_):
            p_all[:, col] *= np.exp(s_all[:, j] * z_all[:, j])
        rul = self._simulate(x0_all, p_all, np.hstack(regime), np.vstack(tables))
        out = []
        for i in range(n_units):
            rows = slice(i * n_s, (i + 1) * n_s)
            censored = bool(np.any(rul[rows] >= self.max_horizon_h))
            out.append(RulDistribution(rul[rows], unit="h",
                                       model="physics" + (" (censored)" if censored else ""),
                                       drivers=self._drivers(x0_all[rows], z_all[rows], rul[rows])))
        return out

    def _spread(self, h: StateEstimate) -> np.ndarray:
        own = h.parameter_spread or {}
        unknown = set(own) - {self.model.parameters[c].name for c in self.spread_}
        if unknown:
            raise ValidationError(f"a unit's parameter spread names {sorted(unknown)}",
                                  hint="only the prognoser's parameter_spread may vary per unit")
        return np.array([float(own.get(self.model.parameters[c].name, s)) for c, s in self.spread_.items()])

    def _parameters(self, h: StateEstimate) -> np.ndarray:
        if h.parameters is None:
            return default_parameters(self.model, 1)[0]
        p = np.asarray(h.parameters, dtype=np.float64)
        if p.shape != (len(self.model.parameters),):
            raise ValidationError(f"parameters must have {len(self.model.parameters)} values")
        return p

    def _simulate(self, x: np.ndarray, p: np.ndarray, schedule: np.ndarray, inputs: np.ndarray) -> np.ndarray:
        m, ev, times = self.model, self.event_index_, self.times_h_
        n = len(x)
        rul = np.full(n, self.max_horizon_h)
        es = m.event_state(x, p)[:, ev]
        rul[es <= 0.0] = 0.0
        alive = np.flatnonzero(es > 0.0)
        x, p, es = x[alive], p[alive], es[alive]
        for k in range(len(times) - 1):
            if alive.size == 0:
                break
            t0, dt_h = times[k], times[k + 1] - times[k]
            u = inputs[schedule[int(t0 // self.load.switch_h), alive]]
            x = m.next_state(x, u, dt_h * 3600.0, p)
            new = m.event_state(x, p)[:, ev]
            done = new <= 0.0
            if done.any():
                frac = es[done] / np.maximum(es[done] - new[done], 1e-12)
                rul[alive[done]] = t0 + np.clip(frac, 0.0, 1.0) * dt_h
                keep = ~done
                alive, x, p, new = alive[keep], x[keep], p[keep], new[keep]
            es = new
        return rul

    def _drivers(self, x0: np.ndarray, z_p: np.ndarray, rul: np.ndarray) -> list[Driver]:
        m = self.model
        cols, labels, values = [], [], []
        for j, s in enumerate(m.states):
            sd = x0[:, j].std()
            if sd > 1e-12:
                cols.append((x0[:, j] - x0[:, j].mean()) / sd)
                labels.append(s.name)
                values.append(float(x0[:, j].mean()))
        for j, col in enumerate(self.spread_):
            cols.append(z_p[:, j])
            labels.append(m.parameters[col].name)
            values.append(None)
        if not cols or rul.std() == 0:
            return []
        design = np.column_stack([*cols, np.ones(len(rul))])
        coef, *_ = np.linalg.lstsq(design, rul, rcond=None)
        ranked = sorted(zip(labels, coef[:-1], values, strict=True), key=lambda t: -abs(t[1]))
        return [Driver(n, round(float(c), 3), v) for n, c, v in ranked[:5]]


def _draw(h: StateEstimate, n_x: int, n: int, rng: np.random.Generator) -> np.ndarray:
    mean = np.asarray(h.mean, dtype=np.float64)
    cov = np.asarray(h.cov, dtype=np.float64)
    if mean.shape != (n_x,) or cov.shape != (n_x, n_x) or not np.all(np.isfinite(cov)):
        raise ValidationError(f"a state estimate needs a mean of {n_x} values and a finite {n_x}×{n_x} cov")
    cov = 0.5 * (cov + cov.T)
    w, v = np.linalg.eigh(cov)  # tolerant of semi-definite covariances (a state known exactly)
    root = v * np.sqrt(np.clip(w, 0.0, None))
    return mean + rng.standard_normal((n, n_x)) @ root.T


def _time_grid(dt_min_h: float, dt_max_h: float, growth: float, horizon_h: float) -> np.ndarray:
    """Step ends from 0 to ``horizon_h``: steps grow by ``growth`` from ``dt_min_h`` up to ``dt_max_h``."""
    steps, t, dt = [0.0], 0.0, dt_min_h
    while t < horizon_h:
        t = min(t + dt, horizon_h)
        steps.append(t)
        dt = min(dt * growth, dt_max_h)
    return np.array(steps)


def _unknown(what: str, name: object, known: Sequence[str]) -> int:
    raise ValidationError(f"unknown {what} {name!r}", hint=f"declared: {', '.join(known)}")


__all__ = ["LoadForecast", "PhysicsPrognoser", "StateEstimate"]
