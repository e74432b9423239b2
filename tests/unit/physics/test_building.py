"""Building HVAC physics: energy balance, RC analytics, control, chiller, environment, plant."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twinloop.physics.building import (
    BuildingModel,
    ChillerModel,
    ZoneModel,
    cop_loss,
    group_sum,
    occupancy_profile,
    sample_parameters,
    weather,
    zone_heat_flows,
)
from twinloop.physics.model import (
    PhysicsModel,
    default_parameters,
    index,
    inputs_array,
    names,
)
from twinloop.twins.plant import load_plant
from twinloop.twins.registry import TypeRegistry

PLANT = Path(__file__).resolve().parents[3] / "examples" / "building" / "plant.yaml"
ZONE, CHILLER, BUILDING = ZoneModel(), ChillerModel(), BuildingModel()
MODELS: list[PhysicsModel] = [ZONE, CHILLER, BUILDING]


def zone_inputs(n: int, **kw: float | np.ndarray) -> np.ndarray:
    values: dict[str, float | np.ndarray] = dict(
        outdoor_temperature=30.0, solar_irradiance=400.0, occupancy=50.0, zone_setpoint=24.0,
        supply_air_setpoint=13.0, fan_speed=1.0, chilled_water_temperature=7.0, damper_stuck=0.0)
    values.update(kw)
    return inputs_array(ZONE, n, **values)


def building_inputs(n: int, **kw: float | np.ndarray) -> np.ndarray:
    values: dict[str, float | np.ndarray] = dict(
        outdoor_temperature=30.0, solar_irradiance=400.0, occupancy=50.0, zone_setpoint=24.0,
        supply_air_setpoint=13.0, fan_speed=1.0, damper_stuck=0.0, chilled_water_setpoint=7.0,
        fouling_acceleration=0.0)
    values.update(kw)
    return inputs_array(BUILDING, n, **values)


def col(model: PhysicsModel, y: np.ndarray, name: str) -> np.ndarray:
    return y[..., index(model.outputs, name)]


def par(p: np.ndarray, name: str, model: PhysicsModel = ZONE) -> np.ndarray:
    return p[:, index(model.parameters, name)]


def rc_matrix(p: np.ndarray, g: float, t_ref: float, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The 2-node network written out independently: ``dx/dt = A x + b`` for unit 0."""
    ca, cm = par(p, "air_capacitance")[0], par(p, "mass_capacitance")[0]
    hw, he, hs = (par(p, n)[0] for n in ("window_conductance", "wall_conductance", "surface_conductance"))
    flows = zone_heat_flows(np.zeros((1, 3)), u[:1], p[:1])
    to = u[0, index(ZONE.inputs, "outdoor_temperature")]
    a = np.array([[-(hw + hs + g) / ca, hs / ca], [hs / cm, -(he + hs) / cm]])
    b = np.array([(hw * to + g * t_ref + flows["gains_air"][0]) / ca,
                  (he * to + flows["gains_mass"][0]) / cm])
    return a, b


# --- zone: energy, analytics, control ------------------------------------------------------
def test_energy_balance_closes_over_a_day() -> None:
    """Stored heat equals the integral of all flows (trapezoid at 10 s) through a varying day."""
    n, dt = 3, 10.0
    p = default_parameters(ZONE, n, window_area=[10.0, 30.0, 60.0])
    t = np.arange(0.0, 86400.0, dt)
    temp, sun = weather(t, np.random.default_rng(3))
    occ = occupancy_profile(t) * 50
    x = ZONE.initial_state(p, zone_inputs(n, outdoor_temperature=temp[0], solar_irradiance=0.0))
    ca, cm = par(p, "air_capacitance"), par(p, "mass_capacitance")
    stored0 = ca * x[:, 0] + cm * x[:, 1]
    inflow, gross = np.zeros(n), np.zeros(n)
    for k in range(t.size):
        u = zone_inputs(n, outdoor_temperature=temp[k], solar_irradiance=sun[k], occupancy=occ[k])
        x1 = ZONE.next_state(x, u, dt, p)
        f0, f1 = zone_heat_flows(x, u, p), zone_heat_flows(x1, u, p)
        for key in ("window", "wall", "gains_air", "gains_mass", "hvac"):
            inflow += 0.5 * (f0[key] + f1[key]) * dt
            gross += 0.5 * np.abs(f0[key] + f1[key]) * dt
        x = x1
    stored = ca * x[:, 0] + cm * x[:, 1] - stored0
    np.testing.assert_allclose(stored, inflow, atol=1e-4 * gross.max())


