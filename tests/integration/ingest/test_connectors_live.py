"""Sources and sinks against real peers on loopback: manual acks on mosquitto, the sim over both wires."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from twinloop.connectors.broker import EmbeddedBroker, MosquittoBroker
from twinloop.connectors.mqtt import MqttClient
from twinloop.connectors.mqtt_sink import MqttSink
from twinloop.connectors.mqtt_source import MqttSource
from twinloop.connectors.opcua import OpcUaServer, VariableSpec
from twinloop.connectors.opcua_sink import OpcUaSink
from twinloop.connectors.opcua_source import OpcUaSource
from twinloop.connectors.urls import ConnectorError, free_port
from twinloop.core.protocols import DeviceCommand, RawMessage
from twinloop.sim.mqtt_transport import MqttTransport
from twinloop.sim.opcua_transport import OpcUaTransport
from twinloop.sim.pump_station import PumpStationPlant
from twinloop.sim.runner import SimRunner

from ...conftest import need_service


@pytest.fixture(scope="module")
def mosquitto() -> Iterator[MosquittoBroker]:
    need_service(MosquittoBroker.available(), "mosquitto (apt-get install mosquitto)")
    with MosquittoBroker() as broker:
        yield broker


async def take(source: Any, n: int, timeout: float = 10.0) -> list[RawMessage]:
    got: list[RawMessage] = []

    async def collect() -> None:
        async for m in source.stream():
            got.append(m)
            if len(got) == n:
                return

    await asyncio.wait_for(collect(), timeout)
    return got


@pytest.mark.service
@pytest.mark.parametrize("protocol", ["3.1.1", "5"])
async def test_only_acknowledged_messages_leave_the_broker(mosquitto: MosquittoBroker, protocol: Any) -> None:
    client_id = f"ack-test-{protocol}"
    source = MqttSource(mosquitto.url, ["ack/#"], client_id=client_id, protocol=protocol)
    await source.start()
    async with MqttClient(mosquitto.url) as pub:
        for i in range(10):
            await pub.publish(f"ack/{i}", b"%d" % i, qos=1, wait=True)
    first = await take(source, 10)
    for m in first[:4]:
        await source.ack(m)
    assert source.acked == 4 and source.client.unacked == 6
    await source.stop()  # like a crash before the commit: 6 messages were never acknowledged

    again = MqttSource(mosquitto.url, ["ack/#"], client_id=client_id, protocol=protocol)
    await again.start()
    redelivered = await take(again, 6)
    assert sorted(m.payload for m in redelivered) == [b"%d" % i for i in range(4, 10)]
    for m in redelivered:
        await again.ack(m)
        await again.ack(m)  # idempotent: no second PUBACK
    assert again.acked == 6
    await again.stop()

    third = MqttSource(mosquitto.url, ["ack/#"], client_id=client_id, protocol=protocol)
    await third.start()
    with pytest.raises(TimeoutError):
        await take(third, 1, timeout=0.5)
    await third.stop()


@pytest.mark.service
async def test_mqtt5_receive_maximum_lets_many_unacked_messages_flow(mosquitto: MosquittoBroker) -> None:
    source = MqttSource(mosquitto.url, ["many/#"], client_id="many", protocol="5", persistent=False)
    await source.start()
    async with MqttClient(mosquitto.url) as pub:
        for i in range(500):
            pub.publish_nowait("many/x", b"%d" % i, qos=1)
    got = await take(source, 500)  # mosquitto sends only 20 unacked messages to a 3.1.1 client
    assert len(got) == 500 and source.client.unacked == 500
    await source.stop()


@pytest.fixture
async def mqtt_station() -> AsyncIterator[tuple[str, SimRunner]]:
    with EmbeddedBroker() as broker:
        plant = PumpStationPlant(seed=1)
        client = await MqttClient(broker.url).connect()
        transport = MqttTransport(client, plant.name, plant.devices, qos=1)
        runner = SimRunner(plant, speed=20.0, sample_period_s=1.0, transports=(transport,))
        run = asyncio.create_task(runner.run())
        try:
            yield broker.url, runner
        finally:
            runner.stop()
            await run
            await runner.close()
            await client.disconnect()


async def test_mqtt_sink_gets_the_simulators_ack(mqtt_station: tuple[str, SimRunner]) -> None:
    url, _ = mqtt_station
    sink = MqttSink(url, "pump-station", timeout=5)
    await sink.start()
    try:
        ok = await sink.send(DeviceCommand("c-1", "pump-A1", "setSpeed", {"rpm": 1450}))
        assert ok.command_id == "c-1" and ok.ok, ok.message
        refused = await sink.send(DeviceCommand("c-2", "pump-A1", "setSpeed", {"rpm": 99_999}))
        assert not refused.ok and refused.message
        unknown = await sink.send(DeviceCommand("c-3", "pump-A1", "fly", {}))
        assert not unknown.ok and "fly" in unknown.message
    finally:
        await sink.stop()


async def test_mqtt_sink_answers_a_timeout_when_nobody_listens() -> None:
    with EmbeddedBroker() as broker:
        sink = MqttSink(broker.url, "nowhere", timeout=0.3)
        await sink.start()
        ack = await sink.send(DeviceCommand("c-9", "pump-A1", "start", {}))
        await sink.stop()
    assert not ack.ok and "did not answer" in ack.message


async def test_mqtt_source_reads_the_simulators_flat_telemetry(mqtt_station: tuple[str, SimRunner]) -> None:
    url, _ = mqtt_station
    source = MqttSource(url, ["twinloop/pump-station/+/telemetry"], client_id="flat-reader", persistent=False)
    await source.start()
    got = await take(source, 44)
    await source.stop()
    devices = {json.loads(m.payload)["device"] for m in got}
    assert {"pump-A1", "tank-A"} <= devices
    assert all(m.meta["qos"] == 1 for m in got)


@pytest.fixture
async def opcua_station() -> AsyncIterator[tuple[str, OpcUaServer]]:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/twinloop/"
    server = await OpcUaServer(endpoint).start()
    plant = PumpStationPlant(seed=1)
    runner = SimRunner(plant, speed=20.0, sample_period_s=1.0, transports=(OpcUaTransport(server, plant),))
    run = asyncio.create_task(runner.run())
    try:
        yield endpoint, server
    finally:
        runner.stop()
        await run
        await server.stop()


async def test_opcua_source_streams_data_changes_and_sink_calls_methods(
    opcua_station: tuple[str, OpcUaServer],
) -> None:
    endpoint, _ = opcua_station
    source = OpcUaSource(endpoint, ["pump-A1.flow", "tank-A.level"], period_ms=50)
    await source.start()
    got = await take(source, 6)
    assert {m.topic for m in got} == {"ns=2;s=pump-A1.flow", "ns=2;s=tank-A.level"}
    body = json.loads(got[-1].payload)
    assert isinstance(body["value"], float) and body["ts"] > 1e18
    await source.ack(got[0])
    await source.stop()
    assert [m async for m in source.stream()] == []

    sink = OpcUaSink(endpoint, writes={"setPosition": "valve.position"})
    await sink.start()
    try:
        ack = await sink.send(DeviceCommand("c-1", "pump-A1", "setSpeed", {"rpm": 1400}))
        assert ack.ok, ack.message
        bad = await sink.send(DeviceCommand("c-2", "pump-A1", "setSpeed", {"speed": 1}))
        assert not bad.ok and "speed" in bad.message
    finally:
        await sink.stop()


async def test_opcua_source_refuses_unknown_paths_and_unreachable_servers(
    opcua_station: tuple[str, OpcUaServer],
) -> None:
    endpoint, _ = opcua_station
    with pytest.raises(ConnectorError, match="monitor"):
        await OpcUaSource(endpoint, ["pump-A1.flow", "pump-Z9.nothing"]).start()
    lenient = OpcUaSource(endpoint, ["pump-A1.flow", "pump-Z9.nothing"], strict=False)
    await lenient.start()
    await lenient.stop()
    with pytest.raises(ConnectorError):
        await OpcUaSource(f"opc.tcp://127.0.0.1:{free_port()}/x/", ["a"], timeout=1).start()


async def test_opcua_source_stream_raises_when_the_server_goes_away() -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/twinloop/"
    server = await OpcUaServer(endpoint).start()
    await server.add_object("pump", [VariableSpec("flow", "m**3/h", 1.0)])
    source = OpcUaSource(endpoint, ["pump.flow"], period_ms=50)
    await source.start()
    await take(source, 1)
    await server.stop()
    with pytest.raises(ConnectorError, match="lost"):
        await take(source, 1, timeout=15)
    await source.stop()
