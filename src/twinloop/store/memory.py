"""`MemoryStore`: a complete in-process `Store` for unit tests and throwaway demos.

Readings stay Arrow tables (one per appended batch, concatenated lazily on the next read), so
even a test with a million readings never holds a Python object per reading. JSON-ish values
(twin properties, event data, audit detail) are round-tripped through JSON on write, so a test
sees exactly what a persistent backend would give back (tuples become lists, and so on).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twinloop.core.errors import ConflictError, NotFoundError, RevisionConflict, ValidationError
from twinloop.core.events import Event
from twinloop.core.readings import SCHEMA, TS_TYPE, ReadingBatch
from twinloop.store.protocol import (
    HISTORY_SCHEMA,
    ApiKeyRecord,
    Artifact,
    AuditRecord,
    EventRecord,
    QuarantineEntry,
    QuarantineRecord,
    QuarantineStatus,
    SeenDeltaLike,
    SeenDigest,
    SeenKeys,
    SeenSeq,
    check_artifact,
    check_outcome,
    quarantine_record,
    seen_rows,
)
from twinloop.twins.twin import Relationship, Twin


def _roundtrip(value: Any, what: str) -> Any:
    try:
        return json.loads(json.dumps(value, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValidationError(f"{what} is not JSON-serializable: {err}") from err


def _in(table: pa.Table, column: str, values: Sequence[str] | None) -> pa.Table:
    if values is None:
        return table
    return table.filter(pc.is_in(table.column(column), pa.array(list(values), pa.string())))


def _ts_range(table: pa.Table, start_ns: int | None, end_ns: int | None) -> pa.Table:
    ts = table.column("ts").cast(pa.int64())
    mask = pa.array(np.ones(table.num_rows, bool))
    if start_ns is not None:
        mask = pc.and_(mask, pc.greater_equal(ts, int(start_ns)))
    if end_ns is not None:
        mask = pc.and_(mask, pc.less(ts, int(end_ns)))
    return table.filter(mask)


def _sort(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    # Stable, so equal keys keep append order: on equal ts the later-appended reading is "last".
    idx = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys])
    return table.take(idx)


class MemoryStore:
    """A thread-safe `Store` held in memory; every method takes one lock."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._chunks: list[pa.Table] = []
        self._readings: pa.Table | None = SCHEMA.empty_table()
        # id -> snapshots in write order; the last one is current unless the id is in _deleted
        self._twins: dict[str, list[Twin]] = {}
        self._deleted: set[str] = set()
        self._rels: dict[tuple[str, str, str], Relationship] = {}
        self._events: list[EventRecord] = []
        self._audit: list[tuple[int, AuditRecord]] = []
        self._keys: dict[str, ApiKeyRecord] = {}
        self._meta: dict[str, str] = {}
        self._seen: dict[tuple[str, str], SeenSeq] = {}
        self._digests: dict[tuple[str, str], SeenDigest] = {}
        self._quarantine: list[QuarantineRecord] = []
        self._artifacts: dict[tuple[str, str], list[Artifact]] = {}

    def __repr__(self) -> str:
        return "MemoryStore()"

    # --- readings ---------------------------------------------------------------------------
    def _table(self) -> pa.Table:
        with self._lock:
            if self._readings is None:
                self._readings = pa.concat_tables(self._chunks).combine_chunks()
                self._chunks = [self._readings]
            return self._readings

    def append(self, batch: ReadingBatch) -> int:
        if len(batch) == 0:
            return 0
        with self._lock:
            self._chunks.append(batch.table)
            self._readings = None
        return len(batch)

    def latest(
        self, asset_ids: Sequence[str] | None = None, channels: Sequence[str] | None = None
    ) -> ReadingBatch:
        return ReadingBatch(self._table()).of(asset_ids, channels).newest()

    def _asset(
        self,
        asset_id: str,
        channels: Sequence[str] | None,
        start_ns: int | None,
        end_ns: int | None,
    ) -> pa.Table:
        table = self._table()
        table = table.filter(pc.equal(table.column("asset_id"), asset_id))
        return _ts_range(_in(table, "channel", channels), start_ns, end_ns)

    def history(
        self,
        asset_id: str,
        channels: Sequence[str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int | None = None,
    ) -> ReadingBatch:
        table = _sort(self._asset(asset_id, channels, start_ns, end_ns), ["channel", "ts"])
        if limit is not None:
            table = table.slice(0, max(int(limit), 0))
        return ReadingBatch(table)

    def history_buckets(
        self,
        asset_id: str,
        bucket_ns: int,
        channels: Sequence[str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ) -> pa.Table:
        if int(bucket_ns) <= 0:
            raise ValidationError(f"bucket_ns must be positive, got {bucket_ns}")
        table = self._asset(asset_id, channels, start_ns, end_ns)
        if table.num_rows == 0:
            return HISTORY_SCHEMA.empty_table()
        ts = table.column("ts").cast(pa.int64()).to_numpy()
        bucket = ts - np.mod(ts, int(bucket_ns))  # floored: epoch-aligned for negative ts too
        table = _sort(table.append_column("bucket", pa.array(bucket)), ["channel", "bucket", "ts"])
        grouped = table.group_by(["asset_id", "channel", "bucket"], use_threads=False).aggregate(
            [
                ("value", "count"),
                ("value", "mean"),
                ("value", "min"),
                ("value", "max"),
                ("value", "first"),
                ("value", "last"),
            ]
        )
        cols = {
            "asset_id": grouped.column("asset_id"),
            "channel": grouped.column("channel"),
            "bucket": grouped.column("bucket").cast(TS_TYPE),
            "count": grouped.column("value_count").cast(pa.int64()),
        }
        for agg in ("mean", "min", "max", "first", "last"):
            cols[agg] = grouped.column(f"value_{agg}").cast(pa.float64())
        out = pa.Table.from_pydict(cols, schema=HISTORY_SCHEMA)
        return _sort(out, ["channel", "bucket"])

    def count_readings(self, asset_id: str | None = None) -> int:
        table = self._table()
        if asset_id is None:
            return table.num_rows
        return int(pc.sum(pc.equal(table.column("asset_id"), asset_id)).as_py() or 0)

    # --- ingest ------------------------------------------------------------------------------
    def append_ingested(
        self,
        batch: ReadingBatch,
        seen: SeenDeltaLike | None = None,
        quarantine: Sequence[QuarantineEntry] = (),
        replayed: Sequence[int] = (),
        meta: Mapping[str, str] | None = None,
    ) -> list[int]:
        """Check everything first, then change everything under one lock: all or nothing."""
        seqs, digests, expire = seen_rows(seen)
        with self._lock:
            start = self._quarantine[-1].id if self._quarantine else 0
            records = [quarantine_record(e, start + i + 1) for i, e in enumerate(quarantine)]
            replayed_ids = {int(i) for i in replayed}
            if len(batch):
                self._chunks.append(batch.table)
                self._readings = None
            for row in seqs:
                self._seen[(row.source, row.device)] = row
            for d in digests:
                self._digests[(d.source, d.digest)] = d
            if expire is not None:
                self._digests = {k: d for k, d in self._digests.items() if d.received_ns >= expire}
            self._quarantine.extend(records)
            if replayed_ids:
                self._resolve(replayed_ids, "replayed", time.time_ns())
            self._meta.update({str(k): str(v) for k, v in (meta or {}).items()})
        return [r.id for r in records]

    def seen_keys(self, source: str | None = None) -> SeenKeys:
        with self._lock:
            seqs = [r for k, r in sorted(self._seen.items()) if source in (None, k[0])]
            digests = [d for k, d in sorted(self._digests.items()) if source in (None, k[0])]
        return SeenKeys(seqs=seqs, digests=digests)

    def quarantine(
        self,
        after_id: int = 0,
        reason: str | None = None,
        twin_id: str | None = None,
        limit: int = 100,
        status: QuarantineStatus | None = "open",
        ids: Sequence[int] | None = None,
    ) -> list[QuarantineRecord]:
        wanted = None if ids is None else {int(i) for i in ids}
        with self._lock:
            out = [
                r for r in self._quarantine
                if r.id > after_id and reason in (None, r.reason) and twin_id in (None, r.twin_id)
                and status in (None, r.status) and (wanted is None or r.id in wanted)
            ]
        return out[: max(int(limit), 0)]

    def count_quarantine(
        self, reason: str | None = None, status: QuarantineStatus | None = "open"
    ) -> int:
        with self._lock:
            return sum(
                1 for r in self._quarantine if reason in (None, r.reason) and status in (None, r.status)
            )

    def _resolve(self, ids: set[int], outcome: QuarantineStatus, resolved_ns: int) -> int:
        changed = 0
        for i, r in enumerate(self._quarantine):
            if r.id in ids and r.status == "open":
                self._quarantine[i] = replace(r, status=outcome, resolved_ns=resolved_ns)
                changed += 1
        return changed

    def resolve_quarantine(
        self, ids: Sequence[int], outcome: QuarantineStatus, resolved_ns: int | None = None
    ) -> int:
        check_outcome(outcome)
        with self._lock:
            return self._resolve({int(i) for i in ids}, outcome, resolved_ns or time.time_ns())

    def update_quarantine(self, updates: Mapping[int, tuple[str, str]]) -> None:
        with self._lock:
            for i, r in enumerate(self._quarantine):
                if r.id in updates and r.status == "open":
                    reason, message = updates[r.id]
                    self._quarantine[i] = replace(
                        r, reason=str(reason), message=str(message), attempts=r.attempts + 1
                    )

    # --- twins and relationships ------------------------------------------------------------
    def _current(self, twin_id: str) -> Twin | None:
        snaps = self._twins.get(twin_id)
        if not snaps or twin_id in self._deleted:
            return None
        return snaps[-1]

    def put_twin(self, twin: Twin, expected_revision: int | None = None) -> Twin:
        stored = replace(
            twin,
            attributes=_roundtrip(twin.attributes, f"attributes of twin {twin.id!r}"),
            reported=_roundtrip(twin.reported, f"reported properties of twin {twin.id!r}"),
            desired=_roundtrip(twin.desired, f"desired properties of twin {twin.id!r}"),
        )
        with self._lock:
            current = self._current(twin.id)
            if expected_revision == 0 and current is not None:
                raise ConflictError(
                    f"twin {twin.id!r} already exists (revision {current.revision})",
                    hint="update it with its current revision, or pick another id",
                )
            if expected_revision is not None and expected_revision > 0:
                if current is None:
                    raise NotFoundError(f"twin {twin.id!r} does not exist")
                if current.revision != expected_revision:
                    raise RevisionConflict(twin.id, expected_revision, current.revision)
            self._twins.setdefault(twin.id, []).append(stored)
            self._deleted.discard(twin.id)
        return twin

    def get_twin(self, twin_id: str, revision: int | None = None) -> Twin:
        with self._lock:
            if revision is None:
                twin = self._current(twin_id)
            else:
                matches = [t for t in self._twins.get(twin_id, []) if t.revision == revision]
                twin = matches[-1] if matches else None
        if twin is None:
            at = "" if revision is None else f" at revision {revision}"
            raise NotFoundError(f"twin {twin_id!r}{at} does not exist")
        return twin

    def twin_revisions(self, twin_id: str) -> list[int]:
        with self._lock:
            return sorted({t.revision for t in self._twins.get(twin_id, [])})

    def list_twins(self, type_id: str | None = None) -> list[Twin]:
        with self._lock:
            current = [self._current(i) for i in sorted(self._twins)]
        return [t for t in current if t is not None and type_id in (None, t.type_id)]

    def delete_twin(self, twin_id: str) -> None:
        with self._lock:
            if self._current(twin_id) is None:
                raise NotFoundError(f"twin {twin_id!r} does not exist")
            self._deleted.add(twin_id)
            self._rels = {k: r for k, r in self._rels.items() if twin_id not in (r.source, r.target)}

    def put_relationship(self, rel: Relationship) -> None:
        props = _roundtrip(rel.properties, f"properties of relationship {rel.key}")
        with self._lock:
            for end in dict.fromkeys((rel.source, rel.target)):
                if self._current(end) is None:
                    raise NotFoundError(
                        f"cannot relate {rel.source!r} -{rel.name}-> {rel.target!r}: "
                        f"twin {end!r} does not exist"
                    )
            self._rels[rel.key] = replace(rel, properties=props)

    def delete_relationship(self, source: str, name: str, target: str) -> None:
        with self._lock:
            if self._rels.pop((source, name, target), None) is None:
                raise NotFoundError(f"relationship {source!r} -{name}-> {target!r} does not exist")

    def list_relationships(
        self, source: str | None = None, name: str | None = None, target: str | None = None
    ) -> list[Relationship]:
        with self._lock:
            rels = [self._rels[k] for k in sorted(self._rels)]
        return [
            r
            for r in rels
            if source in (None, r.source) and name in (None, r.name) and target in (None, r.target)
        ]

    # --- events, audit, keys, meta ----------------------------------------------------------
    def append_events(self, events: Sequence[Event]) -> list[EventRecord]:
        stored = [Event.from_dict(_roundtrip(e.to_dict(), f"event {e.kind}")) for e in events]
        with self._lock:
            start = self._events[-1].seq if self._events else 0
            records = [EventRecord(start + i + 1, e) for i, e in enumerate(stored)]
            self._events.extend(records)
        return records

    def events(
        self,
        after_seq: int = 0,
        twin_id: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[EventRecord]:
        with self._lock:
            matches = [
                r
                for r in self._events
                if r.seq > after_seq
                and twin_id in (None, r.event.twin_id)
                and (kinds is None or r.event.kind in kinds)
            ]
        return matches[: max(int(limit), 0)]

    def append_audit(self, record: AuditRecord) -> None:
        stored = replace(record, detail=_roundtrip(record.detail, "audit detail"))
        with self._lock:
            self._audit.append((len(self._audit), stored))

    def audit(
        self, since_ns: int | None = None, actor: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        with self._lock:
            rows = sorted(self._audit, key=lambda sr: (sr[1].ts_ns, sr[0]))
        out = [r for _, r in rows if (since_ns is None or r.ts_ns >= since_ns) and actor in (None, r.actor)]
        return out[: max(int(limit), 0)]

    def put_key(self, key: ApiKeyRecord) -> None:
        with self._lock:
            self._keys[key.key_id] = key

    def get_key(self, key_id: str) -> ApiKeyRecord:
        with self._lock:
            key = self._keys.get(key_id)
        if key is None:
            raise NotFoundError(f"API key {key_id!r} does not exist")
        return key

    def list_keys(self) -> list[ApiKeyRecord]:
        with self._lock:
            return [self._keys[k] for k in sorted(self._keys)]

    # --- model artifacts ----------------------------------------------------------------------
    def put_artifact(
        self, kind: str, key: str, payload: bytes, meta: Mapping[str, Any], created_ns: int
    ) -> Artifact:
        payload = check_artifact(kind, key, payload)
        stored_meta = _roundtrip(dict(meta), f"meta of artifact {kind}/{key}")
        with self._lock:
            versions = self._artifacts.setdefault((kind, key), [])
            artifact = Artifact(kind, key, len(versions) + 1, int(created_ns), stored_meta, payload)
            versions.append(artifact)
        return replace(artifact, meta=_roundtrip(stored_meta, "artifact meta"))

    def artifact(self, kind: str, key: str, version: int | None = None) -> Artifact | None:
        with self._lock:
            versions = self._artifacts.get((kind, key), [])
            if version is None:
                found = versions[-1] if versions else None
            else:
                found = versions[int(version) - 1] if 1 <= int(version) <= len(versions) else None
        # a copy of meta, so a caller changing it does not change what is stored
        return None if found is None else replace(found, meta=_roundtrip(found.meta, "artifact meta"))

    def artifacts(self, kind: str | None = None, key: str | None = None) -> list[Artifact]:
        with self._lock:
            found = [a for k in sorted(self._artifacts) if kind in (None, k[0]) and key in (None, k[1])
                     for a in self._artifacts[k]]
        return [replace(a, meta=_roundtrip(a.meta, "artifact meta"), payload=b"") for a in found]

    def get_meta(self, key: str) -> str | None:
        with self._lock:
            return self._meta.get(key)

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._meta[key] = str(value)

    def close(self) -> None:
        """Nothing to flush; the data lives as long as the object."""


__all__ = ["MemoryStore"]
