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


def test_monitor_learns_then_alerts_on_a_failing_bearing_naming_its_sensors():
    faults = FaultSchedule([parse_fault("bearing_wear:pump-C3:factor=20000,start=40m")])
    plant = PumpStationPlant(seed=1, faults=faults)
    settings = load_settings(store_url="memory://", plant=example_plant_path())
    with Runtime.open(settings, clock=ManualClock(T0)) as rt:
        monitor = AlertMonitor(rt.alerts, rt.store, rt.twins, ("Pump",), learn_s=1800, period_s=10)
        seen_before_fault: list = []
        for step in range(int(75 * 60 / 10)):
            for _ in range(10):
                plant.step(1.0)
            _store_sample(rt, plant)
            if step % 30 == 29:
                monitor.tick()
                if plant.t_s < 40 * 60:
                    seen_before_fault += rt.alerts.list(twin_id="pump-C3")
        assert "pump-C3" in monitor.learned and not seen_before_fault
        alerts = rt.alerts.list(state="active", twin_id="pump-C3")
        assert alerts, "the failing bearing raised no alert"
        assert set(alerts[0].channels[:2]) & {"bearing.defect_band_energy", "bearing.vibration_rms"}
