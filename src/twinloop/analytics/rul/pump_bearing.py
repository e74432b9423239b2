"""RUL of a live pump's bearing from its estimated wear, its recent trend and its recent duty.

`PumpBearingPrognoser` (registered as ``pump-bearing-physics``) runs the `PhysicsPrognoser` on the
`PumpUnitModel` for all pumps handed to it at once. What it stands on (``basis``):

* ``estimator`` — the live estimator's posterior: ``est.bearing.wear`` ± ``est.bearing.wear_std``
  as the starting state, ``est.bearing.wear_rate`` as the unit's wear rate with
  ``est.bearing.wear_rate_std`` as its log-normal spread. Used only while the filter is
  consistent: the runtime's filter health says so (``consistent`` True; None, not yet trusted,
  counts as no), or an ``est.consistent``
  reading does, or — when neither is known — the median ``est.nis`` of the recent history stays
  under ``nis_limit``. An inconsistent filter never feeds RUL silently:
* ``sensors`` — the fallback, and the path for pumps without an estimator: wear read off vibration
  and defect-band energy (`pump.pump_state_from_readings`), the nominal wear rate with
  ``rate_spread``. The distribution's ``basis`` says ``sensors`` and why.

On either basis the wear's recent trend (the slope of ``ln(w + w0)`` over running hours, from bucket
means over each window of ``trend_h``) is compared with the rate the model predicts over the same
buckets. Their ratio updates the wear rate: a bearing wearing far faster than its model allows
(beyond three combined standard deviations on the shortest window that shows it — a developing
fault) gets the observed rate outright, read over the longest window that agrees; otherwise the
ratio shrinks toward 1 by its precision against the prior spread (a normal update in log space). The
forecast carries it as ``wear_acceleration``, and its posterior spread, widened by ``duty_spread``
for duty changes to come, as the rate spread. The load forecast is the pump's recent duty
(``load_h`` of bucketed speed, valve and suction, stopped stretches included, since a standby pump
does not wear): its present duty for the first day, then a day at a time drawn from that mix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twinloop.analytics.rul.distribution import RulDistribution
from twinloop.analytics.rul.live import TwinInputs, bucket_columns, estimator_unusable, predict_each
from twinloop.analytics.rul.physics import LoadForecast, PhysicsPrognoser, StateEstimate
from twinloop.analytics.rul.pump import CHANNELS as SENSOR_CHANNELS
from twinloop.analytics.rul.pump import MIN_SPEED_RATIO, pump_state_from_readings
from twinloop.core.errors import TwinloopError, ValidationError
from twinloop.physics.model import default_parameters, index
from twinloop.physics.pump_unit import PumpUnitModel, nominal_inputs

EST_CHANNELS = ("est.bearing.wear", "est.bearing.wear_std", "est.bearing.wear_rate",
                "est.bearing.wear_rate_std", "est.nis", "est.consistent")
HISTORY_CHANNELS = ("speed", "valve.opening", "suction_pressure", "bearing.vibration_rms",
                    "bearing.defect_band_energy", "bearing.temperature", "est.bearing.wear", "est.nis")
MAX_REGIMES = 48
SWITCH_H = 24.0


@dataclass(frozen=True)
class WearTrend:
    """Observed log-wear growth rate over recent running hours (1/h), its standard error, and the
    rate the model predicts over the same buckets (their duty and bearing temperature)."""

    rate: float
    stderr: float
    points: int
    modelled: float


class PumpBearingPrognoser:
    """Physics RUL of pump bearings from the estimator or the sensors (see the module docstring)."""

    name = "pump-bearing-physics"

    def __init__(self, n_samples: int = 400, rate_spread: float = 0.2,
                 trend_h: Sequence[float] = (0.5, 2.0, 6.0, 24.0, 48.0),
                 load_h: float = 48.0, bucket_s: float = 120.0, nis_limit: float = 30.0,
                 static_head: float = 55.0, ambient_temperature: float = 25.0,
                 use_estimator: bool = True, duty_spread: float = 0.25, seed: int = 0) -> None:
        self.n_samples = n_samples
        self.rate_spread = rate_spread
        self.trend_h = trend_h
        self.load_h = load_h
        self.bucket_s = bucket_s
        self.nis_limit = nis_limit
        self.static_head = static_head
        self.ambient_temperature = ambient_temperature
        self.use_estimator = use_estimator
        self.duty_spread = duty_spread
        self.seed = seed
        self.channels: tuple[str, ...] = (*SENSOR_CHANNELS, *(EST_CHANNELS if use_estimator else ()))
        self.history_channels: tuple[str, ...] = HISTORY_CHANNELS if use_estimator else HISTORY_CHANNELS[:6]
        self.bucket_ns: int | None = int(bucket_s * 1e9)
        self.history_h = max(*trend_h, load_h)
        self._model = PumpUnitModel()
        self._p = default_parameters(self._model, 1)[0]
        self._par = {q.name: float(self._p[i]) for i, q in enumerate(self._model.parameters)}

    # --- what the runtime asks before predicting ----------------------------------------------
    def state_of(self, latest: Mapping[str, float]) -> tuple[float, float] | None:
        """The wear (mean, std) a prediction would start from; None when it cannot be read."""
        if self.use_estimator and "est.bearing.wear" in latest:
            return float(latest["est.bearing.wear"]), float(latest.get("est.bearing.wear_std", 0.0))
        try:
            est = pump_state_from_readings(latest, self._p, n_draws=500, seed=self.seed)
        except TwinloopError:
            return None
        j = self._model.state_index("bearing_wear")
        return float(est.mean[j]), float(np.sqrt(est.cov[j, j]))

    # --- predicting ---------------------------------------------------------------------------
    def predict_twins(self, inputs: Sequence[TwinInputs]) -> list[RulDistribution | TwinloopError]:
        """One answer per twin, in order: its RUL, or the error that says why it has none."""
        prognoser = PhysicsPrognoser(
            self._model, LoadForecast(nominal_inputs(self._model, 1), switch_h=SWITCH_H),
            "bearing_failure", {"bearing_wear_rate": self.rate_spread}, self.n_samples,
            max_horizon_h=20_000.0, seed=self.seed)
        return predict_each(inputs, self._state, lambda states: prognoser.fit().predict_fleet(states))

    def _state(self, twin: TwinInputs) -> tuple[StateEstimate, str]:
        latest, m = twin.latest, self._model
        history = bucket_columns(twin.history, self.history_channels)
        p = self._p.copy()
        spread: dict[str, float] = {}
        basis, why_not = "sensors", self._estimator_unusable(twin, history)
        if why_not is None:
            wear = float(latest["est.bearing.wear"])
            wear_sd = max(float(latest.get("est.bearing.wear_std", 0.0)), 1e-4)
            rate = float(latest.get("est.bearing.wear_rate", self._par["bearing_wear_rate"]))
            if rate > 0 and np.isfinite(rate):
                p[index(m.parameters, "bearing_wear_rate")] = rate
                rel = float(latest.get("est.bearing.wear_rate_std", 0.0)) / rate
                spread["bearing_wear_rate"] = float(np.clip(rel, 0.02, 1.5))
            mean = np.array([float(latest.get("speed", 0.0)), float(latest.get("valve.opening", 100.0)),
                             float(latest.get("motor.winding_temperature", 60.0)),
                             float(latest.get("bearing.temperature", 60.0)), float(np.clip(wear, 0.0, 1.0))])
            est = StateEstimate(mean, np.diag([25.0, 1.0, 4.0, 4.0, wear_sd**2]), p)
            basis, series = "estimator", history.get("est.bearing.wear")
        else:
            est = pump_state_from_readings(latest, p, seed=self.seed)
            series = self._sensor_wear(history)
            if why_not:
                basis = f"sensors: {why_not}"
        speed_now = float(latest.get("speed", 0.0))
        u_now = self._inputs(np.array([speed_now]), np.array([float(latest.get("valve.opening", 100.0))]),
                             np.array([float(latest.get("suction_pressure", 0.5))]))
        accel, rate_sd, faulted = 1.0, spread.get("bearing_wear_rate", self.rate_spread), False
        if speed_now / self._par["rated_speed"] >= MIN_SPEED_RATIO:
            trends = [self._trend(history, series, est.mean, p, h) for h in sorted(self.trend_h)]
            accel, rate_sd, faulted = rate_update([t for t in trends if t is not None], rate_sd)
        # the past says how fast it wore at the duty it had; the duty to come may change (operators
        # move pumps between regimes every few days), which no trend can see
        spread["bearing_wear_rate"] = float(np.hypot(rate_sd, self.duty_spread))
        load = self._load(history, u_now, accel, self.ambient_temperature)
        state = StateEstimate(est.mean, est.cov, p, load, spread or None)
        if not faulted:
            return state, basis
        return state, f"{basis}{'; ' if ':' in basis else ': '}wearing {accel:.3g}x faster than modelled"

    def _estimator_unusable(self, twin: TwinInputs, history: Mapping[str, np.ndarray]) -> str | None:
        """Why the estimator's wear cannot be used ("" when there is no estimate), None when it can."""
        if not self.use_estimator:
            return ""
        return estimator_unusable(twin, history, "est.bearing.wear", self.nis_limit)

    def _inputs(self, speed: np.ndarray, valve: np.ndarray, suction: np.ndarray,
                accel: float = 1.0, ambient: float | None = None) -> np.ndarray:
        return nominal_inputs(self._model, len(speed), speed_setpoint=speed, valve_command=valve,
                              suction_pressure=suction, discharge_static_head=self.static_head,
                              ambient_temperature=self.ambient_temperature if ambient is None else ambient,
                              wear_acceleration=accel)

    def _load(self, history: Mapping[str, np.ndarray], u_now: np.ndarray, accel: float,
              ambient: float) -> LoadForecast:
        """The recent duty mix; the present duty first (see the module docstring)."""
        a = index(self._model.inputs, "wear_acceleration")
        now = u_now.copy()
        now[:, a] = accel
        speed = history.get("speed")
        if speed is None or speed.size == 0:
            return LoadForecast(now, switch_h=SWITCH_H, first=0)
        keep = np.isfinite(speed)
        rows = np.flatnonzero(keep)
        if rows.size > MAX_REGIMES:
            rows = rows[np.linspace(0, rows.size - 1, MAX_REGIMES).round().astype(int)]
        valve = _filled(history.get("valve.opening"), rows, 100.0)
        suction = _filled(history.get("suction_pressure"), rows, 0.5)
        u = self._inputs(speed[rows], valve, suction, accel, ambient)
        stopped = speed[rows] / self._par["rated_speed"] < MIN_SPEED_RATIO
        u[stopped, index(self._model.inputs, "speed_setpoint")] = 0.0
        return LoadForecast(np.vstack([now, u]), np.r_[1e-9, np.ones(len(u))], switch_h=SWITCH_H, first=0)

    def _sensor_wear(self, history: Mapping[str, np.ndarray]) -> np.ndarray | None:
        """Wear read off bucket means of vibration and band energy (deterministic inversion)."""
        speed, vib, energy = (history.get(c) for c in ("speed", "bearing.vibration_rms",
                                                           "bearing.defect_band_energy"))
        if speed is None or vib is None or energy is None:
            return None
        par = self._par
        s = np.maximum(speed / par["rated_speed"], 1e-3)
        v_new, v_fail = par["bearing_vibration_new"], par["bearing_vibration_failure"]
        with np.errstate(invalid="ignore"):
            shape = 1.0 / par["bearing_vibration_exponent"]
            w_v = np.clip((vib / s**2 - v_new) / (v_fail - v_new), 0.0, 1.0) ** shape
            w_e = np.clip((energy / s**2 - 1.0) / par["defect_energy_gain"], 0.0, 1.0) ** 0.25
        return np.where(s >= MIN_SPEED_RATIO, 0.5 * (w_v + w_e), np.nan)

    def _trend(self, history: Mapping[str, np.ndarray], wear: np.ndarray | None, x: np.ndarray,
               p: np.ndarray, window_h: float) -> WearTrend | None:
        """Least-squares slope of ln(w + w0) against running hours over the last ``window_h``, and
        the model's mean rate over the same buckets."""
        t_h, speed = history.get("_t_h"), history.get("speed")
        if t_h is None or wear is None or speed is None or t_h.size < 4:
            return None
        running = np.isfinite(speed) & (speed / self._par["rated_speed"] >= MIN_SPEED_RATIO)
        recent = t_h >= t_h[-1] - window_h
        ok = recent & running & np.isfinite(wear) & (wear > 0.02) & (wear < 1.0)
        if ok.sum() < 4:
            return None
        hours = np.cumsum(np.where(running, np.r_[np.diff(t_h), 0.0], 0.0))[ok]  # running hours only
        y = np.log(wear[ok] + self._par["bearing_wear_offset"])
        if hours[-1] - hours[0] < 0.1:
            return None
        design = np.column_stack([hours - hours.mean(), np.ones(hours.size)])
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        resid = y - design @ coef
        dof = max(hours.size - 2, 1)
        stderr = float(np.sqrt(resid @ resid / dof / max(((hours - hours.mean()) ** 2).sum(), 1e-12)))
        # A filter's wear estimate (and bucketed sensor wear) is strongly autocorrelated: successive
        # residuals are not independent evidence. Widen the error by the AR(1) variance factor, or
        # a healthy pump's wandering estimate reads as "wearing 16x faster than modelled".
        if resid.size > 2 and resid @ resid > 0:
            rho = float(np.clip((resid[1:] @ resid[:-1]) / (resid @ resid), 0.0, 0.98))
            stderr *= float(np.sqrt((1.0 + rho) / (1.0 - rho)))
        rows = np.flatnonzero(ok)
        states = np.tile(x, (rows.size, 1))
        states[:, 0] = speed[rows]
        states[:, 1] = _filled(history.get("valve.opening"), rows, 100.0)
        states[:, 4] = wear[rows]
        suction = _filled(history.get("suction_pressure"), rows, 0.5)
        # temperatures settled at the assumed ambient, as the forecast will have them: the ratio of
        # observed to modelled rate then carries whatever the assumptions miss (a hot hall, a fault)
        still = self._inputs(speed[rows], states[:, 1], suction, accel=0.0)
        states = self._model.next_state(states, still, 1e7, np.tile(p, (rows.size, 1)))
        u = self._inputs(speed[rows], states[:, 1], suction)
        modelled = float(np.mean(self._model_rate(states, u, p)))
        return WearTrend(float(coef[0]), stderr, int(ok.sum()), modelled)

    def _model_rate(self, x: np.ndarray, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The model's log-wear growth rate (1/h) at states ``x`` (rows) and duties ``u``."""
        m, j = self._model, self._model.state_index("bearing_wear")
        w0 = self._par["bearing_wear_offset"]
        x0 = np.atleast_2d(x).copy()
        x0[:, j] = np.clip(x0[:, j], 0.0, 0.99)
        x1 = m.next_state(x0, np.atleast_2d(u), 360.0, np.tile(p, (len(x0), 1)))
        return np.log((np.minimum(x1[:, j], 1.0) + w0) / (x0[:, j] + w0)) / 0.1


def rate_update(trends: Sequence[WearTrend], prior_sd: float) -> tuple[float, float, bool]:
    """(wear-rate multiplier, its log-space std, whether it is a fault) from the observed trends,
    shortest window first (see the module docstring)."""
    trends = [t for t in trends if t.modelled > 0]
    if not trends:
        return 1.0, prior_sd, False
    for k, t in enumerate(trends):
        if t.rate <= 0:
            continue
        obs, obs_sd = np.log(t.rate / t.modelled), t.stderr / t.rate
        if obs > 3.0 * np.hypot(prior_sd, obs_sd) and obs_sd < 0.5:
            # the longest window still telling the same story is the most precise estimate of it
            same = [u for u in trends[k:]
                    if u.rate > 0 and abs(u.rate - t.rate) < 2.0 * np.hypot(u.stderr, t.stderr)]
            u = same[-1] if same else t
            return float(u.rate / u.modelled), float(max(u.stderr / u.rate, 0.05)), True
    best = next((t for t in trends if t.rate > 0 and t.stderr < 0.15 * t.rate), trends[-1])
    if best.rate <= 0 or best.stderr >= best.rate:
        return 1.0, prior_sd, False
    obs, obs_sd = np.log(best.rate / best.modelled), best.stderr / best.rate
    weight = prior_sd**2 / (prior_sd**2 + obs_sd**2)
    return float(np.exp(weight * obs)), float(np.sqrt(weight) * obs_sd), False


def _filled(values: np.ndarray | None, rows: np.ndarray, default: float) -> np.ndarray:
    if values is None:
        return np.full(rows.size, default)
    v = values[rows]
    return np.where(np.isfinite(v), v, default)


def prognoser_from_config(config: Mapping[str, Any]) -> PumpBearingPrognoser:
    """Build from a type's ``prognoser:`` declaration (every key but ``model`` is a parameter)."""
    params = {k: v for k, v in config.items() if k not in ("model", "second_opinion", "interval")}
    try:
        return PumpBearingPrognoser(**params)
    except TypeError as err:
        raise ValidationError(f"bad pump-bearing-physics settings: {err}",
                              hint="see twinloop.analytics.rul.pump_bearing.PumpBearingPrognoser") from err


__all__ = ["EST_CHANNELS", "HISTORY_CHANNELS", "PumpBearingPrognoser", "WearTrend", "prognoser_from_config",
           "rate_update"]
