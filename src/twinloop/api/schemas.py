"""Request and response shapes of the API (``XCreate`` in, ``XPublic`` out)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from twinloop.core.clock import ns_to_datetime
from twinloop.store.protocol import ApiKeyRecord, AuditRecord, EventRecord
from twinloop.twins.twin import Relationship, Twin


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TwinCreate(_In):
    id: str = Field(description="unique twin id: letters, digits, - _ . :", examples=["pump-A1"])
    type_id: str = Field(description="asset type id", examples=["Pump"])
    attributes: dict[str, Any] = Field(default_factory=dict)
    reported: dict[str, Any] = Field(default_factory=dict)
    desired: dict[str, Any] = Field(default_factory=dict)


class TwinPatch(_In):
    """Merge-patch of a twin's sections; ``null`` removes a key."""

    attributes: dict[str, Any] | None = None
    reported: dict[str, Any] | None = None
    desired: dict[str, Any] | None = None
    expected_revision: int | None = Field(
        None, description="apply only if the twin is still at this revision (or use If-Match)"
    )


class DesiredPatch(_In):
    desired: dict[str, Any]
    expected_revision: int | None = None


class TwinPublic(BaseModel):
    id: str
    type_id: str
    attributes: dict[str, Any]
    reported: dict[str, Any]
    desired: dict[str, Any]
    revision: int
    created: str
    updated: str

    @classmethod
    def of(cls, t: Twin) -> TwinPublic:
        return cls(
            id=t.id, type_id=t.type_id, attributes=t.attributes, reported=t.reported,
            desired=t.desired, revision=t.revision,
            created=ns_to_datetime(t.created_ns).isoformat(),
            updated=ns_to_datetime(t.updated_ns).isoformat(),
        )


class RelationshipCreate(_In):
    name: str = Field(examples=["feeds"])
    target: str = Field(examples=["line-A"])
    properties: dict[str, Any] = Field(default_factory=dict)


class RelationshipPublic(BaseModel):
    source: str
    name: str
    target: str
    properties: dict[str, Any]

    @classmethod
    def of(cls, r: Relationship) -> RelationshipPublic:
        return cls(source=r.source, name=r.name, target=r.target, properties=r.properties)


class ReachPublic(BaseModel):
    """A twin reached by a graph walk, how far away, and the edge that reached it."""

    id: str
    type_id: str
    depth: int
    via: RelationshipPublic | None = None


class ChannelStatePublic(BaseModel):
    channel: str
    value: float
    unit: str | None
    ts: str
    quality: int


class TwinStatePublic(BaseModel):
    id: str
    type_id: str
    revision: int
    status: str = Field("unknown", description="online / offline / unknown: the connection's availability")
    connection: str | None = None
    reported: dict[str, Any]
    desired: dict[str, Any]
    channels: list[ChannelStatePublic]


class HistoryPublic(BaseModel):
    """Columnar history: one list per column, aligned; ``ts``/``bucket`` are ISO 8601 UTC."""

    twin_id: str
    bucket_s: float | None
    rows: int
    columns: dict[str, list[Any]]


class EventPublic(BaseModel):
    seq: int
    kind: str
    event_id: str
    twin_id: str
    revision: int
    ts: str
    data: dict[str, Any]

    @classmethod
    def of(cls, r: EventRecord) -> EventPublic:
        d = r.event.to_dict()
        return cls(seq=r.seq, kind=d["kind"], event_id=d["event_id"], twin_id=d["twin_id"],
                   revision=d["revision"], ts=ns_to_datetime(d["ts_ns"]).isoformat(),
                   data=d["data"])


class CommandCreate(_In):
    args: dict[str, Any] = Field(default_factory=dict)


class CommandAccepted(BaseModel):
    command_id: str
    twin_id: str
    name: str
    args: dict[str, Any]
    status: Literal["sent"] = "sent"


class KeyCreate(_In):
    name: str = Field(min_length=1, max_length=100)
    role: Literal["viewer", "operator", "engineer", "admin"]


class KeyPublic(BaseModel):
    key_id: str
    name: str
    role: str
    created: str
    revoked: bool

    @classmethod
    def of(cls, k: ApiKeyRecord) -> KeyPublic:
        return cls(key_id=k.key_id, name=k.name, role=k.role,
                   created=ns_to_datetime(k.created_ns).isoformat(), revoked=k.revoked)


class KeyCreated(KeyPublic):
    token: str = Field(description="shown once; store it now, it cannot be recovered")


class AuditPublic(BaseModel):
    ts: str
    actor: str
    action: str
    target: str
    outcome: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, a: AuditRecord) -> AuditPublic:
        return cls(ts=ns_to_datetime(a.ts_ns).isoformat(), actor=a.actor, action=a.action,
                   target=a.target, outcome=a.outcome, detail=a.detail)


class WhoAmI(BaseModel):
    key_id: str
    name: str
    role: str


__all__ = [
    "AuditPublic", "ChannelStatePublic", "CommandAccepted", "CommandCreate", "DesiredPatch",
    "EventPublic", "HistoryPublic", "KeyCreate", "KeyCreated", "KeyPublic", "ReachPublic",
    "RelationshipCreate", "RelationshipPublic", "TwinCreate", "TwinPatch", "TwinPublic",
    "TwinStatePublic", "WhoAmI",
]
