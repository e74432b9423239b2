"""Twin instances and relationships: the plain data every layer above passes around.

A twin is the live replica of one asset: identity, its asset type, attributes (static facts:
serial number, rated power), reported properties (what the asset says it is) and desired
properties (what we ask it to be). Every change bumps ``revision``.

>>> t = Twin(id="pump-1", type_id="Pump", attributes={"line": "A"})
>>> Twin.from_dict(t.to_dict()) == t
True
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from twinloop.core.ids import validate_id


@dataclass(frozen=True)
class Twin:
    """One twin's identity and properties at one revision (a snapshot)."""

    id: str
    type_id: str
    attributes: dict[str, Any] = field(default_factory=dict)
    reported: dict[str, Any] = field(default_factory=dict)
    desired: dict[str, Any] = field(default_factory=dict)
    revision: int = 0
    created_ns: int = 0
    updated_ns: int = 0

    def __post_init__(self) -> None:
        validate_id(self.id, what="twin id")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "id": self.id,
            "type_id": self.type_id,
            "attributes": dict(self.attributes),
            "reported": dict(self.reported),
            "desired": dict(self.desired),
            "revision": self.revision,
            "created_ns": self.created_ns,
            "updated_ns": self.updated_ns,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Twin:
        return cls(
            id=d["id"],
            type_id=d["type_id"],
            attributes=dict(d.get("attributes") or {}),
            reported=dict(d.get("reported") or {}),
            desired=dict(d.get("desired") or {}),
            revision=int(d.get("revision", 0)),
            created_ns=int(d.get("created_ns", 0)),
            updated_ns=int(d.get("updated_ns", 0)),
        )

    def evolve(self, **changes: Any) -> Twin:
        """A copy with ``changes`` applied (the revision is the caller's business)."""
        return replace(self, **changes)


@dataclass(frozen=True)
class Relationship:
    """A typed, directed edge ``source --name--> target`` (``feeds``, ``partOf``, ``poweredBy`` …)."""

    source: str
    name: str
    target: str
    properties: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate_id(self.source, what="relationship source")
        validate_id(self.target, what="relationship target")
        validate_id(self.name, what="relationship name")

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity of the edge: at most one edge of a name between two twins."""
        return (self.source, self.name, self.target)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "name": self.name,
            "target": self.target,
            "properties": dict(self.properties),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Relationship:
        return cls(
            source=d["source"],
            name=d["name"],
            target=d["target"],
            properties=dict(d.get("properties") or {}),
        )


__all__ = ["Relationship", "Twin"]
