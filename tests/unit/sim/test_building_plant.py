"""The simulated office building: wire layout, commands through the physics, faults, truth."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from twinloop.physics.building import ZoneModel
from twinloop.physics.model import index
from twinloop.sim.building import BuildingPlant, BuildingWeather
from twinloop.sim.faults import Fault, FaultSchedule
from twinloop.sim.plant import SimPlant
from twinloop.twins.plant import load_plant
from twinloop.twins.registry import TypeRegistry

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "building"
HOUR, DAY = 3600.0, 86400.0
TUESDAY_9 = DAY + 9 * HOUR  # time is seconds since Monday 00:00


def read(plant: BuildingPlant, device: str, channel: str) -> float:
    sample = plant.sample()
    d = [x.id for x in plant.devices].index(device)
    return float(sample.values[d][[c.name for c in plant.devices[d].channels].index(channel)])


@pytest.fixture(scope="module")
def day_plant() -> BuildingPlant:
    """A quiet building at 10:00 on a Tuesday, shared by read-only tests."""
    plant = BuildingPlant(seed=1, noise=False, start_time_s=TUESDAY_9)
    plant.step(HOUR)
    return plant


# --- wire layout -----------------------------------------------------------------------------
def test_devices_are_the_twins_of_the_example_plant(day_plant: BuildingPlant) -> None:
    assert isinstance(day_plant, SimPlant) and day_plant.name == "building"
    reg = TypeRegistry.from_paths([EXAMPLE / "types"])
    twins = load_plant(EXAMPLE / "plant.yaml").twins
    speaking = [(t.id, t.type_id) for t in twins
                if reg.component_channels(t.type_id) or reg.resolve(t.type_id).commands]
    assert [(d.id, d.asset_type) for d in day_plant.devices] == speaking
    # only the floors stay off the wire: their type has neither channels nor commands
    assert {t.type_id for t in twins} - {d.asset_type for d in day_plant.devices} == {"Floor"}
    sample = day_plant.sample()
    assert len(sample.values) == 18 and sample.online.all()
    assert all(v.shape == (len(d.channels),) and np.isfinite(v).all()
               for v, d in zip(sample.values, day_plant.devices, strict=True))


def test_channels_units_and_command_limits_match_the_asset_types(day_plant: BuildingPlant) -> None:
    reg = TypeRegistry.from_paths([EXAMPLE / "types"])
    for device in day_plant.devices:
        declared = dict(reg.component_channels(device.asset_type))
        assert [c.name for c in device.channels] == list(declared), device.id
        for c in device.channels:
            assert c.unit == (declared[c.name].unit or "dimensionless"), (device.id, c.name)
        ours = {c.name: c for c in device.commands}
        for cmd in reg.resolve(device.asset_type).commands:
            assert cmd.name in ours, (device.id, cmd.name)
            assert {a.name: (a.min, a.max) for a in cmd.args} == ours[cmd.name].args, (device.id, cmd.name)


def test_air_handlers_serve_their_floor_as_the_plant_file_says(day_plant: BuildingPlant) -> None:
    serves = {(r.source, r.target) for r in load_plant(EXAMPLE / "plant.yaml").relationships
              if r.name == "serves"}
    plan = day_plant.plan
    assert serves == {(plan.ahus[a], z) for z, a in zip(plan.zones, plan.zone_ahu, strict=True)}


def test_air_handler_readings_are_totals_of_its_zones_with_a_cube_law_fan(day_plant: BuildingPlant) -> None:
    truth = day_plant.ground_truth()
    assert all(abs(z["air_temperature"] - 24.0) < 1.0 for z in truth["zones"].values())
    for f in (1, 2, 3):
        flow = read(day_plant, f"ahu-{f}", "airflow")
        assert 0.4 * 24000 <= flow <= 24000
        assert read(day_plant, f"ahu-{f}", "fan_power") == pytest.approx(10.0 * (flow / 24000) ** 3)
        assert read(day_plant, f"ahu-{f}", "supply_air_temperature") == pytest.approx(13.0, abs=0.5)
    coil = sum(read(day_plant, f"ahu-{f}", "cooling_coil_load") for f in (1, 2, 3))
    cooling = [read(day_plant, c, "cooling_load") for c in ("chiller-1", "chiller-2")]
    assert sum(cooling) == pytest.approx(coil) and cooling[0] == pytest.approx(cooling[1])
    power = sum(read(day_plant, c, "electrical_power") for c in ("chiller-1", "chiller-2"))
    fans = sum(read(day_plant, f"ahu-{f}", "fan_power") for f in (1, 2, 3))
    assert read(day_plant, "hq", "hvac_power") == pytest.approx(power + fans)
    assert read(day_plant, "chiller-1", "cop") == pytest.approx(cooling[0] / read(
        day_plant, "chiller-1", "electrical_power"))
    people = [read(day_plant, z, "occupancy") for z in day_plant.plan.zones]
    assert all(p == round(p) and 30 <= p <= 55 for p in people)  # office hours


def test_nights_and_weekends_are_empty_and_the_weather_has_a_day() -> None:
    plant = BuildingPlant(seed=2, noise=False, start_time_s=5 * DAY + 14 * HOUR)  # Saturday afternoon
    assert sum(read(plant, z, "occupancy") for z in plant.plan.zones) == 0
    night = BuildingPlant(seed=2, noise=False, start_time_s=DAY + 3 * HOUR)
    assert read(night, "hq", "solar_irradiance") == 0.0
    assert read(night, "hq", "outdoor_temperature") < read(plant, "hq", "outdoor_temperature") + 3


def test_weather_is_continuous_across_week_seams_and_a_heatwave_adds_nine_kelvin() -> None:
    w, hot = BuildingWeather(3), BuildingWeather(3, heatwave_days=(8, 9))
    seam = np.array([w.at(7 * DAY + s)[0] for s in np.arange(-900.0, 900.0, 60.0)])
    assert np.abs(np.diff(seam)).max() < 0.3
    assert hot.at(8.5 * DAY)[0] - w.at(8.5 * DAY)[0] == pytest.approx(9.0)
    assert hot.at(6 * DAY)[0] == w.at(6 * DAY)[0] and hot.heatwave(7.75 * DAY) == pytest.approx(0.5)


# --- physics through the plant ---------------------------------------------------------------
def test_a_heatwave_raises_chiller_power() -> None:
    at = 3 * DAY + 12 * HOUR  # Thursday noon, inside the heat wave
    normal = BuildingPlant(seed=4, noise=False, start_time_s=at)
    hot = BuildingPlant(seed=4, noise=False, start_time_s=at, heatwave_days=(2, 3, 4))
    power = {id(p): [] for p in (normal, hot)}
    for _ in range(12):
        for p in (normal, hot):
            p.step(600.0)
            power[id(p)].append(sum(read(p, c, "electrical_power") for c in ("chiller-1", "chiller-2")))
    assert np.mean(power[id(hot)]) > 1.3 * np.mean(power[id(normal)])
    assert hot.ground_truth()["heatwave"] == 1.0 and normal.ground_truth()["heatwave"] == 0.0
    assert read(hot, "chiller-1", "cop") < read(normal, "chiller-1", "cop")


def test_set_setpoint_moves_the_zone_with_its_rc_time_constant() -> None:
    base = BuildingPlant(seed=5, noise=False, start_time_s=TUESDAY_9)
    moved = BuildingPlant(seed=5, noise=False, start_time_s=TUESDAY_9)
    result = moved.apply_command("zone-2-east", "setSetpoint", {"temperature": 24.4})
    assert result.ok and result.applied == {"setpoint": 24.4}
    row, q = moved.plan.zones.index("zone-2-east"), ZoneModel.parameters
    p = moved.zone_parameters[row]
    tau = p[index(q, "air_capacitance")] / (p[index(q, "thermostat_gain")] + p[index(q, "window_conductance")]
                                            + p[index(q, "surface_conductance")])
    assert 60 < tau < 600
    diff = []
    for _ in range(60):
        for plant in (base, moved):
            plant.step(tau / 10)
        diff.append(read(moved, "zone-2-east", "air_temperature")
                    - read(base, "zone-2-east", "air_temperature"))
    d = np.array(diff)
    # the fast mode: 1 − 1/e of the way after one τ, settled after six (the mass creeps on slowly)
    assert d[9] / d[-1] == pytest.approx(1 - math.exp(-1), abs=0.08)
    assert 0.25 < d[-1] < 0.4 and abs(d[-1] - d[-10]) < 0.02
    assert moved.ground_truth()["zones"]["zone-2-east"]["setpoint"] == 24.4
    others = [z for z in moved.plan.zones if z != "zone-2-east"]
    assert all(abs(read(moved, z, "air_temperature") - read(base, z, "air_temperature")) < 1e-6
               for z in others)


def test_a_stuck_damper_raises_co2_on_its_floor_only() -> None:
    base = BuildingPlant(seed=6, noise=False, start_time_s=TUESDAY_9)
    stuck = BuildingPlant(seed=6, noise=False, start_time_s=TUESDAY_9)
    result = stuck.apply_command("ahu-1", "injectFault", {"kind": "damper_stuck", "position": 0, "id": "d1"})
    assert result.ok, result.message
    base.step(2 * HOUR)
    stuck.step(2 * HOUR)
    assert read(stuck, "ahu-1", "damper_position") == pytest.approx(0.0)
    assert read(base, "ahu-1", "damper_position") > 20.0
    for side in ("north", "east", "south", "west"):
        assert read(stuck, f"zone-1-{side}", "co2") > read(base, f"zone-1-{side}", "co2") + 500
        assert read(stuck, f"zone-2-{side}", "co2") == pytest.approx(read(base, f"zone-2-{side}", "co2"))
    truth = stuck.ground_truth()
    assert truth["zones"]["zone-1-east"]["damper_stuck"] and not truth["zones"]["zone-2-east"]["damper_stuck"]
    assert [f["id"] for f in truth["faults"]] == ["d1"]
    assert stuck.apply_command("ahu-1", "clearFault", {"id": "d1"}).ok
    stuck.step(2 * HOUR)
    assert read(stuck, "zone-1-east", "co2") < read(base, "zone-1-east", "co2") + 100


def test_fouling_lowers_cop_and_shows_in_the_truth() -> None:
    fault = Fault("fouling_acceleration", "chiller-1", start_s=TUESDAY_9, params={"factor": 5000})
    clean = BuildingPlant(seed=7, noise=False, start_time_s=TUESDAY_9)
    fouled = BuildingPlant(seed=7, noise=False, start_time_s=TUESDAY_9, faults=FaultSchedule([fault]))
    before = fouled.ground_truth()
    for p in (clean, fouled):
        p.step(6 * HOUR)
    after = fouled.ground_truth()
    growth = after["fouling"]["chiller-1"] - before["fouling"]["chiller-1"]
    assert growth == pytest.approx(6 * 1e-4 * 5000, rel=0.2)  # ~fouling_rate × factor × running hours
    assert after["cop_loss"]["chiller-1"] > before["cop_loss"]["chiller-1"] + 0.2
    assert after["fouling"]["chiller-2"] == pytest.approx(clean.ground_truth()["fouling"]["chiller-2"])
    assert read(fouled, "chiller-1", "cop") < 0.8 * read(clean, "chiller-1", "cop")
    assert read(fouled, "chiller-2", "cop") == pytest.approx(read(clean, "chiller-2", "cop"))
    assert after["energy_kwh"]["chiller_electric"] > clean.ground_truth()["energy_kwh"]["chiller_electric"]
    assert [f["kind"] for f in after["faults"]] == ["fouling_acceleration"]


def test_stopping_a_chiller_moves_its_load_and_stopping_both_warms_the_zones() -> None:
    plant = BuildingPlant(seed=8, noise=False, start_time_s=TUESDAY_9)
    assert plant.apply_command("chiller-1", "stop", {}).ok
    plant.step(600)
    assert read(plant, "chiller-1", "cooling_load") == 0.0 and read(plant, "chiller-1", "cop") == 0.0
    coil = sum(read(plant, f"ahu-{f}", "cooling_coil_load") for f in (1, 2, 3))
    assert read(plant, "chiller-2", "cooling_load") == pytest.approx(coil)
    assert plant.ground_truth()["fouling"]["chiller-1"] == pytest.approx(
        BuildingPlant(seed=8, noise=False, start_time_s=TUESDAY_9).ground_truth()["fouling"]["chiller-1"])
    last = plant.apply_command("chiller-2", "stop", {})
    assert last.ok and "loop will warm" in last.message
    plant.step(2 * HOUR)
    assert plant.ground_truth()["chilled_water_temperature"] > 15.0
    assert np.mean([read(plant, z, "air_temperature") for z in plant.plan.zones]) > 25.0
    assert plant.apply_command("chiller-2", "start", {}).ok
    plant.step(HOUR)
    assert plant.ground_truth()["chilled_water_temperature"] < 8.0


def test_air_handler_commands_act_through_the_coils_and_fan() -> None:
    plant = BuildingPlant(seed=9, noise=False, start_time_s=TUESDAY_9)
    assert plant.apply_command("ahu-2", "setFanSpeed", {"speed": 50}).applied == {"fan_speed": 50.0}
    assert plant.apply_command("ahu-3", "setSupplyTemperature", {"temperature": 16}).ok
    plant.step(600)
    assert read(plant, "ahu-2", "airflow") <= 12000.0 + 1e-6
    assert read(plant, "ahu-2", "fan_power") <= 1.25 + 1e-9
    assert read(plant, "ahu-3", "supply_air_temperature") == pytest.approx(16.0, abs=0.3)


@pytest.mark.parametrize("device, name, args, says", [
    ("zone-9-north", "setSetpoint", {"temperature": 22}, "unknown device 'zone-9-north'"),
    ("ahu-1", "setSetpoint", {"temperature": 22}, "it accepts: setSupplyTemperature"),
    ("zone-1-north", "setSetpoint", {"temperature": 30}, "temperature=30 is outside 16 … 28"),
    ("zone-1-north", "setSetpoint", {"temperature": float("nan")}, "outside 16 … 28"),
    ("zone-1-north", "setSetpoint", {}, "missing argument(s) temperature"),
    ("zone-1-north", "setSetpoint", {"temperature": "warm"}, "must be a number"),
    ("zone-1-north", "setSetpoint", {"temperature": 22, "speed": 1}, "unknown argument 'speed'"),
    ("chiller-1", "setChilledWaterSetpoint", {"temperature": 4}, "outside 5 … 12"),
    ("ahu-1", "setFanSpeed", {"speed": 120}, "outside 0 … 100"),
    ("ahu-1", "setSupplyTemperature", {"temperature": 9}, "outside 10 … 20"),
    ("zone-1-north", "injectFault", {"kind": "fouling_acceleration"}, "needs a chiller device"),
    ("chiller-1", "injectFault", {"kind": "damper_stuck"}, "needs a zone or ahu device"),
    ("ahu-1", "injectFault", {"kind": "bearing_wear"}, "nothing to act on in the building"),
    ("ahu-1", "injectFault", {"kind": "meltdown"}, "unknown fault kind"),
    ("ahu-1", "injectFault", {"kind": "drift", "channel": "speed"}, "ahu-1 has no channel 'speed'"),
    ("hq", "clearFault", {"id": "nope"}, "no fault 'nope'"),
])
def test_invalid_commands_are_rejected_with_a_message(day_plant: BuildingPlant, device: str, name: str,
                                                       args: dict, says: str) -> None:
    before = (day_plant.setpoint.copy(), day_plant.fan_speed.copy(), day_plant.chw_setpoint.copy())
    result = day_plant.apply_command(device, name, args)
    assert not result.ok and says in result.message, result.message
    after = (day_plant.setpoint, day_plant.fan_speed, day_plant.chw_setpoint)
    assert all((a == b).all() for a, b in zip(before, after, strict=True))


def test_scheduled_faults_are_checked_against_the_plant() -> None:
    with pytest.raises(Exception, match="needs a chiller"):
        BuildingPlant(faults=FaultSchedule([Fault("fouling_acceleration", "ahu-1")]))


def test_sensor_and_communication_faults() -> None:
    plant = BuildingPlant(seed=10, noise=False, start_time_s=TUESDAY_9)
    drift = plant.apply_command("zone-1-north", "injectFault",
                                {"kind": "drift", "channel": "air_temperature", "rate_per_h": 2})
    loss = plant.apply_command("chiller-2", "injectFault", {"kind": "comm_loss", "duration_s": 600})
    assert drift.ok and loss.ok
    true_before = plant.ground_truth()["zones"]["zone-1-north"]["air_temperature"]
    plant.step(300)
    assert plant.sample().online.tolist() == [d.id != "chiller-2" for d in plant.devices]
    plant.step(HOUR - 300)
    sample = plant.sample()
    shown = read(plant, "zone-1-north", "air_temperature")
    true = plant.ground_truth()["zones"]["zone-1-north"]["air_temperature"]
    assert shown - true == pytest.approx(2.0, abs=1e-6) and abs(true - true_before) < 0.5
    assert sample.online.all()  # the comm loss ended after 10 minutes


def test_noise_is_plausible_and_the_run_is_deterministic() -> None:
    def run(seed: int) -> list[np.ndarray]:
        plant = BuildingPlant(seed=seed, start_time_s=TUESDAY_9)
        plant.apply_command("zone-3-west", "setSetpoint", {"temperature": 23})
        out = []
        for _ in range(30):
            plant.step(60.0)
            out.append(np.concatenate(plant.sample().values))
        return out

    a, b, c = run(11), run(11), run(12)
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert not np.array_equal(a[-1], c[-1])
    quiet = BuildingPlant(seed=11, noise=False, start_time_s=TUESDAY_9)
    noisy = BuildingPlant(seed=11, start_time_s=TUESDAY_9)
    t_q, t_n = read(quiet, "zone-1-south", "air_temperature"), read(noisy, "zone-1-south", "air_temperature")
    assert t_q != t_n and abs(t_q - t_n) < 0.6
    damper = [read(noisy, "ahu-1", "damper_position") for _ in range(20)]
    assert all(0.0 <= d <= 100.0 for d in damper)


def test_energy_ledger_and_truth_keys() -> None:
    plant = BuildingPlant(seed=12, noise=False, start_time_s=TUESDAY_9)
    assert all(v == 0.0 for v in plant.ground_truth()["energy_kwh"].values())
    power = read(plant, "hq", "hvac_power")
    plant.step(HOUR)
    energy = plant.ground_truth()["energy_kwh"]
    assert energy["chiller_electric"] + energy["fan"] == pytest.approx(power, rel=0.3)
    assert energy["cooling"] > 2 * energy["chiller_electric"] and energy["unmet_cooling"] == 0.0
    assert set(plant.ground_truth()) >= {"fouling", "cop_loss", "degraded", "faults", "fault_history",
                                         "energy_kwh", "zones", "running"}


def test_the_cli_finds_the_building() -> None:
    from twinloop.cli.simulate_cmd import _plants

    assert _plants()["building"] is BuildingPlant
