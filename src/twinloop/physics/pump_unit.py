"""One pump unit — centrifugal pump, induction motor on a drive, bearing, discharge valve.

Defaults describe a ~55 kW end-suction water pump at 2950 rpm / 50 Hz / 400 V with its best
efficiency point at 200 m**3/h and 75 m. Nominal duty (`nominal_inputs`): 2950 rpm, valve 100 %
open, suction 0.5 bar(g), discharge static head 55 m, 25 °C ambient → about 200 m**3/h, 75 m,
80 % pump efficiency, 51 kW on the shaft, 54 kW electrical, 89 A, power factor 0.87. A new
bearing at nominal duty reaches the failure threshold after about 1,800 h (median;
`sample_parameters` spreads units over roughly 1,100–3,000 h, 5–95 %).

Hydraulics (see `pump`): the unit lifts from its suction pressure to the discharge static head,
``H_sys = max(h_dis − h_suction, 0) + (K_pipe + K_valve)·Q²``. Slow states (temperatures, wear)
are stepped at the operating point reached after the fast ones (speed, valve) have moved, with
exact exponential solutions, so any ``dt`` from 0.1 s to an hour is stable.

>>> import numpy as np
>>> m = PumpUnitModel()
>>> p = default_parameters(m, 1)
>>> u = nominal_inputs(m, 1)
>>> y = m.output(m.initial_state(p, u), u, p)
>>> round(float(y[0, m.output_index("flow")]), 1)
199.8
"""

from __future__ import annotations

import numpy as np

from twinloop.physics import bearing, motor, pump, valve
from twinloop.physics.model import Parameter, Signal, default_parameters, index, inputs_array

_K = "m/(m**3/h)**2"

