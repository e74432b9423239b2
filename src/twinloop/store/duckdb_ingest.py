"""The ingest half of the DuckDB store: dedupe state and quarantine, SQL on a caller-held connection.

Callers (`DuckDBStore`) own locking and transactions. `append_ingested` runs every statement in
the caller's one transaction, converting entries only after the readings went in, so a bad entry
makes the whole transaction roll back: readings, dedupe rows and quarantine records are stored
together or not at all. Rows enter through registered Arrow tables, never ``executemany``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from twinloop.core.errors import ValidationError
from twinloop.core.readings import ReadingBatch
from twinloop.store import duckdb_readings as rd
from twinloop.store.protocol import (
    QuarantineEntry,
    QuarantineRecord,
    QuarantineStatus,
    SeenDeltaLike,
    SeenDigest,
    SeenKeys,
    SeenSeq,
    quarantine_record,
    seen_rows,
)

_SEEN_VIEW = "_twinloop_seen"
_DIGEST_VIEW = "_twinloop_digests"
_QUARANTINE_VIEW = "_twinloop_quarantine"
_COLUMNS = (
    "id, reason, message, payload, topic, source, received_ns, twin_id, channel, value, ts_ns, "
    "item, status, attempts, resolved_ns"
)


def _insert(con: duckdb.DuckDBPyConnection, view: str, table: pa.Table, sql: str) -> None:
    con.register(view, table)
    try:
        con.execute(sql)
    finally:
        con.unregister(view)


def append_ingested(
    con: duckdb.DuckDBPyConnection,
    batch: ReadingBatch,
    seen: SeenDeltaLike | None,
    quarantine: Sequence[QuarantineEntry],
    replayed: Sequence[int],
    resolved_ns: int,
) -> list[int]:
    """Readings, dedupe rows, quarantine records and replayed ids; inside the caller's transaction."""
    rd.append_batch(con, batch)
    table = _seen_table(seen.seqs) if seen is not None and seen.seqs else None
    _, digests, expire = seen_rows(_Digests(seen)) if seen is not None else ([], [], None)
    if table is not None:
        _insert(con, _SEEN_VIEW, table,
                f"INSERT OR REPLACE INTO ingest_seen SELECT * FROM {_SEEN_VIEW}")
    if digests:
        table = pa.table({
            "source": [d.source for d in digests],
            "digest": [d.digest for d in digests],
            "received_ns": pa.array([d.received_ns for d in digests], pa.int64()),
        })
        _insert(con, _DIGEST_VIEW, table,
                f"INSERT OR REPLACE INTO ingest_digests SELECT * FROM {_DIGEST_VIEW}")
    if expire is not None:
        con.execute("DELETE FROM ingest_digests WHERE received_ns < ?", [expire])
    ids: list[int] = []
    if quarantine:
        ids = sorted(
            int(r[0]) for r in
            con.execute("SELECT nextval('quarantine_seq') FROM range(?)", [len(quarantine)]).fetchall()
        )
        records = [quarantine_record(e, i) for e, i in zip(quarantine, ids, strict=True)]
        _insert(con, _QUARANTINE_VIEW, _quarantine_table(records),
                f"INSERT INTO quarantine SELECT * FROM {_QUARANTINE_VIEW}")
    if replayed:
        resolve(con, replayed, "replayed", resolved_ns)
    return ids


class _Digests:
    """A delta's digests and expiry only: the seq rows take the columnar path (`_seen_table`)."""

    seqs: tuple[()] = ()

    def __init__(self, seen: SeenDeltaLike) -> None:
        self.digests = seen.digests
        self.expire_before_ns = seen.expire_before_ns


def _seen_table(rows: Sequence[Any]) -> pa.Table:
    """One Arrow table of dedupe rows, column by column (one row per device touched by a batch);
    checked like `seen_rows`: ``above`` sorted and all above the watermark."""
    try:
        watermark = pa.array([r.watermark for r in rows], pa.int64())
        above = []
        for r in rows:
            if not r.above:
                above.append("")
                continue
            seqs = sorted(int(x) for x in r.above)
            if seqs[0] <= int(r.watermark):
                raise ValidationError(f"dedupe row {r.source!r}/{r.device!r}: seq {seqs[0]} is not above "
                                      f"the watermark {r.watermark}")
            above.append(",".join(map(str, seqs)))
        return pa.table({
            "source": pa.array([r.source for r in rows], pa.string()),
            "device": pa.array([r.device for r in rows], pa.string()),
            "watermark": watermark,
            "above": pa.array(above, pa.string()),
            "max_ts_ns": pa.array([r.max_ts_ns for r in rows], pa.int64()),
        })
    except (pa.ArrowException, TypeError, ValueError) as err:
        if isinstance(err, ValidationError):
            raise
        raise ValidationError(f"dedupe rows do not fit the store: {err}") from err


