"""The `PhysicsModel` protocol: a model is declarations plus pure, vectorized equations.

Like NASA progpy, a model declares its inputs, states, outputs, parameters and events; unlike
progpy, every function works on a whole fleet at once. Arrays are shaped ``(n_units, n)``:
one row per unit (twin), one column per declared signal, in declaration order. Parameters are
per unit too — ``(n_units, n_parameters)`` — so unit-to-unit spread costs nothing.

Time steps are in seconds. Models are pure: no clock, no I/O, no hidden state; randomness only
through an explicit ``numpy.random.Generator`` (process noise is the caller's business).

Why ``output`` takes ``u``: some outputs are algebraic in the inputs (a pump's suction pressure
is set by the tank it draws from, not by a state of the pump). progpy folds such inputs into
states; passing ``u`` keeps states physical and the estimators simpler.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from twinloop.core.errors import ValidationError


@dataclass(frozen=True)
class Signal:
    """A named input, state or output with its unit (a pint string) and meaning."""

    name: str
    unit: str = "dimensionless"
    description: str = ""


@dataclass(frozen=True)
class Parameter:
    """A named model constant with its unit, default and plausible bounds (for calibration)."""

    name: str
    default: float
    unit: str = "dimensionless"
    lower: float = -np.inf
    upper: float = np.inf
    description: str = ""


@runtime_checkable
class PhysicsModel(Protocol):
    """Declarations plus pure equations, vectorized over units.

    Shapes: ``x`` (n, len(states)), ``u`` (n, len(inputs)), ``p`` (n, len(parameters)),
    ``output`` → (n, len(outputs)), ``event_state`` → (n, len(events)) in [0, 1], where 1 is
    far from the event and 0 means the event (e.g. failure threshold) has been reached.
    """

    name: str
    inputs: tuple[Signal, ...]
    states: tuple[Signal, ...]
    outputs: tuple[Signal, ...]
    parameters: tuple[Parameter, ...]
    events: tuple[str, ...]

    def initial_state(
        self, p: np.ndarray, u: np.ndarray, rng: np.random.Generator | None = None
    ) -> np.ndarray:
        """A plausible starting state for each unit (steady state at ``u`` where it exists)."""
        ...

    def next_state(self, x: np.ndarray, u: np.ndarray, dt: float, p: np.ndarray) -> np.ndarray:
        """The state ``dt`` seconds later under constant input ``u``. Never modifies ``x``."""
        ...

    def output(self, x: np.ndarray, u: np.ndarray, p: np.ndarray) -> np.ndarray:
        """What ideal sensors would read in state ``x`` under input ``u``."""
        ...

    def event_state(self, x: np.ndarray, p: np.ndarray) -> np.ndarray:
        """Distance to each event, 1 (far) … 0 (reached)."""
        ...


def names(signals: tuple[Signal, ...] | tuple[Parameter, ...]) -> list[str]:
    """The names of declared signals or parameters, in order."""
    return [s.name for s in signals]


def index(signals: tuple[Signal, ...] | tuple[Parameter, ...], name: str) -> int:
    """Column of ``name`` in arrays laid out by ``signals``; a clear error if it is not declared."""
    for i, s in enumerate(signals):
        if s.name == name:
            return i
    raise ValidationError(f"no signal {name!r}", hint=f"declared: {', '.join(names(signals))}")


def default_parameters(model: PhysicsModel, n: int, **overrides: float | np.ndarray) -> np.ndarray:
    """An ``(n, len(parameters))`` array of defaults, with named overrides (scalars or per unit)."""
    p = np.tile(np.array([q.default for q in model.parameters], dtype=np.float64), (n, 1))
    for key, value in overrides.items():
        p[:, index(model.parameters, key)] = value
    return p


def inputs_array(model: PhysicsModel, n: int, **values: float | np.ndarray) -> np.ndarray:
    """An ``(n, len(inputs))`` array; every input must be given (scalars broadcast)."""
    missing = set(names(model.inputs)) - set(values)
    unknown = set(values) - set(names(model.inputs))
    if missing or unknown:
        raise ValidationError(
            f"inputs of {model.name}: missing {sorted(missing)}, unknown {sorted(unknown)}"
        )
    u = np.empty((n, len(model.inputs)), dtype=np.float64)
    for i, s in enumerate(model.inputs):
        u[:, i] = values[s.name]
    return u


__all__ = [
    "Parameter",
    "PhysicsModel",
    "Signal",
    "default_parameters",
    "index",
    "inputs_array",
    "names",
]
