"""An air-cooled chiller: cooling load → electrical power, with slowly growing condenser fouling.

Efficiency is a Carnot fraction calibrated at the rating point, times the DOE-2 part-load curve::

    T_evap = T_chw,set − approach_evap          T_cond = T_out + approach_cond·(1 + F)
    COP_full = η·T_evap / (T_cond − T_evap)     (η from the rated COP at 35 degC / 7 degC)
    P = Q_delivered / COP,   COP = COP_full · PLR / EIRFPLR(PLR),   EIRFPLR = c0 + c1·PLR + c2·PLR²

Capacity falls as the outdoor air warms (``Q_cap = Q_rated·(1 − k·(T_out − 35))``); load above
it is *unmet* and warms the chilled-water supply. Condenser fouling ``F`` (dirt on the coil,
a hidden state) raises the condensing temperature; it grows at a constant rate while the chiller
runs, faster under the `fouling_acceleration` fault input. The event ``chiller_degraded`` is
reached when the COP at rating conditions has lost `degraded_cop_loss` (30 %) of its clean value.
"""

from __future__ import annotations

import numpy as np

from twinloop.physics.model import Parameter, Signal

_KELVIN = 273.15
_RATING_OUTDOOR = 35.0
_RATING_CHW = 7.0

_INPUTS = (
    Signal("cooling_load", "kW", "cooling asked by the coils it feeds"),
    Signal("outdoor_temperature", "degC", "air entering the condenser"),
    Signal("chilled_water_setpoint", "degC", "chilled-water supply setpoint (setChilledWaterSetpoint)"),
    Signal("fouling_acceleration", "dimensionless", "fault: 0 normal; fouling runs (1 + this) × faster"),
)
_STATES = (
    Signal("fouling", "dimensionless", "condenser fouling: relative rise of the condenser approach"),
)
_OUTPUTS = (
    Signal("cooling_delivered", "kW", "cooling actually produced (≤ capacity)"),
    Signal("unmet_load", "kW", "load above the available capacity"),
    Signal("electrical_power", "kW", "compressor and condenser-fan power"),
    Signal("cop", "dimensionless", "coefficient of performance, cooling / electrical power"),
    Signal("part_load_ratio", "dimensionless", "delivered / available capacity"),
    Signal("chilled_water_supply_temperature", "degC", "leaving the evaporator"),
    Signal("chilled_water_return_temperature", "degC", "returning from the coils"),
)
_PARAMETERS = (
    Parameter("rated_capacity", 200.0, "kW", 1.0, 1e5, "cooling capacity at 35 degC outdoor"),
    Parameter("rated_cop", 3.0, "dimensionless", 1.0, 10.0, "full-load COP at 35 degC / 7 degC"),
    Parameter("evaporator_approach", 3.0, "K", 0.5, 10.0, "refrigerant below chilled water"),
    Parameter("condenser_approach", 12.0, "K", 2.0, 30.0, "condensing above outdoor, clean coil"),
    Parameter("capacity_slope", 0.008, "1/K", 0.0, 0.05, "capacity lost per kelvin above 35 degC"),
    Parameter("plr_c0", 0.222, "dimensionless", 0.0, 1.0, "DOE-2 EIR-fPLR constant term"),
    Parameter("plr_c1", 0.313, "dimensionless", -1.0, 2.0, "DOE-2 EIR-fPLR linear term"),
    Parameter("plr_c2", 0.464, "dimensionless", -1.0, 2.0, "DOE-2 EIR-fPLR quadratic term"),
    Parameter("min_part_load_ratio", 0.15, "dimensionless", 0.0, 1.0, "below this it cycles"),
    Parameter("design_delta_t", 5.0, "K", 1.0, 15.0, "chilled-water ΔT at rated capacity"),
    Parameter("fouling_rate", 1e-4, "1/h", 0.0, 1e-2, "fouling growth per running hour"),
    Parameter("degraded_cop_loss", 0.3, "dimensionless", 0.01, 0.9, "COP loss that is an event"),
)


def _cols(a: np.ndarray, signals: tuple[Signal, ...] | tuple[Parameter, ...]) -> dict[str, np.ndarray]:
    return {s.name: a[:, i] for i, s in enumerate(signals)}


