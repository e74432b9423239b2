"""Serves a simulated plant over OPC UA: one object per device, a variable per channel, methods as commands.

Address space (ns=2 is the server's namespace; see `twinloop.connectors.opcua` for the NodeId rule):

- ``Objects/<device>`` — object ``ns=2;s=<device>``
- ``ns=2;s=<device>.<channel>`` — Double, BaseAnalogType, with ``EngineeringUnits``; read-only
- ``ns=2;s=<device>.seq`` — samples published for the device (counts loss, as on MQTT)
- ``ns=2;s=<device>.online`` — Boolean; False while the device has lost communication
- ``ns=2;s=<device>.<command>`` — a method per command, inputs as declared in its ``CommandSpec``
  (Double; NaN means "not given"), outputs ``ok`` (Boolean) and ``message`` (String)
- ``Objects/clock`` — the plant's clock (`twinloop.sim.clock`): ``ns=2;s=clock.sim_time`` (Double,
  the simulated instant in epoch seconds; its source timestamp is the wall time it goes with) and
  ``ns=2;s=clock.speed`` (simulated s per wall s; inf: as fast as possible, 0: stopped), written
  with the first sample, every second and whenever the time line moves
- writable setpoints that become commands: ``<device>.speed_setpoint`` → ``setSpeed``,
  ``<device>.valve.position`` → ``setPosition`` (where the device has that command)

A dropout (NaN) leaves a channel's last value in place, and an offline device's channels stop
changing while its ``online`` flag reads False. The demo/test-only fault commands are not exposed:
their string arguments are not declared, so inject faults over MQTT or with the CLI.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any

import numpy as np

from twinloop.connectors.opcua import OpcUaServer, Value, VariableSpec
from twinloop.sim.clock import AnnouncedClock
from twinloop.sim.plant import CommandResult, CommandSpec, DeviceSpec, Sample, SimPlant
from twinloop.sim.runner import CommandRouter

log = logging.getLogger(__name__)

#: Writable variables that stand for a one-argument command: command name → variable name.
SETPOINTS: dict[str, str] = {"setSpeed": "speed_setpoint", "setPosition": "valve.position"}
#: The object holding the plant's clock variables (``clock.sim_time``, ``clock.speed``).
CLOCK_OBJECT = "clock"
#: Commands whose arguments are not all declared (strings), so no method can be typed for them.
NOT_EXPOSED = frozenset({"injectFault", "clearFault"})


def setpoint_variables(device: DeviceSpec) -> dict[str, tuple[CommandSpec, str]]:
    """``{variable: (command, argument)}`` of a device's writable setpoints."""
    out: dict[str, tuple[CommandSpec, str]] = {}
    for command in device.commands:
        variable = SETPOINTS.get(command.name)
        if variable is not None and len(command.args) == 1:
            out[variable] = (command, next(iter(command.args)))
    return out


