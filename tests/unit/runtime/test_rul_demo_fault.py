"""The demo's bearing fault (pump-C3, wear 20,000× from 2 h 15 min): its P(fail within 72 h) rises
above 0.5 before the simulator's ground truth says it failed, while healthy pumps stay low.

The pump station simulator is stepped in process (plant time only: the wall clock never moves)
and its readings of three pumps are recorded into the runtime every plant minute, so the RUL
service runs exactly as live, in the publisher's thread."""

from __future__ import annotations

import numpy as np

from twinloop.cli.simulate_cmd import parse_fault
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.rul_service import RulUpdated
from twinloop.sim.faults import FaultSchedule
from twinloop.sim.pump_station import PumpStationPlant

T0 = 1_767_225_600 * 10**9
PUMPS = ("pump-A1", "pump-C1", "pump-C3")


def test_the_demo_bearing_fault_is_prognosed_before_the_pump_fails(rt) -> None:
    fault = parse_fault("bearing_wear:pump-C3:factor=20000,start=2h15m")
    plant = PumpStationPlant(seed=1, faults=FaultSchedule([fault], seed=1))
    failed_at = None
    for _ in range(6 * 60):
        plant.step(60.0)
        sample = plant.sample()
        ids, channels, values = [], [], []
        for device, v, online in zip(plant.devices, sample.values, sample.online, strict=True):
            if device.id in PUMPS and online:
                ok = np.isfinite(v)
                ids += [device.id] * int(ok.sum())
                channels += [c.name for c, keep in zip(device.channels, ok, strict=True) if keep]
                values += v[ok].tolist()
        rt.state.record(ReadingBatch.from_arrays(ids, channels, T0 + int(sample.t_s * 1e9), values))
        if plant.ground_truth()["failed"]["pump-C3"]:
            failed_at = T0 + int(sample.t_s * 1e9)
            break
    assert failed_at is not None, "the simulated fault should run the bearing to failure"

    def ruls(twin: str) -> list[RulUpdated]:
        return [e.event for e in rt.store.events(0, twin, ["RulUpdated"])]  # type: ignore[misc]

    before = [e for e in ruls("pump-C3") if e.as_of_ns < failed_at]
    warned = [e for e in before if e.p_fail["72h"] > 0.5]
    assert warned, [(e.as_of_ns - T0) / 3.6e12 for e in before]
    assert warned[0].as_of_ns >= T0 + fault.start_s * 1e9, "not before the fault started"
    assert "faster than modelled" in warned[0].reason
    for healthy in ("pump-A1", "pump-C1"):
        assert ruls(healthy) and all(e.p_fail["72h"] < 0.5 for e in ruls(healthy)), healthy
