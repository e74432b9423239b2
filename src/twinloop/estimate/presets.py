"""Ready-made estimator specs for the shipped asset types (the example pump station's ``Pump``).

The pump's hidden states are bearing wear and the bearing's wear rate (jointly estimated, log
space); the channels are those the example ``Pump`` type and its components declare, with the
sensor accuracy of typical instrument classes (magmeter 0.5 %, Pt100 0.2 K, …).

Inputs: the drive speed and valve position are measured and used as inputs; suction pressure is
measured; the discharge static head and the ambient temperature are plant facts with defaults
(55 m, 25 °C) that a channel overrides when one is mapped (``inputs={...: "channel"}``).
"""

from __future__ import annotations

from collections.abc import Mapping

from twinloop.estimate.spec import EstimatorSpec, InputSource
from twinloop.physics.pump_unit import PumpUnitModel

#: Pump channel → (PumpUnitModel output, absolute std, relative std).
PUMP_MEASUREMENTS: dict[str, tuple[str, float, float]] = {
    "flow": ("flow", 0.3, 0.005),
    "discharge_pressure": ("discharge_pressure", 0.015, 0.0),
    "power": ("power", 0.05, 0.005),
    "motor.current": ("motor_current", 0.1, 0.005),
    "motor.winding_temperature": ("winding_temperature", 0.3, 0.0),
    "bearing.temperature": ("bearing_temperature", 0.2, 0.0),
    "bearing.vibration_rms": ("bearing_vibration_rms", 0.03, 0.03),
    "bearing.defect_band_energy": ("defect_band_energy", 0.01, 0.05),
}

PUMP_INPUTS: dict[str, InputSource] = {
    "speed_setpoint": "speed",
    "valve_command": "valve.opening",
    "suction_pressure": ("suction_pressure", 0.5),
    "discharge_static_head": 55.0,
    "ambient_temperature": 25.0,
    "wear_acceleration": 1.0,
    "valve_stuck": 0.0,
}


def pump_spec(
    inputs: Mapping[str, InputSource] | None = None,
    parameters: Mapping[str, float] | None = None,
    channels: tuple[str, ...] | None = None,
    model_error: float = 1.0,
) -> EstimatorSpec:
    """Spec for the example ``Pump``: wear and wear rate from temperatures, vibration and power.

    ``inputs`` override `PUMP_INPUTS` entries; ``channels`` picks a subset of
    `PUMP_MEASUREMENTS`; ``model_error`` scales the measurement noise to cover model mismatch
    (unit-to-unit spread the defaults do not know).
    """
    chosen = channels or tuple(PUMP_MEASUREMENTS)
    table = {c: PUMP_MEASUREMENTS[c] for c in chosen}
    return EstimatorSpec(
        model=PumpUnitModel(),
        channels={c: out for c, (out, _, _) in table.items()},
        inputs={**PUMP_INPUTS, **(inputs or {})},
        measurement={out: (a * model_error, r * model_error) for out, a, r in table.values()},
        process={"speed": 5.0, "valve_position": 0.5, "winding_temperature": 1.0,
                 "bearing_temperature": 1.0, "bearing_wear": 0.005, "bearing_wear_rate": 0.02},
        estimate_parameters=("bearing_wear_rate",),
        initial_std={"speed": 10.0, "valve_position": 1.0, "winding_temperature": 3.0,
                     "bearing_temperature": 3.0, "bearing_wear": 0.05, "bearing_wear_rate": 0.5},
        parameters=dict(parameters or {}),
        publish={"bearing_wear": "bearing.wear", "bearing_wear_rate": "bearing.wear_rate",
                 "bearing_temperature": "bearing.temperature", "winding_temperature":
                 "motor.winding_temperature"},
    )


__all__ = ["PUMP_INPUTS", "PUMP_MEASUREMENTS", "pump_spec"]
