"""The live alert job on simulator data: it learns normal operation, then a worn bearing raises an
alert that names the bearing's sensors."""

import numpy as np

from twinloop.cli.simulate_cmd import parse_fault
from twinloop.core.clock import ManualClock
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.alert_monitor import AlertMonitor
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path
from twinloop.sim.faults import FaultSchedule
from twinloop.sim.pump_station import PumpStationPlant

T0 = 1_767_225_600 * 10**9


def _store_sample(rt: Runtime, plant: PumpStationPlant) -> None:
    sample = plant.sample()
    ts = T0 + int(plant.t_s * 1e9)
    parts = []
    for dev, values, online in zip(plant.devices, sample.values, sample.online, strict=True):
        if online and dev.id.startswith("pump-"):
            names = np.array([c.name for c in dev.channels])
            keep = ~np.isnan(values)
            parts.append(ReadingBatch.from_arrays(dev.id, names[keep], ts, values[keep]))
    rt.store.append(ReadingBatch.concat(parts))


def _drive(rt: Runtime, plant: PumpStationPlant, monitor: AlertMonitor, minutes: float) -> None:
    """Run the plant, store a sample every 10 s and let the monitor look every 5 minutes."""
    for step in range(int(minutes * 60 / 10)):
        for _ in range(10):
            plant.step(1.0)
        _store_sample(rt, plant)
        if step % 30 == 29:
            monitor.tick()


def test_monitor_learns_then_alerts_on_a_failing_bearing_naming_its_sensors():
    faults = FaultSchedule([parse_fault("bearing_wear:pump-C3:factor=20000,start=40m")])
    plant = PumpStationPlant(seed=1, faults=faults)
    settings = load_settings(store_url="memory://", plant=example_plant_path())
    with Runtime.open(settings, clock=ManualClock(T0)) as rt:
        monitor = AlertMonitor(rt.alerts, rt.store, rt.twins, ("Pump",), learn_s=1800, period_s=10)
        _drive(rt, plant, monitor, 40)  # the bearing starts to wear at 40 min
        seen_before_fault = rt.alerts.list(twin_id="pump-C3")
        _drive(rt, plant, monitor, 35)
        assert "pump-C3" in monitor.learned and not seen_before_fault
        alerts = rt.alerts.list(state="active", twin_id="pump-C3")
        assert alerts, "the failing bearing raised no alert"
        assert set(alerts[0].channels[:2]) & {"bearing.defect_band_energy", "bearing.vibration_rms"}


def _run_with_standby_drift(operating: dict[str, str]) -> tuple[frozenset[str], list]:
    """A quiet plant whose standby pump (pump-A4, stopped throughout) sees its bearing thermometer
    wander off after the learning period, as a stopped machine's sensors do with the weather."""
    faults = FaultSchedule([parse_fault("drift:pump-A4:channel=bearing.temperature,rate_per_h=40,start=35m")])
    plant = PumpStationPlant(seed=1, faults=faults)
    settings = load_settings(store_url="memory://", plant=example_plant_path(), alerts_operating=operating)
    with Runtime.open(settings, clock=ManualClock(T0)) as rt:
        monitor = AlertMonitor(rt.alerts, rt.store, rt.twins, ("Pump",), learn_s=1800, period_s=10)
        _drive(rt, plant, monitor, 70)
        assert not plant.ground_truth()["running"]["pump-A4"]
        return monitor.learned, rt.alerts.list(twin_id="pump-A4")


def test_a_stopped_standby_pump_is_not_judged_while_it_does_not_run():
    learned, alerts = _run_with_standby_drift({"Pump": "speed > 100 for 10m"})
    assert "pump-A4" not in learned and not alerts
    assert {"pump-A1", "pump-B2", "pump-C3"} <= learned  # duty pumps run: learned as usual


def test_without_an_operating_gate_the_stopped_pump_raises_an_alert():
    learned, alerts = _run_with_standby_drift({"Pump": "off"})
    assert "pump-A4" in learned and alerts  # what the gate prevents


def test_after_a_restart_the_same_period_is_relearned_and_a_developing_fault_still_alerts(tmp_path):
    faults = FaultSchedule([parse_fault("bearing_wear:pump-C3:factor=20000,start=40m")])
    plant = PumpStationPlant(seed=1, faults=faults)
    settings = load_settings(data_dir=tmp_path, plant=example_plant_path())

    with Runtime.open(settings, clock=ManualClock(T0)) as rt:
        monitor = AlertMonitor(rt.alerts, rt.store, rt.twins, ("Pump",), learn_s=1800, period_s=10)
        _drive(rt, plant, monitor, 40)  # learned at 30 min; the bearing starts to wear at 40 min
        assert "pump-C3" in monitor.learned and not rt.alerts.list(twin_id="pump-C3")
        window = rt.store.get_meta("alerts.learned.pump-C3")
    with Runtime.open(settings, clock=ManualClock(T0)) as rt:  # the runtime restarts
        monitor = AlertMonitor(rt.alerts, rt.store, rt.twins, ("Pump",), learn_s=1800, period_s=10)
        _drive(rt, plant, monitor, 30)
        assert rt.store.get_meta("alerts.learned.pump-C3") == window  # the same stretch, not a later one
        alerts = rt.alerts.list(state="active", twin_id="pump-C3")
        assert alerts, "after the restart the wearing bearing went unnoticed"


