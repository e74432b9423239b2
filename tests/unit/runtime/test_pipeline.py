"""The ingestion pipeline, supervisors, connection table and command dispatch, with fakes (no sockets)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest

from twinloop.connectors.fake import FakeSink, FakeSource
from twinloop.core.commands import InvokeCommand
from twinloop.core.errors import StoreError
from twinloop.core.protocols import Ack, RawMessage
from twinloop.core.readings import ReadingBatch
from twinloop.ingest.rejected import Rejected
from twinloop.runtime.bus import EventBus
from twinloop.runtime.connections import CommandDispatcher, ConnectionTable
from twinloop.runtime.pipeline import Pipeline
from twinloop.runtime.settings import load_settings
from twinloop.runtime.supervisor import Supervisor
from twinloop.store.journaled import JournaledStore
from twinloop.store.memory import MemoryStore


@dataclass
class Result:
    batch: ReadingBatch
    rejected: list[Any] = field(default_factory=list)
    duplicates: int = 0
    seen: Any = None
    completed: list[RawMessage] = field(default_factory=list)


class FlatNormalizer:
    """Just enough of ``ingest.Normalizer`` for these tests: the simulator's flat payloads."""

    held = 0

    def __init__(self) -> None:
        self.calls = 0

    def flush(self) -> Result:
        return Result(ReadingBatch.empty())

    def normalize(self, messages: Sequence[RawMessage]) -> Result:
        self.calls += 1
        assets, channels, ts, values, rejected = [], [], [], [], []
        for m in messages:
            try:
                obj = json.loads(m.payload)
                for channel, value in obj["values"].items():
                    assets.append(obj["device"])
                    channels.append(channel)
                    ts.append(obj["ts"])
                    values.append(value)
            except (ValueError, KeyError) as err:
                rejected.append(Rejected("malformed", str(err), m.payload, m.topic, m.source, m.received_ns))
        done = list(messages)
        if not assets:
            return Result(ReadingBatch.empty(), rejected, completed=done)
        return Result(ReadingBatch.from_arrays(assets, channels, ts, values), rejected, completed=done)


def flat(device: str, seq: int, **values: float) -> bytes:
    return json.dumps({"device": device, "seq": seq, "ts": 1_000 + seq, "values": values}).encode()


class WatchedStore(MemoryStore):
    """A memory store that can fail on demand and notes how many messages were acked at each commit."""

    def __init__(self, source: FakeSource | None = None, failures: int = 0) -> None:
        super().__init__()
        self.source = source
        self.failures = failures
        self.acked_at_commit: list[int] = []

    def append_ingested(self, batch: ReadingBatch, seen: Any = None, quarantine: Sequence[Any] = (),
                        replayed: Sequence[int] = (), meta: Any = None) -> list[int]:
        if self.failures:
            self.failures -= 1
            raise StoreError("disk full (scripted)")
        if self.source is not None:
            self.acked_at_commit.append(len(self.source.acked))
        return super().append_ingested(batch, seen, quarantine, replayed, meta)


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    async def poll() -> None:
        while not predicate():
            await asyncio.sleep(0.005)

    await asyncio.wait_for(poll(), timeout)


def make(store: MemoryStore, source: FakeSource, clock: Any, **kw: Any) -> tuple[Pipeline, Supervisor,
                                                                                 ConnectionTable, EventBus]:
    bus, table = EventBus(), ConnectionTable(clock)
    pipeline = Pipeline(store, FlatNormalizer(), bus, clock, connections=table, max_delay_s=0.005,
                        **{"queue_size": 100, "max_batch": 50, **kw})
    sup = Supervisor(source.name, lambda: source, table, pipeline.offer, kind="fake",
                     backoff_min_s=0.01, backoff_max_s=0.02)
    pipeline.register_acker(source.name, sup.ack)
    return pipeline, sup, table, bus


