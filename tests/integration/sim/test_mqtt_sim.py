"""The pump station over a real MQTT broker (amqtt in its own process, loopback), as twinloop would see it."""

import asyncio
import json
import math
from collections import defaultdict

import pytest
from paho.mqtt.client import topic_matches_sub

from twinloop.connectors.broker import EmbeddedBroker
from twinloop.connectors.mqtt import MqttClient
from twinloop.sim import wire
from twinloop.sim.mqtt_transport import MqttTransport
from twinloop.sim.pump_station import PumpStationPlant
from twinloop.sim.runner import SimRunner

PLANT = "pump-station"


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker() as b:
        yield b


class Inbox:
    """A subscriber that files every message by topic and can wait for a condition.

    Messages outside its filters are dropped: amqtt 0.12.1 hands a new subscriber stale retained
    messages that an earlier, disconnected subscriber was sent (seen on loopback, not our doing).
    """

    def __init__(self, client: MqttClient, filters: tuple[str, ...]) -> None:
        self.client = client
        self.filters = filters
        self.by_topic: dict[str, list[bytes]] = defaultdict(list)
        self.retained: dict[str, bool] = {}
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for m in self.client.messages():
            if not any(topic_matches_sub(f, m.topic) for f in self.filters):
                continue
            self.by_topic[m.topic].append(m.payload)
            self.retained[m.topic] = m.meta.get("retain", False)
            self._changed.set()

    async def wait_for(self, condition, timeout: float = 15.0) -> None:
        async with asyncio.timeout(timeout):
            while not condition():
                self._changed.clear()
                await self._changed.wait()

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self.client.disconnect()


async def subscriber(url: str, *filters: str) -> Inbox:
    client = await MqttClient(url).connect()
    for f in filters:
        await client.subscribe(f, qos=1)
    return Inbox(client, filters)


@pytest.fixture
async def station(broker):
    """A running pump station served over MQTT with both payloads; yields (plant, runner, publisher url)."""
    plant = PumpStationPlant(seed=1)
    client = await MqttClient(broker.url).connect()
    transport = MqttTransport(client, PLANT, plant.devices, payload="both", qos=0)
    runner = SimRunner(plant, speed=math.inf, sample_period_s=1.0, transports=(transport,))
    yield plant, runner, transport
    await runner.close()
    await client.disconnect()


async def test_every_device_publishes_every_channel_with_consecutive_seq(broker, station):
    plant, runner, transport = station
    inbox = await subscriber(broker.url, f"twinloop/{PLANT}/+/telemetry", f"spBv1.0/twinloop/+/{PLANT}/+")
    try:
        n = 30
        await runner.run(duration_s=n)
        topics = [wire.telemetry_topic(PLANT, d.id) for d in plant.devices]
        ddata = [wire.sparkplug_topic("DDATA", PLANT, d.id) for d in plant.devices]
        await inbox.wait_for(lambda: all(len(inbox.by_topic[t]) >= n for t in topics + ddata))
        assert len(plant.devices) == 22 and transport.published == 22 * n * 2
        for device, topic, spb in zip(plant.devices, topics, ddata, strict=True):
            flat = [wire.decode_flat(p) for p in inbox.by_topic[topic]]
            assert [t.seq for t in flat] == list(range(n)), device.id
            assert {t.device for t in flat} == {device.id} and flat[0].asset_type == device.asset_type
            assert set().union(*(t.values for t in flat)) == {c.name for c in device.channels}
            steps = [t.ts_ns for t in flat]
            assert {b - a for a, b in zip(steps, steps[1:], strict=False)} == {10**9}
            sparkplug = [wire.decode_sparkplug(spb, p) for p in inbox.by_topic[spb]]
            assert [t.seq for t in sparkplug] == list(range(n))
            assert [json.loads(p)["seq"] for p in inbox.by_topic[spb]] == list(range(n))
            birth = json.loads(inbox.by_topic[wire.sparkplug_topic("DBIRTH", PLANT, device.id)][0])
            assert [m["name"] for m in birth["metrics"]] == [c.name for c in device.channels]
            assert {m["properties"]["engUnit"] for m in birth["metrics"]} >= {device.channels[0].unit}
    finally:
        await inbox.close()


async def command(inbox: Inbox, client: MqttClient, device: str, name: str, payload: bytes, command_id: str):
    await client.publish(wire.command_topic(PLANT, device, name), payload, qos=1)
    ack_topic = wire.ack_topic(PLANT, device)

    def acked():
        return any(json.loads(p)["command_id"] == command_id for p in inbox.by_topic[ack_topic])

    await inbox.wait_for(acked)
    acks = [wire.decode_ack(p) for p in inbox.by_topic[ack_topic]]
    return next(a for a in acks if a[0] == command_id)