class OpcUaTransport:
    """Builds the plant's address space on a started `OpcUaServer` and writes every sample into it."""

    def __init__(self, server: OpcUaServer, plant: SimPlant) -> None:
        self.server = server
        self.plant = plant
        self.devices = plant.devices
        self._router: CommandRouter | None = None
        self._paths = [tuple(f"{d.id}.{c.name}" for c in d.channels) for d in self.devices]
        self._seq = np.zeros(len(self.devices), dtype=np.int64)
        self._online = np.ones(len(self.devices), dtype=bool)
        self._setpoints: dict[str, tuple[str, str, str]] = {}  # path → (device, command, argument)
        self._accepted: dict[str, float] = {}
        self._writes: set[asyncio.Task[None]] = set()
        self._clock: AnnouncedClock | None = None
        self.node_ids: dict[str, str] = {}
        """``{"<device>.<name>": NodeId string}`` of every variable and method served."""

    async def start(self, router: CommandRouter) -> None:
        """Add an object per device with its variables and methods; writes to setpoints become commands."""
        self._router = router
        self._clock = AnnouncedClock(float(getattr(router, "speed", 1.0)))
        ids = await self.server.add_object(CLOCK_OBJECT, [
            VariableSpec("sim_time", "s", 0.0, description="the simulated instant (epoch s) at this "
                                                           "value's source timestamp"),
            VariableSpec("speed", None, 0.0, description="simulated seconds per wall second")])
        self.node_ids.update({f"{CLOCK_OBJECT}.{name}": node for name, node in ids.items()})
        for device in self.devices:
            setpoints = setpoint_variables(device)
            specs = [VariableSpec(c.name, c.unit, description=c.description) for c in device.channels]
            specs += [VariableSpec("seq", None, 0.0, description="samples published (counts loss)"),
                      VariableSpec("online", None, True, description="False while communication is lost")]
            for variable, (command, arg) in setpoints.items():
                specs.append(VariableSpec(variable, _unit_of(device, command, arg), math.nan, writable=True,
                                          description=f"writing it sends {command.name}({arg}=…)",
                                          range=command.args[arg]))
                self._setpoints[f"{device.id}.{variable}"] = (device.id, command.name, arg)
            ids = await self.server.add_object(device.id, specs)
            self.node_ids.update({f"{device.id}.{name}": node for name, node in ids.items()})
            for command in device.commands:
                if command.name in NOT_EXPOSED:
                    continue
                node = await self.server.add_method(device.id, command.name,
                                                    [(arg, float) for arg in command.args],
                                                    self._method(device.id, command))
                self.node_ids[f"{device.id}.{command.name}"] = node
        self.server.on_write(self._on_write)

    async def stop(self) -> None:
        """Mark every device offline; the server itself belongs to whoever started it."""
        self._online[:] = False
        values: dict[str, Value] = {f"{d.id}.online": False for d in self.devices}
        if self._clock is not None and self._clock.announced:
            values.update(_clock_values(*self._clock.stopped(time.time_ns())))
        await self.server.write_values(values)

    async def on_sample(self, sample: Sample, ts_ns: int) -> None:
        """Write every online device's channels (dropouts keep the last value), ``seq`` and ``online``."""
        online = np.asarray(sample.online, dtype=bool)
        values: dict[str, Value] = {}
        clock = self._clock
        if clock is not None and clock.observe(ts_ns, now := time.time_ns()):
            values.update(_clock_values(*clock.announce(now), at_ns=now))
        for i in np.flatnonzero(online != self._online):
            values[f"{self.devices[i].id}.online"] = bool(online[i])
        self._online = online.copy()
        for i in np.flatnonzero(online):
            row = sample.values[i]
            ok = np.isfinite(row)
            paths = self._paths[i]
            values.update(zip([paths[j] for j in np.flatnonzero(ok)], row[ok].tolist(), strict=True))
            values[f"{self.devices[i].id}.seq"] = float(self._seq[i])
            self._seq[i] += 1
        await self.server.write_values(values)

    # --- commands -------------------------------------------------------------------------------

    def _method(self, device_id: str, command: CommandSpec) -> Any:
        async def handler(**kwargs: float) -> tuple[bool, str]:
            args = {k: v for k, v in kwargs.items() if not math.isnan(v)}
            result = await self._submit(device_id, command.name, args)
            return result.ok, result.message or ("applied" if result.ok else "refused")

        return handler

    async def _submit(self, device_id: str, name: str, args: dict[str, Any]) -> CommandResult:
        if self._router is None:
            return CommandResult(False, "the simulator is not running")
        return await self._router.submit(device_id, name, args)

    def _on_write(self, path: str, value: Value) -> None:
        # answer the client's write at once; the command applies at the next step, in the background
        if path in self._setpoints:
            task = asyncio.create_task(self._apply_write(path, value))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    async def _apply_write(self, path: str, value: Value) -> None:
        device_id, name, arg = self._setpoints[path]
        result = await self._submit(device_id, name, {arg: float(value)})
        if result.ok:
            self._accepted[path] = float(value)
            return
        log.info("write of %s=%s refused: %s", path, value, result.message)
        # the device did not take it: show the setpoint it still follows, not the refused one
        await self.server.write_values({path: self._accepted.get(path, math.nan)})


def _clock_values(sim_ns: int, wall_ns: int, speed: float | None,
                  at_ns: int | None = None) -> dict[str, Value]:
    """The clock variables for a write at ``at_ns`` (the write's source timestamp is "now")."""
    at = wall_ns if at_ns is None else at_ns
    sim = sim_ns if speed is None else sim_ns + (at - wall_ns) * speed
    return {f"{CLOCK_OBJECT}.sim_time": sim / 1e9,
            f"{CLOCK_OBJECT}.speed": math.inf if speed is None else float(speed)}


def _unit_of(device: DeviceSpec, command: CommandSpec, arg: str) -> str | None:
    """A setpoint's unit: that of the channel it steers (``speed``, ``valve.opening``), when there is one."""
    steers = {"setSpeed": "speed", "setPosition": "valve.opening"}.get(command.name)
    return next((c.unit for c in device.channels if c.name == steers), None)


__all__ = ["CLOCK_OBJECT", "NOT_EXPOSED", "SETPOINTS", "OpcUaTransport", "setpoint_variables"]
