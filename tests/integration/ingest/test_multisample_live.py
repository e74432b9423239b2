"""Multi-sample telemetry for real: the simulator buffers k samples per message over mosquitto, the
normalizer takes every sample; and DuckDB's two-tier `latest` stays exact across folds and reopening."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from twinloop.connectors.broker import MosquittoBroker
from twinloop.connectors.mqtt import MqttClient
from twinloop.core.clock import SystemClock
from twinloop.core.protocols import RawMessage
from twinloop.core.readings import ReadingBatch
from twinloop.ingest.mapping import load_mapping
from twinloop.ingest.normalizer import Normalizer
from twinloop.sim.mqtt_transport import MqttTransport
from twinloop.sim.pump_station import PumpStationPlant
from twinloop.sim.runner import SimRunner
from twinloop.sim.wire import clock_topic
from twinloop.store import duckdb_readings
from twinloop.store.duckdb_store import DuckDBStore
from twinloop.twins.registry import TypeRegistry

from ...conftest import need_service
from .conftest import eventually, mapping_file

S = 1_000_000_000


@pytest.fixture(scope="module")
def mosquitto() -> Iterator[MosquittoBroker]:
    need_service(MosquittoBroker.available(), "mosquitto (apt-get install mosquitto)")
    with MosquittoBroker() as broker:
        yield broker


@pytest.mark.service
async def test_simulator_sends_k_samples_per_message_and_ingest_takes_them_all(
        mosquitto: MosquittoBroker, tmp_path: Path) -> None:
    plant = PumpStationPlant(seed=3)
    names = {d.id: {c.name for c in d.channels} for d in plant.devices}
    got: list[RawMessage] = []
    clock: list[RawMessage] = []  # the plant's announced time, by which the mapping judges its stamps
    async with MqttClient(mosquitto.url) as sub:
        await sub.subscribe("twinloop/pump-station/+/telemetry", qos=1)
        await sub.subscribe(clock_topic(plant.name), qos=1)

        async def collect() -> None:
            async for m in sub.messages():
                (clock if m.topic == clock_topic(plant.name) else got).append(m)

        reader = asyncio.create_task(collect())
        pub = MqttClient(mosquitto.url, client_id="sim-multi")
        await pub.connect()
        transport = MqttTransport(pub, plant.name, plant.devices, qos=1, samples_per_message=3)
        runner = SimRunner(plant, speed=float("inf"), sample_period_s=1.0, transports=(transport,))
        await runner.run(duration_s=7)  # 7 or 8 samples: two full messages per device, then a rest
        await runner.close()  # sends what is buffered
        await pub.disconnect()
        await eventually(lambda: len(got) >= transport.published, 10, "every telemetry message")
        reader.cancel()
    per_device: dict[str, list[dict]] = {}
    for m in got:
        body = json.loads(m.payload)
        per_device.setdefault(body["device"], []).append(body)
    assert set(per_device) == set(names)
    for device, bodies in per_device.items():
        assert [b["seq"] for b in bodies] == list(range(len(bodies)))  # seq counts messages
        sizes = [len(b["ts"]) for b in bodies]
        assert sizes[:2] == [3, 3] and 1 <= sizes[-1] <= 3 and len(bodies) == 3
        assert all(set(b["values"]) <= names[device] for b in bodies)

    registry = TypeRegistry.from_paths([Path(__file__).resolve().parents[3] / "examples" / "pump-station"
                                        / "types"])
    twins = {d.id: d.asset_type for d in plant.devices}
    normalizer = Normalizer(load_mapping(mapping_file(tmp_path)), registry, twins, SystemClock())
    assert clock, "the simulator announced its clock"
    result = normalizer.normalize([*clock, *got])
    assert len(result.completed) == len(got) + len(clock) and result.duplicates == 0
    taken = len(result.batch) + len(result.rejected) + result.ignored
    sent = sum(v is not None for b in (json.loads(m.payload) for m in got)
               for column in b["values"].values() for v in column)
    assert taken == sent  # every sample's value is accounted for
    stamps = {(r["asset_id"], r["ts"]) for r in result.batch.to_records()}
    assert len({ts for device, ts in stamps if device == "pump-A1"}) == sum(
        len(b["ts"]) for b in per_device["pump-A1"])


def _batch(rows: list[tuple[str, str, int, float, int]]) -> ReadingBatch:
    a, c, t, v, q = zip(*rows, strict=True)
    return ReadingBatch.from_arrays(list(a), list(c), list(t), list(v), list(q))


def test_latest_is_exact_before_and_after_folds_and_across_reopening(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(duckdb_readings, "FOLD_ROWS", 3)
    path = tmp_path / "fold.duckdb"
    store = DuckDBStore(path)
    store.append(_batch([("p1", "flow", 10 * S, 1.0, 0), ("p1", "head", 5 * S, 2.0, 0)]))  # 2 pending
    assert store.latest().to_records()[0]["value"] == 1.0
    store.append(_batch([("p1", "flow", 9 * S, 9.0, 0), ("p2", "flow", 1 * S, 3.0, 0)]))  # folds 4
    store.append(_batch([("p1", "flow", 10 * S, 4.0, 1)]))  # equal ts, later append: it wins
    expected = [("p1", "flow", 10 * S, 4.0, 1), ("p1", "head", 5 * S, 2.0, 0), ("p2", "flow", S, 3.0, 0)]

    def rows(s: DuckDBStore) -> list[tuple]:
        return [(r["asset_id"], r["channel"], r["ts"], r["value"], r["quality"]) for r in
                s.latest().to_records()]

    assert rows(store) == expected
    store.append_ingested(_batch([("p2", "flow", 0, 7.0, 0), ("p1", "head", 6 * S, 5.0, 0)]))  # folds
    expected[1] = ("p1", "head", 6 * S, 5.0, 0)
    assert rows(store) == expected
    assert [r["asset_id"] for r in store.latest(asset_ids=["p2"]).to_records()] == ["p2"]
    store.close()
    again = DuckDBStore(path)
    assert rows(again) == expected and again.count_readings() == 7
    again.close()
