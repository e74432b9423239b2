"""Serves a simulated plant over MQTT in the layout of `twinloop.sim.wire`: telemetry out, commands and acks.

One transport per plant and connection. Telemetry goes out with ``publish_nowait`` (the hot path
never waits on the broker); with ``samples_per_message`` k > 1 each device's samples are buffered and
go out k at a time in the multi-sample form (a device going offline, and `stop`, send what is
buffered). Status, births, deaths, acks and the plant's clock (retained, see `twinloop.sim.clock`:
before the first sample, every second, and stopped at `stop`) go out at QoS 1. After a reconnect the
transport re-announces itself (online status, DBIRTHs), because the broker may have published our
last will meanwhile.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Literal

import numpy as np

from twinloop.connectors.mqtt import MqttClient
from twinloop.sim import wire
from twinloop.sim.clock import AnnouncedClock
from twinloop.sim.plant import CommandResult, DeviceSpec, Sample
from twinloop.sim.runner import CommandRouter

log = logging.getLogger(__name__)

Payload = Literal["flat", "sparkplug", "both"]


def last_will(plant_name: str) -> tuple[str, bytes]:
    """Topic and payload of the gateway's last will (retained, QoS 1): the plant went offline."""
    return wire.status_topic(plant_name), wire.encode_status(False, None)


def set_last_will(client: MqttClient, plant_name: str) -> bool:
    """Give ``client`` our last will before it connects; False when this `MqttClient` cannot carry one."""
    setter = getattr(client, "set_will", None)
    if setter is None:
        return False
    topic, payload = last_will(plant_name)
    setter(topic, payload, qos=1, retain=True)
    return True


