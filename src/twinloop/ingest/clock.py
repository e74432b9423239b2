"""Whose clock judges a reading's timestamp: this machine's wall clock, or the plant's announced clock.

A real plant stamps readings with (roughly) the time of day, so a reading stamped far ahead of its
arrival is a broken device clock, and ingest rejects it (``ts_future``). A simulated or replayed
plant runs on its own time: at 60× a reading's device time runs ahead of the wall clock by 59 s
every second. Such a plant *announces* its clock — ``{"sim_time": ns, "wall_time": ns, "speed": x}``
on an MQTT topic (retained), or two OPC UA variables — and a mapping rule with
``clock: {announced: <topic>}`` judges its readings against the plant time at their arrival::

    plant_now(received) = sim_time + (received - wall_time) · speed

Readings whose plant clock has not been heard yet wait for it (a persistent session's backlog
arrives before the retained announcement), at most `NormalizePolicy.clock_wait_ns`; a clock never
heard leaves the wall clock to judge, strictly, as for a real plant. ``speed``
``null`` means "as fast as it can": the plant's time then bounds readings only from below.

>>> t = PlantTime(sim_ns=1_000 * S, wall_ns=10 * S, speed=60.0)
>>> (t.at(11 * S) - 1_000 * S) // S     # one wall second later the plant is 60 s further
60
>>> decode_announcement(b'{"sim_time": 5, "wall_time": 2, "speed": null}', None)
PlantTime(sim_ns=5, wall_ns=2, speed=None)
>>> parse_duration_s("400d"), parse_duration_s("1h30m"), parse_duration_s(90)
(34560000.0, 5400.0, 90.0)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

S = 1_000_000_000
#: OPC UA servers announce the clock as two Double variables under one object (``ns=2;s=clock``):
#: ``<object>.sim_time`` (simulated epoch seconds; its source timestamp is the wall time) and
#: ``<object>.speed``.
OPCUA_CLOCK_VARIABLES = ("sim_time", "speed")

_UNITS_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw]?)")


def parse_duration_s(value: Any) -> float:
    """Seconds from a number or a duration text (``90``, ``5m``, ``1h30m``, ``400d``); else `ValueError`."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    if isinstance(value, (int, float)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"not a duration: {value!r}")
        return float(value)
    text = str(value).strip().lower()
    parts = _PART.findall(text)
    if not text or "".join(f"{n}{u}" for n, u in parts) != text.replace(" ", ""):
        raise ValueError(f"not a duration: {value!r}")
    return sum(float(n) * _UNITS_S[u] for n, u in parts)


@dataclass(frozen=True)
class ClockPolicy:
    """How one rule's device timestamps are judged; ``None`` tolerances take the normalizer's defaults.

    ``announced`` names the plant clock (an MQTT topic, or an OPC UA object node id); ``math.inf``
    turns a check off (``max_future: off``).
    """

    announced: str | None = None
    max_future_s: float | None = None
    max_age_s: float | None = None

    @property
    def label(self) -> str:
        """What judged a reading, for reject messages."""
        return f"the plant clock announced on {self.announced}" if self.announced else "its arrival"


WALL = ClockPolicy()


@dataclass(frozen=True)
class PlantTime:
    """One announcement: simulated epoch ns ``sim_ns`` at wall epoch ns ``wall_ns``, running at ``speed``."""

    sim_ns: int
    wall_ns: int
    speed: float | None

    def at(self, wall_ns: int) -> int:
        """The plant's time at wall instant ``wall_ns`` (its last announced time when ``speed`` is None)."""
        if self.speed is None:
            return self.sim_ns
        return self.sim_ns + int((wall_ns - self.wall_ns) * self.speed)


class AnnouncementError(ValueError):
    """A clock announcement that cannot be read (it is quarantined as ``malformed``)."""


def decode_announcement(payload: bytes, previous: PlantTime | None, variable: str | None = None) -> PlantTime:
    """Read an announcement: the MQTT JSON object, or (``variable`` set) one OPC UA clock variable's
    ``{"value", "ts"}`` merged into ``previous``."""
    try:
        obj = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as err:
        raise AnnouncementError(f"clock announcement is not JSON: {err}") from None
    if not isinstance(obj, dict):
        raise AnnouncementError("clock announcement must be a JSON object")
    try:
        if variable is None:
            speed = obj.get("speed", 1.0)
            return PlantTime(_int(obj["sim_time"]), _int(obj["wall_time"]), _speed(speed))
        value, wall = obj["value"], _int(obj["ts"])
        if variable == "sim_time":
            speed_now = previous.speed if previous is not None else 1.0
            return PlantTime(int(round(float(value) * S)), wall, speed_now)
        base = previous or PlantTime(wall, wall, 1.0)
        now = base.at(wall)  # re-anchor, so a speed change applies from the moment it was said
        return PlantTime(now, wall, _speed(None if value is None or not math.isfinite(value) else value))
    except (KeyError, TypeError, ValueError) as err:
        raise AnnouncementError(f"clock announcement is malformed: {err!r}") from None


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"not a time: {value!r}")
    return int(value)


def _speed(value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"speed must be a number >= 0 or null, not {value!r}")
    return None if math.isinf(value) else float(value)


class PlantClocks:
    """The latest announcement of every plant clock a mapping names, keyed by the announced name."""

    def __init__(self, announced: Iterable[tuple[str, str]] = ()) -> None:
        self._topics: dict[str, tuple[str, str | None]] = {}
        self.times: dict[str, PlantTime] = {}
        self.configure(announced)

    def configure(self, announced: Iterable[tuple[str, str]]) -> None:
        """Listen for ``(kind, name)`` clocks (kind ``mqtt`` or ``opcua``); known times are kept."""
        topics: dict[str, tuple[str, str | None]] = {}
        for kind, name in announced:
            if kind == "opcua":
                topics.update({f"{name}.{v}": (name, v) for v in OPCUA_CLOCK_VARIABLES})
            else:
                topics[name] = (name, None)
        self._topics = topics

    def is_clock(self, topic: str) -> bool:
        return topic in self._topics

    @property
    def listening(self) -> bool:
        """True when the mapping names any clock."""
        return bool(self._topics)

    def check(self, topic: str, payload: bytes) -> None:
        """Raise `AnnouncementError` when an announcement cannot be read (nothing is taken)."""
        name, variable = self._topics[topic]
        decode_announcement(payload, self.times.get(name), variable)

    def hear(self, topic: str, payload: bytes) -> PlantTime:
        """Take one announcement; raises `AnnouncementError` when it cannot be read."""
        name, variable = self._topics[topic]
        time = decode_announcement(payload, self.times.get(name), variable)
        self.times[name] = time
        return time

    def heard(self, name: str) -> bool:
        """True once ``name`` has announced its clock."""
        return name in self.times

    def now(self, name: str, wall_ns: int) -> int | None:
        """The plant's time at ``wall_ns``, or None when ``name`` was never heard."""
        time = self.times.get(name)
        return None if time is None else time.at(wall_ns)

    def bounded(self, name: str) -> bool:
        """False when the plant runs as fast as it can: its time then bounds readings from below only."""
        time = self.times.get(name)
        return time is None or time.speed is not None


__all__ = [
    "OPCUA_CLOCK_VARIABLES", "WALL", "AnnouncementError", "ClockPolicy", "PlantClocks", "PlantTime",
    "decode_announcement", "parse_duration_s",
]
