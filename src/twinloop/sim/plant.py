"""What every simulated plant offers its transports (MQTT, OPC UA, Parquet): the `SimPlant` protocol.

A plant owns its physics and fault state and advances in simulated seconds; transports only
ask it for devices, samples and to apply commands, so the same plant can be served over any
wire, at any speed, or run in batch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class ChannelSpec:
    """One published quantity of a device: its name as on the wire (``bearing.temperature``)."""

    name: str
    unit: str
    description: str = ""


@dataclass(frozen=True)
class CommandSpec:
    """A command a device accepts, with argument names and (min, max) limits."""

    name: str
    args: dict[str, tuple[float, float]] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class DeviceSpec:
    """A device on the wire: usually one asset (``pump-A1``) of an asset type (``Pump``)."""

    id: str
    asset_type: str
    channels: tuple[ChannelSpec, ...]
    commands: tuple[CommandSpec, ...] = ()


@dataclass(frozen=True)
class Sample:
    """Measured values of every device at one instant, after sensor faults.

    ``values[d]`` is a float array aligned with ``devices[d].channels``; NaN marks a dropout.
    ``online[d]`` is False while the device has lost communication (publish nothing for it).
    """

    t_s: float
    values: tuple[np.ndarray, ...]
    online: np.ndarray


@dataclass(frozen=True)
class CommandResult:
    """A device's answer to a command."""

    ok: bool
    message: str = ""
    applied: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class SimPlant(Protocol):
    """A simulated plant: devices, time, stepping, sampling, commands, ground truth."""

    name: str

    @property
    def devices(self) -> tuple[DeviceSpec, ...]: ...

    @property
    def t_s(self) -> float:
        """Simulated seconds since the start."""
        ...

    def step(self, dt: float) -> None:
        """Advance the physics, environment and faults by ``dt`` simulated seconds."""
        ...

    def sample(self) -> Sample:
        """Measurements now (noise and sensor faults applied), one array per device."""
        ...

    def apply_command(self, device_id: str, name: str, args: dict[str, Any]) -> CommandResult:
        """Apply a command with realistic dynamics (it takes effect through the physics)."""
        ...

    def ground_truth(self) -> dict[str, Any]:
        """Hidden truth now: wear per unit, active faults, failures so far (for evaluation)."""
        ...


#: String arguments of the fault commands every plant accepts; the numeric check skips them.
STRING_ARGS: dict[str, tuple[str, ...]] = {"injectFault": ("kind", "channel", "id"), "clearFault": ("id",)}


def check_args(
    spec: CommandSpec, args: dict[str, Any], required: Mapping[str, tuple[str, ...]]
) -> dict[str, float] | str:
    """The numeric arguments of a command within its limits, or why not (one line); ``required``
    names the arguments each command cannot do without."""
    strings = STRING_ARGS.get(spec.name, ())
    values: dict[str, float] = {}
    for key, raw in args.items():
        if key in strings:
            continue
        if key not in spec.args:
            known = ", ".join([*spec.args, *strings]) or "no arguments"
            return f"{spec.name}: unknown argument {key!r}; expected {known}"
        try:
            value = float(raw)
        except (TypeError, ValueError):
            return f"{spec.name}: argument {key!r} must be a number, got {raw!r}"
        lo, hi = spec.args[key]
        if not (lo <= value <= hi):  # also refuses NaN
            return f"{spec.name}: {key}={value:g} is outside {lo:g} … {hi:g}"
        values[key] = value
    missing = [k for k in required.get(spec.name, ()) if k not in values]
    if missing:
        return f"{spec.name}: missing argument(s) {', '.join(missing)}"
    return values


__all__ = [
    "STRING_ARGS", "ChannelSpec", "CommandResult", "CommandSpec", "DeviceSpec", "Sample", "SimPlant",
    "check_args",
]
