"""RUL of a live chiller's condenser: time until fouling costs `degraded_cop_loss` of its COP.

`ChillerFoulingPrognoser` (registered as ``chiller-fouling-physics``) runs the `PhysicsPrognoser`
on the `ChillerModel` for all chillers handed to it at once. While the live estimator's fouling
(``est.condenser.fouling`` ± std, its rate as the unit's ``fouling_rate``) is consistent
(`live.estimator_unusable`), it is the starting state; otherwise the fouling ``F`` is read off each
bucket of measured COP by inverting the model's COP equation at that bucket's load, supply
temperature and the outdoor temperature of the building the chiller belongs to (``partOf``;
handed over by the runtime as ``partOf.outdoor_temperature``). Fouling grows linearly while the
chiller carries load, so its slope over running hours, against the model's ``fouling_rate``,
says how fast this condenser is fouling (a fault outright when far beyond the prior spread,
otherwise a shrunk update, as for pump bearings). The load forecast is the recent mix of load,
outdoor temperature and setpoint, idle stretches included.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from twinloop.analytics.rul.distribution import RulDistribution
from twinloop.analytics.rul.live import TwinInputs, bucket_columns, estimator_unusable, predict_each
from twinloop.analytics.rul.physics import LoadForecast, PhysicsPrognoser, StateEstimate
from twinloop.analytics.rul.pump_bearing import WearTrend, rate_update
from twinloop.core.errors import TwinloopError, ValidationError
from twinloop.physics.chiller import ChillerModel, available_capacity, part_load_factor
from twinloop.physics.model import default_parameters, index

OUTDOOR = "partOf.outdoor_temperature"
CHANNELS = ("cop", "cooling_load", "chilled_water_supply_temperature", OUTDOOR)
EST = "est.condenser.fouling"
EST_CHANNELS = (EST, f"{EST}_std", "est.condenser.fouling_rate", "est.condenser.fouling_rate_std",
                "est.nis", "est.consistent")
MIN_LOAD_KW = 5.0
MAX_REGIMES = 48
KELVIN = 273.15


class ChillerFoulingPrognoser:
    """Physics RUL of chiller condensers from their COP (see the module docstring)."""

    name = "chiller-fouling-physics"
    related = (("partOf", "outdoor_temperature"),)

    def __init__(self, n_samples: int = 300, rate_spread: float = 0.3,
                 trend_h: Sequence[float] = (6.0, 24.0, 96.0), load_h: float = 96.0,
                 bucket_s: float = 900.0, nis_limit: float = 30.0, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.rate_spread = rate_spread
        self.trend_h = trend_h
        self.load_h = load_h
        self.bucket_s = bucket_s
        self.nis_limit = nis_limit
        self.seed = seed
        self.channels: tuple[str, ...] = (*CHANNELS, *EST_CHANNELS)
        self.history_channels: tuple[str, ...] = (*CHANNELS, EST, "est.nis")
        self.bucket_ns: int | None = int(bucket_s * 1e9)
        self.history_h = max(*trend_h, load_h)
        self._model = ChillerModel()
        self._p = default_parameters(self._model, 1)[0]
        self._q = {q.name: np.array([float(self._p[i])]) for i, q in enumerate(self._model.parameters)}

    def fouling(self, cop: np.ndarray, load: np.ndarray, t_chw: np.ndarray,
                t_out: np.ndarray) -> np.ndarray:
        """Fouling that explains a measured COP at this load and these temperatures (NaN when idle)."""
        q = self._q
        cap = available_capacity(t_out, q)
        plr = np.minimum(load, cap) / cap
        full = cop / part_load_factor(plr, q)
        t_evap = t_chw - q["evaporator_approach"] + KELVIN
        rated_evap = 7.0 - q["evaporator_approach"] + KELVIN
        eta = q["rated_cop"] * (35.0 + q["condenser_approach"] + KELVIN - rated_evap) / rated_evap
        with np.errstate(divide="ignore", invalid="ignore"):
            lift = eta * t_evap / full
            f = (t_evap + lift - KELVIN - t_out) / q["condenser_approach"] - 1.0
        return np.where((load > MIN_LOAD_KW) & (cop > 0) & np.isfinite(f), np.maximum(f, 0.0), np.nan)

    def state_of(self, latest: Mapping[str, float]) -> tuple[float, float] | None:
        if EST in latest:
            return float(latest[EST]), max(float(latest.get(f"{EST}_std", 0.0)), 0.01)
        if any(c not in latest for c in CHANNELS):
            return None
        f = self.fouling(*(np.array([latest[c]]) for c in ("cop", "cooling_load",
                                                              "chilled_water_supply_temperature", OUTDOOR)))
        return None if not np.isfinite(f[0]) else (float(f[0]), 0.1)  # COP noise: ±0.1 of fouling

    def predict_twins(self, inputs: Sequence[TwinInputs]) -> list[RulDistribution | TwinloopError]:
        base = LoadForecast(np.array([[100.0, 25.0, 7.0, 0.0]]), switch_h=24.0)
        prognoser = PhysicsPrognoser(self._model, base, "chiller_degraded",
                                     {"fouling_rate": self.rate_spread}, self.n_samples,
                                     max_horizon_h=30_000.0, seed=self.seed)
        return predict_each(inputs, self._state, lambda states: prognoser.fit().predict_fleet(states))

    def _state(self, twin: TwinInputs) -> tuple[StateEstimate, str]:
        history = bucket_columns(twin.history, self.history_channels)
        if any(c not in history for c in CHANNELS):
            missing = [c for c in CHANNELS if c not in history]
            raise ValidationError(f"no history of {missing}",
                                  hint="the chiller's COP, load and supply temperature, and the outdoor "
                                  "temperature of the building it is partOf")
        load, t_out = history["cooling_load"], history[OUTDOOR]
        f = self.fouling(history["cop"], load, history["chilled_water_supply_temperature"], t_out)
        recent = f[np.isfinite(f)][-8:]
        if recent.size == 0:
            raise ValidationError("the chiller has not carried load recently; fouling cannot be read",
                                  hint="RUL is updated while it runs")
        mean, sd = float(np.median(recent)), float(max(np.std(recent), 0.02))
        p = self._p.copy()
        col = index(self._model.parameters, "fouling_rate")
        prior_sd, basis = self.rate_spread, "sensors"
        why_not = estimator_unusable(twin, history, EST, self.nis_limit)
        latest = twin.latest
        if why_not is None:
            mean, sd = float(latest[EST]), max(float(latest.get(f"{EST}_std", 0.0)), 0.01)
            rate = float(latest.get("est.condenser.fouling_rate", p[col]))
            if rate > 0 and np.isfinite(rate):
                p[col] = rate
                prior_sd = float(np.clip(float(latest.get("est.condenser.fouling_rate_std", 0.0)) / rate,
                                         0.02, 1.5))
            basis, f = "estimator", history.get(EST, f)
        elif why_not:
            basis = f"sensors: {why_not}"
        trends = [t for t in (self._trend(history["_t_h"], f, load, h, p[col]) for h in sorted(self.trend_h))
                  if t is not None]
        accel, rate_sd, faulted = rate_update(trends, prior_sd)
        p[col] *= accel
        state = StateEstimate(np.array([mean]), np.array([[sd**2]]), p, self._load(history),
                              {"fouling_rate": rate_sd})
        if faulted:
            basis += f"{'; ' if ':' in basis else ': '}fouling {accel:.3g}x faster than modelled"
        return state, basis

    def _trend(self, t_h: np.ndarray, f: np.ndarray, load: np.ndarray, window_h: float,
               modelled: float) -> WearTrend | None:
        running = np.isfinite(load) & (load > MIN_LOAD_KW)
        ok = running & np.isfinite(f) & (t_h >= t_h[-1] - window_h)
        if ok.sum() < 6:
            return None
        hours = np.cumsum(np.where(running, np.r_[np.diff(t_h), 0.0], 0.0))[ok]
        if hours[-1] - hours[0] < 1.0:
            return None
        x = hours - hours.mean()
        slope = float(x @ (f[ok] - f[ok].mean()) / max(x @ x, 1e-12))
        resid = f[ok] - f[ok].mean() - slope * x
        stderr = float(np.sqrt(resid @ resid / max(ok.sum() - 2, 1) / max(x @ x, 1e-12)))
        return WearTrend(slope, stderr, int(ok.sum()), float(modelled))

    def _load(self, history: Mapping[str, np.ndarray]) -> LoadForecast:
        load, t_out = history["cooling_load"], history[OUTDOOR]
        t_set = history["chilled_water_supply_temperature"]
        rows = np.flatnonzero(np.isfinite(load) & np.isfinite(t_out))
        if rows.size > MAX_REGIMES:
            rows = rows[np.linspace(0, rows.size - 1, MAX_REGIMES).round().astype(int)]
        if rows.size == 0:
            return LoadForecast(np.array([[100.0, 25.0, 7.0, 0.0]]), switch_h=24.0)
        u = np.column_stack([np.where(load[rows] > MIN_LOAD_KW, load[rows], 0.0), t_out[rows],
                             np.where(np.isfinite(t_set[rows]), t_set[rows], 7.0), np.zeros(rows.size)])
        return LoadForecast(u, switch_h=24.0)


def prognoser_from_config(config: Mapping[str, Any]) -> ChillerFoulingPrognoser:
    """Build from a type's ``prognoser:`` declaration (every key but ``model`` is a parameter)."""
    params = {k: v for k, v in config.items() if k not in ("model", "second_opinion", "interval")}
    try:
        return ChillerFoulingPrognoser(**params)
    except TypeError as err:
        raise ValidationError(f"bad chiller-fouling-physics settings: {err}") from err


__all__ = ["ChillerFoulingPrognoser", "prognoser_from_config"]