def full_load_cop(
    t_out: np.ndarray, t_chw: np.ndarray, fouling: np.ndarray, q: dict[str, np.ndarray]
) -> np.ndarray:
    """Full-load COP: a Carnot fraction between evaporating and condensing temperatures."""

    def carnot(to: np.ndarray, tw: np.ndarray, f: np.ndarray) -> np.ndarray:
        t_evap = tw - q["evaporator_approach"] + _KELVIN
        lift = to + q["condenser_approach"] * (1.0 + np.maximum(f, 0.0)) + _KELVIN - t_evap
        return t_evap / np.maximum(lift, 1.0)

    eta = q["rated_cop"] / carnot(np.full_like(t_out, _RATING_OUTDOOR), np.full_like(t_out, _RATING_CHW),
                                  np.zeros_like(t_out))
    return eta * carnot(t_out, t_chw, fouling)


def part_load_factor(plr: np.ndarray, q: dict[str, np.ndarray]) -> np.ndarray:
    """COP multiplier at part load, ``PLR / EIRFPLR(PLR)``; below the minimum PLR it cycles."""
    run = np.maximum(plr, q["min_part_load_ratio"])
    eir = q["plr_c0"] + q["plr_c1"] * run + q["plr_c2"] * run * run
    full = q["plr_c0"] + q["plr_c1"] + q["plr_c2"]
    return run / (eir / full)


def available_capacity(t_out: np.ndarray, q: dict[str, np.ndarray]) -> np.ndarray:
    """Capacity [kW] at this outdoor temperature (linear CAPFT around the rating point)."""
    factor = np.clip(1.0 - q["capacity_slope"] * (t_out - _RATING_OUTDOOR), 0.3, 1.3)
    return q["rated_capacity"] * factor


class ChillerModel:
    """An air-cooled chiller with condenser fouling as its hidden, slowly growing state."""

    name = "chiller"
    inputs: tuple[Signal, ...] = _INPUTS
    states: tuple[Signal, ...] = _STATES
    outputs: tuple[Signal, ...] = _OUTPUTS
    parameters: tuple[Parameter, ...] = _PARAMETERS
    events: tuple[str, ...] = ("chiller_degraded",)
    #: Curve coefficients are a shape, not a unit-to-unit spread.
    fixed_parameters = frozenset({"plr_c0", "plr_c1", "plr_c2", "degraded_cop_loss"})

    def initial_state(
        self, p: np.ndarray, u: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Clean condenser, or with ``rng`` a little fouling from its past (0 … 0.2)."""
        f = np.zeros((p.shape[0], 1))
        return f if rng is None else f + rng.uniform(0.0, 0.2, f.shape)

    def next_state(self, x: np.ndarray, u: np.ndarray, dt: float, p: np.ndarray) -> np.ndarray:
        """Fouling grows linearly while the chiller carries load (exact for any dt)."""
        uu, q = _cols(u, _INPUTS), _cols(p, _PARAMETERS)
        running = uu["cooling_load"] > 0.0
        rate = q["fouling_rate"] / 3600.0 * (1.0 + np.maximum(uu["fouling_acceleration"], 0.0))
        return x + np.where(running, rate * dt, 0.0)[:, None]

    def output(self, x: np.ndarray, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Delivered and unmet cooling, power = delivered / COP, and the chilled-water loop."""
        uu, q = _cols(u, _INPUTS), _cols(p, _PARAMETERS)
        load = np.maximum(uu["cooling_load"], 0.0)
        t_out, t_set = uu["outdoor_temperature"], uu["chilled_water_setpoint"]
        cap = available_capacity(t_out, q)
        delivered = np.minimum(load, cap)
        plr = delivered / cap
        cop = full_load_cop(t_out, t_set, x[:, 0], q) * part_load_factor(plr, q)
        # Constant primary flow sized for the design ΔT; unmet load warms the supply water.
        water = q["rated_capacity"] / q["design_delta_t"]  # kW/K, i.e. ṁ·cp
        t_supply = t_set + (load - delivered) / water
        t_return = t_set + load / water
        return np.stack([delivered, load - delivered, delivered / cop, cop, plr, t_supply, t_return],
                        axis=1)

    def event_state(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """1 − (COP loss at rating conditions) / `degraded_cop_loss`, clipped to 0 … 1."""
        limit = _cols(p, _PARAMETERS)["degraded_cop_loss"]
        return np.clip(1.0 - cop_loss(x, p) / limit, 0.0, 1.0)[:, None]


def cop_loss(x: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Fraction of the clean full-load COP lost to fouling, at rating conditions (35 / 7 degC)."""
    q = _cols(p, _PARAMETERS)
    f = x[:, 0]
    out, chw = np.full_like(f, _RATING_OUTDOOR), np.full_like(f, _RATING_CHW)
    return 1.0 - full_load_cop(out, chw, f, q) / full_load_cop(out, chw, np.zeros_like(f), q)


__all__ = [
    "ChillerModel",
    "available_capacity",
    "cop_loss",
    "full_load_cop",
    "part_load_factor",
]
