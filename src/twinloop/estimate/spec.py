"""What an estimator needs besides the model: channel mapping, inputs, noise, estimated parameters.

The noise lives here, not in the asset type: the same asset type may be estimated with different
models (a built-in one, an FMU, a hybrid), and each needs noise matched to its own errors. A spec
is plain data and loads from a mapping (YAML), so a plant can ship one per asset type.

Conventions
    * ``process``: standard deviation a state (or estimated parameter) random-walks by in **one
      hour**; over ``dt`` seconds the added variance is ``std² · dt / 3600``. States left out get
      no process noise (the filters still add a tiny jitter that keeps covariances positive).
    * ``measurement``: per measured output, ``(absolute, relative)`` standard deviations; the
      sensor std at a prediction ``ŷ`` is ``absolute + relative·|ŷ|``.
    * ``estimate_parameters``: parameters appended to the state (joint state-parameter
      estimation). A parameter whose lower bound is > 0 is estimated in log space, so it stays
      positive and its process std is relative (0.05 ≈ 5 % per √h).
    * ``input_noise``: std of inputs read from noisy channels (a pressure transmitter's 0.01 bar),
      absolute or ``(absolute, relative)`` like the measurement noise.
      The filters add its effect on the predicted measurements, ``J_u·Σ_u·J_uᵀ``, to the innovation
      covariance; without it a flow that hangs on a 0.1 m head reading looks many σ off.

>>> from twinloop.physics.tank import TankModel
>>> spec = EstimatorSpec.from_dict(TankModel(), {
...     "channels": {"level": "level"}, "inputs": {"inflow": 100.0, "outflow": "outflow"},
...     "measurement": {"level": [0.01, 0.0]}, "process": {"level": 0.05},
...     "estimate_parameters": ["cross_section"], "initial_std": {"cross_section": 0.1}})
>>> spec.augmented_names
('level', 'cross_section')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twinloop.core.errors import ValidationError
from twinloop.physics.model import PhysicsModel, default_parameters, index, names

InputSource = str | float | tuple[str, float]


@dataclass(frozen=True)
class EstimatorSpec:
    """Model, channel ↔ output mapping, input sources, noise and the augmented parameters."""

    model: PhysicsModel
    channels: Mapping[str, str]
    inputs: Mapping[str, InputSource]
    measurement: Mapping[str, tuple[float, float]]
    process: Mapping[str, float] = field(default_factory=dict)
    estimate_parameters: tuple[str, ...] = ()
    initial_std: Mapping[str, float] = field(default_factory=dict)
    parameters: Mapping[str, float] = field(default_factory=dict)
    publish: Mapping[str, str] = field(default_factory=dict)
    input_noise: Mapping[str, float | tuple[float, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        m = self.model
        for channel, output in self.channels.items():
            _declared(m.outputs, output, f"channels.{channel}")
            if output not in self.measurement:
                raise ValidationError(f"{m.name}: channel {channel!r} has no measurement noise",
                                      hint=f"add measurement.{output}: [absolute, relative]")
        for key, (absolute, relative) in self.measurement.items():
            _declared(m.outputs, key, "measurement")
            if absolute < 0 or relative < 0 or absolute + relative <= 0:
                raise ValidationError(f"{m.name}: measurement noise of {key!r} must be >= 0, not all 0")
        missing = set(names(m.inputs)) - set(self.inputs)
        if missing:
            raise ValidationError(f"{m.name}: inputs without a source: {sorted(missing)}",
                                  hint="map each input to a channel name or a constant")
        for key in self.inputs:
            _declared(m.inputs, key, "inputs")
        for key, value in self.input_noise.items():
            _declared(m.inputs, key, "input_noise")
            if not min(value if isinstance(value, tuple) else (value,)) >= 0:
                raise ValidationError(f"{m.name}: input noise of {key!r} must be >= 0, got {value}")
        for key in (*self.estimate_parameters, *self.parameters):
            _declared(m.parameters, key, "parameters")
        for key, value in {**self.process, **self.initial_std}.items():
            if key not in self.augmented_names:
                raise ValidationError(f"{m.name}: {key!r} is neither a state nor an estimated parameter",
                                      hint="known: " + ", ".join(self.augmented_names))
            if not value >= 0:
                raise ValidationError(f"{m.name}: std of {key!r} must be >= 0, got {value}")
        if not self.channels:
            raise ValidationError(f"{m.name}: an estimator needs at least one measured channel")

    @classmethod
    def from_dict(cls, model: PhysicsModel, data: Mapping[str, Any]) -> EstimatorSpec:
        """A spec from plain data (e.g. a YAML section); lists become tuples."""
        known = {"channels", "inputs", "measurement", "process", "estimate_parameters",
                 "initial_std", "parameters", "publish", "input_noise"}
        unknown = set(data) - known
        if unknown:
            raise ValidationError(f"estimator spec: unknown keys {sorted(unknown)}",
                                  hint="known: " + ", ".join(sorted(known)))
        inputs = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(data.get("inputs", {})).items()}
        measurement = {k: (float(v[0]), float(v[1])) for k, v in dict(data.get("measurement", {})).items()}
        return cls(model=model, channels=dict(data.get("channels", {})), inputs=inputs,
                   measurement=measurement, process=dict(data.get("process", {})),
                   estimate_parameters=tuple(data.get("estimate_parameters", ())),
                   initial_std=dict(data.get("initial_std", {})),
                   parameters=dict(data.get("parameters", {})), publish=dict(data.get("publish", {})),
                   input_noise={k: (float(v[0]), float(v[1])) if isinstance(v, list | tuple) else float(v)
                                for k, v in dict(data.get("input_noise", {})).items()})

    # --- derived layout ----------------------------------------------------------------------
    @property
    def augmented_names(self) -> tuple[str, ...]:
        """States, then estimated parameters: the columns of every mean and covariance."""
        return (*names(self.model.states), *self.estimate_parameters)

    @property
    def channel_names(self) -> tuple[str, ...]:
        """Measured channels, in the order of the measurement vector."""
        return tuple(self.channels)

    @property
    def output_columns(self) -> np.ndarray:
        """Model output column of each measured channel."""
        return np.array([index(self.model.outputs, o) for o in self.channels.values()], dtype=np.intp)

    @property
    def parameter_columns(self) -> np.ndarray:
        """Model parameter column of each estimated parameter."""
        return np.array([index(self.model.parameters, q) for q in self.estimate_parameters], dtype=np.intp)

    @property
    def log_parameters(self) -> np.ndarray:
        """True where an estimated parameter lives in log space (lower bound > 0)."""
        return np.array([self.model.parameters[i].lower > 0 for i in self.parameter_columns], dtype=bool)

    def default_parameters(self, n: int) -> np.ndarray:
        """``(n, n_parameters)``: the model's defaults with this spec's overrides."""
        return default_parameters(self.model, n, **self.parameters)

    def process_variance_per_s(self) -> np.ndarray:
        """Random-walk variance added per second to each augmented column."""
        return np.array([self.process.get(k, 0.0) ** 2 / 3600.0 for k in self.augmented_names])

    def measurement_std(self, predicted: np.ndarray) -> np.ndarray:
        """Sensor std ``absolute + relative·|ŷ|`` for predictions ``(..., n_channels)``."""
        pairs = np.array([self.measurement[o] for o in self.channels.values()], dtype=np.float64)
        return pairs[:, 0] + pairs[:, 1] * np.abs(predicted)

    def input_noise_table(self) -> tuple[np.ndarray, np.ndarray]:
        """Absolute and relative std of each model input (0, 0 for exact inputs)."""
        pairs = [v if isinstance(v, tuple) else (float(v), 0.0)
                 for v in (self.input_noise.get(n, 0.0) for n in names(self.model.inputs))]
        table = np.array(pairs, dtype=np.float64).reshape(-1, 2)
        return table[:, 0].copy(), table[:, 1].copy()

    def published_name(self, name: str) -> str:
        """The twin-state name of a state or parameter (``bearing_wear`` → ``bearing.wear``)."""
        return self.publish.get(name, name)


def _declared(signals: Sequence[Any], name: str, where: str) -> None:
    if name not in names(tuple(signals)):
        raise ValidationError(f"{where}: {name!r} is not declared by the model",
                              hint="declared: " + ", ".join(names(tuple(signals))))


__all__ = ["EstimatorSpec", "InputSource"]
