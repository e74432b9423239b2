"""Typed events: past-tense facts the platform recorded, each carrying the twin's revision.

Events are persisted by the store and pushed to subscribers through the runtime's bus. They
serialize to plain dicts, so any store or wire format can hold them:

>>> e = TwinCreated(twin_id="pump-1", revision=1, ts_ns=5, type_id="Pump")
>>> d = e.to_dict(); d["kind"], d["data"]
('TwinCreated', {'type_id': 'Pump'})
>>> Event.from_dict(d) == e
True
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

from twinloop.core.errors import ValidationError
from twinloop.core.ids import new_id

_KINDS: dict[str, type[Event]] = {}
_DATA_FIELDS: dict[type, tuple[str, ...]] = {}
_ATOMS = (str, int, float, bool, type(None))


def _plain(value: Any) -> Any:
    """Nested dataclasses as dicts, containers copied, atoms as they are (like `dataclasses.asdict`)."""
    if isinstance(value, _ATOMS):
        return value
    if isinstance(value, (list, tuple)):
        return type(value)([v if isinstance(v, _ATOMS) else _plain(v) for v in value])
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value


@dataclass(frozen=True, kw_only=True)
class Event:
    """Base of all events. ``twin_id`` is the subject (empty for platform-wide facts)."""

    kind: ClassVar[str] = "Event"
    twin_id: str = ""
    revision: int = 0
    ts_ns: int = 0
    event_id: str = field(default_factory=new_id)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.kind = cls.__name__
        _KINDS[cls.__name__] = cls

    def data(self) -> dict[str, Any]:
        """The subclass-specific fields, as plain values (what ``dataclasses.asdict`` gives, without
        its deep copies: the pipeline serializes thousands of events a second)."""
        names = _DATA_FIELDS.get(type(self))
        if names is None:
            base = {f.name for f in fields(Event)}
            names = _DATA_FIELDS[type(self)] = tuple(f.name for f in fields(self) if f.name not in base)
        return {name: _plain(getattr(self, name)) for name in names}

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form: kind, ids, revision, time and ``data``."""
        return {
            "kind": self.kind,
            "event_id": self.event_id,
            "twin_id": self.twin_id,
            "revision": self.revision,
            "ts_ns": self.ts_ns,
            "data": self.data(),
        }

    @staticmethod
    def from_dict(d: dict[str, Any]) -> Event:
        """Rebuild the typed event from `to_dict` output."""
        cls = _KINDS.get(d.get("kind", ""))
        if cls is None:
            raise ValidationError(f"unknown event kind {d.get('kind')!r}")
        return cls(
            twin_id=d.get("twin_id", ""),
            revision=int(d.get("revision", 0)),
            ts_ns=int(d.get("ts_ns", 0)),
            event_id=d.get("event_id") or new_id(),
            **d.get("data", {}),
        )


def event_kinds() -> list[str]:
    """Names of every event type known to this process."""
    return sorted(_KINDS)


@dataclass(frozen=True, kw_only=True)
class TwinCreated(Event):
    type_id: str = ""


@dataclass(frozen=True, kw_only=True)
class TwinUpdated(Event):
    """``changes`` maps a section (attributes/reported/desired) to the keys that changed."""

    changes: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class TwinDeleted(Event):
    pass


@dataclass(frozen=True, kw_only=True)
class RelationshipAdded(Event):
    kind_name: str = ""
    target: str = ""


@dataclass(frozen=True, kw_only=True)
class RelationshipRemoved(Event):
    kind_name: str = ""
    target: str = ""


@dataclass(frozen=True, kw_only=True)
class ReadingsApplied(Event):
    """Readings for one twin were stored; ``count`` readings over ``channels``."""

    count: int = 0
    channels: list[str] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class CommandSent(Event):
    name: str = ""
    args: dict[str, Any] = field(default_factory=dict)
    command_id: str = ""


@dataclass(frozen=True, kw_only=True)
class CommandAcknowledged(Event):
    command_id: str = ""
    ok: bool = True
    message: str = ""


__all__ = [
    "CommandAcknowledged",
    "CommandSent",
    "Event",
    "ReadingsApplied",
    "RelationshipAdded",
    "RelationshipRemoved",
    "TwinCreated",
    "TwinDeleted",
    "TwinUpdated",
    "event_kinds",
]