def _quarantine_table(records: Sequence[QuarantineRecord]) -> pa.Table:
    def col(name: str, kind: pa.DataType) -> pa.Array:
        return pa.array([getattr(r, name) for r in records], kind)

    return pa.table({
        "id": col("id", pa.int64()),
        "reason": col("reason", pa.string()),
        "message": col("message", pa.string()),
        "payload": col("payload", pa.binary()),
        "topic": col("topic", pa.string()),
        "source": col("source", pa.string()),
        "received_ns": col("received_ns", pa.int64()),
        "twin_id": col("twin_id", pa.string()),
        "channel": col("channel", pa.string()),
        "value": col("value", pa.float64()),
        "ts_ns": col("ts_ns", pa.int64()),
        "item": col("item", pa.string()),
        "status": col("status", pa.string()),
        "attempts": col("attempts", pa.int32()),
        "resolved_ns": col("resolved_ns", pa.int64()),
    })


def seen_keys(con: duckdb.DuckDBPyConnection, source: str | None) -> SeenKeys:
    """The stored dedupe rows and digests, of one source or all."""
    where, params = ("WHERE source = ?", [source]) if source is not None else ("", [])
    seqs = con.execute(
        f"SELECT source, device, watermark, above, max_ts_ns FROM ingest_seen {where} "
        "ORDER BY source, device", params
    ).fetchall()
    digests = con.execute(
        f"SELECT source, digest, received_ns FROM ingest_digests {where} ORDER BY source, digest",
        params,
    ).fetchall()
    return SeenKeys(
        seqs=[SeenSeq(r[0], r[1], int(r[2]), tuple(int(x) for x in r[3].split(",") if x), int(r[4]))
              for r in seqs],
        digests=[SeenDigest(r[0], r[1], int(r[2])) for r in digests],
    )


def _record(row: tuple[Any, ...]) -> QuarantineRecord:
    return QuarantineRecord(
        id=int(row[0]), reason=row[1], message=row[2], payload=bytes(row[3]), topic=row[4],
        source=row[5], received_ns=int(row[6]), twin_id=row[7], channel=row[8], value=row[9],
        ts_ns=None if row[10] is None else int(row[10]), item=row[11], status=row[12],
        attempts=int(row[13]), resolved_ns=None if row[14] is None else int(row[14]),
    )


def quarantine(
    con: duckdb.DuckDBPyConnection,
    after_id: int,
    reason: str | None,
    twin_id: str | None,
    limit: int,
    status: QuarantineStatus | None,
    ids: Sequence[int] | None,
) -> list[QuarantineRecord]:
    """Records with ``id > after_id`` matching the filters, ascending by id."""
    clauses, params = _filters(reason, status)
    clauses.append("id > ?")
    params.append(int(after_id))
    if twin_id is not None:
        clauses.append("twin_id = ?")
        params.append(twin_id)
    if ids is not None:
        clauses.append("list_contains(?, id)")
        params.append([int(i) for i in ids])
    params.append(max(int(limit), 0))
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM quarantine WHERE {' AND '.join(clauses)} ORDER BY id LIMIT ?",
        params,
    ).fetchall()
    return [_record(r) for r in rows]


def _filters(reason: str | None, status: str | None) -> tuple[list[str], list[Any]]:
    clauses: list[str] = ["true"]
    params: list[Any] = []
    if reason is not None:
        clauses.append("reason = ?")
        params.append(reason)
    if status is not None:
        clauses.append("status = ?")
        params.append(status)
    return clauses, params


def count_quarantine(
    con: duckdb.DuckDBPyConnection, reason: str | None, status: QuarantineStatus | None
) -> int:
    clauses, params = _filters(reason, status)
    rows = con.execute(f"SELECT count(*) FROM quarantine WHERE {' AND '.join(clauses)}", params).fetchall()
    return int(rows[0][0])


def resolve(
    con: duckdb.DuckDBPyConnection, ids: Sequence[int], outcome: QuarantineStatus, resolved_ns: int
) -> int:
    """Mark open records resolved; returns how many changed."""
    rows = con.execute(
        "UPDATE quarantine SET status = ?, resolved_ns = ? "
        "WHERE status = 'open' AND list_contains(?, id) RETURNING id",
        [outcome, int(resolved_ns), [int(i) for i in ids]],
    ).fetchall()
    return len(rows)


def update(con: duckdb.DuckDBPyConnection, updates: Mapping[int, tuple[str, str]]) -> None:
    """New reason and message for open records after a failed replay; counts the attempt."""
    table = pa.table({
        "id": pa.array([int(i) for i in updates], pa.int64()),
        "reason": [str(r) for r, _ in updates.values()],
        "message": [str(m) for _, m in updates.values()],
    })
    _insert(con, "_twinloop_qupdate", table,
            "UPDATE quarantine SET reason = u.reason, message = u.message, attempts = attempts + 1 "
            "FROM _twinloop_qupdate u WHERE quarantine.id = u.id AND quarantine.status = 'open'")


__all__ = ["append_ingested", "count_quarantine", "quarantine", "resolve", "seen_keys", "update"]