async def test_readings_are_stored_then_every_message_acked(clock: Any) -> None:
    source = FakeSource("fake")
    store = WatchedStore(source)
    pipeline, sup, table, _ = make(store, source, clock)
    pipeline.start()
    sup.start()
    await until(lambda: source.connected)
    for i in range(120):
        source.push("twinloop/ps/pump-A1/telemetry", flat("pump-A1", i, flow=1.0 + i, head=2.0))
    await until(lambda: len(source.acked) == 120)
    assert store.count_readings() == 240
    # each commit happened before any message of its batch was acknowledged
    assert store.acked_at_commit == sorted(store.acked_at_commit)
    assert store.acked_at_commit[0] == 0 and len(store.acked_at_commit) >= 3  # batches of <= 50
    row = table.get("fake")
    assert (row.connected, row.messages, table.twins_of("fake")) == (True, 120, ["pump-A1"])
    assert table.twin_status("pump-A1") == "online" and table.twin_status("pump-B1") == "unknown"
    await sup.stop_reading()
    await pipeline.stop()
    await sup.close()
    assert pipeline.stats.readings == 240 and pipeline.stats.messages == 120


async def test_store_failure_retries_the_batch_and_acks_nothing_until_it_commits(clock: Any,
                                                                               caplog: Any) -> None:
    source = FakeSource("fake")
    store = WatchedStore(source, failures=3)
    pipeline, sup, _, _ = make(store, source, clock)
    pipeline.start()
    sup.start()
    await until(lambda: source.connected)
    with caplog.at_level(logging.ERROR, "twinloop.runtime.pipeline"):
        source.push_many([("t", flat("pump-A1", i, flow=1.0)) for i in range(10)])
        await until(lambda: len(source.acked) == 10)
    assert store.count_readings() == 10 and pipeline.stats.store_retries == 3
    assert store.acked_at_commit == [0]
    assert len([r for r in caplog.records if "failed" in r.message]) == 1  # logged once, not per retry
    await sup.close()
    await pipeline.stop()


async def test_with_a_journal_acks_go_on_while_the_store_itself_is_failing(clock: Any, tmp_path: Any) -> None:
    source = FakeSource("fake")
    inner = WatchedStore(failures=10**9)  # DuckDB stalled or failing: nothing gets in
    store = JournaledStore(inner, tmp_path / "journal")
    pipeline, sup, _, _ = make(store, source, clock)  # type: ignore[arg-type]
    pipeline.start()
    sup.start()
    await until(lambda: source.connected)
    source.push_many([("t", flat("pump-A1", i, flow=float(i))) for i in range(30)])
    await until(lambda: len(source.acked) == 30)  # acknowledged: durable in the journal
    assert inner.count_readings() == 0 and store.pending_readings == 30
    assert store.latest(["pump-A1"]).values.tolist() == [29.0]  # and already the twin's state
    inner.failures = 0
    assert await asyncio.to_thread(store.wait_applied, None, 10)
    assert inner.count_readings() == 30
    await sup.stop_reading()
    await pipeline.stop()
    await sup.close()
    store.close()


async def test_readings_applied_is_one_event_per_twin_per_interval(clock: Any) -> None:
    source = FakeSource("fake")
    store = WatchedStore(source)
    pipeline, sup, _, bus = make(store, source, clock, events_interval_s=3600)
    got = []
    bus.on_event(got.append)
    pipeline.start()
    sup.start()
    await until(lambda: source.connected)
    for i in range(60):
        device = "pump-A1" if i % 2 else "pump-A2"
        source.push("t", flat(device, i, flow=1.0, head=2.0))
    await until(lambda: len(source.acked) == 60)
    assert got == []  # coalesced until the interval is over (or the pipeline stops)
    await sup.stop_reading()
    await pipeline.stop()
    applied = sorted((e.twin_id, e.count, tuple(e.channels)) for e in got)
    assert applied == [("pump-A1", 60, ("flow", "head")), ("pump-A2", 60, ("flow", "head"))]
    assert [r.event.kind for r in store.events()] == ["ReadingsApplied", "ReadingsApplied"]


async def test_a_malformed_message_is_acked_with_its_batch_and_counted(clock: Any) -> None:
    source = FakeSource("fake")
    store = WatchedStore(source)
    pipeline, sup, _, _ = make(store, source, clock)
    pipeline.start()
    sup.start()
    await until(lambda: source.connected)
    source.push("t", b"not json")
    source.push("t", flat("pump-A1", 1, flow=1.0))
    await until(lambda: len(source.acked) == 2)
    assert pipeline.stats.rejected == 1 and store.count_readings() == 1
    await sup.close()
    await pipeline.stop()


async def test_a_full_queue_makes_the_source_wait(clock: Any) -> None:
    store = MemoryStore()
    pipeline = Pipeline(store, FlatNormalizer(), EventBus(), clock, max_batch=2, queue_size=2)
    await pipeline.offer(RawMessage("s", "t", b"{}", 1))
    await pipeline.offer(RawMessage("s", "t", b"{}", 2))
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(pipeline.offer(RawMessage("s", "t", b"{}", 3)), 0.05)
    assert pipeline.pending == 2


