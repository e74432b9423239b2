"""The documented fakes behave as the real connectors do where tests rely on it."""

from __future__ import annotations

import asyncio

import pytest

from twinloop.connectors.fake import FakeSink, FakeSource
from twinloop.connectors.urls import ConnectorError
from twinloop.core.protocols import Ack, DeviceCommand, Sink, Source


async def test_fake_source_streams_pushed_messages_in_order_and_records_acks_once() -> None:
    source = FakeSource("f")
    assert isinstance(source, Source)
    await source.start()
    pushed = source.push_many([("a", b"1"), ("b", b"2")])
    got = []
    async for message in source.stream():
        got.append(message)
        await source.ack(message)
        await source.ack(message)
        if len(got) == 2:
            break
    assert got == pushed and source.acked == pushed
    assert [m.meta["id"] for m in got] == [0, 1] and all(m.source == "f" for m in got)


async def test_fake_source_fail_breaks_the_stream_like_a_lost_connection() -> None:
    source = FakeSource()
    await source.start()
    source.push("a", b"1")
    source.fail("cable cut")
    seen = []
    with pytest.raises(ConnectorError, match="cable cut"):
        async for message in source.stream():
            seen.append(message.topic)
    assert seen == ["a"] and not source.connected


async def test_fake_source_can_refuse_to_start_and_stop_ends_the_stream() -> None:
    source = FakeSource(fail_start=2)
    for _ in range(2):
        with pytest.raises(ConnectorError):
            await source.start()
    await source.start()
    assert source.starts == 3 and source.connected
    await source.stop()
    assert [m async for m in source.stream()] == []


async def test_fake_sink_records_and_answers_as_scripted() -> None:
    sink = FakeSink(lambda c: Ack(c.command_id, False, "refused"), delay_s=0.01)
    assert isinstance(sink, Sink)
    command = DeviceCommand("c1", "pump-A1", "start", {})
    ack = await asyncio.wait_for(sink.send(command), 1)
    assert ack == Ack("c1", False, "refused") and sink.sent == [command]
    assert (await FakeSink().send(command)).ok
