"""Ready-made estimator specs by name (``preset: pump`` in a type's ``analytics.estimator``).

A preset knows a model and its sensors — which outputs the channels read, the accuracy of typical
instrument classes (magmeter 0.5 %, Pt100 0.2 K, …), which states random-walk how fast, which
parameters a history pins down — but nothing about a plant. Where an input comes from (a channel
of the twin, of a related twin, a constant, or nowhere: then it is estimated as a latent state)
is the declaration's business; a preset input left undeclared is an error that says so.

Per-twin parameters come from the twin: `Preset.twin_parameters` turns attributes (a pump's
``rated_flow`` and ``rated_head``) into model parameters, and a calibrated twin's
``model_parameters`` attribute goes over those.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from twinloop.core.errors import ValidationError
from twinloop.estimate.latent import LatentInputs
from twinloop.estimate.spec import EstimatorSpec, InputSource
from twinloop.physics.chiller import ChillerModel
from twinloop.physics.model import PhysicsModel, names
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

#: Inputs whose source the pump preset knows: its own drive and valve readings (with the
#: transmitter accuracy) and the fault multipliers, which are 1 and 0 for a healthy unit.
PUMP_INPUTS: dict[str, InputSource] = {
    "speed_setpoint": "speed",
    "valve_command": "valve.opening",
    "suction_pressure": "suction_pressure",
    "wear_acceleration": 1.0,
    "valve_stuck": 0.0,
}
PUMP_INPUT_NOISE = {"speed_setpoint": 1.0, "valve_command": 0.2, "suction_pressure": 0.01}

#: IEC 60072 motor ratings [kW]: a pump gets the next size above its shaft power at the rated point.
IEC_MOTOR_KW = (0.75, 1.1, 1.5, 2.2, 3.0, 4.0, 5.5, 7.5, 11.0, 15.0, 18.5, 22.0, 30.0, 37.0, 45.0, 55.0,
                75.0, 90.0, 110.0, 132.0, 160.0, 200.0, 250.0, 315.0)


@dataclass(frozen=True)
class Latent:
    """An input estimated as a random-walk state: where it starts, how unsure, how fast it moves."""

    start: float
    std: float
    process: float  # std per √h


@dataclass(frozen=True)
class Preset:
    """A named spec recipe: the model, its channels and noise, and per-twin parameters."""

    name: str
    model: Callable[[], PhysicsModel]
    measurements: Mapping[str, tuple[str, float, float]]
    inputs: Mapping[str, InputSource]
    input_noise: Mapping[str, float | tuple[float, float]]
    process: Mapping[str, float]
    initial_std: Mapping[str, float]
    estimate_parameters: tuple[str, ...]
    publish: Mapping[str, str]
    calibrate: tuple[str, ...] = ()  # parameters a first stretch of history pins down
    calibrate_states: tuple[str, ...] = ()  # slow states a fit starts from the filter's estimate of
    calibrate_prior: Mapping[str, float] = field(default_factory=dict)  # relative std per parameter
    operating: tuple[str, float] | None = None  # (input, threshold): the unit runs while above it
    calibrate_channels: tuple[str, ...] | None = None  # residuals that count in a fit (None: all)
    twin_parameters: Callable[[Mapping[str, Any]], dict[str, float]] = field(default=lambda a: {})

    def spec(
        self,
        inputs: Mapping[str, InputSource] | None = None,
        latent: Mapping[str, Latent] | None = None,
        input_noise: Mapping[str, float | tuple[float, float]] | None = None,
        parameters: Mapping[str, float] | None = None,
        channels: tuple[str, ...] | None = None,
        model_error: float = 1.0,
        initial_std: Mapping[str, float] | None = None,
        process: Mapping[str, float] | None = None,
    ) -> EstimatorSpec:
        """The spec with the declaration's input sources, latent inputs and overrides.

        ``model_error`` scales the measurement noise to cover mismatch the model does not know.
        """
        latent = dict(latent or {})
        model = self.model()
        given = {**self.inputs, **(inputs or {})}
        missing = sorted(set(names(model.inputs)) - set(given) - set(latent))
        if missing:
            raise ValidationError(f"estimator preset {self.name!r}: inputs without a source: {missing}",
                                  hint="declare each in analytics.estimator.inputs: a channel, "
                                       "{channel: …, via: relationship}, a number, or {latent: start}")
        if latent:
            model = LatentInputs(model, {k: v.start for k, v in latent.items()})
        chosen = channels or tuple(self.measurements)
        table = {c: self.measurements[c] for c in chosen}
        noise = {k: v for k, v in {**self.input_noise, **(input_noise or {})}.items() if k not in latent}
        return EstimatorSpec(
            model=model,
            channels={c: out for c, (out, _, _) in table.items()},
            inputs={k: v for k, v in given.items() if k not in latent},
            measurement={out: (a * model_error, r * model_error) for out, a, r in table.values()},
            process={**self.process, **{k: v.process for k, v in latent.items()}, **(process or {})},
            estimate_parameters=self.estimate_parameters,
            initial_std={**self.initial_std, **{k: v.std for k, v in latent.items()}, **(initial_std or {})},
            parameters=dict(parameters or {}),
            publish=dict(self.publish),
            input_noise=noise,
        )


def pump_rated_parameters(attributes: Mapping[str, Any]) -> dict[str, float]:
    """A pump's curve, NPSH and motor size from its rated point (``rated_flow``, ``rated_head``).

    The model's defaults describe a 200 m³/h, 75 m unit; the curve is rescaled so its best
    efficiency point sits at the rated duty (shut-off ≈ 1.27 × rated head, as in the default) and
    the motor is the next IEC size above the shaft power there. A twin without a rated point keeps
    the defaults (and calibration has more to do).
    """
    try:
        flow, head = float(attributes["rated_flow"]), float(attributes["rated_head"])
    except (KeyError, TypeError, ValueError):
        return {}
    if not (flow > 0 and head > 0):
        return {}
    shaft_kw = 998.0 * 9.80665 * flow / 3600.0 * head / 0.80 / 1e3
    motor = next((kw for kw in IEC_MOTOR_KW if kw >= shaft_kw), float(np.ceil(shaft_kw)))
    return {
        "shutoff_head": 95.0 * head / 75.0,
        "head_coefficient": 5.0e-4 * (head / 75.0) / (flow / 200.0) ** 2,
        "bep_flow": flow,
        "npshr_bep": 4.5 * (flow / 200.0) ** (2.0 / 3.0),
        "motor_rated_power": motor,
        "pipe_resistance": 1.5 / flow**2,  # a short discharge line: ~1.5 m of friction at rated flow
    }


PUMP = Preset(
    name="pump",
    model=PumpUnitModel,
    measurements=PUMP_MEASUREMENTS,
    inputs=PUMP_INPUTS,
    input_noise=PUMP_INPUT_NOISE,
    process={"speed": 5.0, "valve_position": 0.5, "winding_temperature": 1.0,
             "bearing_temperature": 1.0, "bearing_wear": 0.005, "bearing_wear_rate": 0.02},
    initial_std={"speed": 10.0, "valve_position": 1.0, "winding_temperature": 3.0,
                 "bearing_temperature": 3.0, "bearing_wear": 0.05, "bearing_wear_rate": 0.5},
    estimate_parameters=("bearing_wear_rate",),
    publish={"bearing_wear": "bearing.wear", "bearing_wear_rate": "bearing.wear_rate",
             "bearing_temperature": "bearing.temperature",
             "winding_temperature": "motor.winding_temperature"},
    calibrate=("shutoff_head", "head_coefficient", "max_efficiency", "bearing_vibration_new"),
    calibrate_states=("bearing_wear",),
    calibrate_prior={"shutoff_head": 0.03, "head_coefficient": 0.1, "max_efficiency": 0.03,
                     "bearing_vibration_new": 0.3},
    twin_parameters=pump_rated_parameters,
    operating=("speed_setpoint", 100.0),
    calibrate_channels=("flow", "discharge_pressure", "power", "motor.current", "bearing.vibration_rms",
                        "bearing.defect_band_energy"),
)

def chiller_rated_parameters(attributes: Mapping[str, Any]) -> dict[str, float]:
    """A chiller's rated capacity and COP from its datasheet attributes."""
    out: dict[str, float] = {}
    for key in ("rated_capacity", "rated_cop"):
        try:
            value = float(attributes[key])
        except (KeyError, TypeError, ValueError):
            continue
        if value > 0:
            out[key] = value
    return out


