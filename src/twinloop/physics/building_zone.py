"""A thermal zone and its share of an air handler: a 3R2C network with a VAV terminal.

One row is one zone (e.g. a 500 m² office floor zone). Two thermal nodes — the zone air
(plus furnishings) and the building mass — and one CO₂ node::

    T_out ──H_win── T_air ──H_surf── T_mass ──H_wall── T_out
                      ▲                 ▲
        solar, people, lights, plugs (split air / mass) + Q_hvac = ṁ·cp·(T_discharge − T_air)

The air handler mixes outdoor and return air (economizer), its coils bring the mix to the supply
setpoint within an effectiveness limit (`air_handler`), and a VAV terminal with reheat holds the
zone setpoint with a proportional thermostat: ``Q_req = K·(T_set − T_air)``, clipped to what the
airflow can deliver (fan speed caps the flow; minimum flow with reheat for heating). Each regime
is *linear* in the state, so every sub-step (≤ `MAX_SUBSTEP_S`) is integrated exactly with the
2×2 matrix exponential; the regime and the air handler's supply temperature are frozen over a
sub-step. That keeps ``next_state`` stable and accurate for any dt from 1 s to hours.

Not modelled: latent loads and humidity, fan heat in the air stream (~1 K at design flow),
duct losses, thermostat integral action (the P-band leaves an offset of load / K).
"""

from __future__ import annotations

import math

import numpy as np

from twinloop.physics.air_handler import (
    CP_AIR,
    RHO_AIR,
    coil_leaving_temperature,
    fan_power,
    mixed_air_temperature,
    outdoor_air_fraction,
)
from twinloop.physics.model import Parameter, Signal

#: Longest sub-step [s] over which the terminal regime and supply temperature are held.
MAX_SUBSTEP_S = 120.0

