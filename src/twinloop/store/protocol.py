"""The `Store` protocol: readings, twin snapshots, relationships, events, audit, API keys and
model artifacts.

Model artifacts (`Artifact`) are opaque payloads — a learned detector, a calibration, a trained
prognoser — kept in numbered versions per (kind, key), with metadata saying what they learned from;
the store neither reads nor interprets the payload (`twinloop.runtime.artifacts` does).

Only Arrow, numpy and plain dataclasses cross this seam, so a PostgreSQL backend can implement
it later without any DuckDB type leaking into callers. Every backend passes `store.checks`.

Ingest support: `Store.append_ingested` commits readings, the dedupe state that says which
messages they came from, and quarantine records in one transaction, so a crash between storing
and acknowledging a message can only lead to a redelivery that dedupe then removes. ``store`` and
``ingest`` sit side by side in the layering, so what ingest hands over is typed here structurally
(`SeenDeltaLike`, `QuarantineEntry`); what the store gives back is concrete (`SeenKeys`,
`QuarantineRecord`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import pyarrow as pa

from twinloop.core.errors import ValidationError
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


QuarantineStatus = Literal["open", "replayed", "discarded"]
QUARANTINE_STATUSES: tuple[QuarantineStatus, ...] = ("open", "replayed", "discarded")


@dataclass(frozen=True)
class QuarantineRecord:
    """A rejected reading or message as stored, with its reason and the raw payload it came in.

    ``item`` is the raw name inside the payload (a JSON key, a metric name) for a rejected reading,
    ``None`` for a whole rejected message; replay uses it to re-take only that reading. Records
    are never deleted: ``status`` moves from ``open`` to ``replayed`` or ``discarded``.
    """

    id: int
    reason: str
    message: str
    payload: bytes
    topic: str
    source: str
    received_ns: int
    twin_id: str | None = None
    channel: str | None = None
    value: float | None = None
    ts_ns: int | None = None
    item: str | None = None
    status: QuarantineStatus = "open"
    attempts: int = 1
    resolved_ns: int | None = None


class QuarantineEntry(Protocol):
    """What `Store.append_ingested` needs of a rejected reading (``ingest.Rejected`` is one)."""

    @property
    def reason(self) -> str: ...
    @property
    def message(self) -> str: ...
    @property
    def payload(self) -> bytes: ...
    @property
    def topic(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def received_ns(self) -> int: ...
    @property
    def twin_id(self) -> str | None: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def value(self) -> float | None: ...
    @property
    def ts_ns(self) -> int | None: ...
    @property
    def item(self) -> str | None: ...


@dataclass(frozen=True)
class SeenSeq:
    """Dedupe state of one device on one source: every seq <= ``watermark`` was seen, and so was
    each seq in ``above`` (sorted); ``max_ts_ns`` is the newest message time, which tells a
    device that restarted its count from a redelivery."""

    source: str
    device: str
    watermark: int
    above: tuple[int, ...] = ()
    max_ts_ns: int = 0


@dataclass(frozen=True)
class SeenDigest:
    """A message without a sequence number, remembered by a hash of its topic and payload."""

    source: str
    digest: str
    received_ns: int


class SeenSeqLike(Protocol):
    @property
    def source(self) -> str: ...
    @property
    def device(self) -> str: ...
    @property
    def watermark(self) -> int: ...
    @property
    def above(self) -> tuple[int, ...]: ...
    @property
    def max_ts_ns(self) -> int: ...


class SeenDigestLike(Protocol):
    @property
    def source(self) -> str: ...
    @property
    def digest(self) -> str: ...
    @property
    def received_ns(self) -> int: ...


class SeenDeltaLike(Protocol):
    """A change to the dedupe state: rows that replace the stored ones per (source, device),
    new digests, and digests received before ``expire_before_ns`` that may be forgotten."""

    @property
    def seqs(self) -> Sequence[SeenSeqLike]: ...
    @property
    def digests(self) -> Sequence[SeenDigestLike]: ...
    @property
    def expire_before_ns(self) -> int | None: ...


@dataclass(frozen=True)
class SeenKeys:
    """The stored dedupe state (of one source or all), loaded once when ingestion starts."""

    seqs: list[SeenSeq] = field(default_factory=list)
    digests: list[SeenDigest] = field(default_factory=list)
    expire_before_ns: int | None = None


@dataclass(frozen=True)
class Artifact:
    """A learned model as stored: version ``version`` (1, 2, … per ``(kind, key)``) of ``kind``
    (``detector``, ``calibration``, ``prognoser``, ``thresholds`` …) for ``key`` (a twin or type id).

    ``meta`` says what it learned from (twins, window start/end ns), when, with which metrics,
    model name and code version; JSON-ish. ``payload`` is opaque bytes; listings may leave it empty.
    """

    kind: str
    key: str
    version: int
    created_ns: int
    meta: dict[str, Any] = field(default_factory=dict)
    payload: bytes = b""


def check_artifact(kind: str, key: str, payload: Any) -> bytes:
    """Refuse an artifact a backend cannot store faithfully; returns the payload as ``bytes``."""
    for what, value in (("kind", kind), ("key", key)):
        if not isinstance(value, str) or not value.strip():
            raise ValidationError(f"an artifact's {what} must be a non-empty string, got {value!r}")
    if isinstance(payload, (bytearray, memoryview)):
        payload = bytes(payload)
    if not isinstance(payload, bytes):
        raise ValidationError(f"an artifact's payload must be bytes, got {type(payload).__name__}")
    return payload


def check_outcome(outcome: str) -> None:
    """Refuse anything but the two ways a quarantine record can be resolved."""
    if outcome not in ("replayed", "discarded"):
        raise ValidationError(
            f"a quarantine record is resolved as 'replayed' or 'discarded', not {outcome!r}"
        )


def _opt(value: Any, kind: type, what: str) -> Any:
    if value is None:
        return None
    try:
        return kind(value)
    except (TypeError, ValueError, OverflowError) as err:
        raise ValidationError(f"quarantine entry: {what} {value!r} is not a {kind.__name__}") from err


def quarantine_record(entry: QuarantineEntry, record_id: int) -> QuarantineRecord:
    """The stored form of a rejected entry; raises `ValidationError` for a malformed one, so a
    backend fails (and rolls back) before anything of the batch is visible."""
    payload = entry.payload
    if isinstance(payload, (bytearray, memoryview)):
        payload = bytes(payload)
    if not isinstance(payload, bytes):
        raise ValidationError(f"quarantine entry: payload must be bytes, got {type(payload).__name__}")
    reason = entry.reason
    if not isinstance(reason, str) or not reason:
        raise ValidationError(f"quarantine entry: reason must be a non-empty string, got {reason!r}")
    value = _opt(entry.value, float, "value")
    return QuarantineRecord(
        id=record_id,
        reason=reason,
        message=str(entry.message),
        payload=payload,
        topic=str(entry.topic),
        source=str(entry.source),
        received_ns=int(entry.received_ns),
        twin_id=_opt(entry.twin_id, str, "twin_id"),
        channel=_opt(entry.channel, str, "channel"),
        value=value,
        ts_ns=_opt(entry.ts_ns, int, "ts_ns"),
        item=_opt(entry.item, str, "item"),
    )


def seen_rows(
    seen: SeenDeltaLike | None,
) -> tuple[list[SeenSeq], list[SeenDigest], int | None]:
    """Concrete, checked rows of a dedupe delta (``above`` sorted, all above the watermark)."""
    if seen is None:
        return [], [], None
    seqs = []
    for row in seen.seqs:
        above = tuple(sorted(int(s) for s in row.above))
        if above and above[0] <= int(row.watermark):
            raise ValidationError(
                f"dedupe row {row.source!r}/{row.device!r}: seq {above[0]} is not above "
                f"the watermark {row.watermark}"
            )
        seqs.append(SeenSeq(str(row.source), str(row.device), int(row.watermark), above,
                            int(row.max_ts_ns)))
    digests = [SeenDigest(str(d.source), str(d.digest), int(d.received_ns)) for d in seen.digests]
    expire = seen.expire_before_ns
    return seqs, digests, None if expire is None else int(expire)


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

    # --- ingest: readings + dedupe state + quarantine, atomically -----------------------------
    def append_ingested(
        self,
        batch: ReadingBatch,
        seen: SeenDeltaLike | None = None,
        quarantine: Sequence[QuarantineEntry] = (),
        replayed: Sequence[int] = (),
        meta: Mapping[str, str] | None = None,
    ) -> list[int]:
        """Store readings, replace the dedupe rows in ``seen``, add quarantine records, mark
        the ``replayed`` quarantine ids resolved and set the ``meta`` keys, all in one transaction:
        either everything is stored or nothing is. Returns the ids given to the new quarantine
        records, in order. (``meta`` lets a journal record how far it was applied, atomically.)"""
        ...

    def seen_keys(self, source: str | None = None) -> SeenKeys:
        """The persisted dedupe state of one source (or of all), to resume after a restart."""
        ...

    def quarantine(
        self,
        after_id: int = 0,
        reason: str | None = None,
        twin_id: str | None = None,
        limit: int = 100,
        status: QuarantineStatus | None = "open",
        ids: Sequence[int] | None = None,
    ) -> list[QuarantineRecord]:
        """Quarantine records with ``id > after_id`` matching every filter, ascending by id
        (``status=None``: any status)."""
        ...

    def count_quarantine(
        self, reason: str | None = None, status: QuarantineStatus | None = "open"
    ) -> int:
        """How many quarantine records match."""
        ...

    def resolve_quarantine(
        self, ids: Sequence[int], outcome: QuarantineStatus, resolved_ns: int | None = None
    ) -> int:
        """Mark open records ``replayed`` or ``discarded`` (kept for audit); returns how many
        changed. Unknown or already resolved ids are left alone."""
        ...

    def update_quarantine(self, updates: Mapping[int, tuple[str, str]]) -> None:
        """Give open records a new ``(reason, message)`` after a failed replay; counts the attempt."""
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

    # --- model artifacts ----------------------------------------------------------------------
    def put_artifact(
        self, kind: str, key: str, payload: bytes, meta: Mapping[str, Any], created_ns: int
    ) -> Artifact:
        """Store the next version of ``(kind, key)`` (1 for the first); numbering and writing are
        atomic, so two writers never get the same version. `ValidationError` for an empty kind or
        key, a payload that is not bytes, or meta that is not JSON-serializable (nothing stored)."""
        ...

    def artifact(self, kind: str, key: str, version: int | None = None) -> Artifact | None:
        """One version with its payload (``None``: the latest), or None if there is none."""
        ...

    def artifacts(self, kind: str | None = None, key: str | None = None) -> list[Artifact]:
        """Versions matching the filters, ordered by (kind, key, version); metadata only (the
        payload may be ``b""``)."""
        ...

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
    "QUARANTINE_STATUSES",
    "ROLES",
    "ApiKeyRecord",
    "Artifact",
    "AuditRecord",
    "EventRecord",
    "QuarantineEntry",
    "QuarantineRecord",
    "QuarantineStatus",
    "Role",
    "SeenDeltaLike",
    "SeenDigest",
    "SeenDigestLike",
    "SeenKeys",
    "SeenSeq",
    "SeenSeqLike",
    "Store",
    "check_artifact",
    "check_outcome",
    "quarantine_record",
    "seen_rows",
]
