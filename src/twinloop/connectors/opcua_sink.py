"""`OpcUaSink`: commands as OPC UA method calls (``<device>.<command>``) or setpoint writes.

Method arguments are matched by name against the method's ``InputArguments`` (read once per method),
so the order of ``DeviceCommand.args`` does not matter; an argument not given is sent as NaN, which
the simulator reads as "not given". Commands listed in ``writes`` become a write of one variable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from asyncua import ua

from twinloop.connectors.opcua import OpcUaClient
from twinloop.connectors.urls import ConnectorError
from twinloop.core.protocols import Ack, DeviceCommand


class OpcUaSink:
    """Sends commands to one OPC UA server; see the module docstring."""

    def __init__(
        self,
        endpoint: str,
        *,
        namespace: str = "urn:twinloop:sim",
        writes: Mapping[str, str] | None = None,
        device_of: Mapping[str, str] | None = None,
        timeout: float = 5.0,
    ) -> None:
        """``writes`` maps a command name to the variable it writes (``{"setSpeed": "speed_setpoint"}``)."""
        self.endpoint = endpoint
        self.client = OpcUaClient(endpoint, namespace, timeout)
        self._writes = dict(writes or {})
        self._device_of = dict(device_of or {})
        self._inputs: dict[str, list[str]] = {}

    async def start(self) -> None:
        await self.client.connect()

    async def stop(self) -> None:
        await self.client.disconnect()

    async def send(self, command: DeviceCommand) -> Ack:
        """Call the method (or write the setpoint); a failure is an ``Ack(ok=False)`` saying why."""
        device = self._device_of.get(command.twin_id, command.twin_id)
        try:
            variable = self._writes.get(command.name)
            if variable is not None:
                if len(command.args) != 1:
                    return Ack(command.command_id, False, f"{command.name} takes exactly one argument")
                await self.client.write(f"{device}.{variable}", next(iter(command.args.values())))
                return Ack(command.command_id, True, f"wrote {device}.{variable}")
            names = await self._input_names(device, command.name)
            unknown = sorted(set(command.args) - set(names))
            if unknown:
                return Ack(command.command_id, False, f"{device}.{command.name} has no argument {unknown}")
            args = [_number(command.args.get(n, math.nan)) for n in names]
            ok, message = await self.client.call(device, command.name, *args)
            return Ack(command.command_id, ok, message)
        except (ConnectorError, ua.UaError, OSError, TimeoutError) as err:
            return Ack(command.command_id, False, f"{self.endpoint}: {err or type(err).__name__}")

    async def _input_names(self, device: str, method: str) -> list[str]:
        key = f"{device}.{method}"
        if key not in self._inputs:
            try:
                prop = await self.client.node(key).get_child(ua.QualifiedName("InputArguments", 0))
                arguments = await prop.read_value()
            except ua.UaStatusCodeError:
                arguments = []  # a method without inputs has no InputArguments property
            self._inputs[key] = [a.Name for a in arguments or []]
        return self._inputs[key]


def _number(value: Any) -> float:
    return float(value) if not isinstance(value, str) else math.nan


__all__ = ["OpcUaSink"]
