"""Faults a simulated plant can suffer, by schedule or by command, and the record of them.

Three families, told apart by ``kind``:

* physics faults change what the equations see — ``bearing_wear`` (wear runs ``factor`` times
  faster), ``stuck_valve`` (the valve ignores its command), ``cavitation`` (suction pressure of a
  line drops by ``drop_bar``; device is a tank or a line), ``fouling_acceleration`` (a chiller's
  condenser fouls ``factor`` times faster), ``damper_stuck`` (an outdoor-air damper seizes at
  ``position`` %, default shut);
* sensor faults change only what one channel reports — ``drift`` (``rate_per_h`` units per hour),
  ``stuck_at`` (``value``, or the reading at onset), ``spikes`` (``probability``, ``magnitude``),
  ``dropout`` (NaN with ``probability``), ``noise_burst`` (extra Gaussian noise ``std``);
* ``comm_loss``: the device publishes nothing (``Sample.online`` False).

Sensor faults are applied to whole arrays at once (`sensor_effect`), so the same function serves
one sample of a plant and a million rows of a batch. The schedule keeps every fault it has seen,
cleared or not, because the hidden truth of an evaluation needs the past as much as the present.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twinloop.core.errors import NotFoundError, ValidationError
from twinloop.sim.plant import CommandSpec

PHYSICS_KINDS = ("bearing_wear", "stuck_valve", "cavitation", "fouling_acceleration", "damper_stuck")
SENSOR_KINDS = ("drift", "stuck_at", "spikes", "dropout", "noise_burst")
COMM_KINDS = ("comm_loss",)
KINDS = PHYSICS_KINDS + SENSOR_KINDS + COMM_KINDS

def fault_commands(**plant_params: tuple[float, float]) -> tuple[CommandSpec, CommandSpec]:
    """The ``injectFault`` / ``clearFault`` commands every plant accepts, with the numeric limits of
    the generic fault parameters plus the plant's own (``drop_bar`` for cavitation, ``position`` …)."""
    limits = {
        "start_in_s": (0.0, 1e9),
        "duration_s": (0.0, 1e9),
        "factor": (1.0, 1e6),
        **plant_params,
        "rate_per_h": (-1e6, 1e6),
        "value": (-1e9, 1e9),
        "probability": (0.0, 1.0),
        "magnitude": (-1e9, 1e9),
        "std": (0.0, 1e6),
    }
    return (
        CommandSpec("injectFault", limits, "Demo/test only: start a fault. String args: kind "
                    "(required), channel (sensor faults), id."),
        CommandSpec("clearFault", {}, "Demo/test only: end a fault. String arg: id."),
    )


# Parameters each kind understands, with defaults (NaN: taken at onset).
DEFAULTS: dict[str, dict[str, float]] = {
    "bearing_wear": {"factor": 20.0},
    "stuck_valve": {},
    "cavitation": {"drop_bar": 1.2},
    "fouling_acceleration": {"factor": 20.0},
    "damper_stuck": {"position": 0.0},
    "drift": {"rate_per_h": 1.0},
    "stuck_at": {"value": float("nan")},
    "spikes": {"probability": 0.05, "magnitude": 10.0},
    "dropout": {"probability": 0.5},
    "noise_burst": {"std": 2.0},
    "comm_loss": {},
}


@dataclass(frozen=True)
class Fault:
    """One fault on one device (and, for sensor faults, one channel) over ``[start_s, end_s)``.

    ``end_s`` None means "until cleared". ``id`` is given by the schedule when left empty.
    """

    kind: str
    device: str
    channel: str | None = None
    start_s: float = 0.0
    end_s: float | None = None
    params: Mapping[str, float] = field(default_factory=dict)
    id: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValidationError(f"unknown fault kind {self.kind!r}", hint=f"one of: {', '.join(KINDS)}")
        if self.kind in SENSOR_KINDS and not self.channel:
            raise ValidationError(
                f"a {self.kind} fault needs a channel", hint="e.g. channel='bearing.temperature'"
            )
        unknown = set(self.params) - set(DEFAULTS[self.kind])
        if unknown:
            known = ", ".join(DEFAULTS[self.kind]) or "none"
            raise ValidationError(
                f"{self.kind} fault: unknown parameters {sorted(unknown)}", hint=f"known: {known}"
            )
        if self.end_s is not None and self.end_s < self.start_s:
            raise ValidationError(f"fault ends ({self.end_s}) before it starts ({self.start_s})")
        merged = {**DEFAULTS[self.kind], **{k: float(v) for k, v in self.params.items()}}
        object.__setattr__(self, "params", merged)

    def active(self, t_s: float) -> bool:
        """Whether the fault acts at simulated time ``t_s``."""
        return self.start_s <= t_s and (self.end_s is None or t_s < self.end_s)

    def record(self) -> dict[str, Any]:
        """The fault as plain data, for ground truth and logs."""
        return {
            "id": self.id,
            "kind": self.kind,
            "device": self.device,
            "channel": self.channel,
            "start_s": self.start_s,
            "end_s": self.end_s,
            "params": dict(self.params),
        }