_INPUTS = (
    Signal("outdoor_temperature", "degC", "dry-bulb outdoor air temperature"),
    Signal("solar_irradiance", "W/m**2", "irradiance on the zone's glazing"),
    Signal("occupancy", "dimensionless", "people present in the zone (a count)"),
    Signal("zone_setpoint", "degC", "zone air temperature setpoint (command setSetpoint)"),
    Signal("supply_air_setpoint", "degC", "air-handler supply air temperature setpoint"),
    Signal("fan_speed", "dimensionless", "fan speed command, 0 … 1 of design; caps the airflow"),
    Signal("chilled_water_temperature", "degC", "chilled water entering the cooling coil"),
    Signal("damper_stuck", "dimensionless", "fault: 0 free … 1 outdoor-air damper seized"),
)
_STATES = (
    Signal("air_temperature", "degC", "zone air and furnishings"),
    Signal("mass_temperature", "degC", "building mass (slabs, walls) seen by the zone"),
    Signal("co2", "ppm", "zone CO2 concentration"),
)
_OUTPUTS = (
    Signal("air_temperature", "degC", "zone air temperature"),
    Signal("co2", "ppm", "zone CO2 concentration"),
    Signal("supply_air_temperature", "degC", "air leaving the air-handler coils"),
    Signal("airflow", "m**3/h", "supply airflow to the zone"),
    Signal("fan_power", "kW", "supply fan electrical power for this zone's airflow"),
    Signal("damper_position", "percent", "outdoor-air damper position (outdoor-air share)"),
    Signal("cooling_coil_load", "kW", "sensible load on the chilled-water coil (to the chiller)"),
    Signal("heating_load", "kW", "air-handler heating coil plus terminal reheat"),
    Signal("hvac_heat", "kW", "sensible heat delivered to the zone air (negative: cooling)"),
)
_PARAMETERS = (
    Parameter("floor_area", 500.0, "m**2", 10.0, 1e5, "conditioned floor area"),
    Parameter("air_volume", 1500.0, "m**3", 20.0, 5e5, "zone air volume (for CO2)"),
    Parameter("air_capacitance", 8e6, "J/K", 1e5, 1e9, "air plus furnishings (≈4× the air alone)"),
    Parameter("mass_capacitance", 8e7, "J/K", 1e6, 1e10, "effective building mass (≈165 kJ/m²K)"),
    Parameter("window_conductance", 150.0, "W/K", 1.0, 1e5, "windows and infiltration, air↔outdoor"),
    Parameter("wall_conductance", 50.0, "W/K", 1.0, 1e5, "opaque envelope, mass↔outdoor"),
    Parameter("surface_conductance", 5000.0, "W/K", 10.0, 1e6, "interior surfaces, air↔mass"),
    Parameter("window_area", 30.0, "m**2", 0.0, 1e4, "glazing area"),
    Parameter("solar_heat_gain_coefficient", 0.35, "dimensionless", 0.0, 1.0, "glazing + shading"),
    Parameter("solar_to_mass_fraction", 0.5, "dimensionless", 0.0, 1.0, "solar gain absorbed by mass"),
    Parameter("people_sensible_gain", 75.0, "W", 0.0, 300.0, "sensible heat per person (office work)"),
    Parameter("design_occupancy", 50.0, "dimensionless", 1.0, 1e4, "people at full occupancy"),
    Parameter("lighting_power_density", 8.0, "W/m**2", 0.0, 50.0, "installed lighting"),
    Parameter("plug_power_density", 10.0, "W/m**2", 0.0, 100.0, "installed plug loads"),
    Parameter("unoccupied_load_fraction", 0.2, "dimensionless", 0.0, 1.0, "lights/plugs left on empty"),
    Parameter("internal_to_mass_fraction", 0.3, "dimensionless", 0.0, 1.0, "radiant share of gains"),
    Parameter("design_airflow", 6000.0, "m**3/h", 100.0, 1e6, "terminal and fan design airflow"),
    Parameter("min_airflow_fraction", 0.4, "dimensionless", 0.0, 1.0, "VAV minimum (ventilation)"),
    Parameter("min_outdoor_air_fraction", 0.35, "dimensionless", 0.0, 1.0, "ventilation minimum"),
    Parameter("economizer", 1.0, "dimensionless", 0.0, 1.0, "1: dry-bulb economizer enabled"),
    Parameter("economizer_high_limit", 18.0, "degC", 0.0, 30.0, "no free cooling above this"),
    Parameter("coil_effectiveness", 0.8, "dimensionless", 0.0, 1.0, "coil ε (capacity limit)"),
    Parameter("hot_water_temperature", 45.0, "degC", 20.0, 90.0, "heating water to the coils"),
    Parameter("max_discharge_temperature", 35.0, "degC", 20.0, 50.0, "reheat limit"),
    Parameter("thermostat_gain", 4e4, "W/K", 100.0, 1e7, "P-band: heat asked per kelvin of error"),
    Parameter("fan_design_power", 2.5, "kW", 0.0, 1e3, "fan power at design airflow"),
    Parameter("infiltration", 0.2, "1/h", 0.0, 5.0, "air changes (for CO2; heat is in H_win)"),
    Parameter("co2_generation", 0.0052, "L/s", 0.0, 0.05, "CO2 exhaled per person (office work)"),
    Parameter("outdoor_co2", 420.0, "ppm", 300.0, 1000.0, "outdoor CO2 concentration"),
    Parameter("damper_stuck_position", 0.0, "dimensionless", 0.0, 1.0, "where a seized damper sits"),
)


def _cols(a: np.ndarray, signals: tuple[Signal, ...] | tuple[Parameter, ...]) -> dict[str, np.ndarray]:
    return {s.name: a[:, i] for i, s in enumerate(signals)}


