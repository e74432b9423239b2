"""The `Store` protocol: readings, twin snapshots, relationships, events, audit and API keys.

Only Arrow, numpy and plain dataclasses cross this seam, so a PostgreSQL backend can implement
it later without any DuckDB type leaking into callers. Every backend passes `store.checks`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import pyarrow as pa

from twinloop.core.events import Event
from twinloop.core.readings import TS_TYPE, ReadingBatch
from twinloop.twins.twin import Relationship, Twin

Aggregate = Literal["mean", "min", "max", "last", "first", "count"]
AGGREGATES: tuple[Aggregate, ...] = ("mean", "min", "max", "last", "first", "count")

#: Columns of an aggregated history: one row per (asset, channel, bucket); every aggregate is
#: always present so callers can rely on the shape.
HISTORY_SCHEMA = pa.schema(
    [
        pa.field("asset_id", pa.string()),
        pa.field("channel", pa.string()),
        pa.field("bucket", TS_TYPE),
        pa.field("count", pa.int64()),
        pa.field("mean", pa.float64()),
        pa.field("min", pa.float64()),
        pa.field("max", pa.float64()),
        pa.field("first", pa.float64()),
        pa.field("last", pa.float64()),
    ]
)


@dataclass(frozen=True)
class EventRecord:
    """An event as stored: ``seq`` is a store-assigned, strictly increasing cursor."""

    seq: int
    event: Event


@dataclass(frozen=True)
class AuditRecord:
    """Who did what to which thing, and how it ended. Audit records are never changed."""

    ts_ns: int
    actor: str
    action: str
    target: str = ""
    outcome: str = "ok"
    detail: dict[str, Any] = field(default_factory=dict)


Role = Literal["viewer", "operator", "engineer", "admin"]
ROLES: tuple[Role, ...] = ("viewer", "operator", "engineer", "admin")


@dataclass(frozen=True)
class ApiKeyRecord:
    """An API key as stored: only a hash of its secret, never the secret itself."""

    key_id: str
    name: str
    role: Role
    secret_hash: str
    created_ns: int
    revoked: bool = False


@runtime_checkable
class Store(Protocol):
    """Persistence for everything twinloop must not lose. Implementations are thread-safe."""

    # --- readings ---------------------------------------------------------------------------
    def append(self, batch: ReadingBatch) -> int:
        """Durably store a batch; returns the number of readings stored. Returns after commit."""
        ...

    def latest(
        self, asset_ids: Sequence[str] | None = None, channels: Sequence[str] | None = None
    ) -> ReadingBatch:
        """The newest reading (by ``ts``) per (asset, channel), optionally filtered."""
        ...

    def history(
        self,
        asset_id: str,
        channels: Sequence[str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int | None = None,
    ) -> ReadingBatch:
        """Raw readings of one asset with ``start_ns <= ts < end_ns``, ordered by channel then ts."""
        ...

    def history_buckets(
        self,
        asset_id: str,
        bucket_ns: int,
        channels: Sequence[str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> pa.Table:
        """Per-bucket aggregates with `HISTORY_SCHEMA`; buckets align to the epoch
        (``bucket = ts - ts % bucket_ns``), empty buckets are absent, rows ordered by channel, bucket."""
        ...

    def count_readings(self, asset_id: str | None = None) -> int:
        """How many readings are stored (for one asset, or all)."""
        ...

    # --- twins and relationships ------------------------------------------------------------
    def put_twin(self, twin: Twin, expected_revision: int | None = None) -> Twin:
        """Store a snapshot of ``twin`` (its ``revision`` as given).

        ``expected_revision``: ``None`` stores unconditionally; ``0`` requires that the twin does
        not exist yet (else `ConflictError`); ``n > 0`` requires the stored revision to be ``n``
        (else `RevisionConflict`, or `NotFoundError` if absent). Check and write are atomic.
        """
        ...

    def get_twin(self, twin_id: str, revision: int | None = None) -> Twin:
        """The current snapshot, or the one at ``revision``; `NotFoundError` if absent."""
        ...

    def twin_revisions(self, twin_id: str) -> list[int]:
        """All stored revisions of a twin, ascending (kept after deletion for audit)."""
        ...

    def list_twins(self, type_id: str | None = None) -> list[Twin]:
        """Current snapshots of all existing twins, ordered by id."""
        ...

    def delete_twin(self, twin_id: str) -> None:
        """Remove a twin and every relationship touching it; `NotFoundError` if absent."""
        ...

    def put_relationship(self, rel: Relationship) -> None:
        """Add or replace (same source, name, target) an edge; both ends must exist."""
        ...

    def delete_relationship(self, source: str, name: str, target: str) -> None:
        """Remove one edge; `NotFoundError` if absent."""
        ...

    def list_relationships(
        self, source: str | None = None, name: str | None = None, target: str | None = None
    ) -> list[Relationship]:
        """Edges matching every given filter, ordered by (source, name, target)."""
        ...

    # --- events, audit, keys, meta ----------------------------------------------------------
    def append_events(self, events: Sequence[Event]) -> list[EventRecord]:
        """Persist events in order; returns them with their assigned ``seq``."""
        ...

    def events(
        self,
        after_seq: int = 0,
        twin_id: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[EventRecord]:
        """Events with ``seq > after_seq`` matching the filters, ascending by seq."""
        ...

    def append_audit(self, record: AuditRecord) -> None: ...

    def audit(
        self, since_ns: int | None = None, actor: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        """Audit records, oldest first."""
        ...

    def put_key(self, key: ApiKeyRecord) -> None:
        """Add or replace a key record."""
        ...

    def get_key(self, key_id: str) -> ApiKeyRecord:
        """`NotFoundError` if absent."""
        ...

    def list_keys(self) -> list[ApiKeyRecord]: ...

    def get_meta(self, key: str) -> str | None:
        """Small persistent settings of the store itself (schema version, bootstrap done …)."""
        ...

    def set_meta(self, key: str, value: str) -> None: ...

    def close(self) -> None:
        """Flush and release resources; further calls may fail."""
        ...


__all__ = [
    "AGGREGATES",
    "HISTORY_SCHEMA",
    "ROLES",
    "ApiKeyRecord",
    "AuditRecord",
    "EventRecord",
    "Role",
    "Store",
]
