"""Pump glue for the physics prognoser: a bearing-wear estimate and a load forecast from latest readings.

Until the state estimators (``twinloop.estimate``) feed the twin, the wear of a pump's bearing
is read straight off its vibration and defect-band energy by inverting the `PumpUnitModel`
output equations, with Monte Carlo over sensor noise and unit-to-unit spread of a new bearing's
vibration. Early in life the inversion is honest about knowing little: vibration grows as
``w³`` and band energy as ``w⁴``, so a young bearing's wear comes with a wide spread.

>>> est = pump_state_from_readings({"speed": 2950.0, "bearing.vibration_rms": 4.0,
...                                 "bearing.defect_band_energy": 20.0})
>>> w = est.mean[PumpUnitModel.state_index("bearing_wear")]
>>> bool(0.6 < w < 0.9)
True
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from twinloop.analytics.rul.physics import LoadForecast, StateEstimate
from twinloop.core.errors import ValidationError
from twinloop.physics.model import default_parameters
from twinloop.physics.pump_unit import PumpUnitModel, nominal_inputs

#: Channels the pump glue reads (as the Pump asset type names them).
CHANNELS = ("speed", "valve.opening", "suction_pressure", "motor.winding_temperature",
            "bearing.temperature", "bearing.vibration_rms", "bearing.defect_band_energy")
MIN_SPEED_RATIO = 0.3


def pump_state_from_readings(
    latest: Mapping[str, float], parameters: np.ndarray | None = None, n_draws: int = 4000, seed: int = 0
) -> StateEstimate:
    """A `PumpUnitModel` state estimate (mean, covariance) from a pump's latest readings."""
    m = PumpUnitModel()
    p = default_parameters(m, 1)[0] if parameters is None else np.asarray(parameters, dtype=np.float64)
    par = {q.name: p[i] for i, q in enumerate(m.parameters)}
    missing = [c for c in ("speed", "bearing.vibration_rms", "bearing.defect_band_energy") if c not in latest]
    if missing:
        raise ValidationError(f"no recent readings of {missing}",
                              hint="RUL needs the pump's vibration and speed")
    s = float(latest["speed"]) / par["rated_speed"]
    if s < MIN_SPEED_RATIO:
        raise ValidationError("the pump is (nearly) stopped; bearing wear cannot be read from its vibration",
                              hint="RUL is updated while the pump runs")
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((4, n_draws))
    vib = float(latest["bearing.vibration_rms"])
    energy = float(latest["bearing.defect_band_energy"])
    v_new = par["bearing_vibration_new"] * np.exp(0.15 * z[0])
    v_meas = vib + (0.03 + 0.03 * vib) * z[1]
    frac_v = (v_meas / s**2 - v_new) / (par["bearing_vibration_failure"] - v_new)
    w_v = np.clip(frac_v, 0.0, 1.0) ** (1.0 / par["bearing_vibration_exponent"])
    e_meas = energy + (0.01 + 0.05 * energy) * z[2]
    w_e = np.clip((e_meas / s**2 - 1.0) / par["defect_energy_gain"], 0.0, 1.0) ** 0.25
    var_v, var_e = max(w_v.var(), 1e-6), max(w_e.var(), 1e-6)
    w = (w_v / var_v + w_e / var_e) / (1.0 / var_v + 1.0 / var_e)
    mean = np.array([
        float(latest["speed"]), float(latest.get("valve.opening", 100.0)),
        float(latest.get("motor.winding_temperature", 60.0)), float(latest.get("bearing.temperature", 60.0)),
        float(w.mean()),
    ])
    cov = np.diag([25.0, 1.0, 4.0, 4.0, max(float(w.var()), 1e-6)])
    return StateEstimate(mean, cov, p)


def pump_load_from_readings(latest: Mapping[str, float], *, static_head: float = 55.0,
                            ambient_temperature: float = 25.0) -> LoadForecast:
    """The pump keeps its present duty (speed, valve, suction); head and ambient are nominal."""
    m = PumpUnitModel()
    u = nominal_inputs(
        m, 1, speed_setpoint=float(latest.get("speed", 2950.0)),
        valve_command=float(latest.get("valve.opening", 100.0)),
        suction_pressure=float(latest.get("suction_pressure", 0.5)),
        discharge_static_head=static_head, ambient_temperature=ambient_temperature,
    )
    return LoadForecast(u)


__all__ = ["CHANNELS", "pump_load_from_readings", "pump_state_from_readings"]