def _gains(u: dict[str, np.ndarray], q: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Solar and internal heat gains [W] into the air and mass nodes."""
    solar = q["window_area"] * q["solar_heat_gain_coefficient"] * np.maximum(u["solar_irradiance"], 0)
    people = np.maximum(u["occupancy"], 0.0)
    share = np.minimum(people / q["design_occupancy"], 1.0)
    on = q["unoccupied_load_fraction"] + (1.0 - q["unoccupied_load_fraction"]) * share
    internal = people * q["people_sensible_gain"] + on * q["floor_area"] * (
        q["lighting_power_density"] + q["plug_power_density"])
    fs, fi = q["solar_to_mass_fraction"], q["internal_to_mass_fraction"]
    return (1 - fs) * solar + (1 - fi) * internal, fs * solar + fi * internal


def _air_side(t_air: np.ndarray, u: dict[str, np.ndarray], q: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The air handler and VAV terminal at zone temperature ``t_air``.

    Returns the regime as ``Q_hvac = g·(t_ref − T_air)`` plus the derived flow, coil and reheat.
    """
    m_design = q["design_airflow"] * RHO_AIR / 3600.0
    fan = np.clip(u["fan_speed"], 0.0, 1.0)
    m_max = fan * m_design
    m_min = np.minimum(q["min_airflow_fraction"], fan) * m_design
    f_oa = outdoor_air_fraction(
        u["outdoor_temperature"], t_air, u["supply_air_setpoint"], q["min_outdoor_air_fraction"],
        q["economizer"], q["economizer_high_limit"], u["damper_stuck"], q["damper_stuck_position"])
    t_mix = mixed_air_temperature(u["outdoor_temperature"], t_air, f_oa)
    t_sup = coil_leaving_temperature(t_mix, u["supply_air_setpoint"], u["chilled_water_temperature"],
                                     q["hot_water_temperature"], q["coil_effectiveness"])
    d_sup = t_sup - t_air
    gain = q["thermostat_gain"]
    q_req = gain * (u["zone_setpoint"] - t_air)
    # Coolest the terminal can make the zone: full flow if the supply is colder, else minimum flow.
    g_lo = np.where(d_sup < 0, m_max, m_min) * CP_AIR
    t_hi = np.maximum(q["max_discharge_temperature"], t_sup)
    g_hi = m_min * CP_AIR
    low, high = q_req < g_lo * d_sup, q_req > g_hi * (t_hi - t_air)
    g = np.where(low, g_lo, np.where(high, g_hi, gain))
    t_ref = np.where(low, t_sup, np.where(high, t_hi, u["zone_setpoint"]))
    q_hvac = g * (t_ref - t_air)
    cooling = (d_sup < 0) & (q_hvac < 0)
    m_cool = q_hvac / (CP_AIR * np.where(cooling, d_sup, -1.0))
    flow = np.where(cooling, np.clip(m_cool, m_min, m_max), m_min)
    reheat = np.maximum(q_hvac - flow * CP_AIR * d_sup, 0.0)
    coil = flow * CP_AIR * (t_mix - t_sup)
    fraction = np.divide(flow, m_design)
    return {"g": g, "t_ref": t_ref, "q_hvac": q_hvac, "flow": flow, "f_oa": f_oa, "t_sup": t_sup,
            "reheat": reheat, "coil": coil, "fan": fan_power(fraction, q["fan_design_power"] * 1e3)}


def _rc_step(
    ta: np.ndarray, tm: np.ndarray, g: np.ndarray, t_ref: np.ndarray, to: np.ndarray,
    phi_a: np.ndarray, phi_m: np.ndarray, q: dict[str, np.ndarray], h: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Exact solution of the linear 2-node network over ``h``: ``x = x_ss + e^{Ah}(x0 − x_ss)``.

    The 2×2 exponential uses Sylvester's formula with real eigenvalues ``s ± r`` (an RC network
    is symmetric in energy-weighted coordinates), both negative, so nothing can overflow.
    """
    ca, cm = q["air_capacitance"], q["mass_capacitance"]
    hw, he, hs = q["window_conductance"], q["wall_conductance"], q["surface_conductance"]
    a11, a12 = -(hw + hs + g) / ca, hs / ca
    a21, a22 = hs / cm, -(he + hs) / cm
    b1 = (hw * to + g * t_ref + phi_a) / ca
    b2 = (he * to + phi_m) / cm
    det = a11 * a22 - a12 * a21
    ss_a = (a12 * b2 - a22 * b1) / det
    ss_m = (a21 * b1 - a11 * b2) / det
    s, d = (a11 + a22) / 2, (a11 - a22) / 2
    r = np.sqrt(d * d + a12 * a21)
    e1, e2 = np.exp((s + r) * h), np.exp((s - r) * h)
    mean = (e1 + e2) / 2
    rh = r * h
    small = rh < 1e-6
    sinh_over_r = np.where(small, h * np.exp(s * h) * (1 + rh * rh / 6),
                           (e1 - e2) / (2 * np.where(small, 1.0, r)))
    da, dm = ta - ss_a, tm - ss_m
    new_a = ss_a + (mean + sinh_over_r * d) * da + sinh_over_r * a12 * dm
    new_m = ss_m + sinh_over_r * a21 * da + (mean - sinh_over_r * d) * dm
    return new_a, new_m


def _co2_rates(air: dict[str, np.ndarray], u: dict[str, np.ndarray], q: dict[str, np.ndarray]
               ) -> tuple[np.ndarray, np.ndarray]:
    """``dC/dt = a − k·C`` [ppm/s]: outdoor air (supply share + infiltration) dilutes, people emit."""
    fresh = air["f_oa"] * air["flow"] / RHO_AIR + q["infiltration"] * q["air_volume"] / 3600.0
    k = fresh / q["air_volume"]
    emitted = np.maximum(u["occupancy"], 0.0) * q["co2_generation"] * 1e-3 * 1e6 / q["air_volume"]
    return k * q["outdoor_co2"] + emitted, k


class ZoneModel:
    """A thermal zone with its air handler share (see the module docstring for the network)."""

    name = "building_zone"
    inputs = _INPUTS
    states = _STATES
    outputs = _OUTPUTS
    parameters = _PARAMETERS
    events: tuple[str, ...] = ()
    #: Switches and calibration-free constants that `sample_parameters` must not spread.
    fixed_parameters = frozenset({"economizer", "damper_stuck_position", "outdoor_co2"})

    def initial_state(
        self, p: np.ndarray, u: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """Steady state at ``u``: the regime is found by a few fixed-point passes."""
        uu, q = _cols(u, _INPUTS), _cols(p, _PARAMETERS)
        phi_a, phi_m = _gains(uu, q)
        ta = uu["zone_setpoint"].astype(np.float64)
        tm = ta.copy()
        for _ in range(8):
            air = _air_side(ta, uu, q)
            ta, tm = _rc_step(ta, tm, air["g"], air["t_ref"], uu["outdoor_temperature"], phi_a, phi_m,
                              q, 1e12)
        a, k = _co2_rates(_air_side(ta, uu, q), uu, q)
        c = a / np.maximum(k, 1e-12)
        if rng is not None:
            ta = ta + rng.normal(0.0, 0.3, ta.shape)
            tm = tm + rng.normal(0.0, 0.3, tm.shape)
            c = c + rng.normal(0.0, 20.0, c.shape)
        return np.stack([ta, tm, c], axis=1)

    def next_state(self, x: np.ndarray, u: np.ndarray, dt: float, p: np.ndarray) -> np.ndarray:
        """Sub-steps of at most `MAX_SUBSTEP_S`, each exact for its frozen regime."""
        uu, q = _cols(u, _INPUTS), _cols(p, _PARAMETERS)
        phi_a, phi_m = _gains(uu, q)
        ta, tm, c = x[:, 0], x[:, 1], x[:, 2]
        steps = max(1, math.ceil(dt / MAX_SUBSTEP_S))
        h = dt / steps
        for _ in range(steps):
            air = _air_side(ta, uu, q)
            a, k = _co2_rates(air, uu, q)
            kh = k * h
            held = np.where(kh > 1e-12, -np.expm1(-kh) / np.where(kh > 1e-12, kh, 1.0), 1.0)
            c = c * np.exp(-kh) + a * h * held
            ta, tm = _rc_step(ta, tm, air["g"], air["t_ref"], uu["outdoor_temperature"], phi_a, phi_m,
                              q, h)
        return np.stack([ta, tm, c], axis=1)

    def output(self, x: np.ndarray, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Ideal sensor readings; flows and loads are those of the regime at ``x``."""
        uu, q = _cols(u, _INPUTS), _cols(p, _PARAMETERS)
        air = _air_side(x[:, 0], uu, q)
        heating = np.maximum(-air["coil"], 0.0) + air["reheat"]
        return np.stack([
            x[:, 0], x[:, 2], air["t_sup"], air["flow"] / RHO_AIR * 3600.0, air["fan"] / 1e3,
            100.0 * air["f_oa"], np.maximum(air["coil"], 0.0) / 1e3, heating / 1e3,
            air["q_hvac"] / 1e3,
        ], axis=1)

    def event_state(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """No events: a zone does not wear out (its air handler's faults are inputs)."""
        return np.ones((x.shape[0], 0))


def zone_heat_flows(x: np.ndarray, u: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Every heat flow [W] into the air and mass nodes at ``x`` — for energy audits and tests.

    ``surface`` flows from mass to air, so it appears with opposite signs in the two balances:
    ``C_air·dT_air/dt = window + surface + gains_air + hvac`` and
    ``C_mass·dT_mass/dt = wall − surface + gains_mass``.
    """
    uu, q = _cols(u, _INPUTS), _cols(p, _PARAMETERS)
    ta, tm, to = x[:, 0], x[:, 1], uu["outdoor_temperature"]
    phi_a, phi_m = _gains(uu, q)
    return {
        "window": q["window_conductance"] * (to - ta),
        "wall": q["wall_conductance"] * (to - tm),
        "surface": q["surface_conductance"] * (tm - ta),
        "gains_air": phi_a,
        "gains_mass": phi_m,
        "hvac": _air_side(ta, uu, q)["q_hvac"],
    }


__all__ = ["MAX_SUBSTEP_S", "ZoneModel", "zone_heat_flows"]
