"""The pump station over a real OPC UA server on loopback, read and commanded by an OPC UA client."""

import asyncio

import pytest

from twinloop.connectors.opcua import OpcUaClient, OpcUaServer
from twinloop.connectors.urls import free_port
from twinloop.sim.opcua_transport import OpcUaTransport
from twinloop.sim.pump_station import PumpStationPlant
from twinloop.sim.runner import SimRunner


@pytest.fixture
async def served():
    """Pump station on an OPC UA server, running at 20x in the background; yields (plant, runner, client)."""
    endpoint = f"opc.tcp://127.0.0.1:{free_port('127.0.0.1')}/twinloop/"
    server = await OpcUaServer(endpoint).start()
    plant = PumpStationPlant(seed=1)
    transport = OpcUaTransport(server, plant)
    runner = SimRunner(plant, speed=20.0, sample_period_s=1.0, transports=(transport,))
    run = asyncio.create_task(runner.run())
    client = await OpcUaClient(endpoint).connect()
    try:
        yield plant, runner, client, transport
    finally:
        await client.disconnect()
        runner.stop()
        await run
        await server.stop()


async def eventually(check, timeout: float = 10.0, every: float = 0.1):
    async with asyncio.timeout(timeout):
        while not await check():
            await asyncio.sleep(every)


async def test_channels_carry_units_and_change_and_seq_counts(served):
    plant, _, client, transport = served
    assert transport.node_ids["pump-A1.flow"] == "ns=2;s=pump-A1.flow"
    assert transport.node_ids["pump-A1.setSpeed"] == "ns=2;s=pump-A1.setSpeed"
    assert "pump-A1.injectFault" not in transport.node_ids
    flow_unit = await client.engineering_units("pump-A1.flow")
    assert flow_unit.code == "MQH" and flow_unit.display_name == "m³/h"
    assert (await client.engineering_units("pump-A1.bearing.temperature")).code == "CEL"
    assert (await client.engineering_units("tank-A.level")).code == "MTR"
    paths = ["pump-A1.flow", "pump-A1.bearing.temperature", "tank-A.level", "pump-A1.seq", "pump-A1.online"]
    first = await client.read(paths)
    await asyncio.sleep(0.5)  # ~10 simulated seconds
    second = await client.read(paths)
    assert first["pump-A1.flow"] != second["pump-A1.flow"]
    assert second["pump-A1.seq"] > first["pump-A1.seq"] >= 0
    assert second["pump-A1.online"] is True
    every = [f"{d.id}.{c.name}" for d in plant.devices for c in d.channels]
    values = await client.read(every)
    assert len(values) == sum(len(d.channels) for d in plant.devices) and all(
        isinstance(v, float) for v in values.values())


async def test_set_speed_method_and_setpoint_write_both_command_the_pump(served):
    plant, runner, client, _ = served
    speed = "pump-A1.speed"
    before = (await client.read([speed]))[speed]
    target = 2400.0 if before < 2000 else 1500.0
    ok, message = await client.call("pump-A1", "setSpeed", target)
    assert ok, message
    assert "ramping" in message

    async def near(path, goal):
        value = (await client.read([path]))[path]
        return abs(value - goal) < 0.2 * abs(before - target)

    await eventually(lambda: near(speed, target))
    ok, message = await client.call("pump-A1", "setSpeed", 9000.0)
    assert not ok and "outside" in message

    target2 = (before + target) / 2
    await client.write("pump-A1.speed_setpoint", target2)
    await eventually(lambda: near(speed, target2))
    assert (await client.read(["pump-A1.speed_setpoint"]))["pump-A1.speed_setpoint"] == target2
    assert (await client.engineering_units("pump-A1.speed_setpoint")).code == "RPM"

    await client.write("pump-A1.valve.position", 60.0)
    await eventually(lambda: _within(client, "pump-A1.valve.opening", 60.0, 2.0), timeout=15)
    await client.write("pump-A1.speed_setpoint", 99999.0)  # refused: the setpoint shows what the pump follows
    await eventually(lambda: _within(client, "pump-A1.speed_setpoint", target2, 0.0))
    assert runner.plant.t_s < 600


async def _within(client, path, value, tolerance):
    return abs((await client.read([path]))[path] - value) <= tolerance
