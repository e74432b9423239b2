"""The office building over a real MQTT broker (amqtt in its own process, loopback), as twinloop sees it."""

import asyncio
import json
import math
from collections import defaultdict

import pytest
from paho.mqtt.client import topic_matches_sub

from twinloop.connectors.broker import EmbeddedBroker
from twinloop.connectors.mqtt import MqttClient
from twinloop.sim import wire
from twinloop.sim.building import BuildingPlant
from twinloop.sim.mqtt_transport import MqttTransport
from twinloop.sim.runner import SimRunner

PLANT = "building"
TUESDAY_9 = 86400.0 + 9 * 3600.0


@pytest.fixture(scope="module")
def broker():
    with EmbeddedBroker() as b:
        yield b


class Inbox:
    """Files every message by topic that matches its filters (amqtt may replay stale retained ones)."""

    def __init__(self, client: MqttClient, filters: tuple[str, ...]) -> None:
        self.client = client
        self.filters = filters
        self.by_topic: dict[str, list[bytes]] = defaultdict(list)
        self._changed = asyncio.Event()
        self._task = asyncio.create_task(self._pump())

    async def _pump(self) -> None:
        async for m in self.client.messages():
            if any(topic_matches_sub(f, m.topic) for f in self.filters):
                self.by_topic[m.topic].append(m.payload)
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
async def building(broker):
    """A running building served over MQTT with both payloads; yields (plant, runner, transport)."""
    plant = BuildingPlant(seed=1, start_time_s=TUESDAY_9)
    client = await MqttClient(broker.url).connect()
    transport = MqttTransport(client, PLANT, plant.devices, payload="both", qos=0)
    runner = SimRunner(plant, speed=math.inf, sample_period_s=60.0, transports=(transport,))
    yield plant, runner, transport
    await runner.close()
    await client.disconnect()


async def test_every_building_device_publishes_every_channel(broker, building):
    plant, runner, transport = building
    inbox = await subscriber(broker.url, f"twinloop/{PLANT}/+/telemetry", f"spBv1.0/twinloop/+/{PLANT}/+")
    try:
        n = 10
        await runner.run(duration_s=n * 60)
        topics = [wire.telemetry_topic(PLANT, d.id) for d in plant.devices]
        ddata = [wire.sparkplug_topic("DDATA", PLANT, d.id) for d in plant.devices]
        await inbox.wait_for(lambda: all(len(inbox.by_topic[t]) >= n for t in topics + ddata))
        assert len(plant.devices) == 18 and transport.published == 18 * n * 2
        for device, topic, spb in zip(plant.devices, topics, ddata, strict=True):
            flat = [wire.decode_flat(p) for p in inbox.by_topic[topic]]
            assert [t.seq for t in flat] == list(range(n)), device.id
            assert {t.device for t in flat} == {device.id} and flat[0].asset_type == device.asset_type
            assert all(set(t.values) == {c.name for c in device.channels} for t in flat), device.id
            steps = [t.ts_ns for t in flat]
            assert {b - a for a, b in zip(steps, steps[1:], strict=False)} == {60 * 10**9}
            sparkplug = [wire.decode_sparkplug(spb, p) for p in inbox.by_topic[spb]]
            assert [t.seq for t in sparkplug] == list(range(n)) and sparkplug[-1].values == flat[-1].values
            birth = json.loads(inbox.by_topic[wire.sparkplug_topic("DBIRTH", PLANT, device.id)][0])
            assert [(m["name"], m["properties"]["engUnit"]) for m in birth["metrics"]] == [
                (c.name, c.unit) for c in device.channels]
        zone = wire.decode_flat(inbox.by_topic[wire.telemetry_topic(PLANT, "zone-2-south")][-1])
        assert 20.0 < zone.values["air_temperature"] < 28.0 and 400.0 < zone.values["co2"] < 2500.0
    finally:
        await inbox.close()


async def command(inbox: Inbox, device: str, name: str, args: dict, command_id: str):
    await inbox.client.publish(wire.command_topic(PLANT, device, name), wire.encode_command(command_id, args),
                               qos=1)
    ack_topic = wire.ack_topic(PLANT, device)

    def acked():
        return any(json.loads(p)["command_id"] == command_id for p in inbox.by_topic[ack_topic])

    await inbox.wait_for(acked)
    return next(a for a in map(wire.decode_ack, inbox.by_topic[ack_topic]) if a[0] == command_id)[1]


async def test_set_setpoint_is_acked_and_the_zone_follows(broker, building):
    plant, runner, _ = building
    runner.speed = 600.0  # a sample every 0.1 wall seconds; commands arrive while the plant runs
    inbox = await subscriber(broker.url, f"twinloop/{PLANT}/zone-1-east/#")
    run = asyncio.create_task(runner.run(duration_s=6 * 3600))
    try:
        topic = wire.telemetry_topic(PLANT, "zone-1-east")
        await inbox.wait_for(lambda: len(inbox.by_topic[topic]) >= 2)
        before = wire.decode_flat(inbox.by_topic[topic][-1]).values["air_temperature"]
        result = await command(inbox, "zone-1-east", "setSetpoint", {"temperature": 26}, "c-1")
        assert result.ok, result.message
        assert result.applied == {"setpoint": 26.0}
        seen_at = len(inbox.by_topic[topic])
        await inbox.wait_for(lambda: len(inbox.by_topic[topic]) >= seen_at + 20)  # 20 simulated minutes
        after = wire.decode_flat(inbox.by_topic[topic][seen_at + 19]).values["air_temperature"]
        assert after > before + 1.0, (before, after)
        too_hot = await command(inbox, "zone-1-east", "setSetpoint", {"temperature": 35}, "c-2")
        assert not too_hot.ok and "16 … 28" in too_hot.message
        wrong = await command(inbox, "zone-1-east", "setFanSpeed", {"speed": 50}, "c-3")
        assert not wrong.ok and "setSetpoint" in wrong.message
        assert plant.ground_truth()["zones"]["zone-1-east"]["setpoint"] == 26.0
        assert plant.t_s < TUESDAY_9 + 6 * 3600  # all of it happened while the plant kept running
    finally:
        runner.stop()
        await run
        await inbox.close()
