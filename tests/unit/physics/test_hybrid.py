"""Hybrid physics + learned residual beats physics alone and ML alone on held-out pump units."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.core.errors import ValidationError
from twinloop.physics.hybrid import ResidualModel
from twinloop.physics.model import index
from twinloop.physics.pump_unit import PumpUnitModel, nominal_inputs, sample_parameters

MODEL = PumpUnitModel()
T_OUT = index(MODEL.outputs, "bearing_temperature")


def unmodelled(u: np.ndarray, y: np.ndarray) -> np.ndarray:
    """What the physics leaves out: heat soaking in from a hot baseplate and off-design churning."""
    ambient = u[:, index(MODEL.inputs, "ambient_temperature")]
    q = y[:, index(MODEL.outputs, "flow")] / 200.0
    return 0.12 * np.maximum(ambient - 15.0, 0.0) + 6.0 * (q - 1.0) ** 2


def history(n_units: int, steps: int, seed: int) -> tuple[np.ndarray, ...]:
    """Rows (x, u, p, y_measured) of pump units under changing duty, wear growing fast."""
    rng = np.random.default_rng(seed)
    p = sample_parameters(n_units, rng, 0.1)
    u = nominal_inputs(MODEL, n_units)
    x = MODEL.initial_state(p, u)
    rows = []
    for k in range(steps):
        if k % 12 == 0:
            u = nominal_inputs(
                MODEL, n_units, speed_setpoint=rng.uniform(2300, 2950, n_units),
                valve_command=rng.uniform(40, 100, n_units),
                discharge_static_head=rng.uniform(35, 65, n_units),
                ambient_temperature=rng.uniform(0, 40, n_units), wear_acceleration=30.0)
        x = MODEL.next_state(x, u, 600.0, p)
        y = MODEL.output(x, u, p)
        y[:, T_OUT] += unmodelled(u, y) + rng.normal(0.0, 0.2, n_units)
        rows.append((x, u, p, y))
    return tuple(np.concatenate(parts) for parts in zip(*rows, strict=True))


def rmse(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def test_hybrid_beats_physics_alone_and_ml_alone_on_held_out_units() -> None:
    from sklearn.ensemble import HistGradientBoostingRegressor
    from threadpoolctl import threadpool_limits

    x, u, p, y = history(16, 72, seed=1)  # train: 16 units × 12 h
    xt, ut, pt, yt = history(6, 72, seed=2)  # held out: other units, other duties
    hybrid = ResidualModel(MODEL, ["bearing_temperature"]).fit(x, u, p, y)

    physics_rmse = rmse(MODEL.output(xt, ut, pt)[:, T_OUT], yt[:, T_OUT])
    hybrid_rmse = rmse(hybrid.output(xt, ut, pt)[:, T_OUT], yt[:, T_OUT])
    with threadpool_limits(1):  # as the hybrid does: OpenMP oversubscribes a busy 2-core box
        ml = HistGradientBoostingRegressor(max_iter=100, random_state=0).fit(u, y[:, T_OUT])
        ml_rmse = rmse(ml.predict(ut), yt[:, T_OUT])

    assert hybrid_rmse < 0.5 * physics_rmse, (hybrid_rmse, physics_rmse)
    assert hybrid_rmse < 0.5 * ml_rmse, (hybrid_rmse, ml_rmse)


def test_uncorrected_outputs_and_dynamics_stay_physics() -> None:
    x, u, p, y = history(4, 30, seed=3)
    hybrid = ResidualModel(MODEL, ["bearing_temperature"]).fit(x, u, p, y)
    same = np.delete(np.arange(len(MODEL.outputs)), T_OUT)
    assert np.array_equal(hybrid.output(x, u, p)[:, same], MODEL.output(x, u, p)[:, same])
    assert np.array_equal(hybrid.next_state(x, u, 60.0, p), MODEL.next_state(x, u, 60.0, p))


def test_fit_refuses_wrong_shapes_and_too_little_history() -> None:
    x, u, p, y = history(1, 5, seed=4)
    hybrid = ResidualModel(MODEL, ["bearing_temperature"])
    with pytest.raises(ValidationError, match="shaped"):
        hybrid.fit(x, u, p, y[:, :3])
    with pytest.raises(ValidationError, match="too little history"):
        hybrid.fit(x, u, p, y)