_PARAMETERS = (
    Parameter("rated_speed", 2950.0, "rpm", 500.0, 6000.0, "speed the curves are given at (2-pole, 50 Hz)"),
    Parameter("max_speed", 3250.0, "rpm", 500.0, 7000.0, "highest speed the drive accepts"),
    Parameter("speed_time_constant", 3.0, "s", 0.5, 30.0, "drive + rotor first-order response"),
    Parameter("speed_ramp_rate", 300.0, "rpm/s", 10.0, 5000.0, "drive acceleration/deceleration limit"),
    Parameter("shutoff_head", 95.0, "m", 5.0, 500.0, "head at zero flow and rated speed (H0)"),
    Parameter("head_coefficient", 5.0e-4, _K, 1e-7, 1.0, "curve droop a in H = H0·s² − a·Q²"),
    Parameter("bep_flow", 200.0, "m**3/h", 1.0, 5000.0, "best-efficiency flow at rated speed"),
    Parameter("max_efficiency", 0.80, "dimensionless", 0.3, 0.95, "pump efficiency at the BEP"),
    Parameter("npshr_bep", 4.5, "m", 0.5, 20.0, "NPSH required (3 % head drop) at the BEP"),
    Parameter("npshr_low_flow_fraction", 0.4, "dimensionless", 0.1, 1.0, "NPSHr at zero flow / at BEP"),
    Parameter("water_temperature", 20.0, "degC", 0.0, 95.0, "pumped water temperature (vapour pressure)"),
    Parameter("water_density", 998.0, "kg/m**3", 900.0, 1100.0, "pumped liquid density"),
    Parameter("cavitation_head_drop", 0.06, "dimensionless", 0.0, 0.5, "head lost at full cavitation"),
    Parameter("pipe_resistance", 5.0e-4, _K, 0.0, 1.0, "friction K of the discharge line (H = K·Q²)"),
    Parameter("valve_kvs", 280.0, "m**3/h", 1.0, 1e4, "valve Kv fully open"),
    Parameter("valve_rangeability", 50.0, "dimensionless", 5.0, 200.0, "equal-percentage rangeability R"),
    Parameter("valve_characteristic", 1.0, "dimensionless", 0.0, 1.0, "0 linear … 1 equal percentage"),
    Parameter("valve_leakage", 5e-4, "dimensionless", 0.0, 0.05, "seat leakage Kv / Kvs when shut"),
    Parameter("valve_rate", 2.0, "percent/s", 0.05, 100.0, "actuator stroking speed"),
    Parameter("valve_deadband", 0.5, "percent", 0.0, 10.0, "positioner deadband (stiction)"),
    Parameter("motor_rated_power", 55.0, "kW", 0.5, 5000.0, "motor rated shaft output"),
    Parameter("motor_rated_voltage", 400.0, "V", 100.0, 15000.0, "line-to-line rated voltage"),
    Parameter("motor_rated_efficiency", 0.945, "dimensionless", 0.7, 0.99, "efficiency at rated load (IE3)"),
    Parameter("motor_rated_power_factor", 0.88, "dimensionless", 0.5, 0.99, "power factor at rated load"),
    Parameter("motor_constant_loss_fraction", 0.35, "dimensionless", 0.0, 1.0,
              "iron + friction share of rated losses"),
    Parameter("motor_magnetizing_fraction", 0.65, "dimensionless", 0.0, 1.0,
              "reactive power at no load / at rated load"),
    Parameter("winding_rated_rise", 75.0, "K", 20.0, 150.0, "winding rise over ambient at rated losses"),
    Parameter("winding_time_constant", 1800.0, "s", 60.0, 36000.0, "winding thermal RC at rated speed"),
    Parameter("motor_standstill_cooling", 0.35, "dimensionless", 0.05, 1.0, "cooling at standstill / rated"),
    Parameter("motor_vibration_base", 1.2, "mm/s", 0.0, 10.0, "motor housing vibration at rated speed"),
    Parameter("bearing_nominal_rise", 40.0, "K", 5.0, 100.0, "bearing rise over ambient at nominal duty"),
    Parameter("bearing_time_constant", 1200.0, "s", 60.0, 36000.0, "bearing housing thermal RC"),
    Parameter("bearing_static_load_fraction", 0.3, "dimensionless", 0.0, 1.0, "rotor weight share of load"),
    Parameter("bearing_off_design_load", 0.5, "dimensionless", 0.0, 5.0, "radial force growth off the BEP"),
    Parameter("cavitation_bearing_load", 0.25, "dimensionless", 0.0, 2.0, "extra load at full cavitation"),
    Parameter("bearing_wear_rate", 1.16e-3, "1/h", 1e-6, 1.0, "wear growth rate λ at nominal duty and T_ref"),
    Parameter("bearing_wear_offset", 0.1, "dimensionless", 1e-3, 1.0, "w0 in dw/dt = λ·(w + w0)"),
    Parameter("bearing_reference_temperature", 65.0, "degC", 0.0, 150.0, "bearing temperature for λ"),
    Parameter("bearing_wear_doubling_interval", 15.0, "K", 3.0, 50.0, "wear rate doubles per this rise"),
    Parameter("bearing_wear_friction_gain", 0.5, "dimensionless", 0.0, 5.0, "extra friction heat at w = 1"),
    Parameter("bearing_vibration_new", 1.0, "mm/s", 0.1, 10.0, "bearing vibration RMS when new"),
    Parameter("bearing_vibration_failure", 7.5, "mm/s", 1.0, 50.0, "bearing vibration RMS at w = 1"),
    Parameter("bearing_vibration_exponent", 3.0, "dimensionless", 1.0, 8.0, "shape p of vibration ∝ w^p"),
    Parameter("defect_energy_gain", 50.0, "dimensionless", 1.0, 1000.0, "defect-band energy rise at w = 1"),
    Parameter("cavitation_vibration", 3.0, "mm/s", 0.0, 20.0, "vibration added at full cavitation"),
    Parameter("motor_bearing_vibration_coupling", 0.3, "dimensionless", 0.0, 1.0,
              "share of pump-bearing excess vibration seen on the motor"),
)
_P = {q.name: i for i, q in enumerate(_PARAMETERS)}

