"""Every built-in physics model passes the whole `twinloop.physics.checks` battery.

To add a model, append ``(factory, make_inputs)`` to `MODELS`; ``make_inputs(n, rng)`` returns
typical inputs ``(n, len(model.inputs))`` (or pass ``None`` for uniform [0, 1]).
"""

from __future__ import annotations

import functools
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from twinloop.physics.checks import CHECKS, Check, MakeInputs
from twinloop.physics.model import PhysicsModel
from twinloop.physics.pump_unit import PumpUnitModel
from twinloop.physics.tank import TankModel


def pump_unit_inputs(n: int, rng: np.random.Generator) -> np.ndarray:
    """Anything an operator or a fault can throw at a pump unit, stops and closed valves included."""
    running = rng.random(n) < 0.8
    return np.stack([
        np.where(running, rng.uniform(0.0, 3300.0, n), 0.0),
        np.where(rng.random(n) < 0.1, 0.0, rng.uniform(0.0, 100.0, n)),
        rng.uniform(-0.95, 4.0, n),
        rng.uniform(0.0, 130.0, n),
        rng.uniform(-30.0, 50.0, n),
        rng.lognormal(0.5, 1.5, n),
        (rng.random(n) < 0.2).astype(float),
    ], axis=1)


def tank_inputs(n: int, rng: np.random.Generator) -> np.ndarray:
    """Inflow and outflow up to 400 m**3/h: enough to fill, spill and empty the default tank."""
    return rng.uniform(0.0, 400.0, (n, 2))


@functools.cache
def _thermal_fmu() -> Path:
    """The C-source thermal-mass FMU in tests/fixtures/fmu, compiled once per session (~1 s)."""
    from twinloop.physics.fmu import build_fmu

    source = Path(__file__).resolve().parents[1] / "fixtures" / "fmu" / "thermal"
    return build_fmu(source, tempfile.mkdtemp(prefix="twinloop-fmu-"))


def thermal_fmu() -> PhysicsModel:
    from twinloop.physics.fmu import FmuModel

    return FmuModel(_thermal_fmu(), max_step_s=600.0)


def thermal_inputs(n: int, rng: np.random.Generator) -> np.ndarray:
    """Heating power up to 5 kW and ambient -10 … 40 °C."""
    return np.stack([rng.uniform(0.0, 5000.0, n), rng.uniform(-10.0, 40.0, n)], axis=1)


MODELS: list[tuple[Callable[[], PhysicsModel], MakeInputs | None]] = [
    (PumpUnitModel, pump_unit_inputs),
    (TankModel, tank_inputs),
    (thermal_fmu, thermal_inputs),
]


@pytest.mark.parametrize("factory, make_inputs", MODELS, ids=lambda m: getattr(m, "__name__", ""))
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_physics_model(
    check: Check, factory: Callable[[], PhysicsModel], make_inputs: MakeInputs | None
) -> None:
    check(factory(), np.random.default_rng(7), make_inputs)
