"""Commands of the simulated building: validation against the asset types' limits, then effect.

Commands only change setpoints, run states and fault schedules; what a sensor then shows comes
from the physics (a zone follows a new setpoint with its RC time constant, the coils saturate,
the chilled-water loop lags its chillers). Fault commands (``injectFault``, ``clearFault``) are
accepted on every device for demos and tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twinloop.core.errors import TwinloopError, ValidationError
from twinloop.sim.building_layout import REQUIRED_ARGS
from twinloop.sim.faults import COMM_KINDS, SENSOR_KINDS, Fault
from twinloop.sim.plant import CommandResult, check_args

if TYPE_CHECKING:
    from twinloop.sim.building import BuildingPlant

#: Physics faults this plant carries out, and the device types they act on.
PHYSICS_FAULTS = {"fouling_acceleration": ("chiller-",), "damper_stuck": ("zone-", "ahu-")}


class CommandMixin:
    """Command handling of `BuildingPlant` (kept apart so each module stays small)."""

    def _command(self: BuildingPlant, device_id: str, name: str, args: dict[str, Any]) -> CommandResult:
        if device_id not in self._dev_index:
            return CommandResult(False, f"unknown device {device_id!r}")
        spec = {c.name: c for c in self._devices[self._dev_index[device_id]].commands}
        if name not in spec:
            return CommandResult(False, f"{device_id} has no command {name!r}; it accepts: {', '.join(spec)}")
        values = check_args(spec[name], args, REQUIRED_ARGS)
        if isinstance(values, str):
            return CommandResult(False, values)
        if name == "injectFault":
            return self._inject_command(device_id, args, values)
        if name == "clearFault":
            try:
                f = self.faults.clear(str(args.get("id", "")), self._t)
            except TwinloopError as err:
                return CommandResult(False, str(err))
            return CommandResult(True, f"fault {f.id} cleared", {"id": f.id, "end_s": f.end_s})
        return self._device_command(device_id, name, values)

    def _device_command(self: BuildingPlant, device_id: str, name: str, values: dict[str, float]
                        ) -> CommandResult:
        plan = self.plan
        if name == "setSetpoint":
            self.setpoint[plan.zones.index(device_id)] = values["temperature"]
            return CommandResult(True, f"{device_id} setpoint {values['temperature']:g} degC",
                                 {"setpoint": values["temperature"]})
        if name == "setSupplyTemperature":
            self.supply_setpoint[plan.ahus.index(device_id)] = values["temperature"]
            return CommandResult(True, f"{device_id} supply air setpoint {values['temperature']:g} degC",
                                 {"supply_air_setpoint": values["temperature"]})
        if name == "setFanSpeed":
            self.fan_speed[plan.ahus.index(device_id)] = values["speed"] / 100.0
            return CommandResult(True, f"{device_id} fan speed limit {values['speed']:g} %",
                                 {"fan_speed": values["speed"]})
        k = plan.chillers.index(device_id)
        if name == "setChilledWaterSetpoint":
            self.chw_setpoint[k] = values["temperature"]
            return CommandResult(True, f"{device_id} chilled water setpoint {values['temperature']:g} degC",
                                 {"chilled_water_setpoint": values["temperature"]})
        self.running[k] = name == "start"
        note = "" if self.running.any() else "; no chiller is running, the chilled-water loop will warm"
        return CommandResult(True, f"{device_id} {'started' if self.running[k] else 'stopped'}{note}",
                             {"running": bool(self.running[k])})

    def _inject_command(self: BuildingPlant, device_id: str, args: dict[str, Any], values: dict[str, float]
                        ) -> CommandResult:
        start = self._t + values.pop("start_in_s", 0.0)
        duration = values.pop("duration_s", None)
        try:
            fault = self.inject(Fault(str(args.get("kind", "")), device_id, args.get("channel"),
                                      start_s=start, end_s=None if duration is None else start + duration,
                                      params=values, id=str(args.get("id") or "")))
        except TwinloopError as err:
            return CommandResult(False, f"injectFault: {err}")
        return CommandResult(True, f"fault {fault.id} injected", fault.record())

    def _check_fault(self: BuildingPlant, fault: Fault) -> None:
        """Refuse faults this plant cannot carry out (wrong device, channel or kind)."""
        if fault.device not in self._dev_index:
            raise ValidationError(f"fault on unknown device {fault.device!r}",
                                  hint=f"devices: {', '.join(self._dev_index)}")
        if fault.kind in SENSOR_KINDS:
            if (fault.device, fault.channel) not in self._col:
                channels = [c.name for c in self._devices[self._dev_index[fault.device]].channels]
                raise ValidationError(f"{fault.device} has no channel {fault.channel!r}",
                                      hint=f"channels: {channels}")
            return
        if fault.kind in COMM_KINDS:
            return
        targets = PHYSICS_FAULTS.get(fault.kind)
        if targets is None:
            raise ValidationError(f"a {fault.kind} fault has nothing to act on in the building",
                                  hint=f"its physics faults: {', '.join(PHYSICS_FAULTS)}")
        if not fault.device.startswith(targets):
            kinds = " or ".join(t.rstrip("-") for t in targets)
            raise ValidationError(f"a {fault.kind} fault needs a {kinds} device, got {fault.device!r}")


__all__ = ["PHYSICS_FAULTS", "CommandMixin"]
