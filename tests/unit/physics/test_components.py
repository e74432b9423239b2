"""The component relations behind the pump unit: pump curves, valve, drive, bearing."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.physics import bearing, motor, pump, valve


def test_efficiency_peaks_at_bep_at_every_speed() -> None:
    flows = np.linspace(0.0, 400.0, 401)
    for s in (0.6, 1.0):
        eta = pump.pump_efficiency(flows, np.full_like(flows, s), 200.0, 0.8)
        assert flows[np.argmax(eta)] == pytest.approx(200.0 * s, abs=1.0) and eta.max() == pytest.approx(0.8)


def test_shaft_power_is_finite_at_shutoff_and_zero_at_standstill() -> None:
    s = np.array([1.0, 0.0])
    head = pump.pump_head(np.zeros(2), s, 95.0, 5e-4)
    power = pump.shaft_power(np.zeros(2), head, s, 200.0, 0.8, 998.0)
    assert 0.4 * 51e3 < power[0] < 0.8 * 51e3 and power[1] == 0.0


def test_operating_point_lies_on_both_curves() -> None:
    s, static, k = np.array([0.9]), np.array([20.0]), np.array([1e-3])
    q = pump.operating_flow(s, static, k, 95.0, 5e-4)
    assert pump.pump_head(q, s, 95.0, 5e-4) == pytest.approx(static + k * q**2)
    assert pump.operating_flow(s, np.array([90.0]), k, 95.0, 5e-4)[0] == 0.0  # cannot lift


def test_npsh_required_scales_with_speed_squared() -> None:
    s = np.array([0.5, 1.0])
    r = pump.npsh_required(200.0 * s, s, 200.0, 4.5, 0.4)
    assert r[1] == pytest.approx(4.5) and r[0] == pytest.approx(4.5 / 4)


def test_equal_percentage_valve_gains_the_same_fraction_per_stroke() -> None:
    kv = valve.valve_kv(np.array([40.0, 50.0, 60.0, 70.0]), 280.0, 50.0, 1.0, 0.0)
    ratios = kv[1:] / kv[:-1]
    assert np.ptp(ratios) < 0.08 and (ratios > 1.3).all()
    linear = valve.valve_kv(np.array([0.0, 50.0, 100.0]), 280.0, 50.0, 0.0, 1e-3)
    assert linear.tolist() == pytest.approx([0.28, 140.14, 280.0])


def test_valve_rest_point_does_not_depend_on_the_time_step() -> None:
    for dt in (0.1, 1.0, 60.0):
        pos = np.array([20.0])
        for _ in range(int(60 / dt)):
            pos = valve.valve_step(pos, np.array([50.0]), np.array([0.0]), 2.0, 0.5, dt)
        assert pos[0] == pytest.approx(49.5)
    shut = valve.valve_step(np.array([0.3]), np.array([0.0]), np.array([0.0]), 2.0, 0.5, 1.0)
    assert shut[0] == 0.0  # tight shut-off drives through the deadband


def test_speed_step_matches_fine_integration_of_the_rate_limited_lag() -> None:
    exact = motor.speed_step(np.array([0.0]), np.array([2950.0]), 3.0, 300.0, 15.0, snap=0.0)
    n, dt = 0.0, 1e-4
    for _ in range(int(15 / dt)):
        n += dt * np.clip((2950.0 - n) / 3.0, -300.0, 300.0)
    assert exact[0] == pytest.approx(n, abs=0.05)


def test_motor_efficiency_falls_at_part_load_and_power_factor_too() -> None:
    shaft = np.array([55e3, 27.5e3, 11e3])
    s = np.ones(3)
    losses = motor.motor_losses(shaft, s, 55e3, 0.945, 0.35)
    eff = shaft / (shaft + losses)
    pf = motor.power_factor(shaft + losses, motor.reactive_power(shaft, s, 55e3, 0.945, 0.88, 0.65))
    assert eff[0] == pytest.approx(0.945) and (np.diff(eff) < 0).all()
    assert pf[0] == pytest.approx(0.88, abs=0.005) and (np.diff(pf) < 0).all() and pf[2] > 0.4


def test_wear_step_is_exact_for_constant_rate() -> None:
    one_step = bearing.wear_step(np.array([0.05]), np.array([1e-6]), 0.1, 3.6e5)
    many = np.array([0.05])
    for _ in range(1000):
        many = bearing.wear_step(many, np.array([1e-6]), 0.1, 360.0)
    assert one_step == pytest.approx(many, rel=1e-9)
    assert bearing.wear_step(np.array([0.9]), np.array([1.0]), 0.1, 3600.0)[0] == 1.0
