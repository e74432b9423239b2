"""Commands of the simulated pump station: validation against the asset types' limits, then effect.

Commands only change setpoints, modes and fault schedules; what a sensor then shows comes from
the physics (the drive ramps, the valve travels at its rate and sticks in its deadband).
Fault commands (``injectFault``, ``clearFault``) are accepted on every device for demos and tests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twinloop.core.errors import TwinloopError, ValidationError
from twinloop.physics.model import index
from twinloop.sim.faults import SENSOR_KINDS, Fault
from twinloop.sim.plant import CommandResult, check_args
from twinloop.sim.pump_station_layout import REQUIRED_ARGS

if TYPE_CHECKING:
    from twinloop.sim.pump_station import PumpStationPlant



class CommandMixin:
    """Command handling of `PumpStationPlant` (kept apart so each module stays small)."""

    def _command(self: PumpStationPlant, device_id: str, name: str, args: dict[str, Any]) -> CommandResult:
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
        return self._pump_command(self._pump_row(device_id), name, values)

    def _pump_command(self: PumpStationPlant, k: int, name: str, values: dict[str, float]) -> CommandResult:
        pid = self.pumps[k].id
        if name in ("setSpeed", "start") and self.failed[k]:
            return CommandResult(False, f"{pid} has tripped on bearing failure; replace the bearing first")
        if name == "setSpeed":
            rpm = values["rpm"]
            self.manual[k], self._manual_sp[k], self.running[k] = True, rpm, rpm > 0
            return CommandResult(
                True,
                f"{pid} ramping to {rpm:g} rpm",
                {"speed_setpoint": rpm, "running": rpm > 0, "control_mode": "remote"},
            )
        if name == "replaceBearing":
            return self._replace_bearing(k)
        if name == "start":
            self.running[k], self.manual[k] = True, False
            return CommandResult(
                True, f"{pid} started under station control", {"running": True, "control_mode": "auto"}
            )
        if name == "stop":
            emergency = values.get("emergency", 0.0) >= 0.5
            self.running[k], self.manual[k], self._manual_sp[k] = False, False, 0.0
            if emergency:  # the drive is cut: the water load stops the rotor within a step
                self._x[k, index(self.model.states, "speed")] = 0.0
            return CommandResult(
                True,
                f"{pid} {'emergency ' if emergency else ''}stop",
                {"running": False, "speed_setpoint": 0.0, "emergency": emergency},
            )
        position = values["position"]
        if name == "setPosition":
            self._valve_cmd[k], self._valve_target[k], self._valve_rate[k] = position, position, 0.0
            return CommandResult(True, f"{pid} valve moving to {position:g} %", {"valve.position": position})
        duration = values.get("duration", 30.0)
        self._valve_target[k] = position
        if duration <= 0:
            self._valve_cmd[k], self._valve_rate[k] = position, 0.0
        else:
            self._valve_rate[k] = max(abs(position - self._valve_cmd[k]) / duration, 1e-9)
        return CommandResult(
            True,
            f"{pid} valve ramping to {position:g} % over {duration:g} s",
            {"valve.position": position, "duration": duration},
        )

    def _replace_bearing(self: PumpStationPlant, k: int) -> CommandResult:
        """A new bearing: wear 0, the pump's bearing-wear faults end, a trip is cleared (it stays
        stopped until ``start``). Refused while the rotor turns, as a lockout would refuse it."""
        pid = self.pumps[k].id
        if self.running[k] or self._x[k, index(self.model.states, "speed")] > 1.0:
            return CommandResult(False, f"{pid} is running; stop it before replacing the bearing")
        self._x[k, index(self.model.states, "bearing_wear")] = 0.0
        for fault in self.faults.active(self._t, ("bearing_wear",)):
            if fault.device == pid:
                self.faults.clear(fault.id, self._t)
        was_failed = bool(self.failed[k])
        self.failed[k] = False
        self._repairs.append({"device": pid, "t_s": self._t, "kind": "bearing_replaced",
                              "was_failed": was_failed})
        return CommandResult(True, f"{pid} has a new bearing{'; the trip is cleared' if was_failed else ''}",
                             {"failed": False, "bearing_wear": 0.0})

    def _inject_command(
        self: PumpStationPlant, device_id: str, args: dict[str, Any], values: dict[str, float]
    ) -> CommandResult:
        kind = str(args.get("kind", ""))
        start = self._t + values.pop("start_in_s", 0.0)
        duration = values.pop("duration_s", None)
        try:
            fault = self.inject(
                Fault(
                    kind,
                    device_id,
                    args.get("channel"),
                    start_s=start,
                    end_s=None if duration is None else start + duration,
                    params=values,
                    id=str(args.get("id") or ""),
                )
            )
        except TwinloopError as err:
            return CommandResult(False, f"injectFault: {err}")
        return CommandResult(True, f"fault {fault.id} injected", fault.record())

    def _check_fault(self: PumpStationPlant, fault: Fault) -> None:
        """Refuse faults this plant cannot carry out (wrong device or channel)."""
        if fault.device not in self._dev_index:
            raise ValidationError(f"fault on unknown device {fault.device!r}")
        if fault.kind in ("fouling_acceleration", "damper_stuck"):
            raise ValidationError(
                f"{fault.kind} is a building fault; the pump station has no chiller or damper"
            )
        if fault.kind in ("bearing_wear", "stuck_valve") and not fault.device.startswith("pump-"):
            raise ValidationError(f"a {fault.kind} fault needs a pump device, got {fault.device!r}")
        if fault.kind == "cavitation" and not (
            fault.device.startswith(("tank-", "line-")) and fault.device.split("-", 1)[1] in self.lines
        ):
            raise ValidationError("a cavitation fault needs a suction tank or line (tank-A, line-A …)")
        if fault.kind in SENSOR_KINDS and (fault.device, fault.channel) not in self._col:
            channels = [c.name for c in self._devices[self._dev_index[fault.device]].channels]
            raise ValidationError(
                f"{fault.device} has no channel {fault.channel!r}", hint=f"channels: {channels}"
            )


__all__ = ["CommandMixin"]
