"""The weather and the production plan a simulated plant lives in, as pure functions of time.

Time is simulated seconds since the start of the run; ``Environment`` says on which weekday,
hour and day of the year that start falls. Every function is vectorized over a time array of
any shape and deterministic for a seed, so a plant, a batch of thousands of units and a test can
ask for the same instant and get the same answer — no hidden state, nothing stepped.

>>> env = Environment(start_hour=0.0)
>>> bool(env.ambient_temperature(15 * 3600.0) > env.ambient_temperature(4 * 3600.0))
True
>>> float(env.demand(10 * 3600.0)) > float(env.demand(2 * 3600.0))
True
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from twinloop.core.errors import ValidationError

DAY_S = 86_400.0
WEEK_S = 7 * DAY_S

# Relative demand per hour of a weekday: two high shifts (06-14, 14-22), a low night shift.
_SHIFT = np.array([0.55] * 6 + [1.0] * 8 + [0.95] * 8 + [0.55] * 2)
_WEEKEND = 0.6  # weekend production relative to the same hour on a weekday
_WEEK_PROFILE = np.tile(_SHIFT, 7) * np.repeat([1.0] * 5 + [_WEEKEND] * 2, 24)
_WEEK_HOURS = np.arange(7 * 24, dtype=np.float64) + 0.5  # each hour's value sits at its middle


@dataclass(frozen=True)
class Environment:
    """Ambient temperature and production demand of one site over simulated time.

    ``start_weekday`` is 0 for Monday; ``day_of_year`` places the start in the seasons (200 is
    mid-July). ``heatwave_days`` are day indices since the start that run ``heatwave_delta_k``
    warmer. ``demand_factor`` scales production for what-ifs ("production +20 %" is 1.2).
    """

    seed: int = 1
    start_weekday: int = 0
    start_hour: float = 0.0
    day_of_year: float = 120.0
    mean_temperature: float = 11.0
    seasonal_amplitude: float = 9.0
    daily_amplitude: float = 4.5
    weather_amplitude: float = 2.5
    heatwave_days: tuple[int, ...] = ()
    heatwave_delta_k: float = 9.0
    demand_factor: float = 1.0

    def __post_init__(self) -> None:
        if not 0 <= self.start_weekday <= 6:
            raise ValidationError(f"start_weekday must be 0 (Monday) … 6, got {self.start_weekday}")
        if self.demand_factor < 0:
            raise ValidationError(f"demand_factor must be >= 0, got {self.demand_factor}")

    def _clock_s(self, t_s: np.ndarray | float) -> np.ndarray:
        """Seconds since Monday 00:00 of the start week."""
        return np.asarray(t_s, dtype=np.float64) + self.start_weekday * DAY_S + self.start_hour * 3600.0

    def hour_of_day(self, t_s: np.ndarray | float) -> np.ndarray:
        """Local hour (0 … 24) at simulated time ``t_s``."""
        return (self._clock_s(t_s) % DAY_S) / 3600.0

    def weekday(self, t_s: np.ndarray | float) -> np.ndarray:
        """Day of the week (0 = Monday) at simulated time ``t_s``."""
        return (self._clock_s(t_s) // DAY_S % 7).astype(np.int64)

    def ambient_temperature(self, t_s: np.ndarray | float) -> np.ndarray:
        """Outdoor temperature [degC]: season + day/night (peak 15:00) + smooth weather + heatwaves."""
        t = np.asarray(t_s, dtype=np.float64)
        days = t / DAY_S
        doy = self.day_of_year + (self.start_hour / 24.0) + days
        seasonal = -self.seasonal_amplitude * np.cos(2 * np.pi * (doy - 20.0) / 365.25)
        hour = self.hour_of_day(t)
        daily = self.daily_amplitude * np.cos(2 * np.pi * (hour - 15.0) / 24.0)
        return self.mean_temperature + seasonal + daily + self._weather(days) + self._heatwave(days)

    def _weather(self, days: np.ndarray) -> np.ndarray:
        # Smooth, seeded "weather": a few incommensurate slow waves (periods 1.7 … 11 days), so the
        # value at any instant is a pure function of time — no stepped random walk to replay.
        periods, phases, weights = self._weather_waves
        out = np.zeros_like(days)
        for period, phase, w in zip(periods, phases, weights, strict=True):
            out = out + w * np.sin(2 * np.pi * days / period + phase)
        return self.weather_amplitude * out

    @cached_property
    def _weather_waves(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng([self.seed, 7211])
        periods = rng.uniform(1.7, 11.0, size=4)
        phases = rng.uniform(0.0, 2 * np.pi, size=4)
        weights = rng.uniform(0.5, 1.0, size=4)
        return periods, phases, weights / np.sqrt(np.sum(weights**2))

    def _heatwave(self, days: np.ndarray) -> np.ndarray:
        if not self.heatwave_days:
            return np.zeros_like(days)
        hw = np.zeros_like(days)
        for d in self.heatwave_days:
            # Raised-cosine edges over 6 h so the extra heat builds and fades instead of jumping.
            x = days - d
            inside = (x >= 0) & (x < 1)
            edge = np.clip(np.minimum(x, 1 - x) * 4.0, 0.0, 1.0)
            hw = np.maximum(hw, np.where(inside, 0.5 - 0.5 * np.cos(np.pi * edge), 0.0))
        # The heat peaks in the afternoon: +delta around 15:00, a little less at night.
        hour = (days * 24.0 + self.start_hour) % 24.0
        diurnal = 0.85 + 0.15 * np.cos(2 * np.pi * (hour - 15.0) / 24.0)
        return self.heatwave_delta_k * hw * diurnal

    def is_heatwave(self, t_s: np.ndarray | float) -> np.ndarray:
        """True during the declared heatwave days."""
        days = np.floor(np.asarray(t_s, dtype=np.float64) / DAY_S)
        return np.isin(days, np.asarray(self.heatwave_days, dtype=np.float64))

    def demand(self, t_s: np.ndarray | float) -> np.ndarray:
        """Production demand relative to a weekday day shift (1.0), times ``demand_factor``.

        Shift changes ramp over an hour (np.interp between hourly values) so controllers see a
        realistic slope instead of a step.
        """
        clock = self._clock_s(t_s)
        week_h = (clock % WEEK_S) / 3600.0
        return self.demand_factor * np.interp(week_h, _WEEK_HOURS, _WEEK_PROFILE, period=7 * 24.0)


def ambient_temperature(t_s: np.ndarray | float, env: Environment | None = None) -> np.ndarray:
    """Ambient temperature [degC] at ``t_s`` in ``env`` (the default environment if None)."""
    return (env or Environment()).ambient_temperature(t_s)


def demand(t_s: np.ndarray | float, env: Environment | None = None) -> np.ndarray:
    """Relative production demand at ``t_s`` in ``env`` (the default environment if None)."""
    return (env or Environment()).demand(t_s)


__all__ = ["DAY_S", "WEEK_S", "Environment", "ambient_temperature", "demand"]