async def test_supervisor_retries_with_backoff_and_logs_once_each_way(clock: Any, caplog: Any) -> None:
    made: list[FakeSource] = []

    def factory() -> FakeSource:
        source = FakeSource("flaky", fail_start=0)
        source.starts = 0 if len(made) >= 3 else -10  # the first three instances never start
        source._fail_start = 0 if len(made) >= 3 else 100
        made.append(source)
        return source

    table = ConnectionTable(clock)
    delivered: list[RawMessage] = []

    async def deliver(m: RawMessage) -> None:
        delivered.append(m)

    sup = Supervisor("flaky", factory, table, deliver, backoff_min_s=0.01, backoff_max_s=0.02)
    with caplog.at_level(logging.INFO, "twinloop.runtime.supervisor"):
        sup.start()
        await until(lambda: table.get("flaky").connected)
        made[-1].push("t", b"x")
        await until(lambda: len(delivered) == 1)
        made[-1].fail("link down")  # the stream breaks: the supervisor rebuilds the source
        await until(lambda: len(made) == 5 and table.get("flaky").connected)
    row = table.get("flaky")
    assert row.errors == 4 and row.last_error.endswith("link down")
    messages = [r.message for r in caplog.records]
    assert sum("failed" in m for m in messages) == 2  # once per outage, not once per attempt
    assert sum("is back" in m for m in messages) == 2
    await sup.close()
    assert not table.get("flaky").connected


async def test_ack_after_the_source_was_replaced_goes_nowhere(clock: Any) -> None:
    sources = [FakeSource("s"), FakeSource("s")]
    table = ConnectionTable(clock)
    got: list[RawMessage] = []

    async def deliver(m: RawMessage) -> None:
        got.append(m)

    sup = Supervisor("s", lambda: sources[min(len(got), 1)], table, deliver, backoff_min_s=0.01)
    sup.start()
    await until(lambda: sources[0].connected)
    first = sources[0].push("t", b"1")
    await until(lambda: len(got) == 1)
    sources[0].fail()
    await until(lambda: sources[1].connected)
    await sup.ack(first)
    assert sources[0].acked == [] and sources[1].acked == []
    await sup.close()


async def test_offline_connection_makes_its_twins_offline(clock: Any) -> None:
    table = ConnectionTable(clock)
    table.add("mqtt", "mqtt", "mqtt://x")
    table.set_connected("mqtt", True)
    table.feeds("mqtt", ["pump-A1"])
    assert table.twin_status("pump-A1") == "online"
    assert table.set_connected("mqtt", False, "broker gone")
    assert table.twin_status("pump-A1") == "offline"
    assert table.get("mqtt").to_dict()["twins"] == 1


async def test_commands_go_through_the_sink_and_come_back_acknowledged(rt: Any) -> None:
    sink = FakeSink(lambda c: Ack(c.command_id, c.args.get("rpm", 0) < 2000, "ok" if c.args else "?"))
    dispatcher = CommandDispatcher(sink, rt.store, rt.bus, rt.twins.graph, rt.clock,
                                   asyncio.get_running_loop())
    sent = rt.twins.invoke(InvokeCommand(twin_id="pump-A1", name="setSpeed", args={"rpm": 1450}),
                           actor="test")
    await until(lambda: any(r.event.kind == "CommandAcknowledged" for r in rt.store.events()))
    await dispatcher.close()
    ack = [r.event for r in rt.store.events() if r.event.kind == "CommandAcknowledged"][0]
    assert (ack.command_id, ack.ok, ack.twin_id) == (sent.command_id, True, "pump-A1")
    assert sink.sent[0].args == {"rpm": 1450.0} or sink.sent[0].args == {"rpm": 1450}


def test_settings_find_the_mapping_beside_the_plant(tmp_path: Any) -> None:
    plant = tmp_path / "plant.yaml"
    plant.write_text("plant: x\n")
    assert load_settings(plant=plant).resolved_mapping is None
    (tmp_path / "mapping.yaml").write_text("{}\n")
    assert load_settings(plant=plant).resolved_mapping == tmp_path / "mapping.yaml"
    assert load_settings(plant=plant, mapping=tmp_path / "m.yaml").resolved_mapping == tmp_path / "m.yaml"
