"""The conformance battery every `PhysicsModel` passes (run by tests/conformance/test_physics.py).

Each check is ``check_x(model, rng, make_inputs=None)`` and raises ``AssertionError`` with a
message naming the model and what broke. ``make_inputs(n, rng) -> u`` supplies typical inputs
(a pump needs a speed in rpm, not a number in [0, 1]); without it inputs are uniform in [0, 1].
Parameters are the declared defaults.

>>> from twinloop.physics.tank import TankModel
>>> run_checks(TankModel(), lambda n, rng: rng.uniform(0.0, 50.0, (n, 2)))
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from twinloop.core.errors import UnitError
from twinloop.core.units import parse_unit
from twinloop.physics.model import PhysicsModel, default_parameters

MakeInputs = Callable[[int, np.random.Generator], np.ndarray]
Check = Callable[..., None]

DTS = (0.1, 1.0, 60.0, 3600.0)


def uniform_inputs(model: PhysicsModel) -> MakeInputs:
    """Fallback inputs: uniform in [0, 1] for every declared input."""
    return lambda n, rng: rng.uniform(0.0, 1.0, (n, len(model.inputs)))


def _inputs(model: PhysicsModel, make_inputs: MakeInputs | None) -> MakeInputs:
    return make_inputs if make_inputs is not None else uniform_inputs(model)


def _trajectory(model: PhysicsModel, n: int, rng: np.random.Generator, make: MakeInputs,
                steps: int) -> list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(state, input, output, event_state) along a run cycling through `DTS`, new inputs every 3 steps."""
    p = default_parameters(model, n)
    u = make(n, rng)
    x = model.initial_state(p, u, rng)
    rows = []
    for k in range(steps):
        if k % 3 == 0:
            u = make(n, rng)
        x = model.next_state(x, u, DTS[k % len(DTS)], p)
        rows.append((x, u, model.output(x, u, p), model.event_state(x, p)))
    return rows


def check_declarations(
    model: PhysicsModel, rng: np.random.Generator, make_inputs: MakeInputs | None = None
) -> None:
    """Names are non-empty identifiers, unique per kind; defaults lie within bounds."""
    assert isinstance(model, PhysicsModel), f"{model!r} does not implement PhysicsModel"
    assert model.name, "model has no name"
    groups = {"inputs": model.inputs, "states": model.states, "outputs": model.outputs,
              "parameters": model.parameters}
    for kind, declared in groups.items():
        found = [d.name for d in declared]
        assert all(isinstance(f, str) and f.isidentifier() for f in found), f"{model.name} {kind}: {found}"
        assert len(set(found)) == len(found), f"{model.name}: duplicate {kind} in {found}"
    assert len(model.states) > 0, f"{model.name} declares no states"
    assert len(set(model.events)) == len(model.events), f"{model.name}: duplicate events"
    assert all(isinstance(e, str) and e.isidentifier() for e in model.events), f"{model.name} events"
    for q in model.parameters:
        assert q.lower <= q.default <= q.upper, f"{model.name}.{q.name}: default outside its bounds"


def check_units(
    model: PhysicsModel, rng: np.random.Generator, make_inputs: MakeInputs | None = None
) -> None:
    """Every declared unit parses with the shared pint registry."""
    for d in (*model.inputs, *model.states, *model.outputs, *model.parameters):
        try:
            parse_unit(d.unit)
        except UnitError as err:
            raise AssertionError(f"{model.name}.{d.name}: {err.message}") from err


def check_shapes(
    model: PhysicsModel, rng: np.random.Generator, make_inputs: MakeInputs | None = None
) -> None:
    """initial_state, next_state, output and event_state return (n, declared) float arrays."""
    make = _inputs(model, make_inputs)
    for n in (1, 257):
        p = default_parameters(model, n)
        u = make(n, rng)
        assert u.shape == (n, len(model.inputs)), f"{model.name}: make_inputs gave {u.shape}"
        x = model.initial_state(p, u, rng)
        expected = {
            "initial_state": (x, len(model.states)),
            "next_state": (model.next_state(x, u, 1.0, p), len(model.states)),
            "output": (model.output(x, u, p), len(model.outputs)),
            "event_state": (model.event_state(x, p), len(model.events)),
        }
        for what, (array, columns) in expected.items():
            assert isinstance(array, np.ndarray), f"{model.name}.{what} returned {type(array).__name__}"
            assert array.shape == (n, columns), f"{model.name}.{what}: {array.shape} != {(n, columns)}"
            assert np.issubdtype(array.dtype, np.floating), f"{model.name}.{what}: dtype {array.dtype}"


