"""Commercial-building HVAC: the composed building model and the weather and occupancy it sees.

Decomposition (each a `PhysicsModel`, all vectorized over rows):

* `ZoneModel` (``building_zone``): one row = one thermal zone with its share of an air handler
  (3R2C network, VAV terminal, coils, fan, CO₂).
* `ChillerModel` (``chiller``): one row = one chiller; its ``cooling_load`` input is the sum of
  the coil loads it feeds — `group_sum` adds zone rows into chiller rows without a Python loop.
* `BuildingModel` (``building``): one row = one single-zone building with its own chiller, the
  two composed with the coil load as the coupling — for fleets of small buildings and for tests
  that follow a heat wave from the weather to the chiller's meter.

The environment helpers are pure functions of time (seconds since Monday 00:00 local time), so a
simulator and a test draw the same weather from the same seed.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from twinloop.physics.building_zone import ZoneModel, zone_heat_flows
from twinloop.physics.chiller import ChillerModel, cop_loss
from twinloop.physics.model import Parameter, PhysicsModel, Signal, index, names

_DAY = 86400.0
_ZONE, _CHILLER = ZoneModel(), ChillerModel()
_ZONE_U = names(_ZONE.inputs)
_CHW_IN = "chilled_water_temperature"


def _building_signals() -> tuple[tuple[Signal, ...], tuple[Signal, ...], tuple[Signal, ...],
                                 tuple[Parameter, ...]]:
    inputs = tuple(s for s in _ZONE.inputs if s.name != _CHW_IN) + (
        _CHILLER.inputs[index(_CHILLER.inputs, "chilled_water_setpoint")],
        _CHILLER.inputs[index(_CHILLER.inputs, "fouling_acceleration")],
    )
    outputs = _ZONE.outputs + tuple(replace(s, name=f"chiller_{s.name}") for s in _CHILLER.outputs)
    # A single zone needs a small chiller: ~1.3× the zone's design sensible load.
    chiller = tuple(replace(q, default=30.0) if q.name == "rated_capacity" else q
                    for q in _CHILLER.parameters)
    return inputs, _ZONE.states + _CHILLER.states, outputs, _ZONE.parameters + chiller


_INPUTS, _STATES, _OUTPUTS, _PARAMETERS = _building_signals()
_NZP = len(_ZONE.parameters)
_NZX = len(_ZONE.states)
# Columns of the building's inputs that make up the zone's and the chiller's inputs.
_ZONE_COLS = [index(_INPUTS, "chilled_water_setpoint" if n == _CHW_IN else n) for n in _ZONE_U]
_SET, _ACC, _OUT = (index(_INPUTS, n) for n in
                    ("chilled_water_setpoint", "fouling_acceleration", "outdoor_temperature"))
_COIL = index(_ZONE.outputs, "cooling_coil_load")


class BuildingModel:
    """One row = one single-zone building: `ZoneModel` + `ChillerModel`, coupled by the coil load.

    The coil is fed at the chilled-water setpoint (the loop's own lag is neglected), and over a
    step the chiller sees the coil load at the start of the step — fouling moves over months,
    so that hold is immaterial for it.
    """

    name = "building"
    inputs = _INPUTS
    states = _STATES
    outputs = _OUTPUTS
    parameters = _PARAMETERS
    events = _CHILLER.events
    fixed_parameters = _ZONE.fixed_parameters | _CHILLER.fixed_parameters

    def _split(self, x: np.ndarray, u: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, ...]:
        zu = u[:, _ZONE_COLS]
        return x[:, :_NZX], x[:, _NZX:], zu, p[:, :_NZP], p[:, _NZP:]

    def _chiller_inputs(self, zx: np.ndarray, zu: np.ndarray, zp: np.ndarray, u: np.ndarray) -> np.ndarray:
        load = _ZONE.output(zx, zu, zp)[:, _COIL]
        return np.stack([load, u[:, _OUT], u[:, _SET], u[:, _ACC]], axis=1)

    def initial_state(
        self, p: np.ndarray, u: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """The zone at steady state under ``u``; the chiller clean (or, with ``rng``, a little used)."""
        zu, zp, cp = u[:, _ZONE_COLS], p[:, :_NZP], p[:, _NZP:]
        zx = _ZONE.initial_state(zp, zu, rng)
        return np.concatenate([zx, _CHILLER.initial_state(cp, u, rng)], axis=1)

    def next_state(self, x: np.ndarray, u: np.ndarray, dt: float, p: np.ndarray) -> np.ndarray:
        """Zone and chiller stepped side by side; the chiller sees the start-of-step coil load."""
        zx, cx, zu, zp, cp = self._split(x, u, p)
        cu = self._chiller_inputs(zx, zu, zp, u)
        return np.concatenate([_ZONE.next_state(zx, zu, dt, zp), _CHILLER.next_state(cx, cu, dt, cp)],
                              axis=1)

    def output(self, x: np.ndarray, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Zone readings, then the chiller's (prefixed ``chiller_``)."""
        zx, cx, zu, zp, cp = self._split(x, u, p)
        cu = self._chiller_inputs(zx, zu, zp, u)
        return np.concatenate([_ZONE.output(zx, zu, zp), _CHILLER.output(cx, cu, cp)], axis=1)

    def event_state(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The chiller's ``chiller_degraded`` distance."""
        return _CHILLER.event_state(x[:, _NZX:], p[:, _NZP:])


def group_sum(values: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """Sum rows into groups (zone coil loads into the chiller that feeds them): ``np.bincount``."""
    return np.bincount(np.asarray(groups, dtype=np.intp), weights=values, minlength=n_groups)


def sample_parameters(
    model: PhysicsModel, n: int, rng: np.random.Generator, spread: float = 0.1
) -> np.ndarray:
    """``(n, n_parameters)`` defaults with log-normal unit-to-unit spread, clipped to bounds.

    Multiplicative spread keeps positive quantities positive and scales with their size; switches,
    curve shapes and constants the model lists in ``fixed_parameters`` are left alone.
    """
    fixed = getattr(model, "fixed_parameters", frozenset())
    default = np.array([q.default for q in model.parameters])
    lower = np.array([q.lower for q in model.parameters])
    upper = np.array([q.upper for q in model.parameters])
    factor = np.exp(rng.normal(0.0, spread, (n, len(default))))
    vary = np.array([q.name not in fixed for q in model.parameters])
    return np.clip(np.where(vary, default * factor, default), lower, upper)


def weather(
    t_s: np.ndarray, rng: np.random.Generator, heatwave: bool = False, mean_temperature: float = 24.0,
    daily_amplitude: float = 5.0, peak_irradiance: float = 850.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Summer outdoor temperature [degC] and global irradiance [W/m²] at times ``t_s`` [s].

    Temperature: a daily cosine peaking at 15:00, a smooth day-to-day weather offset (σ 1.5 K,
    interpolated between days) and 0.2 K measurement-scale noise. A heat wave adds a +9 K plateau
    from day 2 to day 6 with half-day ramps. Irradiance: a clear-sky bell ``sin^1.5`` from 06:00 to
    18:00 times a daily cloud factor (0.6 … 1; clear during a heat wave), zero at night.
    """
    t = np.asarray(t_s, dtype=np.float64)
    day = t / _DAY
    days = np.arange(int(np.floor(day.min(initial=0.0))) - 1, int(np.ceil(day.max(initial=0.0))) + 2)
    offset = np.interp(day, days, rng.normal(0.0, 1.5, days.size))
    hour = (t % _DAY) / 3600.0
    temp = mean_temperature + daily_amplitude * np.cos(2 * np.pi * (hour - 15.0) / 24.0) + offset
    temp = temp + rng.normal(0.0, 0.2, t.shape)
    clouds = np.interp(np.floor(day), days, rng.uniform(0.6, 1.0, days.size))
    if heatwave:
        temp = temp + 9.0 * np.clip(np.minimum(day - 1.5, 6.5 - day) * 2.0, 0.0, 1.0)
        clouds = np.where((day >= 1.5) & (day <= 6.5), 1.0, clouds)
    sun = np.clip(np.sin(np.pi * (hour - 6.0) / 12.0), 0.0, None) ** 1.5
    return temp, peak_irradiance * clouds * sun


def occupancy_profile(t_s: np.ndarray) -> np.ndarray:
    """Share of design occupancy, 0 … 1, at times ``t_s`` [s since Monday 00:00].

    Weekdays: arrivals ramp 07:00–09:00, departures 17:00–19:00, a lunch dip to 60 % at
    12:00–13:00; nobody at night or on Saturday and Sunday.
    """
    t = np.asarray(t_s, dtype=np.float64)
    hour = (t % _DAY) / 3600.0
    weekday = (np.floor(t / _DAY) % 7) < 5
    present = np.clip(np.minimum((hour - 7.0) / 2.0, (19.0 - hour) / 2.0), 0.0, 1.0)
    lunch = np.where((hour >= 12.0) & (hour < 13.0), 0.6, 1.0)
    return np.where(weekday, present * lunch, 0.0)


__all__ = [
    "BuildingModel",
    "ChillerModel",
    "ZoneModel",
    "cop_loss",
    "group_sum",
    "occupancy_profile",
    "sample_parameters",
    "weather",
    "zone_heat_flows",
]