def test_steady_state_matches_analytic_rc() -> None:
    """Free-floating (fan off) and thermostat-held zones settle on ``x = −A⁻¹ b``."""
    fans = (0.0, 1.0)
    p = default_parameters(ZONE, 2)
    u = zone_inputs(2, outdoor_temperature=28.0, solar_irradiance=300.0, fan_speed=np.array(fans),
                    occupancy=20.0)
    steady = np.array([np.linalg.solve(*_negated(rc_matrix(p[i:i + 1], g, 24.0, u[i:i + 1])))
                       for i, g in enumerate((0.0, par(p, "thermostat_gain")[0]))])
    x = np.column_stack([steady[:, 0] + 1.0, steady[:, 1] - 1.0, [800.0, 800.0]])
    for _ in range(40):  # 40 days in day steps: 8 slow (free-floating) time constants
        x = ZONE.next_state(x, u, 86400.0, p)
    np.testing.assert_allclose(x[:, :2], steady, atol=2e-3)
    np.testing.assert_allclose(ZONE.initial_state(p, u)[:, :2], steady, atol=1e-9)


def _negated(ab: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return ab[0], -ab[1]


def test_setpoint_step_follows_the_exact_two_exponential_response() -> None:
    """A small setpoint step (no saturation) follows ``e^{At}``; the fast τ is C_air/(K + H)."""
    p = default_parameters(ZONE, 1)
    u0 = zone_inputs(1)
    x = ZONE.initial_state(p, u0)
    u1 = zone_inputs(1, zone_setpoint=24.3)  # less cooling asked: the terminal stays unsaturated
    k = par(p, "thermostat_gain")[0]
    a, b = rc_matrix(p, k, 24.3, u1)
    lam, vec = np.linalg.eig(a)
    ss = np.linalg.solve(a, -b)
    tau_fast = -1.0 / lam.min()
    expected_tau = par(p, "air_capacitance")[0] / (
        k + par(p, "window_conductance")[0] + par(p, "surface_conductance")[0])
    assert tau_fast == pytest.approx(expected_tau, rel=0.02)
    coef = np.linalg.solve(vec, x[0, :2] - ss)
    for t_end in (60.0, tau_fast, 3 * tau_fast, 4 * 3600.0):
        steps = int(round(t_end / 30.0))
        y = x.copy()
        for _ in range(steps):
            y = ZONE.next_state(y, u1, t_end / steps, p)
        exact = ss + vec @ (coef * np.exp(lam * t_end))
        np.testing.assert_allclose(y[0, :2], exact.real, atol=1e-6)
    # Setpoint tracking: after 3 τ the air is within 5 % of its fast move plus a slow creep.
    assert abs(y[0, 0] - 24.3) < 0.5


@pytest.mark.parametrize("dt", [1.0, 60.0, 900.0, 3600.0])
def test_finite_and_consistent_for_every_step_size(dt: float) -> None:
    rng = np.random.default_rng(7)
    n = 16
    p = sample_parameters(BUILDING, n, rng, spread=0.3)
    u = building_inputs(n, outdoor_temperature=rng.uniform(-10, 42, n), occupancy=rng.uniform(0, 80, n),
                        solar_irradiance=rng.uniform(0, 900, n), fan_speed=rng.uniform(0, 1, n),
                        zone_setpoint=rng.uniform(16, 28, n), damper_stuck=rng.uniform(0, 1, n))
    x = BUILDING.initial_state(p, u, rng)
    horizon = 3600.0
    y = x
    for _ in range(int(horizon / dt)):
        y = BUILDING.next_state(y, u, dt, p)
        assert np.isfinite(y).all()
        assert np.isfinite(BUILDING.output(y, u, p)).all()
    ref = x
    for _ in range(int(horizon / 60.0)):
        ref = BUILDING.next_state(ref, u, 60.0, p)
    np.testing.assert_allclose(y[:, :2], ref[:, :2], atol=0.1)  # temperatures within 0.1 K


def test_more_occupancy_more_cooling_and_co2() -> None:
    p = default_parameters(ZONE, 2)
    u = zone_inputs(2, occupancy=np.array([5.0, 50.0]))
    x = ZONE.initial_state(p, zone_inputs(2, occupancy=0.0))
    for _ in range(4 * 60):
        x = ZONE.next_state(x, u, 60.0, p)
    y = ZONE.output(x, u, p)
    assert col(ZONE, y, "cooling_coil_load")[1] > col(ZONE, y, "cooling_coil_load")[0] + 2.0
    assert col(ZONE, y, "co2")[1] > col(ZONE, y, "co2")[0] + 200.0
    assert (col(ZONE, y, "co2") > 420.0).all()


def test_stuck_closed_damper_raises_co2_and_economizer_saves_cooling() -> None:
    p = default_parameters(ZONE, 2)
    u = zone_inputs(2, damper_stuck=np.array([0.0, 1.0]))
    x = ZONE.initial_state(p, u)
    y = ZONE.output(x, u, p)
    assert col(ZONE, y, "damper_position").tolist() == [35.0, 0.0]
    assert col(ZONE, y, "co2")[1] > 2 * col(ZONE, y, "co2")[0]
    cool = zone_inputs(2, outdoor_temperature=14.0)
    pe = default_parameters(ZONE, 2, economizer=np.array([0.0, 1.0]))
    ye = ZONE.output(ZONE.initial_state(pe, cool), cool, pe)
    assert col(ZONE, ye, "cooling_coil_load")[1] < 0.2 * col(ZONE, ye, "cooling_coil_load")[0]


def test_fan_power_follows_the_affinity_law() -> None:
    p = default_parameters(ZONE, 1)
    u = zone_inputs(1, outdoor_temperature=38.0, solar_irradiance=800.0)  # saturated: full flow
    for speed in (0.5, 0.8, 1.0):
        us = u.copy()
        us[:, index(ZONE.inputs, "fan_speed")] = speed
        y = ZONE.output(ZONE.initial_state(p, us), us, p)
        assert col(ZONE, y, "airflow")[0] == pytest.approx(6000.0 * speed)
        assert col(ZONE, y, "fan_power")[0] == pytest.approx(2.5 * speed**3)


# --- chiller -------------------------------------------------------------------------------
def test_chiller_power_is_delivered_over_cop_and_capacity_limits() -> None:
    p = default_parameters(CHILLER, 3)
    u = inputs_array(CHILLER, 3, cooling_load=np.array([100.0, 200.0, 300.0]), outdoor_temperature=35.0,
                     chilled_water_setpoint=7.0, fouling_acceleration=0.0)
    y = CHILLER.output(CHILLER.initial_state(p, u), u, p)
    delivered, unmet = col(CHILLER, y, "cooling_delivered"), col(CHILLER, y, "unmet_load")
    np.testing.assert_allclose(col(CHILLER, y, "electrical_power") * col(CHILLER, y, "cop"), delivered)
    np.testing.assert_allclose(delivered + unmet, [100.0, 200.0, 300.0])
    assert unmet.tolist() == [0.0, 0.0, 100.0]
    assert col(CHILLER, y, "cop")[1] == pytest.approx(3.0)  # rated point
    supply = col(CHILLER, y, "chilled_water_supply_temperature")
    assert supply[0] == 7.0 and supply[2] > 9.0


def test_fouling_grows_monotonically_lowers_cop_and_reaches_the_event() -> None:
    p = default_parameters(CHILLER, 2)
    u = inputs_array(CHILLER, 2, cooling_load=150.0, outdoor_temperature=32.0,
                     chilled_water_setpoint=7.0, fouling_acceleration=np.array([0.0, 9.0]))
    x = CHILLER.initial_state(p, u)
    fouling, cop, health = [], [], []
    for _ in range(420):  # 420 days of running
        fouling.append(x[:, 0])
        cop.append(col(CHILLER, CHILLER.output(x, u, p), "cop"))
        health.append(CHILLER.event_state(x, p)[:, 0])
        x = CHILLER.next_state(x, u, 86400.0, p)
    f, c, h = np.array(fouling), np.array(cop), np.array(health)
    assert (np.diff(f, axis=0) > 0).all() and (np.diff(c, axis=0) < 0).all()
    assert (np.diff(h, axis=0) <= 0).all() and ((h >= 0) & (h <= 1)).all()
    assert h[-1, 1] == 0.0 and h[-1, 0] > 0.0  # the accelerated one is degraded, the other not yet
    reached = np.argmax(h[:, 1] == 0.0)
    assert cop_loss(f[reached][:, None], p)[1] == pytest.approx(0.3, abs=0.01)
    idle = inputs_array(CHILLER, 2, cooling_load=0.0, outdoor_temperature=32.0,
                        chilled_water_setpoint=7.0, fouling_acceleration=9.0)
    np.testing.assert_array_equal(CHILLER.next_state(x, idle, 3600.0, p), x)


def test_heatwave_raises_chiller_power_and_lowers_cop() -> None:
    n, dt = 2, 300.0
    p = default_parameters(BUILDING, n)
    t = np.arange(0.0, 5 * 86400.0, dt)
    temp = np.empty((n, t.size))
    sun = np.empty_like(temp)
    for i, hw in enumerate((False, True)):
        temp[i], sun[i] = weather(t, np.random.default_rng(11), heatwave=hw)
    occ = occupancy_profile(t) * 50
    x = BUILDING.initial_state(p, building_inputs(n, outdoor_temperature=temp[:, 0], solar_irradiance=0.0))
    y = []
    for k in range(t.size):
        u = building_inputs(n, outdoor_temperature=temp[:, k], solar_irradiance=sun[:, k], occupancy=occ[k])
        y.append(BUILDING.output(x, u, p))
        x = BUILDING.next_state(x, u, dt, p)
    out = np.array(y)
    hot = (t >= 2 * 86400) & (t < 5 * 86400) & (occ > 40)
    power, cop = col(BUILDING, out, "chiller_electrical_power"), col(BUILDING, out, "chiller_cop")
    assert power[hot, 1].mean() > 1.4 * power[hot, 0].mean()
    assert cop[hot, 1].mean() < cop[hot, 0].mean() - 0.2
    assert (np.abs(col(BUILDING, out, "air_temperature") - 24.0) < 1.5).all()


def test_group_sum_feeds_chillers_from_zones() -> None:
    loads = np.arange(12.0)
    np.testing.assert_array_equal(group_sum(loads, np.repeat([0, 1], 6), 2), [15.0, 51.0])


# --- conformance -------------------------------------------------------------------------
def _inputs_for(model: PhysicsModel, n: int) -> np.ndarray:
    if model is ZONE:
        return zone_inputs(n, occupancy=np.linspace(0, 60, n))
    if model is CHILLER:
        return inputs_array(CHILLER, n, cooling_load=np.linspace(0, 300, n), outdoor_temperature=30.0,
                            chilled_water_setpoint=7.0, fouling_acceleration=1.0)
    return building_inputs(n, occupancy=np.linspace(0, 60, n))


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_conformance(model: PhysicsModel) -> None:
    """Shapes, purity, determinism, row independence, event range, declared units."""
    assert isinstance(model, PhysicsModel)
    from twinloop.core.units import is_valid_unit

    for s in (*model.inputs, *model.states, *model.outputs, *model.parameters):
        assert is_valid_unit(s.unit), s
    for q in model.parameters:
        assert q.lower <= q.default <= q.upper, q
    assert len(set(names(model.outputs))) == len(model.outputs)
    n = 5
    rng = np.random.default_rng(0)
    p, u = sample_parameters(model, n, rng), _inputs_for(model, n)
    x = model.initial_state(p, u, np.random.default_rng(1))
    frozen = x.copy()
    x1 = model.next_state(x, u, 600.0, p)
    np.testing.assert_array_equal(x, frozen)
    np.testing.assert_array_equal(x1, model.next_state(x, u, 600.0, p))
    assert x1.shape == (n, len(model.states))
    assert model.output(x1, u, p).shape == (n, len(model.outputs))
    ev = model.event_state(x1, p)
    assert ev.shape == (n, len(model.events)) and ((ev >= 0) & (ev <= 1)).all()
    for i in range(n):  # one row alone gives the same answer as in the batch
        one = slice(i, i + 1)
        np.testing.assert_allclose(model.next_state(x[one], u[one], 600.0, p[one]), x1[one], rtol=1e-12)
        np.testing.assert_allclose(model.output(x[one], u[one], p[one]), model.output(x, u, p)[one],
                                   rtol=1e-12)


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.name)
def test_physics_checks_battery(model: PhysicsModel) -> None:
    from twinloop.physics import checks

    battery = getattr(checks, "CHECKS", None) or [
        getattr(checks, n) for n in dir(checks) if n.startswith("check_")]
    for check in battery:
        check(model, np.random.default_rng(0))


