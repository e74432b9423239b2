"""Each example plant's mapping takes its simulator's wire talk as is: every reading stored, at any speed."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinloop.core.clock import ManualClock
from twinloop.core.protocols import RawMessage
from twinloop.ingest.mapping import load_mapping
from twinloop.ingest.normalizer import Normalizer
from twinloop.sim import wire
from twinloop.sim.building import BuildingPlant
from twinloop.sim.pump_station import PumpStationPlant
from twinloop.twins.plant import load_plant
from twinloop.twins.registry import TypeRegistry

S = 1_000_000_000
T0 = 1_767_225_600 * S
EXAMPLES = Path(__file__).resolve().parents[3] / "src" / "twinloop" / "examples"


@pytest.mark.parametrize(("folder", "simulator"), [("pump-station", PumpStationPlant),
                                                   ("building", BuildingPlant)])
def test_the_example_mapping_stores_every_reading_of_its_simulator_at_60x(folder: str,
                                                                          simulator: type) -> None:
    plant = load_plant(EXAMPLES / folder / "plant.yaml")
    mapping = load_mapping(EXAMPLES / folder / "mapping.yaml")
    normalizer = Normalizer(mapping, TypeRegistry.from_paths(plant.type_paths),
                            {t.id: t.type_id for t in plant.twins}, ManualClock(T0))
    sim = simulator(seed=1)
    names = wire.device_names(sim.devices)
    assert mapping.mqtt_filters()[0] == wire.clock_topic(sim.name)  # heard before any reading
    wall = T0 + 3600 * S  # an hour after the simulator started at 60x: 59 h of plant time ahead
    sim_now = T0 + 60 * 3600 * S
    messages = [RawMessage("mqtt", wire.clock_topic(sim.name), wire.encode_clock(T0, T0, 60.0), wall)]
    for k in range(3):
        sim.step(1.0)
        sample = sim.sample()
        messages += [RawMessage("mqtt", wire.telemetry_topic(sim.name, d.id),
                                wire.encode_flat(d, names[i], k, sim_now + k * S, sample.values[i]), wall)
                     for i, d in enumerate(sim.devices) if sample.online[i]]
    result = normalizer.normalize(messages)
    assert [r.message for r in result.rejected] == []
    assert len(result.batch) > 10 * len(sim.devices)
    assert set(result.batch.table.column("asset_id").to_pylist()) == {d.id for d in sim.devices}
