"""A fouling chiller in the office building gets an RUL from its COP: P(fail within 72 h) rises above
0.5 before the simulator's ground truth says it is degraded; the clean chiller stays low.

The building simulator is stepped in process (plant time only) and the chillers' and the
building's readings are recorded every 5 plant minutes; the outdoor temperature reaches the
chiller's prognoser through its ``partOf`` relationship to the building."""

from __future__ import annotations

import numpy as np

from twinloop.cli.simulate_cmd import parse_fault
from twinloop.core.clock import ManualClock
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.rul_service import RulUpdated
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path
from twinloop.sim.building import BuildingPlant
from twinloop.sim.faults import FaultSchedule
from twinloop.twins.asset_type import Analytics

T0 = 1_767_225_600 * 10**9
DEVICES = ("hq", "chiller-1", "chiller-2")


def test_a_fouling_chiller_is_prognosed_before_it_degrades() -> None:
    fault = parse_fault("fouling_acceleration:chiller-1:factor=2000,start=2h")
    plant = BuildingPlant(seed=1, faults=FaultSchedule([fault], seed=1))
    settings = load_settings(store_url="memory://", plant=example_plant_path("building"))
    with Runtime.open(settings, clock=ManualClock(T0)) as rt:
        rt.registry.declare_analytics("Chiller", Analytics(prognoser={"model": "chiller-fouling-physics"}))
        assert rt.rul is not None and rt.rul.supports("chiller-1")
        degraded_at = None
        for _ in range(24 * 12):
            plant.step(300.0)
            sample = plant.sample()
            ids, channels, values = [], [], []
            for device, v, online in zip(plant.devices, sample.values, sample.online, strict=True):
                if device.id in DEVICES and online:
                    ok = np.isfinite(v)
                    ids += [device.id] * int(ok.sum())
                    channels += [c.name for c, keep in zip(device.channels, ok, strict=True) if keep]
                    values += v[ok].tolist()
            rt.state.record(ReadingBatch.from_arrays(ids, channels, T0 + int(sample.t_s * 1e9), values))
            if plant.ground_truth()["degraded"]["chiller-1"]:
                degraded_at = T0 + int(sample.t_s * 1e9)
                break
        assert degraded_at is not None, "the accelerated fouling should degrade chiller-1"

        def ruls(twin: str) -> list[RulUpdated]:
            return [e.event for e in rt.store.events(0, twin, ["RulUpdated"])]  # type: ignore[misc]

        warned = [e for e in ruls("chiller-1") if e.as_of_ns < degraded_at and e.p_fail["72h"] > 0.5]
        assert warned and "faster than modelled" in warned[0].reason
        assert warned[0].as_of_ns >= T0 + fault.start_s * 1e9
        clean = ruls("chiller-2")
        assert clean and all(e.p_fail["72h"] < 0.5 for e in clean)
        assert clean[-1].quantiles["0.5"] > 1000.0, "a clean condenser has months left"
