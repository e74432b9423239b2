"""The readings half of the DuckDB store: Arrow in, Arrow out, SQL on a caller-held connection.

Callers (`DuckDBStore`) own locking and transactions; these functions only speak SQL. Batches
enter through a registered Arrow view and leave as Arrow, so no reading ever becomes a Python
object on the way.

`latest` is kept in two tiers, because DuckDB's ``INSERT … ON CONFLICT`` into the indexed
``latest`` table costs 10-20 ms per statement however small the batch (it grows with the table),
which alone would blow a 50 ms publish-to-commit budget. Readings are never deleted, so a row's
``rowid`` is its append order; ``meta['latest_folded_rows']`` says how many readings ``latest``
already reflects. An append only inserts its readings; once ``FOLD_ROWS`` readings are past the
fold point, the store folds them into ``latest`` (one upsert, 0.2-0.3 s) and moves the fold point,
in one transaction of its own on a background cursor, so no append waits for it. `latest` answers
from ``latest`` plus the readings past the fold point, read in one snapshot, so the result is always
exact whether a fold is running, committed or lost.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from twinloop.core.readings import SCHEMA, TS_TYPE, ReadingBatch
from twinloop.store.protocol import HISTORY_SCHEMA

_VIEW = "_twinloop_batch"

FOLD_ROWS = 250_000
"""Readings past the fold point that trigger folding them into ``latest`` (see the module docstring)."""
_FOLD_KEY = "latest_folded_rows"
_INSERT_READINGS = f"INSERT INTO readings SELECT * FROM {_VIEW}"
_PENDING = """
SELECT (SELECT count(*) FROM readings),
       coalesce((SELECT TRY_CAST(value AS BIGINT) FROM meta WHERE key = ?), 0)
"""
# Newest per (asset, channel) of the readings past the fold point, merged into `latest` only where it
# is newer; on equal ts the later append (higher rowid) wins. `arg_max` over a struct keeps value
# and quality from the same row.
_FOLD = """
INSERT INTO latest
SELECT asset_id, channel, newest['ts'], newest['value'], newest['quality'] FROM (
    SELECT asset_id, channel,
           arg_max({'ts': ts, 'value': value, 'quality': quality}, {'ts': ts, 'row': rowid}) AS newest
    FROM readings WHERE rowid >= ? GROUP BY asset_id, channel)
