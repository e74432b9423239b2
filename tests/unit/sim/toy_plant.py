"""A two-device `SimPlant` small enough to reason about: a pump filling a tank.

The pump's speed moves towards its setpoint with a 2 s time constant, flow follows speed, the tank
level integrates flow minus a constant draw. Noise comes from the seed; ``dropout_every`` makes
every n-th sample of ``flow`` NaN and ``offline_between`` takes the tank off the wire, so transports
see both cases.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from twinloop.sim.plant import ChannelSpec, CommandResult, CommandSpec, DeviceSpec, Sample

PUMP = DeviceSpec(
    "pump-1", "Pump",
    (ChannelSpec("speed", "rpm"), ChannelSpec("flow", "m3/h"), ChannelSpec("bearing.temperature", "degC")),
    (CommandSpec("setSpeed", {"speed": (0.0, 3000.0)}, "speed setpoint"), CommandSpec("stop")),
)
TANK = DeviceSpec("tank-1", "Tank", (ChannelSpec("level", "m"),))


class ToyPlant:
    name = "toy"

    def __init__(self, seed: int = 1, dropout_every: int = 0,
                 offline_between: tuple[float, float] | None = None) -> None:
        self._rng = np.random.default_rng(seed)
        self._t = 0.0
        self._speed = 1000.0
        self._setpoint = 1000.0
        self._level = 2.0
        self._n = 0
        self._dropout_every = dropout_every
        self._offline_between = offline_between
        self.commands: list[tuple[float, str, str, dict[str, Any]]] = []

    @property
    def devices(self) -> tuple[DeviceSpec, ...]:
        return (PUMP, TANK)

    @property
    def t_s(self) -> float:
        return self._t

    def step(self, dt: float) -> None:
        self._speed += (self._setpoint - self._speed) * (1 - np.exp(-dt / 2.0))
        self._level = max(0.0, self._level + dt * (self._speed / 1000.0 - 1.0) * 0.01)
        self._t += dt

    def sample(self) -> Sample:
        self._n += 1
        noise = self._rng.normal(0.0, 0.5, 4)
        flow = self._speed * 0.1 + noise[1]
        if self._dropout_every and self._n % self._dropout_every == 0:
            flow = float("nan")
        pump = np.array([self._speed + noise[0], flow, 40.0 + self._speed / 100.0 + noise[2]])
        tank = np.array([self._level + noise[3] * 0.01])
        online = np.ones(2, dtype=bool)
        if self._offline_between and self._offline_between[0] <= self._t < self._offline_between[1]:
            online[1] = False
        return Sample(self._t, (pump, tank), online)

    def apply_command(self, device_id: str, name: str, args: dict[str, Any]) -> CommandResult:
        self.commands.append((self._t, device_id, name, dict(args)))
        if device_id != "pump-1":
            return CommandResult(False, f"unknown device {device_id!r}")
        if name == "stop":
            self._setpoint = 0.0
            return CommandResult(True, applied={"speed": 0.0})
        if name != "setSpeed":
            return CommandResult(False, f"{device_id} has no command {name!r}")
        speed = args.get("speed")
        if not isinstance(speed, (int, float)) or not 0.0 <= speed <= 3000.0:
            return CommandResult(False, f"speed must be a number in [0, 3000] rpm, got {speed!r}")
        self._setpoint = float(speed)
        return CommandResult(True, applied={"speed": float(speed)})

    def ground_truth(self) -> dict[str, Any]:
        return {"t_s": self._t, "speed": self._speed, "setpoint": self._setpoint, "level": self._level}


__all__ = ["PUMP", "TANK", "ToyPlant"]
