"""OpcUaServer and OpcUaClient on loopback: units, data changes, methods and client writes."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest
import pytest_asyncio
from asyncua import ua

from twinloop.connectors.opcua import OpcUaClient, OpcUaServer, VariableSpec
from twinloop.connectors.urls import ConnectorError, free_port

pytestmark = pytest.mark.asyncio(loop_scope="module")

PUMP = [
    VariableSpec("flow", "m**3/h", 12.5, description="discharge flow", range=(0.0, 120.0)),
    VariableSpec("temp", "degC", 41.0),
    VariableSpec("vibration", "mm/s", 1.8),
    VariableSpec("running", None, True),
    VariableSpec("speed_sp", "rpm", 1450.0, writable=True),
    VariableSpec("enabled", None, True, writable=True),
    VariableSpec("fouling", "furlong", 0.0),  # no UNECE code in our table
]


class Plant:
    """The served side of the test: the server plus what its callbacks saw."""

    def __init__(self, server: OpcUaServer) -> None:
        self.server = server
        self.writes: list[tuple[str, Any]] = []
        self.commands: list[dict[str, Any]] = []


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def plant() -> AsyncIterator[Plant]:
    server = OpcUaServer(f"opc.tcp://127.0.0.1:{free_port()}/twinloop/")
    await server.start()
    served = Plant(server)
    await server.add_object("area-1/pump-A1", PUMP)
    server.on_write(lambda path, value: served.writes.append((path, value)))

    async def start(speed: float, ramp_s: float) -> tuple[bool, str]:
        served.commands.append({"speed": speed, "ramp_s": ramp_s})
        if speed > 3000:
            return False, f"speed {speed!r} rpm is above the 3000 rpm limit"
        return True, f"starting at {speed:g} rpm over {ramp_s:g} s"

    async def trip() -> tuple[bool, str]:
        raise RuntimeError("interlock wiring fault")

    await server.add_method("area-1/pump-A1", "start", [("speed", float), ("ramp_s", float)], start)
    await server.add_method("area-1/pump-A1", "trip", [], trip)
    yield served
    await server.stop()


@pytest_asyncio.fixture(loop_scope="module")
async def client(plant: Plant) -> AsyncIterator[OpcUaClient]:
    async with OpcUaClient(plant.server.endpoint) as connected:
        yield connected


async def test_node_ids_are_predictable_strings(plant: Plant) -> None:
    assert plant.server.node_id("area-1/pump-A1.flow") == "ns=2;s=area-1/pump-A1.flow"
    ids = await plant.server.add_object("area-1/pump-B1", [VariableSpec("flow", "m**3/h")])
    assert ids == {"flow": "ns=2;s=area-1/pump-B1.flow"}


async def test_client_reads_initial_values(client: OpcUaClient) -> None:
    values = await client.read(["area-1/pump-A1.flow", "area-1/pump-A1.running", "area-1/pump-A1.speed_sp"])
    assert values == {
        "area-1/pump-A1.flow": 12.5,
        "area-1/pump-A1.running": True,
        "area-1/pump-A1.speed_sp": 1450.0,
    }


async def test_client_sees_engineering_units_range_and_type(client: OpcUaClient) -> None:
    flow = await client.engineering_units("area-1/pump-A1.flow")
    assert flow is not None and (flow.code, flow.unit_id, flow.display_name) == ("MQH", 5067080, "m³/h")
    temp = await client.engineering_units("area-1/pump-A1.temp")
    vib = await client.engineering_units("area-1/pump-A1.vibration")
    assert (temp and temp.code, vib and vib.code) == ("CEL", "C16")
    unknown = await client.engineering_units("area-1/pump-A1.fouling")
    assert unknown is not None and (unknown.code, unknown.unit_id, unknown.display_name) == (
        None,
        -1,
        "furlong",
    )
    assert await client.engineering_units("area-1/pump-A1.running") is None

    node = client.node("area-1/pump-A1.flow")
    eu_range = await (await node.get_child(ua.QualifiedName("EURange", 0))).read_value()
    assert (eu_range.Low, eu_range.High) == (0.0, 120.0)
    assert (await node.read_description()).Text == "discharge flow"
    assert (await node.read_type_definition()) == ua.NodeId(ua.ObjectIds.BaseAnalogType)


async def test_write_values_reach_a_subscriber_without_loss(plant: Plant, client: OpcUaClient) -> None:
    seen: list[tuple[str, float, datetime | None]] = []
    paths = ["area-1/pump-A1.flow", "area-1/pump-A1.temp"]
    await client.subscribe(paths, lambda p, v, ts: seen.append((p, v, ts)), period_ms=50, queuesize=1000)
    deadline = time.monotonic() + 3
    while len(seen) < 2 and time.monotonic() < deadline:  # the initial values
        await asyncio.sleep(0.02)
    seen.clear()

    n = 200
    for i in range(n):
        await plant.server.write_values({"area-1/pump-A1.flow": 10 + i, "area-1/pump-A1.temp": 40.0 + i / 10})
    deadline = time.monotonic() + 5
    while len(seen) < 2 * n and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    flows = [v for p, v, _ in seen if p == "area-1/pump-A1.flow"]
    assert flows == [float(10 + i) for i in range(n)]  # ints were coerced to the variable's Double
    assert len(seen) == 2 * n and all(ts is not None for _, _, ts in seen)
    assert await plant.server.read_value("area-1/pump-A1.flow") == 10.0 + n - 1


async def test_write_values_rejects_unknown_paths(plant: Plant) -> None:
    with pytest.raises(KeyError, match="no variable"):
        await plant.server.write_values({"area-1/pump-A1.nope": 1.0})


async def test_method_call_returns_the_handlers_answer(plant: Plant, client: OpcUaClient) -> None:
    assert await client.call("area-1/pump-A1", "start", 1200.0, 5.0) == (
        True,
        "starting at 1200 rpm over 5 s",
    )
    assert plant.commands[-1] == {"speed": 1200.0, "ramp_s": 5.0}
    ok, message = await client.call("area-1/pump-A1", "start", 5000, 1)  # ints arrive as floats
    assert (ok, message) == (False, "speed 5000.0 rpm is above the 3000 rpm limit")
    assert await client.call("area-1/pump-A1", "start", 1.0) == (False, "start takes 2 arguments, got 1")


async def test_failing_handler_answers_instead_of_crashing(client: OpcUaClient) -> None:
    assert await client.call("area-1/pump-A1", "trip") == (False, "RuntimeError: interlock wiring fault")


async def test_client_write_fires_on_write_and_changes_the_value(plant: Plant, client: OpcUaClient) -> None:
    plant.writes.clear()
    await client.write("area-1/pump-A1.speed_sp", 1500)  # int, written as the variable's Double
    await client.write("area-1/pump-A1.enabled", False)
    assert plant.writes == [("area-1/pump-A1.speed_sp", 1500.0), ("area-1/pump-A1.enabled", False)]
    assert await plant.server.read_value("area-1/pump-A1.speed_sp") == 1500.0

    await plant.server.write_values({"area-1/pump-A1.speed_sp": 900.0})  # our own writes are not reported
    assert len(plant.writes) == 2


async def test_read_only_variable_refuses_client_writes(plant: Plant, client: OpcUaClient) -> None:
    plant.writes.clear()
    with pytest.raises(ua.UaStatusCodeError):
        await client.write("area-1/pump-A1.flow", 99.0)
    assert plant.writes == []


async def test_client_without_server_raises_connector_error() -> None:
    url = f"opc.tcp://127.0.0.1:{free_port()}/nothing/"
    with pytest.raises(ConnectorError, match="cannot open an OPC UA session") as info:
        await OpcUaClient(url, timeout=1).connect()
    assert url in str(info.value)
