"""`DuckDBStore`: the embedded default store, everything in one DuckDB file (or ``":memory:"``).

One connection guarded by one lock: uvicorn calls sync routes from a thread pool, and a DuckDB
connection must not run two statements at once. Every write runs in an explicit transaction that
is rolled back on any failure, so a failed statement never leaves the connection in DuckDB's
"transaction aborted" state. Table layout and migrations live in `duckdb_schema`, the readings SQL
in `duckdb_readings`, twins and relationships in `duckdb_twins`, dedupe state and quarantine in
`duckdb_ingest`, model artifacts in `duckdb_artifacts`.

Folding `latest` (see `duckdb_readings`) takes 0.2-0.3 s, too long to hold the lock for: once enough
readings are unfolded, an append starts one fold on a thread with its own cursor and its own
transaction, and returns. Appends and reads go on meanwhile; ``latest()`` is exact either way.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from twinloop.core.errors import NotFoundError, StoreError, ValidationError
from twinloop.core.events import Event
from twinloop.core.readings import ReadingBatch
from twinloop.store import duckdb_artifacts as art
from twinloop.store import duckdb_ingest as ig
from twinloop.store import duckdb_readings as rd
from twinloop.store import duckdb_twins as tw
from twinloop.store.duckdb_schema import ensure_schema
from twinloop.store.protocol import (
    ApiKeyRecord,
    Artifact,
    AuditRecord,
    EventRecord,
    QuarantineEntry,
    QuarantineRecord,
    QuarantineStatus,
    SeenDeltaLike,
    SeenKeys,
    check_outcome,
)
from twinloop.twins.twin import Relationship, Twin

_log = logging.getLogger(__name__)


class DuckDBStore:
    """A `Store` in one DuckDB file; safe to share between threads of one process."""

    def __init__(self, path: str | Path) -> None:
        self._path = str(path)
        memory = self._path == ":memory:"
        self._where = "in-memory DuckDB store" if memory else f"DuckDB store {self._path!r}"
        self._lock = threading.RLock()
        self._fold_thread: threading.Thread | None = None
        self._unfolded = rd.FOLD_ROWS  # an estimate; the first append checks the real figure
        if not memory:
            try:
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise StoreError(
                    f"cannot create the directory for {self._where}: {err}",
                    hint="point the store at a writable location",
                ) from err
        try:
            self._con: duckdb.DuckDBPyConnection | None = duckdb.connect(self._path)
        except duckdb.Error as err:
            raise StoreError(
                f"cannot open {self._where}: {err}",
                hint="check that the file is a DuckDB database, is writable, and is not open "
                "in another process",
            ) from err
        try:
            with self._tx("create or migrate the schema") as con:
                ensure_schema(con, what=self._where)
        except RuntimeError as err:
            self.close()
            raise StoreError(str(err), hint="upgrade twinloop to open this file") from err
        except StoreError:
            self.close()
            raise

    @property
    def path(self) -> str:
        return self._path

    def __repr__(self) -> str:
        return f"DuckDBStore({self._path!r})"

    # --- plumbing ---------------------------------------------------------------------------
    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise StoreError(f"{self._where} is closed")
        return self._con

    @contextmanager
    def _tx(self, what: str) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction under the lock; rolled back on any error, DuckDB errors wrapped."""
        with self._lock:
            con = self._connection()
            try:
                con.execute("BEGIN TRANSACTION")
                yield con
                con.execute("COMMIT")
            except BaseException as err:
                try:
                    con.execute("ROLLBACK")
                except duckdb.Error:
                    pass  # nothing open (BEGIN or COMMIT itself failed): already clean
                if isinstance(err, duckdb.Error):
                    raise StoreError(f"{self._where}: {what} failed: {err}") from err
                raise

    @contextmanager
    def _read(self, what: str) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            con = self._connection()
            try:
                yield con
            except duckdb.Error as err:
                raise StoreError(f"{self._where}: {what} failed: {err}") from err

    # --- readings ---------------------------------------------------------------------------
    def append(self, batch: ReadingBatch) -> int:
        """Store a batch and update `latest` in one committed transaction."""
        if len(batch) == 0:
            return 0
        with self._lock:
            with self._tx(f"appending {len(batch)} readings") as con:
                n = rd.append_batch(con, batch)
            self._maybe_fold(n)
        return n

    def _maybe_fold(self, appended: int) -> None:
        """After a committed append (under the lock): start a background fold when one is due."""
        self._unfolded += appended
        if self._unfolded < rd.FOLD_ROWS or self._con is None:
            return
        if self._fold_thread is not None and self._fold_thread.is_alive():
            return
        try:
            self._unfolded = rd.unfolded(self._con)
            if self._unfolded < rd.FOLD_ROWS:
                return
            cursor = self._con.cursor()
        except duckdb.Error as err:  # the append is committed; folding is only an optimization
            _log.warning("%s: checking for a fold of latest values failed: %s", self._where, err)
            return
        self._unfolded = 0  # the fold takes what is committed now; later appends count from here
        thread = threading.Thread(target=self._fold, args=(cursor,), name="duckdb-fold", daemon=True)
        self._fold_thread = thread
        thread.start()

    def _fold(self, cursor: duckdb.DuckDBPyConnection) -> None:
        """Fold `latest` in a transaction of its own; a failure leaves the readings unfolded, never lost."""
        try:
            cursor.execute("BEGIN TRANSACTION")
            rd.fold_latest(cursor)
            cursor.execute("COMMIT")
        except duckdb.Error as err:
            try:
                cursor.execute("ROLLBACK")
            except duckdb.Error:
                pass  # nothing open
            _log.warning("%s: folding latest values failed (the next append retries): %s", self._where, err)
            with self._lock:
                self._unfolded = rd.FOLD_ROWS
        finally:
            cursor.close()

    def wait_for_fold(self, timeout_s: float | None = None) -> bool:
        """Wait for a background fold of `latest` to end; False if one is still running (tests, close)."""
        thread = self._fold_thread
        if thread is not None:
            thread.join(timeout_s)
            return not thread.is_alive()
        return True

    def latest(
        self, asset_ids: Sequence[str] | None = None, channels: Sequence[str] | None = None
    ) -> ReadingBatch:
        with self._tx("reading latest values") as con:  # one snapshot, see `duckdb_readings.latest`
            return rd.latest(con, asset_ids, channels)

    def history(
        self,
        asset_id: str,
        channels: Sequence[str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        limit: int | None = None,
    ) -> ReadingBatch:
        with self._read(f"reading history of {asset_id!r}") as con:
            return rd.history(con, asset_id, channels, start_ns, end_ns, limit)

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
        with self._read(f"aggregating history of {asset_id!r}") as con:
            return rd.history_buckets(con, asset_id, bucket_ns, channels, start_ns, end_ns)

    def count_readings(self, asset_id: str | None = None) -> int:
        with self._read("counting readings") as con:
            return rd.count_readings(con, asset_id)

    # --- ingest ------------------------------------------------------------------------------
    def append_ingested(
        self,
        batch: ReadingBatch,
        seen: SeenDeltaLike | None = None,
        quarantine: Sequence[QuarantineEntry] = (),
        replayed: Sequence[int] = (),
        meta: Mapping[str, str] | None = None,
    ) -> list[int]:
        """Readings, dedupe rows and quarantine records in one transaction (see `duckdb_ingest`)."""
        what = f"storing {len(batch)} ingested readings and {len(quarantine)} quarantine records"
        with self._lock:
            with self._tx(what) as con:
                ids = ig.append_ingested(con, batch, seen, quarantine, replayed, time.time_ns())
                for key, value in (meta or {}).items():
                    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [str(key), str(value)])
            self._maybe_fold(len(batch))
        return ids

    def seen_keys(self, source: str | None = None) -> SeenKeys:
        with self._read("reading the dedupe state") as con:
            return ig.seen_keys(con, source)

    def quarantine(
        self,
        after_id: int = 0,
        reason: str | None = None,
        twin_id: str | None = None,
        limit: int = 100,
        status: QuarantineStatus | None = "open",
        ids: Sequence[int] | None = None,
    ) -> list[QuarantineRecord]:
        with self._read("reading the quarantine") as con:
            return ig.quarantine(con, after_id, reason, twin_id, limit, status, ids)

    def count_quarantine(
        self, reason: str | None = None, status: QuarantineStatus | None = "open"
    ) -> int:
        with self._read("counting the quarantine") as con:
            return ig.count_quarantine(con, reason, status)

    def resolve_quarantine(
        self, ids: Sequence[int], outcome: QuarantineStatus, resolved_ns: int | None = None
    ) -> int:
        check_outcome(outcome)
        if not ids:
            return 0
        with self._tx(f"resolving {len(ids)} quarantine records as {outcome}") as con:
            return ig.resolve(con, ids, outcome, resolved_ns or time.time_ns())

    def update_quarantine(self, updates: Mapping[int, tuple[str, str]]) -> None:
        if not updates:
            return
        with self._tx(f"updating {len(updates)} quarantine records") as con:
            ig.update(con, updates)

    # --- twins and relationships ------------------------------------------------------------
    def put_twin(self, twin: Twin, expected_revision: int | None = None) -> Twin:
        """Check ``expected_revision`` and write the snapshot in one transaction."""
        with self._tx(f"writing twin {twin.id!r}") as con:
            tw.put(con, twin, expected_revision)
        return twin

    def get_twin(self, twin_id: str, revision: int | None = None) -> Twin:
        """Revisions stay readable after deletion (for audit); the current one does not."""
        with self._read(f"reading twin {twin_id!r}") as con:
            twin = tw.current(con, twin_id) if revision is None else (tw.at_revision(con, twin_id, revision))
        if twin is None:
            at = "" if revision is None else f" at revision {revision}"
            raise NotFoundError(f"twin {twin_id!r}{at} does not exist")
        return twin

    def twin_revisions(self, twin_id: str) -> list[int]:
        with self._read(f"listing revisions of twin {twin_id!r}") as con:
            return tw.revisions(con, twin_id)

    def list_twins(self, type_id: str | None = None) -> list[Twin]:
        with self._read("listing twins") as con:
            return tw.list_current(con, type_id)

    def delete_twin(self, twin_id: str) -> None:
        with self._tx(f"deleting twin {twin_id!r}") as con:
            tw.delete(con, twin_id)

    def put_relationship(self, rel: Relationship) -> None:
        with self._tx(f"writing relationship {rel.key}") as con:
            tw.put_relationship(con, rel)

    def delete_relationship(self, source: str, name: str, target: str) -> None:
        with self._tx(f"deleting relationship {(source, name, target)}") as con:
            tw.delete_relationship(con, source, name, target)

    def list_relationships(
        self, source: str | None = None, name: str | None = None, target: str | None = None
    ) -> list[Relationship]:
        with self._read("listing relationships") as con:
            return tw.list_relationships(con, source, name, target)

    # --- events, audit, keys, meta ----------------------------------------------------------
    def append_events(self, events: Sequence[Event]) -> list[EventRecord]:
        """Assign seqs from the sequence in input order and insert all events in one transaction."""
        if not events:
            return []
        dicts = [e.to_dict() for e in events]
        data = [tw.json_text(d["data"], f"data of event {d['kind']}") for d in dicts]
        with self._tx(f"appending {len(events)} events") as con:
            # Sorting makes seq follow input order whatever order DuckDB evaluates nextval in.
            seqs = sorted(
                int(r[0])
                for r in con.execute("SELECT nextval('event_seq') FROM range(?)", [len(events)]).fetchall()
            )
            table = pa.table(
                {
                    "seq": pa.array(seqs, pa.int64()),
                    "event_id": [d["event_id"] for d in dicts],
                    "kind": [d["kind"] for d in dicts],
                    "twin_id": [d["twin_id"] for d in dicts],
                    "revision": pa.array([d["revision"] for d in dicts], pa.int64()),
                    "ts_ns": pa.array([d["ts_ns"] for d in dicts], pa.int64()),
                    "data": data,
                }
            )
            con.register("_twinloop_events", table)
            try:
                con.execute("INSERT INTO events SELECT * FROM _twinloop_events")
            finally:
                con.unregister("_twinloop_events")
        return [EventRecord(s, e) for s, e in zip(seqs, events, strict=True)]

    def events(
        self,
        after_seq: int = 0,
        twin_id: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[EventRecord]:
        clauses, params = ["seq > ?"], [int(after_seq)]
        if twin_id is not None:
            clauses.append("twin_id = ?")
            params.append(twin_id)
        if kinds is not None:
            clauses.append("list_contains(?, kind)")
            params.append(list(kinds))
        params.append(max(int(limit), 0))
        with self._read("reading events") as con:
            rows = con.execute(
                "SELECT seq, kind, event_id, twin_id, revision, ts_ns, data FROM events "
                f"WHERE {' AND '.join(clauses)} ORDER BY seq LIMIT ?",
                params,
            ).fetchall()
        return [
            EventRecord(
                int(r[0]),
                Event.from_dict(
                    {
                        "kind": r[1],
                        "event_id": r[2],
                        "twin_id": r[3],
                        "revision": r[4],
                        "ts_ns": r[5],
                        "data": json.loads(r[6]),
                    }
                ),
            )
            for r in rows
        ]

    def append_audit(self, record: AuditRecord) -> None:
        detail = tw.json_text(record.detail, "audit detail")
        with self._tx("appending an audit record") as con:
            con.execute(
                "INSERT INTO audit (ts_ns, actor, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?)",
                [record.ts_ns, record.actor, record.action, record.target, record.outcome, detail],
            )

    def audit(
        self, since_ns: int | None = None, actor: str | None = None, limit: int = 1000
    ) -> list[AuditRecord]:
        clauses, params = ["true"], []
        if since_ns is not None:
            clauses.append("ts_ns >= ?")
            params.append(int(since_ns))
        if actor is not None:
            clauses.append("actor = ?")
            params.append(actor)
        params.append(max(int(limit), 0))
        with self._read("reading the audit log") as con:
            rows = con.execute(
                "SELECT ts_ns, actor, action, target, outcome, detail FROM audit "
                f"WHERE {' AND '.join(clauses)} ORDER BY ts_ns, seq LIMIT ?",
                params,
            ).fetchall()
        return [AuditRecord(int(r[0]), r[1], r[2], r[3], r[4], json.loads(r[5])) for r in rows]

    def put_key(self, key: ApiKeyRecord) -> None:
        with self._tx(f"writing API key {key.key_id!r}") as con:
            con.execute(
                "INSERT OR REPLACE INTO api_keys VALUES (?, ?, ?, ?, ?, ?)",
                [key.key_id, key.name, key.role, key.secret_hash, key.created_ns, key.revoked],
            )

    def _keys(self, where: str, params: list[Any]) -> list[ApiKeyRecord]:
        with self._read("reading API keys") as con:
            rows = con.execute(
                "SELECT key_id, name, role, secret_hash, created_ns, revoked FROM api_keys "
                f"{where} ORDER BY key_id",
                params,
            ).fetchall()
        return [ApiKeyRecord(r[0], r[1], r[2], r[3], int(r[4]), bool(r[5])) for r in rows]

    def get_key(self, key_id: str) -> ApiKeyRecord:
        keys = self._keys("WHERE key_id = ?", [key_id])
        if not keys:
            raise NotFoundError(f"API key {key_id!r} does not exist")
        return keys[0]

    def list_keys(self) -> list[ApiKeyRecord]:
        return self._keys("", [])

    # --- model artifacts ----------------------------------------------------------------------
    def put_artifact(
        self, kind: str, key: str, payload: bytes, meta: Mapping[str, Any], created_ns: int
    ) -> Artifact:
        """Number and insert the next version in one transaction (see `duckdb_artifacts`)."""
        with self._tx(f"storing a {kind} artifact for {key!r}") as con:
            return art.put(con, kind, key, payload, meta, created_ns)

    def artifact(self, kind: str, key: str, version: int | None = None) -> Artifact | None:
        with self._read(f"reading the {kind} artifact of {key!r}") as con:
            return art.get(con, kind, key, version)

    def artifacts(self, kind: str | None = None, key: str | None = None) -> list[Artifact]:
        with self._read("listing artifacts") as con:
            return art.listing(con, kind, key)

    def get_meta(self, key: str) -> str | None:
        with self._read(f"reading meta {key!r}") as con:
            rows = con.execute("SELECT value FROM meta WHERE key = ?", [key]).fetchall()
        return rows[0][0] if rows else None

    def set_meta(self, key: str, value: str) -> None:
        with self._tx(f"writing meta {key!r}") as con:
            con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [key, str(value)])

    def close(self) -> None:
        """Checkpoint (fold the WAL into the file) and close; idempotent."""
        with self._lock:
            self.wait_for_fold()  # a fold needs no lock; it must end before the connection closes
            con, self._con = self._con, None
            if con is None:
                return
            try:
                if self._path != ":memory:":
                    con.execute("CHECKPOINT")
            except duckdb.Error:
                pass  # the WAL is replayed on the next open; closing must not fail
            finally:
                con.close()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = ["DuckDBStore"]
