"""Physical sanity of `PumpUnitModel`: affinity, energy balance, commands, heat, wear, cavitation."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.physics import motor, pump
from twinloop.physics.model import PhysicsModel, default_parameters
from twinloop.physics.pump_unit import PumpUnitModel, nominal_inputs, sample_parameters

M = PumpUnitModel()


def out(y: np.ndarray, name: str) -> np.ndarray:
    return y[:, M.output_index(name)]


def st(x: np.ndarray, name: str) -> np.ndarray:
    return x[:, M.state_index(name)]


def run(x: np.ndarray, u: np.ndarray, p: np.ndarray, seconds: float, dt: float) -> np.ndarray:
    for _ in range(round(seconds / dt)):
        x = M.next_state(x, u, dt, p)
    return x


def settled(n: int = 1, p: np.ndarray | None = None, **inputs: float | np.ndarray) -> tuple[np.ndarray, ...]:
    p = default_parameters(M, n) if p is None else p
    u = nominal_inputs(M, n, **inputs)
    x = M.initial_state(p, u)
    return x, u, p, M.output(x, u, p)


def test_is_a_physics_model_with_the_agreed_signal_order() -> None:
    assert isinstance(M, PhysicsModel)
    assert [s.name for s in M.inputs] == [
        "speed_setpoint", "valve_command", "suction_pressure", "discharge_static_head",
        "ambient_temperature", "wear_acceleration", "valve_stuck"]
    assert [s.name for s in M.states] == [
        "speed", "valve_position", "winding_temperature", "bearing_temperature", "bearing_wear"]
    assert [s.name for s in M.outputs][:5] == [
        "flow", "head", "discharge_pressure", "suction_pressure", "speed"]
    assert M.events == ("bearing_failure",)


def test_nominal_operating_point_is_a_55_kw_pump_near_its_bep() -> None:
    _, u, _, y = settled()
    assert out(y, "flow")[0] == pytest.approx(200.0, rel=0.02)
    assert out(y, "head")[0] == pytest.approx(75.0, rel=0.02)
    assert out(y, "efficiency")[0] == pytest.approx(0.80, abs=0.005)
    assert 48.0 < out(y, "shaft_power")[0] < 55.0 < out(y, "power")[0] / 0.97
    assert 80.0 < out(y, "motor_current")[0] < 100.0
    assert 0.85 < out(y, "motor_power_factor")[0] < 0.9
    assert out(y, "cavitation")[0] == 0.0 and out(y, "npsh_margin")[0] > 3.0
    assert out(y, "discharge_pressure")[0] == pytest.approx(0.5 + 998 * pump.G * out(y, "head")[0] / 1e5)


def test_affinity_laws_at_zero_static_head() -> None:
    ratios = np.array([0.5, 0.75, 1.0])
    x, u, p, _ = settled(3, speed_setpoint=2950.0 * ratios, discharge_static_head=0.0, valve_command=60.0)
    y = M.output(x, u, p)
    assert np.allclose(out(y, "flow") / out(y, "flow")[-1], ratios, rtol=1e-12)
    assert np.allclose(out(y, "head") / out(y, "head")[-1], ratios**2, rtol=1e-12)
    assert np.allclose(out(y, "shaft_power") / out(y, "shaft_power")[-1], ratios**3, rtol=1e-12)
    assert np.allclose(out(y, "efficiency"), out(y, "efficiency")[-1], rtol=1e-12)


def test_energy_balance() -> None:
    rng = np.random.default_rng(3)
    n = 50
    x, u, p, y = settled(n, speed_setpoint=rng.uniform(500, 3200, n), valve_command=rng.uniform(5, 100, n),
                         discharge_static_head=rng.uniform(0, 60, n))
    hydraulic = pump.hydraulic_power(out(y, "flow"), out(y, "head"), 998.0) / 1e3
    assert np.allclose(out(y, "shaft_power") * out(y, "efficiency"), hydraulic, rtol=1e-10)
    losses = motor.motor_losses(out(y, "shaft_power") * 1e3, st(x, "speed") / 2950.0, 55e3, 0.945, 0.35) / 1e3
    assert np.allclose(out(y, "power"), out(y, "shaft_power") + losses, rtol=1e-12)
    assert (out(y, "power") > out(y, "shaft_power")).all() and (out(y, "efficiency") <= 0.8 + 1e-12).all()
    apparent = np.sqrt(3) * out(y, "motor_voltage") * out(y, "motor_current") / 1e3
    assert np.allclose(out(y, "power"), apparent * out(y, "motor_power_factor"), rtol=1e-10)


def test_stopped_pump_has_no_flow_no_power_cools_and_does_not_wear() -> None:
    x, u, p, _ = settled()
    x[:, M.state_index("bearing_wear")] = 0.4
    stop = nominal_inputs(M, 1, speed_setpoint=0.0)
    x = run(x, stop, p, 60.0, 0.1)
    assert st(x, "speed")[0] == 0.0
    wear = st(x, "bearing_wear").copy()
    x = run(x, stop, p, 48 * 3600.0, 3600.0)
    y = M.output(x, stop, p)
    for name in ("flow", "head", "power", "shaft_power", "motor_current", "bearing_vibration_rms",
                 "defect_band_energy", "cavitation"):
        assert out(y, name)[0] == 0.0, name
    assert st(x, "bearing_wear")[0] == wear[0]
    assert st(x, "winding_temperature")[0] == pytest.approx(25.0, abs=0.01)
    assert st(x, "bearing_temperature")[0] == pytest.approx(25.0, abs=0.01)


def test_raising_the_speed_setpoint_raises_flow_head_and_power_after_settling() -> None:
    x, u, p, y0 = settled(speed_setpoint=2400.0)
    faster = nominal_inputs(M, 1, speed_setpoint=2950.0)
    x = run(x, faster, p, 30.0, 0.1)
    assert st(x, "speed")[0] == 2950.0
    y1 = M.output(x, faster, p)
    for name in ("flow", "head", "power", "motor_current", "bearing_vibration_rms"):
        assert out(y1, name)[0] > out(y0, name)[0], name


def test_speed_ramps_then_settles_first_order() -> None:
    x, _, p, _ = settled(speed_setpoint=0.0)
    start = nominal_inputs(M, 1)
    assert st(run(x, start, p, 1.0, 0.1), "speed")[0] == pytest.approx(300.0)  # ramp-limited
    coarse = st(run(x, start, p, 12.0, 12.0), "speed")[0]
    fine = st(run(x, start, p, 12.0, 0.01), "speed")[0]
    assert coarse == pytest.approx(fine, abs=1e-6)
    assert 2750.0 < coarse < 2950.0  # 6.8 s ramp, then 5.2 s ≈ 1.7 τ of exponential approach


def test_closing_the_valve_lowers_flow_and_raises_head() -> None:
    x, u, p, y0 = settled()
    throttled = nominal_inputs(M, 1, valve_command=40.0)
    x = run(x, throttled, p, 60.0, 0.5)
    assert st(x, "valve_position")[0] == pytest.approx(40.5)  # stops at the deadband edge
    y1 = M.output(x, throttled, p)
    assert out(y1, "flow")[0] < 0.8 * out(y0, "flow")[0]
    assert out(y1, "head")[0] > out(y0, "head")[0]
    assert out(y1, "valve_differential_pressure")[0] > out(y0, "valve_differential_pressure")[0]
    shut = nominal_inputs(M, 1, valve_command=0.0)
    y2 = M.output(run(x, shut, p, 60.0, 1.0), shut, p)
    assert 0.0 < out(y2, "flow")[0] < 1.0  # seat leakage only
    assert out(y2, "head")[0] == pytest.approx(95.0, rel=1e-3)


def test_valve_stuck_holds_position_and_stiction_ignores_small_moves() -> None:
    x, _, p, _ = settled(valve_command=60.0)
    stuck = nominal_inputs(M, 1, valve_command=20.0, valve_stuck=1.0)
    assert st(run(x, stuck, p, 120.0, 1.0), "valve_position")[0] == 60.0
    nudge = nominal_inputs(M, 1, valve_command=60.4)
    assert st(run(x, nudge, p, 120.0, 0.1), "valve_position")[0] == 60.0
    step = nominal_inputs(M, 1, valve_command=65.0)
    assert st(run(x, step, p, 1.0, 0.1), "valve_position")[0] == pytest.approx(62.0)  # 2 %/s
    assert st(run(x, step, p, 120.0, 0.1), "valve_position")[0] == pytest.approx(64.5)


def test_winding_reaches_63_percent_of_its_step_after_one_time_constant() -> None:
    x, u, p, _ = settled()
    hot = st(x, "winding_temperature")[0]
    x[:, M.state_index("winding_temperature")] = 25.0
    tau = p[0, [q.name for q in M.parameters].index("winding_time_constant")]
    for dt in (1.0, 60.0, tau):
        after = st(run(x, u, p, tau, dt), "winding_temperature")[0]
        assert (after - 25.0) / (hot - 25.0) == pytest.approx(1 - np.exp(-1), abs=1e-3)
    assert 80.0 < hot < 110.0  # class F winding, B rise
    assert st(run(x, u, p, 10 * tau, 60.0), "winding_temperature")[0] == pytest.approx(hot, abs=0.01)


def test_hot_ambient_raises_temperatures_in_steady_state() -> None:
    x, _, _, _ = settled(2, ambient_temperature=np.array([20.0, 40.0]))
    assert np.allclose(np.diff(st(x, "winding_temperature")), 20.0)
    assert np.allclose(np.diff(st(x, "bearing_temperature")), 20.0)


def test_low_suction_pressure_cavitates_and_shakes() -> None:
    _, _, _, y = settled(3, suction_pressure=np.array([0.5, -0.55, -0.85]))
    cav = out(y, "cavitation")
    assert cav[0] == 0.0 < cav[1] < cav[2] <= 1.0
    assert (np.diff(out(y, "npsh_margin")) < 0).all()
    assert (np.diff(out(y, "bearing_vibration_rms")) > 0).all()
    assert (np.diff(out(y, "motor_vibration_rms")) > 0).all()
    # the head drop is small: a few percent at most
    assert out(y, "head")[2] > 0.9 * out(y, "head")[0]


def test_vibration_and_defect_energy_rise_with_wear_nonlinearly() -> None:
    wear = np.array([0.0, 0.3, 0.6, 0.8, 1.0])
    x, u, p, _ = settled(5)
    x[:, M.state_index("bearing_wear")] = wear
    y = M.output(x, u, p)
    vib, energy = out(y, "bearing_vibration_rms"), out(y, "defect_band_energy")
    assert (np.diff(vib) > 0).all() and (np.diff(energy) > 0).all()
    assert (np.diff(out(y, "motor_vibration_rms")) > 0).all()
    assert vib[0] == pytest.approx(1.0) and vib[-1] > 7.0
    assert vib[1] < 1.4  # still ISO zone A at 30 % wear
    assert (vib[4] - vib[3]) > (vib[2] - vib[1])  # steepens late
    assert np.allclose(M.event_state(x, p)[:, 0], 1.0 - wear)


def test_wear_is_monotone_and_faster_with_acceleration_heat_and_load() -> None:
    accel = nominal_inputs(M, 1, wear_acceleration=4.0)
    hot = nominal_inputs(M, 1, ambient_temperature=45.0)
    throttled = nominal_inputs(M, 1, valve_command=30.0)
    overspeed = nominal_inputs(M, 1, speed_setpoint=3200.0)
    cases = [nominal_inputs(M, 1), accel, hot, throttled, overspeed]
    u = np.concatenate(cases)
    p = default_parameters(M, len(u))
    x = M.initial_state(p, u)
    history = [st(x, "bearing_wear")]
    for _ in range(200):
        x = M.next_state(x, u, 3600.0, p)
        history.append(st(x, "bearing_wear"))
    wear = np.array(history)
    assert (np.diff(wear, axis=0) >= 0).all()
    assert (wear[-1, 1:] > wear[-1, 0]).all()
    assert wear[-1, 1] > 3 * wear[-1, 0]


def test_run_to_failure_at_nominal_duty_lands_in_the_documented_range() -> None:
    n = 400
    p = sample_parameters(n, np.random.default_rng(11))
    u = nominal_inputs(M, n)
    x = M.initial_state(p, u)
    hours = np.full(n, np.nan)
    for h in range(1, 6001):
        x = M.next_state(x, u, 3600.0, p)
        hours[np.isnan(hours) & (st(x, "bearing_wear") >= 1.0)] = h
    assert not np.isnan(hours).any()
    low, median, high = np.percentile(hours, [5, 50, 95])
    assert 1000 < low < 1400 and 1600 < median < 2000 and 2600 < high < 3300
    assert (M.event_state(x, p) == 0.0).all()


def test_nominal_failure_time_does_not_depend_on_the_time_step() -> None:
    p = default_parameters(M, 1)
    u = nominal_inputs(M, 1)
    x0 = M.initial_state(p, u)
    wear = [st(run(x0, u, p, 600 * 3600.0, dt), "bearing_wear")[0] for dt in (300.0, 3600.0)]
    assert np.ptp(wear) < 1e-3 * wear[0]


def test_sample_parameters_respects_bounds_and_is_reproducible() -> None:
    a = sample_parameters(500, np.random.default_rng(1))
    b = M.sample_parameters(500, np.random.default_rng(1))
    assert np.array_equal(a, b)
    lower = np.array([q.lower for q in M.parameters])
    upper = np.array([q.upper for q in M.parameters])
    assert ((a >= lower) & (a <= upper)).all()
    unspread = sample_parameters(3, np.random.default_rng(0), spread=0.0)
    assert np.array_equal(unspread, default_parameters(M, 3))


def test_outputs_stay_finite_at_the_edges() -> None:
    edges = nominal_inputs(M, 6, speed_setpoint=np.array([0, 1e-6, 3250, 1e5, 2950, 2950]),
                           valve_command=np.array([0, 0, 0, 100, -5, 200]),
                           suction_pressure=np.array([-1, -1, -1, 10, -1, 0]),
                           discharge_static_head=np.array([0, 0, 500, 0, 1000, -10]),
                           wear_acceleration=np.array([0, 1e6, 1e6, 1, 1, 0]))
    p = default_parameters(M, 6)
    x = M.initial_state(p, edges)
    for dt in (0.1, 3600.0, 3600.0):
        x = M.next_state(x, edges, dt, p)
        assert np.isfinite(M.output(x, edges, p)).all() and np.isfinite(x).all()