#: Chiller channel → (ChillerModel output, absolute std, relative std): a clamp-on power meter.
#: The reported COP is left out: an idle chiller reports 0 where the model has a part-load COP.
CHILLER_MEASUREMENTS: dict[str, tuple[str, float, float]] = {
    "electrical_power": ("electrical_power", 0.2, 0.005),
}

CHILLER = Preset(
    name="chiller",
    model=ChillerModel,
    measurements=CHILLER_MEASUREMENTS,
    inputs={"fouling_acceleration": 0.0},
    input_noise={},
    process={"fouling": 0.05},
    initial_std={"fouling": 0.2},
    estimate_parameters=(),
    publish={"fouling": "condenser.fouling"},
    calibrate=("rated_cop",),
    calibrate_states=("fouling",),
    calibrate_prior={"rated_cop": 0.1},
    twin_parameters=chiller_rated_parameters,
    operating=("cooling_load", 5.0),
)

PRESETS: dict[str, Preset] = {"pump": PUMP, "chiller": CHILLER}


def preset(name: str) -> Preset:
    """The preset called ``name`` (a clear error listing the known ones)."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValidationError(f"unknown estimator preset {name!r}",
                              hint="known: " + ", ".join(sorted(PRESETS))) from None


def pump_spec(
    inputs: Mapping[str, InputSource] | None = None,
    parameters: Mapping[str, float] | None = None,
    channels: tuple[str, ...] | None = None,
    model_error: float = 1.0,
    input_noise: Mapping[str, float] | None = None,
) -> EstimatorSpec:
    """The ``pump`` preset's spec for synthetic data (tests, benchmarks): plant facts are the
    model's nominal duty (0.5 bar suction, 55 m static head, 25 °C) unless ``inputs`` say otherwise,
    and inputs are exact unless ``input_noise`` says otherwise. The runtime builds its specs from
    the type's declaration instead."""
    given = {"suction_pressure": ("suction_pressure", 0.5), "discharge_static_head": 55.0,
             "ambient_temperature": 25.0, **(inputs or {})}
    spec = PUMP.spec(inputs=given, parameters=parameters, channels=channels, model_error=model_error)
    return replace(spec, input_noise=dict(input_noise or {}))


__all__ = ["CHILLER", "CHILLER_MEASUREMENTS", "IEC_MOTOR_KW", "PRESETS", "PUMP", "PUMP_INPUTS",
           "PUMP_MEASUREMENTS", "Latent", "Preset", "chiller_rated_parameters", "preset",
           "pump_rated_parameters", "pump_spec"]