_OUTPUTS = (
    Signal("flow", "m**3/h", "delivered flow"),
    Signal("head", "m", "pump total head"),
    Signal("discharge_pressure", "bar", "gauge pressure at the discharge flange"),
    Signal("suction_pressure", "bar", "gauge pressure at the suction flange"),
    Signal("speed", "rpm", "shaft speed"),
    Signal("power", "kW", "electrical input power of the motor"),
    Signal("shaft_power", "kW", "mechanical power into the pump"),
    Signal("efficiency", "dimensionless", "pump efficiency ρgQH / shaft power"),
    Signal("motor_current", "A", "line current"),
    Signal("motor_voltage", "V", "drive output voltage (V/f)"),
    Signal("motor_power_factor", "dimensionless", "motor power factor"),
    Signal("winding_temperature", "degC", "stator winding temperature"),
    Signal("motor_vibration_rms", "mm/s", "motor housing vibration velocity RMS"),
    Signal("bearing_temperature", "degC", "pump bearing housing temperature"),
    Signal("bearing_vibration_rms", "mm/s", "pump bearing housing vibration velocity RMS"),
    Signal("defect_band_energy", "dimensionless", "envelope energy at bearing defect frequencies"),
    Signal("valve_opening", "percent", "valve position feedback"),
    Signal("valve_differential_pressure", "bar", "pressure drop across the valve"),
    Signal("npsh_margin", "m", "NPSH available − NPSH required"),
    Signal("cavitation", "dimensionless", "cavitation severity 0 … 1"),
)


def _col(p: np.ndarray, name: str) -> np.ndarray:
    return p[:, _P[name]]


