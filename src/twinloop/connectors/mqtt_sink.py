"""`MqttSink`: commands to devices over MQTT, answered by the device's ack (the simulator's layout).

A command goes out at QoS 1 as ``{"command_id", "args"}`` on ``twinloop/{plant}/{device}/cmd/{name}``;
the device answers ``{"command_id", "ok", "message", …}`` on ``twinloop/{plant}/{device}/ack``
(see docs/simulator.md). ``send`` waits for the ack with that ``command_id``; no answer within
``timeout`` is an answer too: ``Ack(ok=False)`` saying so — a command is never silently lost.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from typing import Any, Literal

from twinloop.connectors.mqtt import MqttClient
from twinloop.connectors.urls import ConnectorError
from twinloop.core.protocols import Ack, DeviceCommand

_log = logging.getLogger(__name__)

COMMAND_TOPIC = "twinloop/{plant}/{device}/cmd/{name}"
ACK_FILTER = "twinloop/{plant}/+/ack"


class MqttSink:
    """Sends `DeviceCommand`s and returns the device's `Ack`; see the module docstring."""

    def __init__(
        self,
        url: str,
        plant: str,
        *,
        device_of: Mapping[str, str] | Callable[[str], str] | None = None,
        timeout: float = 10.0,
        command_topic: str = COMMAND_TOPIC,
        ack_filter: str = ACK_FILTER,
        protocol: Literal["3.1.1", "5"] = "3.1.1",
        **client_options: Any,
    ) -> None:
        """``device_of`` maps a twin id to its device id (default: the same id)."""
        self.plant = plant
        self.timeout = timeout
        self._command_topic = command_topic
        self._ack_filter = ack_filter.format(plant=plant)
        if device_of is None:
            self._device_of: Callable[[str], str] = lambda twin_id: twin_id
        elif isinstance(device_of, Mapping):
            table = dict(device_of)
            self._device_of = lambda twin_id: table.get(twin_id, twin_id)
        else:
            self._device_of = device_of
        self.client = MqttClient(url, protocol=protocol, **client_options)
        self._waiting: dict[str, asyncio.Future[Ack]] = {}
        self._listener: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Connect and listen for acks."""
        await self.client.connect()
        await self.client.subscribe(self._ack_filter, qos=1)
        self._listener = asyncio.create_task(self._listen(), name=f"mqtt-sink-{self.plant}")

    async def stop(self) -> None:
        """Stop listening; commands still waiting get ``Ack(ok=False)``."""
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        for command_id, fut in list(self._waiting.items()):
            if not fut.done():
                fut.set_result(Ack(command_id, False, "sink stopped before the device answered"))
        await self.client.disconnect()

    async def send(self, command: DeviceCommand) -> Ack:
        """Publish the command and wait for its ack (or ``timeout``)."""
        device = self._device_of(command.twin_id)
        topic = self._command_topic.format(plant=self.plant, device=device, name=command.name)
        payload = json.dumps({"command_id": command.command_id, "args": command.args}).encode()
        fut: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        self._waiting[command.command_id] = fut
        try:
            await self.client.publish(topic, payload, qos=1, wait=True, timeout=self.timeout)
            return await asyncio.wait_for(fut, self.timeout)
        except TimeoutError:
            return Ack(command.command_id, False, f"{device} did not answer within {self.timeout:g} s")
        except ConnectorError as err:
            return Ack(command.command_id, False, f"could not send: {err}")
        finally:
            self._waiting.pop(command.command_id, None)

    async def _listen(self) -> None:
        async for message in self.client.messages():
            try:
                obj = json.loads(message.payload)
                command_id = str(obj["command_id"])
                ack = Ack(command_id, bool(obj["ok"]), str(obj.get("message", "")))
            except (ValueError, KeyError, TypeError) as err:
                _log.warning("unreadable ack on %s: %s", message.topic, err)
                continue
            fut = self._waiting.get(command_id)
            if fut is not None and not fut.done():
                fut.set_result(ack)


__all__ = ["ACK_FILTER", "COMMAND_TOPIC", "MqttSink"]
