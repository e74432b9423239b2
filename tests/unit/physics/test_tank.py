"""`TankModel` conserves mass exactly, spills when full and runs dry when empty."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.physics.model import default_parameters
from twinloop.physics.tank import TankModel, tank_step

M = TankModel()


def test_mass_balance_over_a_long_random_sequence() -> None:
    rng = np.random.default_rng(5)
    n = 32
    p = default_parameters(M, n, cross_section=rng.uniform(2.0, 30.0, n))
    area, height = p[:, 0], p[:, 1]
    level = M.initial_state(p, np.zeros((n, 2)))[:, 0]
    start = level * area
    net_in = np.zeros(n)
    for _ in range(5000):
        dt = float(rng.choice([0.1, 1.0, 60.0, 3600.0]))
        inflow, outflow = rng.uniform(0.0, 150.0, n), rng.uniform(0.0, 150.0, n)
        nxt, spilled, shortfall = tank_step(level, inflow, outflow, dt, area, height)
        assert np.array_equal(nxt, M.next_state(level[:, None], np.stack([inflow, outflow], 1), dt, p)[:, 0])
        net_in += (inflow - outflow) * dt / 3600.0 - spilled + shortfall
        level = nxt
        assert ((level >= 0.0) & (level <= height)).all()
    assert np.allclose(level * area - start, net_in, rtol=0.0, atol=1e-9 * np.abs(net_in).max())


def test_overflow_and_empty_event() -> None:
    p = default_parameters(M, 2)
    u = np.array([[120.0, 20.0], [0.0, 50.0]])
    x = M.initial_state(p, u)
    for _ in range(10):
        x = M.next_state(x, u, 3600.0, p)
    y = M.output(x, u, p)
    assert x[:, 0].tolist() == [5.0, 0.0]
    assert y[0, M.output_index("overflow")] == pytest.approx(100.0)
    assert y[0, M.output_index("volume")] == pytest.approx(100.0)
    assert y[1, M.output_index("overflow")] == 0.0
    assert M.event_state(x, p)[:, 0].tolist() == [1.0, 0.0]