class PumpUnitModel:
    """Pump + motor + bearing + valve of one unit, vectorized over a fleet of units."""

    name = "pump_unit"
    inputs: tuple[Signal, ...] = (
        Signal("speed_setpoint", "rpm", "drive speed setpoint, 0 = stopped"),
        Signal("valve_command", "percent", "discharge valve position command"),
        Signal("suction_pressure", "bar", "gauge suction pressure (from the suction tank)"),
        Signal("discharge_static_head", "m", "static head at the discharge: delivery height + back-pressure"),
        Signal("ambient_temperature", "degC", "air temperature around motor and bearing"),
        Signal("wear_acceleration", "dimensionless", "bearing wear multiplier, 1 normal, > 1 fault"),
        Signal("valve_stuck", "dimensionless", "1 = valve actuator stuck (holds position)"),
    )
    states: tuple[Signal, ...] = (
        Signal("speed", "rpm", "shaft speed"),
        Signal("valve_position", "percent", "valve position"),
        Signal("winding_temperature", "degC", "stator winding temperature"),
        Signal("bearing_temperature", "degC", "pump bearing housing temperature"),
        Signal("bearing_wear", "dimensionless", "bearing wear, 0 new … 1 failure threshold"),
    )
    outputs: tuple[Signal, ...] = _OUTPUTS
    parameters: tuple[Parameter, ...] = _PARAMETERS
    events: tuple[str, ...] = ("bearing_failure",)

    @classmethod
    def input_index(cls, name: str) -> int:
        """Column of input ``name``."""
        return index(cls.inputs, name)

    @classmethod
    def state_index(cls, name: str) -> int:
        """Column of state ``name``."""
        return index(cls.states, name)

    @classmethod
    def output_index(cls, name: str) -> int:
        """Column of output ``name``."""
        return index(cls.outputs, name)

    def initial_state(
        self, p: np.ndarray, u: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """A new bearing, at speed and thermally settled at ``u`` (deterministic; ``rng`` unused)."""
        speed = np.clip(u[:, 0], 0.0, _col(p, "max_speed"))
        position = np.clip(u[:, 1], 0.0, 100.0)
        x = np.stack([speed, position, u[:, 4], u[:, 4], np.zeros(len(u))], axis=1)
        settled = self._slow_step(x, u, p, 1e9)
        settled[:, 4] = 0.0
        return settled

    def next_state(self, x: np.ndarray, u: np.ndarray, dt: float, p: np.ndarray) -> np.ndarray:
        """Fast states (drive speed, valve) first, then heat and wear at the new operating point."""
        speed = motor.speed_step(x[:, 0], np.clip(u[:, 0], 0.0, _col(p, "max_speed")),
                                 _col(p, "speed_time_constant"), _col(p, "speed_ramp_rate"), dt)
        position = valve.valve_step(x[:, 1], u[:, 1], u[:, 6], _col(p, "valve_rate"),
                                    _col(p, "valve_deadband"), dt)
        moved = np.stack([speed, position, x[:, 2], x[:, 3], x[:, 4]], axis=1)
        return self._slow_step(moved, u, p, dt)

    def _slow_step(self, x: np.ndarray, u: np.ndarray, p: np.ndarray, dt: float) -> np.ndarray:
        op = _operating_point(x, u, p)
        s, wear, ambient = op["s"], x[:, 4], u[:, 4]
        cooling = motor.cooling_factor(s, _col(p, "motor_standstill_cooling"))
        winding = motor.winding_step(x[:, 2], ambient, op["losses"], op["rated_losses"],
                                     _col(p, "winding_rated_rise"), _col(p, "winding_time_constant"),
                                     cooling, dt)
        heat = bearing.bearing_heat(s, op["load"], wear, _col(p, "bearing_wear_friction_gain"))
        temperature, mean_temperature = bearing.bearing_temperature_step(
            x[:, 3], ambient, heat, _col(p, "bearing_nominal_rise"), _col(p, "bearing_time_constant"), dt)
        rate = bearing.wear_rate(
            _col(p, "bearing_wear_rate") / 3600.0, s, op["load"], mean_temperature,
            _col(p, "bearing_reference_temperature"), _col(p, "bearing_wear_doubling_interval"), u[:, 5])
        wear = bearing.wear_step(wear, rate, _col(p, "bearing_wear_offset"), dt)
        return np.stack([x[:, 0], x[:, 1], winding, temperature, wear], axis=1)

    def output(self, x: np.ndarray, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        """The unit's sensors: hydraulics, drive, temperatures, vibration, valve and NPSH."""
        op = _operating_point(x, u, p)
        s, wear, cav = op["s"], x[:, 4], op["cavitation"]
        v_new = _col(p, "bearing_vibration_new")
        bearing_vib = bearing.bearing_vibration(s, wear, v_new, _col(p, "bearing_vibration_failure"),
                                                _col(p, "bearing_vibration_exponent"))
        bearing_vib = bearing_vib + _col(p, "cavitation_vibration") * cav
        motor_vib = motor.motor_vibration(s, _col(p, "motor_vibration_base")) + _col(
            p, "motor_bearing_vibration_coupling") * (bearing_vib - v_new * s**2)
        energy = bearing.defect_band_energy(s, wear, _col(p, "defect_energy_gain")) + s**2 * cav
        columns = [
            op["flow"], op["head"], u[:, 2] + op["head_bar"], u[:, 2], x[:, 0],
            op["electrical"] / 1e3, op["shaft"] / 1e3, op["efficiency"], op["current"], op["voltage"],
            op["power_factor"], x[:, 2], motor_vib, x[:, 3], bearing_vib, energy, x[:, 1],
            op["valve_dp"], op["npsh_margin"], cav,
        ]
        return np.stack(columns, axis=1)

    def event_state(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """``bearing_failure``: 1 − wear."""
        return np.clip(1.0 - x[:, [4]], 0.0, 1.0)

    def sample_parameters(self, n: int, rng: np.random.Generator, spread: float = 0.15) -> np.ndarray:
        """Per-unit parameters with realistic unit-to-unit spread; see `sample_parameters`."""
        return sample_parameters(n, rng, spread)


def _operating_point(x: np.ndarray, u: np.ndarray, p: np.ndarray) -> dict[str, np.ndarray]:
    """Everything algebraic in (state, input): hydraulics with one cavitation pass, then the motor."""
    rho = _col(p, "water_density")
    s = np.maximum(x[:, 0], 0.0) / _col(p, "rated_speed")
    h0, a, bep = _col(p, "shutoff_head"), _col(p, "head_coefficient"), _col(p, "bep_flow")
    kv = valve.valve_kv(x[:, 1], _col(p, "valve_kvs"), _col(p, "valve_rangeability"),
                        _col(p, "valve_characteristic"), _col(p, "valve_leakage"))
    k_system = _col(p, "pipe_resistance") + valve.valve_resistance(kv)
    suction = np.maximum(u[:, 2], -1.0)
    static = np.maximum(u[:, 3] - suction * 1e5 / (rho * pump.G), 0.0)

    npsha = pump.npsh_available(suction, _col(p, "water_temperature"), rho)
    npshr_args = (bep, _col(p, "npshr_bep"), _col(p, "npshr_low_flow_fraction"))
    first = pump.operating_flow(s, static, k_system, h0, a)
    cav = pump.cavitation_index(npsha, pump.npsh_required(first, s, *npshr_args))
    factor = 1.0 - _col(p, "cavitation_head_drop") * cav
    flow = pump.operating_flow(s, static, k_system, h0, a, factor)
    head = factor * pump.pump_head(flow, s, h0, a)
    eta_max = _col(p, "max_efficiency")
    shaft = pump.shaft_power(flow, head, s, bep, eta_max, rho)

    rated_w, rated_eff = _col(p, "motor_rated_power") * 1e3, _col(p, "motor_rated_efficiency")
    losses = motor.motor_losses(shaft, s, rated_w, rated_eff, _col(p, "motor_constant_loss_fraction"))
    electrical = shaft + losses
    reactive = motor.reactive_power(shaft, s, rated_w, rated_eff, _col(p, "motor_rated_power_factor"),
                                    _col(p, "motor_magnetizing_fraction"))
    voltage = motor.motor_voltage(s, _col(p, "motor_rated_voltage"))
    q_rel = pump.relative_flow(flow, s, bep)
    load = bearing.bearing_load(q_rel, s, _col(p, "bearing_static_load_fraction"),
                                _col(p, "bearing_off_design_load"), cav, _col(p, "cavitation_bearing_load"))
    return {
        "s": s, "flow": flow, "head": head, "head_bar": rho * pump.G * head / 1e5, "shaft": shaft,
        "efficiency": pump.pump_efficiency(flow, s, bep, eta_max), "losses": losses,
        "rated_losses": motor.rated_losses(rated_w, rated_eff), "electrical": electrical,
        "power_factor": motor.power_factor(electrical, reactive), "voltage": voltage,
        "current": motor.motor_current(electrical, reactive, voltage), "load": load, "cavitation": cav,
        "valve_dp": valve.valve_pressure_drop(flow, kv, rho),
        "npsh_margin": npsha - pump.npsh_required(flow, s, *npshr_args),
    }


# (parameter, kind, sigma per unit of `spread`): curves vary a little between castings, thermal
# paths more, bearing life a lot (ISO 281 life scatter is roughly lognormal).
_SPREAD = (
    ("shutoff_head", "normal", 0.1), ("head_coefficient", "normal", 0.2), ("bep_flow", "normal", 0.1),
    ("max_efficiency", "normal", 0.07), ("npshr_bep", "normal", 0.3),
    ("winding_time_constant", "normal", 0.3), ("winding_rated_rise", "normal", 0.2),
    ("bearing_nominal_rise", "normal", 0.3), ("bearing_time_constant", "normal", 0.3),
    ("motor_vibration_base", "lognormal", 1.0), ("bearing_vibration_new", "lognormal", 1.0),
    ("bearing_wear_rate", "lognormal", 2.0),
)


def sample_parameters(n: int, rng: np.random.Generator, spread: float = 0.15) -> np.ndarray:
    """``(n, n_parameters)`` defaults with unit-to-unit spread, clipped to each parameter's bounds.

    With ``spread = 0.15``: curve coefficients ±1–3 % (normal), thermal paths ±3–5 %, vibration
    baselines lognormal σ 0.15, bearing wear rate lognormal σ 0.3 (run-to-failure at nominal duty
    about 1,100–3,000 h, 5–95 %).
    """
    model = PumpUnitModel()
    p = default_parameters(model, n)
    for name, kind, sigma in _SPREAD:
        z = rng.standard_normal(n) * sigma * spread
        i = _P[name]
        p[:, i] *= np.exp(z) if kind == "lognormal" else 1.0 + z
        p[:, i] = np.clip(p[:, i], _PARAMETERS[i].lower, _PARAMETERS[i].upper)
    return p


def nominal_inputs(model: PumpUnitModel, n: int, **overrides: float | np.ndarray) -> np.ndarray:
    """Inputs of the documented nominal duty (rated speed, valve open, 0.5 bar suction, 55 m static)."""
    values: dict[str, float | np.ndarray] = {
        "speed_setpoint": 2950.0, "valve_command": 100.0, "suction_pressure": 0.5,
        "discharge_static_head": 55.0, "ambient_temperature": 25.0, "wear_acceleration": 1.0,
        "valve_stuck": 0.0,
    }
    values.update(overrides)
    return inputs_array(model, n, **values)


__all__ = ["PumpUnitModel", "nominal_inputs", "sample_parameters"]