class MqttTransport:
    """Publishes each online device's sample and answers commands, over a connected `MqttClient`."""

    def __init__(self, client: MqttClient, plant_name: str, devices: Sequence[DeviceSpec],
                 payload: Payload = "flat", qos: Literal[0, 1] = 0, samples_per_message: int = 1) -> None:
        if samples_per_message < 1:
            raise ValueError(f"samples_per_message must be at least 1, not {samples_per_message!r}")
        if payload not in ("flat", "sparkplug", "both"):
            raise ValueError(f"payload must be 'flat', 'sparkplug' or 'both', not {payload!r}")
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, not {qos!r}")
        self.client = client
        self.plant_name = plant_name
        self.devices = tuple(devices)
        self.payload: Payload = payload
        self.qos: Literal[0, 1] = qos
        self.samples_per_message = int(samples_per_message)
        self._buffer: list[list[tuple[int, np.ndarray]]] = [[] for _ in devices]
        self._flat = payload in ("flat", "both")
        self._sparkplug = payload in ("sparkplug", "both")
        self._index = {d.id: i for i, d in enumerate(self.devices)}
        self._commands = {d.id: [c.name for c in d.commands] for d in self.devices}
        self._names = wire.device_names(self.devices)
        self._telemetry = [wire.telemetry_topic(plant_name, d.id) for d in self.devices]
        self._ddata = [wire.sparkplug_topic("DDATA", plant_name, d.id) for d in self.devices]
        self._seq = np.zeros(len(self.devices), dtype=np.int64)
        self._online = np.zeros(len(self.devices), dtype=bool)
        self._router: CommandRouter | None = None
        self._clock: AnnouncedClock | None = None
        self._listener: asyncio.Task[None] | None = None
        self._acks: set[asyncio.Task[None]] = set()
        self.published = 0
        """Telemetry messages handed to the client (flat and Sparkplug counted separately)."""

    # --- lifecycle ------------------------------------------------------------------------------

    async def start(self, router: CommandRouter) -> None:
        """Announce the plant online, subscribe to commands and start answering them."""
        self._router = router
        self._clock = AnnouncedClock(float(getattr(router, "speed", 1.0)))
        await self.client.subscribe(wire.command_filter(self.plant_name), qos=1)
        self.client.on_availability(self._on_availability)
        await self._publish(wire.status_topic(self.plant_name), wire.encode_status(True, time.time_ns()),
                            retain=True)
        self._listener = asyncio.create_task(self._listen(), name=f"sim-mqtt-commands-{self.plant_name}")

    async def stop(self) -> None:
        """Say every device and the plant are offline (retained), then stop taking commands."""
        if self._listener is not None:
            self._listener.cancel()
            await asyncio.gather(self._listener, return_exceptions=True)
            self._listener = None
        if self._acks:
            await asyncio.gather(*self._acks, return_exceptions=True)
        now = time.time_ns()
        for i in np.flatnonzero(self._online):
            await self._device_offline(int(i), now)
        await self._publish(wire.status_topic(self.plant_name), wire.encode_status(False, now), retain=True)
        if self._clock is not None and self._clock.announced:
            stopped = wire.encode_clock(*self._clock.stopped(now))
            await self._publish(wire.clock_topic(self.plant_name), stopped, retain=True)

    # --- telemetry ------------------------------------------------------------------------------

    async def on_sample(self, sample: Sample, ts_ns: int) -> None:
        """Publish every online device's sample; announce devices that came or went since the last one,
        and the plant's clock when it is due."""
        clock = self._clock
        if clock is not None and clock.observe(ts_ns, now := time.time_ns()):
            await self._announce_clock(now)
        online = np.asarray(sample.online, dtype=bool)
        changed = np.flatnonzero(online != self._online)
        for i in changed:
            if online[i]:
                await self._device_online(int(i), ts_ns)
            else:
                await self._device_offline(int(i), ts_ns)
        k = self.samples_per_message
        for i in np.flatnonzero(online):
            if k == 1:
                self._send(int(i), [ts_ns], sample.values[i])
                continue
            buffer = self._buffer[i]
            buffer.append((ts_ns, np.array(sample.values[i], dtype=np.float64)))
            if len(buffer) >= k:
                self._send_buffered(int(i))

    def _send_buffered(self, i: int) -> None:
        """Publish device ``i``'s buffered samples as one message (nothing when none are buffered)."""
        buffer, self._buffer[i] = self._buffer[i], []
        if buffer:
            self._send(i, [t for t, _ in buffer], np.stack([v for _, v in buffer]))

    def _send(self, i: int, ts: list[int], values: np.ndarray) -> None:
        """One telemetry message of device ``i`` (single- or multi-sample form); one ``seq``."""
        publish = self.client.publish_nowait
        seq, names = int(self._seq[i]), self._names[i]
        single = self.samples_per_message == 1
        if self._flat:
            flat = (wire.encode_flat(self.devices[i], names, seq, ts[0], values) if single else
                    wire.encode_flat_samples(self.devices[i], names, seq, ts, values))
            publish(self._telemetry[i], flat, self.qos)
        if self._sparkplug:
            ddata = (wire.encode_sparkplug_data(names, seq, ts[0], values) if single else
                     wire.encode_sparkplug_samples(names, seq, ts, values))
            publish(self._ddata[i], ddata, self.qos)
        self._seq[i] = seq + 1
        self.published += self._flat + self._sparkplug

    async def _device_online(self, i: int, ts_ns: int) -> None:
        self._online[i] = True
        device = self.devices[i]
        await self._publish(wire.status_topic(self.plant_name, device.id), wire.encode_status(True, ts_ns),
                            retain=True)
        if self._sparkplug:
            await self._publish(wire.sparkplug_topic("DBIRTH", self.plant_name, device.id),
                                wire.encode_sparkplug_birth(device, self._last_seq(i), ts_ns))

    async def _device_offline(self, i: int, ts_ns: int) -> None:
        self._send_buffered(i)  # what it measured before it went quiet
        self._online[i] = False
        device = self.devices[i]
        await self._publish(wire.status_topic(self.plant_name, device.id), wire.encode_status(False, ts_ns),
                            retain=True)
        if self._sparkplug:
            await self._publish(wire.sparkplug_topic("DDEATH", self.plant_name, device.id),
                                wire.encode_sparkplug_death(self._last_seq(i), ts_ns))

    async def _announce_clock(self, now: int) -> None:
        assert self._clock is not None
        await self._publish(wire.clock_topic(self.plant_name), wire.encode_clock(*self._clock.announce(now)),
                            retain=True)

    def _last_seq(self, i: int) -> int:
        return max(int(self._seq[i]) - 1, 0)

    async def _on_availability(self, available: bool) -> None:
        """Back after an outage: our last will may have said offline, so say online again, with births."""
        if not available:
            return
        now = time.time_ns()
        await self._publish(wire.status_topic(self.plant_name), wire.encode_status(True, now), retain=True)
        if self._clock is not None and self._clock.announced:
            await self._announce_clock(now)
        for i in np.flatnonzero(self._online):
            await self._device_online(int(i), now)

    async def _publish(self, topic: str, payload: bytes, retain: bool = False) -> None:
        # QoS 1 without waiting for the PUBACK: paho queues it across a reconnect.
        await self.client.publish(topic, payload, qos=1, retain=retain)

    # --- commands -------------------------------------------------------------------------------

    async def _listen(self) -> None:
        async for message in self.client.messages():
            where = wire.parse_command_topic(message.topic)
            if where is None or where[0] != self.plant_name:
                continue
            self._spawn(self._answer(wire.decode_command(message.topic, message.payload)))

    def _spawn(self, coro: object) -> None:
        task = asyncio.ensure_future(coro)  # type: ignore[arg-type]
        self._acks.add(task)
        task.add_done_callback(self._acks.discard)

    async def _answer(self, command: wire.CommandRequest | wire.CommandRejected) -> None:
        """Apply one command through the runner (at the next step) and publish the device's ack."""
        if isinstance(command, wire.CommandRejected):
            result = CommandResult(False, command.reason)
        elif command.device not in self._index:
            result = CommandResult(False, f"no device {command.device!r} in plant {self.plant_name!r}")
        elif command.name not in (names := self._commands[command.device]):
            known = ", ".join(names) or "none"
            result = CommandResult(False, f"{command.device} has no command {command.name!r}; it has {known}")
        else:
            assert self._router is not None
            result = await self._router.submit(command.device, command.name, command.args)
        if not command.device:
            log.warning("dropped a command that names no device: %s", result.message)
            return
        try:
            await self._publish(wire.ack_topic(self.plant_name, command.device),
                                wire.encode_ack(command.command_id, result, time.time_ns()))
        except Exception as err:  # the connection is gone; the sender will time out and retry
            log.warning("could not ack command %s to %s: %s", command.command_id, command.device, err)


__all__ = ["MqttTransport", "Payload", "last_will", "set_last_will"]