async def test_set_speed_is_acked_and_the_published_speed_follows(broker, station):
    plant, runner, _ = station
    runner.speed = 20.0  # commands arrive over the wire while the plant runs at 20x
    inbox = await subscriber(broker.url, f"twinloop/{PLANT}/pump-A1/#")
    run = asyncio.create_task(runner.run(duration_s=600))
    try:
        topic = wire.telemetry_topic(PLANT, "pump-A1")
        await inbox.wait_for(lambda: len(inbox.by_topic[topic]) >= 2)
        before = wire.decode_flat(inbox.by_topic[topic][-1]).values["speed"]
        target = 2400.0 if before < 2000 else 1500.0
        _, result, _ = await command(inbox, inbox.client, "pump-A1", "setSpeed",
                                     wire.encode_command("c-1", {"rpm": target}), "c-1")
        assert result.ok, result.message
        assert result.applied["speed_setpoint"] == target
        seen_at = len(inbox.by_topic[topic])
        await inbox.wait_for(lambda: len(inbox.by_topic[topic]) >= seen_at + 12)
        after = [wire.decode_flat(p).values["speed"] for p in inbox.by_topic[topic][seen_at:seen_at + 12]]
        # within 12 simulated seconds the drive has covered most of the way
        assert abs(after[-1] - target) < 0.3 * abs(before - target), (before, after, target)

        _, too_fast, _ = await command(inbox, inbox.client, "pump-A1", "setSpeed",
                                       wire.encode_command("c-2", {"rpm": 9000}), "c-2")
        assert not too_fast.ok and "rpm" in too_fast.message and "3000" in too_fast.message
        _, unknown, _ = await command(inbox, inbox.client, "pump-A1", "fly",
                                      wire.encode_command("c-3", {}), "c-3")
        assert not unknown.ok and "setSpeed" in unknown.message
        await inbox.client.publish(wire.command_topic(PLANT, "pump-A1", "setSpeed"), b"{oops", qos=1)
        ack_topic = wire.ack_topic(PLANT, "pump-A1")
        await inbox.wait_for(lambda: any(b"not JSON" in p for p in inbox.by_topic[ack_topic]))
        assert runner.plant.t_s < 600  # all of it happened while the plant kept running
    finally:
        runner.stop()
        await run
        await inbox.close()


async def test_stopping_leaves_retained_offline_status_and_announces_deaths(broker, station):
    plant, runner, _ = station
    await runner.run(duration_s=2)
    online = await subscriber(broker.url, f"twinloop/{PLANT}/#")
    a1 = wire.status_topic(PLANT, "pump-A1")
    # the previous test's retained "offline" may come first; ours follows it
    await online.wait_for(lambda: online.by_topic[a1] and b'"online"' in online.by_topic[a1][-1])
    await online.close()
    deaths = await subscriber(broker.url, f"spBv1.0/twinloop/DDEATH/{PLANT}/+")
    await runner.close()
    await deaths.wait_for(lambda: len(deaths.by_topic) == 22)
    await deaths.close()
    later = await subscriber(broker.url, f"twinloop/{PLANT}/+/status", f"twinloop/{PLANT}/status")
    status_topics = [wire.status_topic(PLANT)] + [wire.status_topic(PLANT, d.id) for d in plant.devices]
    await later.wait_for(lambda: all(later.by_topic[t] for t in status_topics))
    # the newest status by its timestamp (amqtt may replay stale retained copies, see Inbox)
    newest = [max((json.loads(p) for p in later.by_topic[t]), key=lambda s: s["ts"]) for t in status_topics]
    assert {s["status"] for s in newest} == {"offline"}
    await later.close()


async def test_a_device_losing_communication_goes_quiet_with_ddeath_then_dbirth(broker, station):
    plant, runner, _ = station
    loss = {"kind": "comm_loss", "start_in_s": 3, "duration_s": 4}
    result = plant.apply_command("tank-A", "injectFault", loss)
    assert result.ok, result.message
    inbox = await subscriber(broker.url, f"twinloop/{PLANT}/tank-A/#", f"spBv1.0/twinloop/+/{PLANT}/tank-A")
    await runner.run(duration_s=12)
    topic = wire.telemetry_topic(PLANT, "tank-A")
    await inbox.wait_for(lambda: len(inbox.by_topic[wire.sparkplug_topic("DBIRTH", PLANT, "tank-A")]) >= 2)
    await inbox.wait_for(lambda: len(inbox.by_topic[topic]) >= 8)
    seqs = [wire.decode_flat(p).seq for p in inbox.by_topic[topic]]
    times = [wire.decode_flat(p).ts_ns for p in inbox.by_topic[topic]]
    assert seqs == list(range(len(seqs)))  # nothing published while offline, so no gap in seq
    gaps = [(b - a) // 10**9 for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) == 5  # four silent seconds
    statuses = [json.loads(p)["status"] for p in inbox.by_topic[wire.status_topic(PLANT, "tank-A")]]
    assert statuses[-2:] == ["offline", "online"]
    assert len(inbox.by_topic[wire.sparkplug_topic("DDEATH", PLANT, "tank-A")]) == 1
    await inbox.close()
