"""A connection whose readings are mostly refused says so: status ``degraded``, the reason, a loud log."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

from twinloop.connectors.fake import FakeSource
from twinloop.ingest.mapping import parse_mapping
from twinloop.ingest.normalizer import Normalizer
from twinloop.runtime.bus import EventBus
from twinloop.runtime.connections import ConnectionTable
from twinloop.runtime.pipeline import Pipeline
from twinloop.runtime.supervisor import Supervisor
from twinloop.store.memory import MemoryStore
from twinloop.twins.asset_type import AssetType
from twinloop.twins.registry import TypeRegistry

S = 1_000_000_000
LOG = "twinloop.runtime.connections"


async def until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


def telemetry(seq: int, ts: int) -> bytes:
    body = {"device": "p1", "seq": seq, "ts": ts, "values": {"flow": 1.0, "speed": 1450.0}}
    return json.dumps(body).encode()


@pytest.fixture
def station(clock: Any):  # type: ignore[no-untyped-def]
    """A fake MQTT connection into the real normalizer and pipeline; the mapping judges by the wall clock."""
    registry = TypeRegistry([AssetType(id="Pump", channels=[{"name": "flow", "unit": "m**3/h", "max": 600},
                                                            {"name": "speed", "unit": "rpm", "max": 3600}])])
    mapping = parse_mapping({"rules": [{"mqtt": "plant/{device}/telemetry"}]})
    normalizer = Normalizer(mapping, registry, {"p1": "Pump"}, clock)
    store, bus = MemoryStore(), EventBus()
    table = ConnectionTable(clock, window=200, min_readings=50)
    pipeline = Pipeline(store, normalizer, bus, clock, connections=table, max_delay_s=0.005, max_batch=20,
                        queue_size=100)
    source = FakeSource("mqtt")
    sup = Supervisor("mqtt", lambda: source, table, pipeline.offer, kind="mqtt", url="mqtt://x",
                     backoff_min_s=0.01)
    pipeline.register_acker("mqtt", sup.ack)
    return source, sup, pipeline, table, store


async def send(source: FakeSource, start: int, n: int, ahead_s: float, now: int) -> None:
    for i in range(start, start + n):
        source.push("plant/p1/telemetry", telemetry(i, now + int(ahead_s * S)))
    await until(lambda: len(source.acked) >= start + n)


async def test_a_connection_refusing_most_readings_is_degraded_and_says_why_once(
        station: Any, clock: Any, caplog: Any) -> None:
    source, sup, pipeline, table, store = station
    pipeline.start()
    sup.start()
    await until(lambda: source.connected)
    now = time.time_ns()  # the fake source stamps arrivals with the wall clock
    with caplog.at_level(logging.INFO, LOG):
        await send(source, 0, 20, 0, now)  # a good start: 40 readings stored
        assert table.get("mqtt").status == "connected" and table.get("mqtt").rejecting is None
        await send(source, 20, 120, 3600, now)  # then the plant's clock runs an hour ahead
        row = table.get("mqtt")
        assert row.status == "degraded" and row.connected
        assert row.rejecting["reason"] == "ts_future" and row.rejecting["share"] > 0.5
        assert row.to_dict()["rejecting"]["reason"] == "ts_future"
        await send(source, 140, 40, 3600, now)  # still failing: no second warning
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "ts_future" in warnings[0].getMessage() and "clock: {announced:" in warnings[0].getMessage()
        await send(source, 180, 200, 0, now)  # fixed: the window fills with good readings again
        row = table.get("mqtt")
        assert row.status == "connected" and row.rejecting is None
        recovered = [r for r in caplog.records if "recovered" in r.getMessage()]
        assert len(recovered) == 1 and "ts_future" in recovered[0].getMessage()
    assert store.count_readings() == 2 * (20 + 200)
    await sup.stop_reading()
    await pipeline.stop()
    await sup.close()
    assert table.get("mqtt").status == "disconnected"


def test_a_few_rejects_or_too_few_readings_do_not_degrade(clock: Any) -> None:
    table = ConnectionTable(clock, window=100, min_readings=20)
    table.add("mqtt", "mqtt", "mqtt://x")
    table.set_connected("mqtt", True)
    table.tally("mqtt", 0, {"unmapped": 10})  # 10 of 10 rejected, but too few readings to judge
    assert table.get("mqtt").rejecting is None
    table.tally("mqtt", 60, {"unmapped": 20})  # 30 of 90: a nuisance, not a degraded connection
    assert table.get("mqtt").status == "connected"
    table.tally("mqtt", 0, {"unmapped": 40, "out_of_range": 30})  # now 70 of 160 unmapped
    assert table.get("mqtt").status == "connected"
    table.tally("mqtt", 0, {"unmapped": 60})
    assert table.get("mqtt").rejecting == {"reason": "unmapped", "share": pytest.approx(0.8, abs=0.1),
                                           "readings": table.get("mqtt").rejecting["readings"]}
    table.tally("ghost", 0, {"unmapped": 100})  # an unknown connection is ignored


def test_the_window_forgets_old_batches(clock: Any) -> None:
    table = ConnectionTable(clock, window=100, min_readings=10)
    table.add("c", "mqtt", "u")
    table.set_connected("c", True)
    table.tally("c", 0, {"ts_future": 100})
    assert table.get("c").status == "degraded"
    table.tally("c", 70, {})  # 100 of 170: still most
    assert table.get("c").status == "degraded"
    for _ in range(3):
        table.tally("c", 70, {})  # the rejected batch has left the window
    assert table.get("c").status == "connected"
