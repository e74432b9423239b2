"""The simulated pump station: wire layout, commands through the physics, faults, truth, balance."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from twinloop.sim.environment import Environment
from twinloop.sim.faults import Fault, FaultSchedule
from twinloop.sim.plant import SimPlant
from twinloop.sim.pump_station import PumpStationPlant
from twinloop.twins.registry import TypeRegistry

TYPES = Path(__file__).resolve().parents[3] / "examples" / "pump-station" / "types"
IDS = [
    "station-1",
    "line-A",
    "line-B",
    "line-C",
    "tank-A",
    "tank-B",
    "tank-C",
    "reservoir-1",
    "mcc-1",
    "mcc-2",
] + [f"pump-{x}{n}" for x in "ABC" for n in range(1, 5)]


def read(plant: PumpStationPlant, device: str, channel: str) -> float:
    sample = plant.sample()
    d = [x.id for x in plant.devices].index(device)
    return float(sample.values[d][[c.name for c in plant.devices[d].channels].index(channel)])


@pytest.fixture(scope="module")
def day_plant() -> PumpStationPlant:
    """A quiet plant at 10:00 on a Monday (day shift), shared by read-only tests."""
    plant = PumpStationPlant(seed=1, noise=False, start_time_s=10 * 3600.0)
    plant.step(60)
    return plant


def test_is_a_simplant_with_the_example_devices(day_plant: PumpStationPlant) -> None:
    assert isinstance(day_plant, SimPlant) and day_plant.name == "pump-station"
    assert [d.id for d in day_plant.devices] == IDS
    sample = day_plant.sample()
    assert len(sample.values) == len(IDS) and sample.online.all()
    assert all(v.shape == (len(d.channels),) for v, d in zip(sample.values, day_plant.devices, strict=True))
    assert all(np.isfinite(v).all() for v in sample.values)


def test_channels_units_and_commands_match_the_asset_types(day_plant: PumpStationPlant) -> None:
    reg = TypeRegistry.from_paths([TYPES])
    for device in day_plant.devices:
        declared = dict(reg.component_channels(device.asset_type))
        assert [c.name for c in device.channels] == list(declared), device.id
        for c in device.channels:
            assert c.unit == (declared[c.name].unit or "dimensionless"), (device.id, c.name)
    pump_cmds = {c.name: c for c in day_plant.devices[-1].commands}
    declared_cmds = {c.name: c for c in reg.resolve("Pump").commands} | {
        c.name: c for c in reg.resolve("Valve").commands
    }
    for name, cmd in declared_cmds.items():
        assert name in pump_cmds
        for arg in cmd.args:
            if arg.min is not None:
                assert pump_cmds[name].args[arg.name] == (arg.min, arg.max)


def test_default_operation_three_duty_one_standby_meeting_demand(day_plant: PumpStationPlant) -> None:
    truth = day_plant.ground_truth()
    assert [truth["running"][f"pump-A{n}"] for n in range(1, 5)] == [True, True, True, False]
    outlet = read(day_plant, "station-1", "outlet_flow")
    lines = sum(read(day_plant, f"line-{x}", "header_flow") for x in "ABC")
    assert lines == pytest.approx(outlet, rel=0.03)
    power = sum(read(day_plant, f"pump-{x}{n}", "power") for x in "ABC" for n in range(1, 5))
    assert read(day_plant, "station-1", "total_power") == pytest.approx(power)
    mcc = read(day_plant, "mcc-2", "active_power")
    assert mcc == pytest.approx(sum(read(day_plant, f"pump-C{n}", "power") for n in range(1, 5)))


def test_production_plus_20_percent_raises_speed_pressure_and_power() -> None:
    base = PumpStationPlant(noise=False, start_time_s=10 * 3600.0)
    more = PumpStationPlant(
        noise=False, start_time_s=10 * 3600.0, environment=Environment(seed=1, demand_factor=1.2)
    )
    for p in (base, more):
        p.step(600)
    assert read(more, "station-1", "total_power") > 1.2 * read(base, "station-1", "total_power")
    assert read(more, "line-A", "header_pressure") > read(base, "line-A", "header_pressure")
    assert read(more, "pump-A1", "speed") > read(base, "pump-A1", "speed") + 100


def test_set_speed_raises_flow_and_power_then_stop_gives_zero_flow() -> None:
    plant = PumpStationPlant(noise=False, start_time_s=10 * 3600.0)
    flow0, power0 = read(plant, "pump-A1", "flow"), read(plant, "pump-A1", "power")
    res = plant.apply_command("pump-A1", "setSpeed", {"rpm": 2950})
    assert res.ok and res.applied["speed_setpoint"] == 2950
    plant.step(120)
    assert read(plant, "pump-A1", "speed") == pytest.approx(2950, abs=2)
    assert read(plant, "pump-A1", "flow") > flow0 + 10 and read(plant, "pump-A1", "power") > power0 + 1
    assert plant.apply_command("pump-A1", "stop", {}).ok
    plant.step(120)
    assert read(plant, "pump-A1", "flow") == 0.0 and read(plant, "pump-A1", "speed") == 0.0
    assert plant.apply_command("pump-A2", "stop", {"emergency": True}).ok
    plant.step(1)
    assert read(plant, "pump-A2", "speed") == 0.0
    assert plant.apply_command("pump-A4", "start", {}).ok  # standby joins under station control
    plant.step(120)
    assert read(plant, "pump-A4", "flow") > 50


def test_valve_set_position_and_ramp_lower_flow_at_the_actuator_rate() -> None:
    plant = PumpStationPlant(noise=False, start_time_s=10 * 3600.0)
    flow0 = read(plant, "pump-B2", "flow")
    assert plant.apply_command("pump-B2", "setPosition", {"position": 30}).ok
    plant.step(5)
    assert 85 < read(plant, "pump-B2", "valve.opening") < 95  # 2 %/s actuator
    plant.step(120)
    assert read(plant, "pump-B2", "valve.opening") == pytest.approx(30, abs=1)
    assert read(plant, "pump-B2", "flow") < 0.5 * flow0
    assert read(plant, "pump-B2", "valve.differential_pressure") > 0.3
    assert plant.apply_command("pump-B2", "setPositionRamp", {"position": 80, "duration": 100}).ok
    plant.step(50)
    assert 50 < read(plant, "pump-B2", "valve.opening") < 60


@pytest.mark.parametrize(
    ("device", "name", "args", "message"),
    [
        ("pump-A1", "setSpeed", {"rpm": 4000}, "outside 0 … 3000"),
        ("pump-A1", "setSpeed", {}, "missing argument"),
        ("pump-A1", "setSpeed", {"rpm": "fast"}, "must be a number"),
        ("pump-A1", "setSpeed", {"rpm": 100, "torque": 3}, "unknown argument"),
        ("pump-A1", "setPosition", {"position": -5}, "outside 0 … 100"),
        ("pump-A1", "fly", {}, "has no command"),
        ("line-A", "setSpeed", {"rpm": 100}, "has no command"),
        ("pump-Z9", "start", {}, "unknown device"),
        ("pump-A1", "injectFault", {"kind": "melt"}, "unknown fault kind"),
        ("pump-A1", "injectFault", {"kind": "drift", "channel": "nope"}, "no channel"),
        ("mcc-1", "injectFault", {"kind": "bearing_wear"}, "needs a pump"),
        ("pump-A1", "clearFault", {"id": "F99"}, "no fault"),
    ],
)
def test_invalid_commands_are_rejected_with_a_message(
    day_plant: PumpStationPlant, device: str, name: str, args: dict[str, object], message: str
) -> None:
    res = day_plant.apply_command(device, name, args)
    assert not res.ok and message in res.message


def test_stuck_valve_ignores_set_position() -> None:
    plant = PumpStationPlant(noise=False, start_time_s=10 * 3600.0)
    res = plant.apply_command("pump-C1", "injectFault", {"kind": "stuck_valve"})
    assert res.ok
    plant.apply_command("pump-C1", "setPosition", {"position": 20})
    plant.step(120)
    assert read(plant, "pump-C1", "valve.opening") == pytest.approx(100, abs=0.5)
    assert plant.ground_truth()["faults"][0]["kind"] == "stuck_valve"
    assert plant.apply_command("pump-C1", "clearFault", {"id": res.applied["id"]}).ok
    plant.step(120)
    assert read(plant, "pump-C1", "valve.opening") == pytest.approx(20, abs=1)
    assert (
        plant.ground_truth()["faults"] == [] and plant.ground_truth()["fault_history"][0]["end_s"] is not None
    )


def test_cavitation_raises_cavitation_and_vibration_on_that_line_only() -> None:
    plant = PumpStationPlant(noise=False, start_time_s=10 * 3600.0)
    vib0 = read(plant, "pump-A1", "bearing.vibration_rms")
    assert plant.apply_command("tank-A", "injectFault", {"kind": "cavitation"}).ok
    plant.step(60)
    cav = plant.ground_truth()["cavitation"]
    assert cav["pump-A1"] > 0.3 and cav["pump-B1"] == 0.0
    assert read(plant, "pump-A1", "bearing.vibration_rms") > vib0 + 0.5
    assert read(plant, "pump-A1", "suction_pressure") < -0.5


def test_sensor_faults_and_comm_loss_change_only_readings() -> None:
    faults = FaultSchedule(
        [
            Fault("drift", "pump-A1", "bearing.temperature", start_s=0, params={"rate_per_h": 6.0}),
            Fault("stuck_at", "line-B", "header_flow", start_s=0),
            Fault("dropout", "tank-C", "level", start_s=0, params={"probability": 1.0}),
            Fault("comm_loss", "mcc-2", start_s=600, end_s=1200),
            Fault("spikes", "pump-C2", "flow", params={"probability": 1.0, "magnitude": 50.0}),
        ]
    )
    plant = PumpStationPlant(noise=False, faults=faults, start_time_s=0.0)
    twin = PumpStationPlant(noise=False, start_time_s=0.0)
    drift, stuck, mcc2 = [], [], []
    ids = [d.id for d in plant.devices]
    for _ in range(4):
        mcc2.append(bool(plant.sample().online[ids.index("mcc-2")]))
        drift.append(
            read(plant, "pump-A1", "bearing.temperature") - read(twin, "pump-A1", "bearing.temperature")
        )
        stuck.append(read(plant, "line-B", "header_flow"))
        assert np.isnan(read(plant, "tank-C", "level"))
        assert abs(read(plant, "pump-C2", "flow") - read(twin, "pump-C2", "flow")) == pytest.approx(50.0)
        for p in (plant, twin):
            p.step(5 * 60)
    assert np.allclose(np.diff(drift), 0.5)  # 6 K/h over 5 minutes, linear
    assert len(set(stuck)) == 1 and read(twin, "line-B", "header_flow") != stuck[0]
    assert mcc2 == [True, True, False, False] and plant.sample().online.all()  # offline 600 … 1200 s
    assert [f["kind"] for f in plant.ground_truth()["fault_history"]][3] == "comm_loss"
    assert plant.ground_truth()["wear"] == twin.ground_truth()["wear"]  # physics untouched


def test_accelerated_wear_fails_earlier_trips_and_starts_the_standby() -> None:
    plant = PumpStationPlant(noise=False, start_time_s=10 * 3600.0)
    w0 = plant.ground_truth()["wear"]
    plant.inject(Fault("bearing_wear", "pump-B1", start_s=plant.t_s, params={"factor": 3e4}))
    for _ in range(60):
        plant.step(60)
        if plant.ground_truth()["failures"]:
            break
    truth = plant.ground_truth()
    assert [f["device"] for f in truth["failures"]] == ["pump-B1"]
    assert truth["failures"][0]["t_s"] <= plant.t_s and truth["wear"]["pump-B1"] == 1.0
    assert truth["wear"]["pump-B2"] - w0["pump-B2"] < 1e-3
    assert not truth["running"]["pump-B1"] and truth["running"]["pump-B4"]
    plant.step(120)
    assert read(plant, "pump-B1", "flow") == 0.0 and read(plant, "pump-B4", "flow") > 50
    res = plant.apply_command("pump-B1", "start", {})
    assert not res.ok and "bearing" in res.message


def test_a_new_bearing_clears_the_trip_and_ends_the_wear_fault() -> None:
    plant = PumpStationPlant(noise=False, start_time_s=10 * 3600.0)
    plant.inject(Fault("bearing_wear", "pump-B1", start_s=plant.t_s, params={"factor": 3e4}))
    while not plant.ground_truth()["failures"]:
        plant.step(60)
    refused = plant.apply_command("pump-B4", "replaceBearing", {})  # the standby took over: running
    assert not refused.ok and "stop it" in refused.message
    res = plant.apply_command("pump-B1", "replaceBearing", {})
    assert res.ok and "trip is cleared" in res.message
    truth = plant.ground_truth()
    assert truth["wear"]["pump-B1"] == 0.0 and not truth["failed"]["pump-B1"]
    assert [(r["device"], r["was_failed"]) for r in truth["repairs"]] == [("pump-B1", True)]
    assert all(f["end_s"] is not None for f in truth["fault_history"] if f["device"] == "pump-B1")
    assert plant.apply_command("pump-B1", "start", {}).ok
    plant.step(600)
    assert read(plant, "pump-B1", "flow") > 50 and plant.ground_truth()["wear"]["pump-B1"] < 0.01


def test_same_seed_and_commands_give_identical_samples() -> None:
    def run(seed: int) -> list[np.ndarray]:
        plant = PumpStationPlant(seed=seed, start_time_s=3600.0)
        plant.apply_command(
            "pump-A2", "injectFault", {"kind": "spikes", "channel": "flow", "probability": 0.5}
        )
        out = []
        for k in range(5):
            plant.step(30)
            if k == 2:
                plant.apply_command("pump-A1", "setSpeed", {"rpm": 2500})
            out.append(np.concatenate(plant.sample().values))
        return out

    a, b, c = run(7), run(7), run(8)
    assert all(np.array_equal(x, y, equal_nan=True) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[-1], c[-1])


def test_tank_mass_balance_over_a_long_run() -> None:
    plant = PumpStationPlant(noise=False, start_time_s=4 * 3600.0)
    v0 = {k: t["volume"] for k, t in plant.ground_truth()["tanks"].items()}
    plant.apply_command("pump-C3", "stop", {})
    for _ in range(24):
        plant.step(900)  # six hours through a shift change
    for tank, t in plant.ground_truth()["tanks"].items():
        balance = t["inflow_m3"] - t["outflow_m3"] - t["spilled_m3"] + t["shortfall_m3"]
        assert balance == pytest.approx(t["volume"] - v0[tank], abs=1e-6), tank
        assert t["inflow_m3"] > 100


def test_scheduled_faults_wait_for_their_start_and_settling_does_not_wear() -> None:
    faults = FaultSchedule([Fault("bearing_wear", "pump-C2", start_s=600.0, params={"factor": 1e5})])
    plant = PumpStationPlant(noise=False, faults=faults, start_time_s=0.0)
    quiet = PumpStationPlant(noise=False, start_time_s=0.0)
    assert (
        plant.ground_truth()["wear"] == quiet.ground_truth()["wear"] and not plant.ground_truth()["failures"]
    )
    plant.step(600)
    assert plant.ground_truth()["wear"]["pump-C2"] - quiet.ground_truth()["wear"]["pump-C2"] < 1e-3
    for _ in range(12):
        plant.step(600)
    assert plant.ground_truth()["failures"][0]["device"] == "pump-C2"
    assert plant.ground_truth()["failures"][0]["t_s"] > 600.0


def test_stopped_pumps_never_report_negative_flow_speed_power_or_vibration():
    plant = PumpStationPlant(seed=3)
    spec = {d.id: d for d in plant.devices}
    for _ in range(200):
        plant.step(1.0)
        sample = plant.sample()
        for dev, values in zip(plant.devices, sample.values, strict=True):
            if not dev.id.startswith("pump-"):
                continue
            names = [c.name for c in spec[dev.id].channels]
            for name in ("flow", "speed", "power", "bearing.vibration_rms", "motor.vibration_rms"):
                assert values[names.index(name)] >= 0.0, (dev.id, name)