def test_sample_parameters_spread_within_bounds() -> None:
    p = sample_parameters(ZONE, 200, np.random.default_rng(2), spread=0.5)
    lower = np.array([q.lower for q in ZONE.parameters])
    upper = np.array([q.upper for q in ZONE.parameters])
    assert ((p >= lower) & (p <= upper)).all()
    assert (par(p, "economizer") == 1.0).all()
    assert par(p, "floor_area").std() > 50.0


# --- environment ---------------------------------------------------------------------------
def test_weather_and_occupancy_profiles() -> None:
    t = np.arange(0.0, 7 * 86400.0, 600.0)
    temp, sun = weather(t, np.random.default_rng(5))
    hot, sun_hw = weather(t, np.random.default_rng(5), heatwave=True)
    hour = (t % 86400) / 3600
    assert (sun[(hour < 6) | (hour > 18)] == 0).all() and sun.max() > 500 and (sun >= 0).all()
    assert 15 < temp.min() and temp.max() < 36
    plateau = (t > 2 * 86400) & (t < 6 * 86400)
    assert 8.0 < (hot - temp)[plateau].mean() < 10.0
    assert np.abs((hot - temp)[t < 86400]).max() < 1e-9
    occ = occupancy_profile(t)
    assert occ.max() == 1.0 and (occ[t >= 5 * 86400] == 0).all()
    assert (occ[(hour < 7) | (hour > 19)] == 0).all()
    noon = (hour >= 12) & (hour < 13) & (t < 5 * 86400)
    assert np.allclose(occ[noon], 0.6)
    np.testing.assert_array_equal(weather(t, np.random.default_rng(5))[0], temp)  # pure given the seed