ON CONFLICT (asset_id, channel) DO UPDATE
SET ts = excluded.ts, value = excluded.value, quality = excluded.quality
WHERE excluded.ts >= latest.ts
"""


def append_batch(con: duckdb.DuckDBPyConnection, batch: ReadingBatch) -> int:
    """Insert a batch inside the caller's transaction (folding `latest` is the store's job)."""
    table = batch.table
    if table.num_rows == 0:
        return 0
    # int64 view of the ns timestamps (zero-copy): a tz-aware Arrow timestamp would become a
    # microsecond TIMESTAMPTZ inside DuckDB and lose the nanoseconds.
    table = table.set_column(2, "ts", table.column("ts").cast(pa.int64()))
    con.register(_VIEW, table)
    try:
        con.execute(_INSERT_READINGS)
    finally:
        con.unregister(_VIEW)
    return table.num_rows


def unfolded(con: duckdb.DuckDBPyConnection) -> int:
    """Readings past the fold point (a fold is due when this reaches ``FOLD_ROWS``)."""
    total, folded = _fold_point(con)
    return total - folded


def _fold_point(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """(readings stored, readings already reflected in `latest`)."""
    total, folded = con.execute(_PENDING, [_FOLD_KEY]).fetchall()[0]
    return int(total), int(folded)


def fold_latest(con: duckdb.DuckDBPyConnection, total: int | None = None, folded: int | None = None) -> int:
    """Fold the readings past the fold point into `latest`; returns how many; inside a transaction.

    Only the readings of the transaction's snapshot are folded and counted in ``total``: appends that
    commit meanwhile take rowids from ``total`` up and stay past the new fold point. Run one at a time.
    """
    if total is None or folded is None:
        total, folded = _fold_point(con)
    if total > folded:
        con.execute(_FOLD, [folded])
        con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [_FOLD_KEY, str(total)])
    return total - folded


def _where(clauses: list[str], params: list[Any], column: str, values: Sequence[Any] | None) -> None:
    if values is not None:
        clauses.append(f"list_contains(?, {column})")
        params.append(list(values))


def _bounds(clauses: list[str], params: list[Any], start_ns: int | None, end_ns: int | None) -> None:
    if start_ns is not None:
        clauses.append("ts >= ?")
        params.append(int(start_ns))
    if end_ns is not None:
        clauses.append("ts < ?")
        params.append(int(end_ns))


def _to_batch(table: pa.Table) -> ReadingBatch:
    cols = [
        table.column("asset_id").cast(pa.string()),
        table.column("channel").cast(pa.string()),
        table.column("ts").cast(pa.int64()).cast(TS_TYPE),
        table.column("value").cast(pa.float64()),
        table.column("quality").cast(pa.uint8()),
    ]
    return ReadingBatch(pa.Table.from_arrays(cols, schema=SCHEMA))


def _arrow(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> pa.Table:
    return con.sql(sql, params=params).to_arrow_table()


def latest(
    con: duckdb.DuckDBPyConnection,
    asset_ids: Sequence[str] | None,
    channels: Sequence[str] | None,
) -> ReadingBatch:
    """The newest reading per (asset, channel): `latest` merged with the readings past the fold point.

    Call it inside a transaction, so that the fold point and both tables come from one snapshot.
    """
    _, folded = _fold_point(con)
    clauses: list[str] = ["true"]
    params: list[Any] = []
    _where(clauses, params, "asset_id", asset_ids)
    _where(clauses, params, "channel", channels)
    where = " AND ".join(clauses)
    sql = f"""
    SELECT asset_id, channel, newest['ts'] AS ts, newest['value'] AS value, newest['quality'] AS quality
    FROM (SELECT asset_id, channel,
                 arg_max({{'ts': ts, 'value': value, 'quality': quality}}, {{'ts': ts, 'row': row}}) AS newest
          FROM (SELECT asset_id, channel, ts, value, quality, -1 AS row FROM latest WHERE {where}
                UNION ALL
                SELECT asset_id, channel, ts, value, quality, rowid AS row FROM readings
                WHERE rowid >= ? AND {where})
          GROUP BY asset_id, channel)
    ORDER BY asset_id, channel
    """
    return _to_batch(_arrow(con, sql, [*params, folded, *params]))


def history(
    con: duckdb.DuckDBPyConnection,
    asset_id: str,
    channels: Sequence[str] | None,
    start_ns: int | None,
    end_ns: int | None,
    limit: int | None,
) -> ReadingBatch:
    """Raw readings of one asset in ``[start_ns, end_ns)``, ordered by channel then ts."""
    clauses = ["asset_id = ?"]
    params: list[Any] = [asset_id]
    _where(clauses, params, "channel", channels)
    _bounds(clauses, params, start_ns, end_ns)
    sql = (
        "SELECT asset_id, channel, ts, value, quality FROM readings "
        f"WHERE {' AND '.join(clauses)} ORDER BY channel, ts"
    )
    if limit is not None:
        sql += " LIMIT ?"
        params.append(max(int(limit), 0))
    return _to_batch(_arrow(con, sql, params))


def history_buckets(
    con: duckdb.DuckDBPyConnection,
    asset_id: str,
    bucket_ns: int,
    channels: Sequence[str] | None,
    start_ns: int | None,
    end_ns: int | None,
) -> pa.Table:
    """Epoch-aligned per-bucket aggregates with `HISTORY_SCHEMA` (floored for negative ts)."""
    clauses = ["asset_id = ?"]
    params: list[Any] = [int(bucket_ns)] * 3 + [asset_id]
    _where(clauses, params, "channel", channels)
    _bounds(clauses, params, start_ns, end_ns)
    sql = f"""
    SELECT asset_id, channel, bucket,
           count(*)::BIGINT AS count, avg(value) AS mean, min(value) AS min, max(value) AS max,
           arg_min(value, ts) AS first, arg_max(value, ts) AS last
    FROM (SELECT asset_id, channel, ts, value,
                 ts - ((ts % ?) + ?) % ? AS bucket
          FROM readings WHERE {" AND ".join(clauses)})
    GROUP BY asset_id, channel, bucket
    ORDER BY channel, bucket
    """
    table = _arrow(con, sql, params)
    cols = [
        table.column(f.name).cast(pa.int64()).cast(TS_TYPE)
        if f.name == "bucket"
        else table.column(f.name).cast(f.type)
        for f in HISTORY_SCHEMA
    ]
    return pa.Table.from_arrays(cols, schema=HISTORY_SCHEMA)


def count_readings(con: duckdb.DuckDBPyConnection, asset_id: str | None) -> int:
    """Stored readings, for one asset or all."""
    if asset_id is None:
        rows = con.execute("SELECT count(*) FROM readings").fetchall()
    else:
        rows = con.execute("SELECT count(*) FROM readings WHERE asset_id = ?", [asset_id]).fetchall()
    return int(rows[0][0])


__all__ = [
    "FOLD_ROWS", "append_batch", "count_readings", "fold_latest", "history", "history_buckets", "latest",
    "unfolded",
]
