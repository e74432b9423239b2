"""The runtime mirrors the sim over embedded amqtt (zero config), Mosquitto and OPC UA; commands get acked."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from twinloop.connectors.broker import MosquittoBroker
from twinloop.connectors.opcua import OpcUaServer
from twinloop.connectors.urls import free_port
from twinloop.core.commands import InvokeCommand
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path
from twinloop.sim.opcua_transport import OpcUaTransport
from twinloop.sim.pump_station import PumpStationPlant
from twinloop.sim.runner import SimRunner

from ...conftest import need_service
from .conftest import Station, eventually


@pytest.fixture(scope="module")
def mosquitto() -> Iterator[MosquittoBroker]:
    need_service(MosquittoBroker.available(), "mosquitto (apt-get install mosquitto)")
    with MosquittoBroker() as broker:
        yield broker


def open_runtime(tmp: Path, mapping: Path, **settings: object) -> Runtime:
    return Runtime.open(load_settings(data_dir=tmp, plant=example_plant_path(), mapping=mapping,
                                      embedded_broker_port=0, **settings), bootstrap=True)


async def mirror_and_command(rt: Runtime) -> None:
    """Readings reach twin state and history; a command reaches the sim and comes back acknowledged."""
    assert rt.ingestion is not None and rt.ingestion.mqtt_url is not None
    station = await Station(rt.ingestion.mqtt_url).start()
    try:
        await eventually(lambda: len(rt.state.latest("pump-A1")) >= 5, 20, "pump-A1 state")
        await eventually(lambda: rt.store.count_readings("tank-A") >= 3, 20, "tank-A history")
        channels = {c.channel: c for c in rt.state.latest("pump-A1")}
        assert "flow" in channels and channels["flow"].unit
        assert rt.state.history("pump-A1", ["flow"]).num_rows >= 1
        await eventually(lambda: rt.connections.twin_status("pump-A1") == "online", 5, "pump-A1 online")
        sent = rt.twins.invoke(InvokeCommand(twin_id="pump-A1", name="setSpeed", args={"rpm": 1400}),
                               actor="test")

        def acked() -> bool:
            return any(r.event.data().get("command_id") == sent.command_id
                       for r in rt.store.events(kinds=["CommandAcknowledged"]))

        await eventually(acked, 20, "CommandAcknowledged")
        (ack,) = [r.event for r in rt.store.events(kinds=["CommandAcknowledged"])]
        assert ack.ok, ack.message  # type: ignore[attr-defined]
        await eventually(lambda: bool(rt.store.events(kinds=["ReadingsApplied"], twin_id="pump-A1")), 5,
                         "ReadingsApplied")
    finally:
        await station.stop()


async def test_zero_config_runtime_starts_an_embedded_broker_and_mirrors_the_sim(
    tmp_path: Path, mapping: Path,
) -> None:
    with open_runtime(tmp_path, mapping) as rt:
        await rt.start()
        try:
            assert rt.ingestion is not None and rt.ingestion.broker is not None
            assert await rt.ingestion.wait_connected()
            await mirror_and_command(rt)
        finally:
            await rt.stop()
        assert rt.connections.twin_status("pump-A1") == "offline"  # stopped: its connection is down


@pytest.mark.service
async def test_runtime_on_mosquitto_mirrors_the_sim(tmp_path: Path, mapping: Path,
                                                    mosquitto: MosquittoBroker) -> None:
    with open_runtime(tmp_path, mapping, mqtt_url=mosquitto.url) as rt:
        await rt.start()
        try:
            assert rt.ingestion is not None and rt.ingestion.broker is None
            assert await rt.ingestion.wait_connected()
            await mirror_and_command(rt)
        finally:
            await rt.stop()


async def test_runtime_mirrors_the_sims_opcua_server(tmp_path: Path, mapping: Path) -> None:
    endpoint = f"opc.tcp://127.0.0.1:{free_port()}/twinloop/"
    server = await OpcUaServer(endpoint).start()
    plant = PumpStationPlant(seed=1)
    runner = SimRunner(plant, speed=20.0, sample_period_s=1.0, transports=(OpcUaTransport(server, plant),))
    run = asyncio.create_task(runner.run())
    try:
        with open_runtime(tmp_path, mapping, mqtt_enabled=False, opcua_endpoints=[endpoint]) as rt:
            await rt.start()
            try:
                assert rt.ingestion is not None
                assert await rt.ingestion.wait_connected(15)
                await eventually(lambda: rt.store.count_readings("pump-A1") >= 10, 20, "pump-A1 readings")
                assert {"flow", "speed"} <= {c.channel for c in rt.state.latest("pump-A1")}
                await eventually(lambda: rt.connections.twin_status("pump-A1") == "online", 5, "online")
            finally:
                await rt.stop()
    finally:
        runner.stop()
        await run
        await server.stop()


def test_the_api_starts_ingestion_and_shows_connections(tmp_path: Path, mapping: Path) -> None:
    import time

    from fastapi.testclient import TestClient

    from twinloop.api.app import create_app

    with open_runtime(tmp_path, mapping) as rt:
        headers = {"Authorization": f"Bearer {rt.bootstrap_token}"}
        with TestClient(create_app(rt, ingest=True)) as client:
            deadline = time.monotonic() + 15
            while not (body := client.get("/connections", headers=headers).json())["connections"][0][
                    "connected"] and time.monotonic() < deadline:
                time.sleep(0.05)
            (conn,) = body["connections"]
            assert conn["name"] == "mqtt" and conn["connected"] and body["ingest"]["running"]
            assert conn["status"] == "connected" and conn["rejecting"] is None
            assert client.get("/connections/mqtt", headers=headers).json()["twin_ids"] == []
            missing = client.get("/connections/nope", headers=headers)
            assert missing.status_code == 404 and "mqtt" in missing.text
            assert client.get("/connections").status_code == 401
        assert rt.ingestion is None  # the app's shutdown stopped ingestion