# --- example plant -------------------------------------------------------------------------
def test_example_plant_loads_and_every_relationship_is_declared_by_its_source() -> None:
    plant = load_plant(PLANT)
    registry = TypeRegistry.from_paths(plant.type_paths)
    kinds = {t.id: t.type_id for t in plant.twins}
    assert sorted(kinds.values()).count("Zone") == 12
    assert sorted(kinds.values()).count("AirHandler") == 3
    assert sorted(kinds.values()).count("Chiller") == 2
    for twin in plant.twins:
        asset_type = registry.resolve(twin.type_id)
        asset_type.validate_attributes(twin.attributes)
        asset_type.validate_desired(twin.desired)
    for rel in plant.relationships:
        declared = {r.name: r for r in registry.resolve(kinds[rel.source]).relationships}
        assert rel.name in declared, rel
        target = declared[rel.name].target
        assert target is None or target == kinds[rel.target], rel
    g = plant.graph()
    for f in (1, 2, 3):
        assert len(g.neighbours(f"ahu-{f}", "serves")) == 4
        assert len(g.neighbours(f"floor-{f}", "partOf", "in")) == 5  # 4 zones + the air handler
    zone = registry.resolve("Zone")
    assert zone.validate_command("setSetpoint", {"temperature": 22}) == {"temperature": 22.0}
    with pytest.raises(Exception, match="above the maximum"):
        zone.validate_command("setSetpoint", {"temperature": 30})