def check_determinism(
    model: PhysicsModel, rng: np.random.Generator, make_inputs: MakeInputs | None = None
) -> None:
    """The same seed gives the same arrays, bit for bit."""
    seed = int(rng.integers(2**31))
    make = _inputs(model, make_inputs)
    first = _trajectory(model, 16, np.random.default_rng(seed), make, 12)
    second = _trajectory(model, 16, np.random.default_rng(seed), make, 12)
    for a, b in zip(first, second, strict=True):
        for left, right in zip(a, b, strict=True):
            assert np.array_equal(left, right, equal_nan=True), f"{model.name} is not deterministic"


def check_no_mutation(
    model: PhysicsModel, rng: np.random.Generator, make_inputs: MakeInputs | None = None
) -> None:
    """No function writes into the arrays it is given (they are passed read-only)."""
    n = 8
    p = default_parameters(model, n)
    u = _inputs(model, make_inputs)(n, rng)
    x = model.initial_state(p, u, rng)
    copies = [a.copy() for a in (x, u, p)]
    for a in (x, u, p):
        a.flags.writeable = False
    try:
        for dt in DTS:
            model.next_state(x, u, dt, p)
        model.output(x, u, p)
        model.event_state(x, p)
        model.initial_state(p, u, rng)
    except ValueError as err:
        raise AssertionError(f"{model.name} writes into its input arrays: {err}") from err
    for before, after in zip(copies, (x, u, p), strict=True):
        assert np.array_equal(before, after, equal_nan=True), f"{model.name} modified its inputs"


def check_finite(
    model: PhysicsModel, rng: np.random.Generator, make_inputs: MakeInputs | None = None
) -> None:
    """States and outputs stay finite over random inputs and many steps with dt from 0.1 s to 1 h."""
    make = _inputs(model, make_inputs)
    for k, (x, _, y, _) in enumerate(_trajectory(model, 64, rng, make, 80)):
        assert np.isfinite(x).all(), f"{model.name}: non-finite state at step {k} (dt {DTS[k % len(DTS)]})"
        assert np.isfinite(y).all(), f"{model.name}: non-finite output at step {k} (dt {DTS[k % len(DTS)]})"


def check_event_state_range(
    model: PhysicsModel, rng: np.random.Generator, make_inputs: MakeInputs | None = None
) -> None:
    """event_state lies in [0, 1] all along a random run."""
    make = _inputs(model, make_inputs)
    for k, (_, _, _, e) in enumerate(_trajectory(model, 64, rng, make, 40)):
        assert np.isfinite(e).all() and (e >= 0.0).all() and (e <= 1.0).all(), (
            f"{model.name}: event_state outside [0, 1] at step {k}"
        )


def check_vectorization(
    model: PhysicsModel, rng: np.random.Generator, make_inputs: MakeInputs | None = None
) -> None:
    """A fleet run equals running each unit alone (no cross-talk between rows), to 1e-12."""
    n = 7
    make = _inputs(model, make_inputs)
    p = default_parameters(model, n)
    inputs = [make(n, rng) for _ in range(4)]
    x_fleet = model.initial_state(p, inputs[0], None)
    singles = [model.initial_state(p[[i]], inputs[0][[i]], None) for i in range(n)]
    for k, dt in enumerate(DTS * 2):
        u = inputs[k % len(inputs)]
        x_fleet = model.next_state(x_fleet, u, dt, p)
        y_fleet = model.output(x_fleet, u, p)
        e_fleet = model.event_state(x_fleet, p)
        for i in range(n):
            singles[i] = model.next_state(singles[i], u[[i]], dt, p[[i]])
            pairs = (
                (x_fleet[i], singles[i][0], "next_state"),
                (y_fleet[i], model.output(singles[i], u[[i]], p[[i]])[0], "output"),
                (e_fleet[i], model.event_state(singles[i], p[[i]])[0], "event_state"),
            )
            for fleet, single, what in pairs:
                assert np.allclose(fleet, single, rtol=1e-12, atol=1e-12), (
                    f"{model.name}.{what}: unit {i} differs when run in a fleet (step {k})"
                )


CHECKS: list[Check] = [
    check_declarations,
    check_units,
    check_shapes,
    check_determinism,
    check_no_mutation,
    check_finite,
    check_event_state_range,
    check_vectorization,
]


def run_checks(model: PhysicsModel, make_inputs: MakeInputs | None = None, seed: int = 0) -> None:
    """Run the whole battery on ``model``; raises on the first failure."""
    for check in CHECKS:
        check(model, np.random.default_rng(seed), make_inputs)


__all__ = [
    "CHECKS",
    "DTS",
    "Check",
    "MakeInputs",
    "check_declarations",
    "check_determinism",
    "check_event_state_range",
    "check_finite",
    "check_no_mutation",
    "check_shapes",
    "check_units",
    "check_vectorization",
    "run_checks",
    "uniform_inputs",
]