def sensor_effect(
    kind: str,
    params: Mapping[str, float],
    values: np.ndarray,
    elapsed_s: np.ndarray | float,
    rng: np.random.Generator,
    onset_value: np.ndarray | float = np.nan,
) -> np.ndarray:
    """What a faulty sensor reports instead of ``values`` (any shape), ``elapsed_s`` into the fault.

    ``onset_value`` is what the sensor read when the fault began (used by ``stuck_at`` without an
    explicit value). Returns a new array; ``values`` is not modified.
    """
    v = np.asarray(values, dtype=np.float64)
    if kind == "drift":
        return v + params["rate_per_h"] * np.asarray(elapsed_s) / 3600.0
    if kind == "stuck_at":
        stuck = params["value"] if np.isfinite(params["value"]) else onset_value
        return np.broadcast_to(np.asarray(stuck, dtype=np.float64), v.shape).copy()
    if kind == "spikes":
        hit = rng.random(v.shape) < params["probability"]
        sign = np.where(rng.random(v.shape) < 0.5, -1.0, 1.0)
        return v + hit * sign * params["magnitude"]
    if kind == "dropout":
        return np.where(rng.random(v.shape) < params["probability"], np.nan, v)
    if kind == "noise_burst":
        return v + rng.normal(0.0, params["std"], size=v.shape)
    raise ValidationError(f"{kind!r} is not a sensor fault", hint=f"one of: {', '.join(SENSOR_KINDS)}")


class FaultSchedule:
    """Faults planned ahead and injected at runtime, with the full history kept for ground truth."""

    def __init__(self, faults: Iterable[Fault] = (), seed: int = 0) -> None:
        self._faults: dict[str, Fault] = {}
        self._onset: dict[str, float] = {}
        self._rng = np.random.default_rng([seed, 4242])
        for f in faults:
            self.inject(f)

    @property
    def faults(self) -> tuple[Fault, ...]:
        """Every fault ever scheduled, in order of injection (cleared ones keep their end)."""
        return tuple(self._faults.values())

    def inject(self, fault: Fault) -> Fault:
        """Add a fault (now or later); returns it with its id."""
        fid = fault.id or f"F{len(self._faults) + 1}-{fault.kind}-{fault.device}"
        if fid in self._faults:
            raise ValidationError(f"fault id {fid!r} is already used", hint="give the fault another id")
        fault = dataclasses.replace(fault, id=fid)
        self._faults[fid] = fault
        return fault

    def clear(self, fault_id: str, t_s: float) -> Fault:
        """End a fault at ``t_s`` (kept in the history)."""
        try:
            fault = self._faults[fault_id]
        except KeyError:
            raise NotFoundError(
                f"no fault {fault_id!r}", hint=f"known: {', '.join(self._faults) or 'none'}"
            ) from None
        end = max(fault.start_s, t_s) if fault.end_s is None else min(fault.end_s, max(fault.start_s, t_s))
        fault = dataclasses.replace(fault, end_s=end)
        self._faults[fault_id] = fault
        return fault

    def active(self, t_s: float, kinds: Iterable[str] | None = None) -> list[Fault]:
        """Faults acting at ``t_s`` (optionally only of some kinds)."""
        wanted = set(kinds) if kinds is not None else None
        return [f for f in self._faults.values() if f.active(t_s) and (wanted is None or f.kind in wanted)]

    def offline(self, t_s: float) -> set[str]:
        """Devices that have lost communication at ``t_s``."""
        return {f.device for f in self.active(t_s, COMM_KINDS)}

    def apply_sensor_faults(
        self, t_s: float, values: np.ndarray, column: Callable[[str, str], int | None]
    ) -> np.ndarray:
        """Apply every active sensor fault to a flat sample vector (in place; also returned).

        ``column(device, channel)`` gives the position of a channel in ``values`` (None: the plant
        has no such channel, the fault is ignored). One call per fault, not per reading.
        """
        for f in self.active(t_s, SENSOR_KINDS):
            col = column(f.device, f.channel or "")
            if col is None:
                continue
            onset = self._onset.setdefault(f.id, float(values[col]))
            values[col] = sensor_effect(
                f.kind, f.params, values[col : col + 1], t_s - f.start_s, self._rng, onset
            )[0]
        return values

    def records(self, t_s: float | None = None) -> list[dict[str, Any]]:
        """Plain-data records of all faults, or of those active at ``t_s``."""
        chosen = self._faults.values() if t_s is None else self.active(t_s)
        return [f.record() for f in chosen]


__all__ = [
    "fault_commands",
    "COMM_KINDS",
    "DEFAULTS",
    "KINDS",
    "PHYSICS_KINDS",
    "SENSOR_KINDS",
    "Fault",
    "FaultSchedule",
    "sensor_effect",
]