def test_a_monitor_that_falls_behind_learns_the_first_stretch_and_still_alerts_from_its_backlog():
    """A monitor starved of CPU looks for the first time long after the fault began: it learns the
    stretch before the fault (not the latest data, which holds it) and works through the backlog."""
    faults = FaultSchedule([parse_fault("bearing_wear:pump-C3:factor=20000,start=40m")])
    plant = PumpStationPlant(seed=1, faults=faults)
    settings = load_settings(store_url="memory://", plant=example_plant_path())
    with Runtime.open(settings, clock=ManualClock(T0)) as rt:
        monitor = AlertMonitor(rt.alerts, rt.store, rt.twins, ("Pump",), learn_s=1800, period_s=10)
        assert monitor.lag_s() is None
        for _ in range(int(75 * 60 / 10)):  # 75 minutes of plant time and not one pass
            for _ in range(10):
                plant.step(1.0)
            _store_sample(rt, plant)
        monitor.tick()
        status = {s.twin_id: s for s in monitor.progress()}
        start, stop = status["pump-C3"].window
        assert status["pump-C3"].learned and stop - start == 1800 * 10**9 and stop <= T0 + 40 * 60 * 10**9
        assert not status["pump-A4"].learned and "not" in status["pump-A4"].reason  # a standby waits
        assert monitor.lag_s() is not None and monitor.lag_s() <= 20  # the backlog is worked through
        alerts = rt.alerts.list(state="active", twin_id="pump-C3")
        assert alerts and alerts[0].started_ns >= T0 + 40 * 60 * 10**9
        assert set(alerts[0].channels[:2]) & {"bearing.defect_band_energy", "bearing.vibration_rms"}


def test_watched_types_and_their_learning_come_from_the_types_alerts_declarations():
    settings = load_settings(store_url="memory://", plant=example_plant_path())
    with Runtime.open(settings, clock=ManualClock(T0)) as rt:
        monitor = AlertMonitor(rt.alerts, rt.store, rt.twins)  # no types named: what is declared
        watched = {s.twin_id for s in monitor.progress()}
        assert {t.id for t in rt.twins.list("Pump")} == watched  # tanks, valves … declare no alerts
        spec = rt.alerts.spec("Pump")
        assert spec.gate.channel == "speed" and spec.learn_s == 7200 and spec.period_s == 10


def test_the_office_building_declares_its_alerts_with_gates_for_idle_equipment():
    settings = load_settings(store_url="memory://", plant=example_plant_path("building"))
    with Runtime.open(settings, clock=ManualClock(T0)) as rt:
        monitor = AlertMonitor(rt.alerts, rt.store, rt.twins)
        types = {s.type_id for s in monitor.progress()}
        assert {"Chiller", "AirHandler"} <= types
        assert rt.alerts.spec("Chiller").gate.channel == "cooling_load"
        assert rt.alerts.spec("AirHandler").gate.channel == "airflow"


def test_a_learned_detector_is_kept_as_an_artifact_and_reloaded_after_a_restart(tmp_path):
    plant = PumpStationPlant(seed=1, faults=FaultSchedule([]))
    settings = load_settings(data_dir=tmp_path, plant=example_plant_path())
    with Runtime.open(settings, clock=ManualClock(T0)) as rt:
        monitor = AlertMonitor(rt.alerts, rt.store, rt.twins, ("Pump",), learn_s=1800, period_s=10,
                               artifacts=rt.artifacts)
        _drive(rt, plant, monitor, 40)
        kept = rt.artifacts.versions("detector", "pump-C3")
        assert len(kept) == 1 and kept[0].meta["window_ns"][1] - kept[0].meta["window_ns"][0] == 1800 * 10**9
        cursor = rt.alerts.model("pump-C3").cursor_ns
    with Runtime.open(settings, clock=ManualClock(T0)) as rt:  # the runtime restarts
        monitor = AlertMonitor(rt.alerts, rt.store, rt.twins, ("Pump",), learn_s=1800, period_s=10,
                               artifacts=rt.artifacts)
        assert rt.alerts.model("pump-C3") is None
        monitor.tick()
        assert "pump-C3" in monitor.learned and len(rt.artifacts.versions("detector", "pump-C3")) == 1
        assert rt.alerts.model("pump-C3").cursor_ns >= cursor  # evaluation resumes where it stopped
