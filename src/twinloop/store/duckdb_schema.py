"""The DuckDB store's tables and their forward migrations, kept apart from the query code.

Timestamps are ``BIGINT`` epoch nanoseconds, not ``TIMESTAMPTZ``: DuckDB's ``TIMESTAMPTZ`` holds
microseconds, so a ``ReadingBatch`` (nanoseconds) would not round-trip exactly; integers also make
epoch-aligned bucketing plain arithmetic and cast zero-copy to and from Arrow.

``latest`` holds the newest reading per (asset, channel), folded from the readings past
``meta['latest_folded_rows']`` by a background fold once enough have accumulated (see
duckdb_readings): ``latest()`` merges it with the unfolded tail, so it stays exact and durable
while appends avoid a costly upsert each time.

Version 2 adds ingest support: ``quarantine`` (rejected readings with reason and raw payload,
never deleted), ``ingest_seen`` (per source and device a seq watermark plus the sparse set of seqs
seen above it, as comma-separated text: a list column makes the per-batch upsert ~3x slower)
and ``ingest_digests`` (hashes of messages without a seq, expired by age).

Version 3 adds ``artifacts``: learned models in numbered versions per (kind, key), see
duckdb_artifacts.
"""

from __future__ import annotations

from collections.abc import Callable

import duckdb

from twinloop.store import duckdb_artifacts

#: The schema version this code writes; a file with a higher one was written by a newer twinloop.
SCHEMA_VERSION = 3

CREATE_V1: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS meta (
        key VARCHAR PRIMARY KEY,
        value VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS readings (
        asset_id VARCHAR NOT NULL,
        channel VARCHAR NOT NULL,
        ts BIGINT NOT NULL,
        value DOUBLE NOT NULL,
        quality UTINYINT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS latest (
        asset_id VARCHAR NOT NULL,
        channel VARCHAR NOT NULL,
        ts BIGINT NOT NULL,
        value DOUBLE NOT NULL,
        quality UTINYINT NOT NULL,
        PRIMARY KEY (asset_id, channel))""",
    "CREATE SEQUENCE IF NOT EXISTS twin_write_seq",
    """CREATE TABLE IF NOT EXISTS twin_snapshots (
        write_seq BIGINT NOT NULL,
        id VARCHAR NOT NULL,
        revision BIGINT NOT NULL,
        type_id VARCHAR NOT NULL,
        attributes JSON NOT NULL,
        reported JSON NOT NULL,
        desired JSON NOT NULL,
        created_ns BIGINT NOT NULL,
        updated_ns BIGINT NOT NULL,
        deleted BOOLEAN NOT NULL DEFAULT false)""",
    """CREATE TABLE IF NOT EXISTS relationships (
        source VARCHAR NOT NULL,
        name VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        properties JSON NOT NULL,
        PRIMARY KEY (source, name, target))""",
    "CREATE SEQUENCE IF NOT EXISTS event_seq",
    """CREATE TABLE IF NOT EXISTS events (
        seq BIGINT PRIMARY KEY,
        event_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        twin_id VARCHAR NOT NULL,
        revision BIGINT NOT NULL,
        ts_ns BIGINT NOT NULL,
        data JSON NOT NULL)""",
    "CREATE SEQUENCE IF NOT EXISTS audit_seq",
    """CREATE TABLE IF NOT EXISTS audit (
        seq BIGINT NOT NULL DEFAULT nextval('audit_seq'),
        ts_ns BIGINT NOT NULL,
        actor VARCHAR NOT NULL,
        action VARCHAR NOT NULL,
        target VARCHAR NOT NULL,
        outcome VARCHAR NOT NULL,
        detail JSON NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS api_keys (
        key_id VARCHAR PRIMARY KEY,
        name VARCHAR NOT NULL,
        role VARCHAR NOT NULL,
        secret_hash VARCHAR NOT NULL,
        created_ns BIGINT NOT NULL,
        revoked BOOLEAN NOT NULL)""",
)

CREATE_V2: tuple[str, ...] = (
    "CREATE SEQUENCE IF NOT EXISTS quarantine_seq",
    """CREATE TABLE IF NOT EXISTS quarantine (
        id BIGINT PRIMARY KEY,
        reason VARCHAR NOT NULL,
        message VARCHAR NOT NULL,
        payload BLOB NOT NULL,
        topic VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        received_ns BIGINT NOT NULL,
        twin_id VARCHAR,
        channel VARCHAR,
        value DOUBLE,
        ts_ns BIGINT,
        item VARCHAR,
        status VARCHAR NOT NULL,
        attempts INTEGER NOT NULL,
        resolved_ns BIGINT)""",
    """CREATE TABLE IF NOT EXISTS ingest_seen (
        source VARCHAR NOT NULL,
        device VARCHAR NOT NULL,
        watermark BIGINT NOT NULL,
        above VARCHAR NOT NULL,
        max_ts_ns BIGINT NOT NULL,
        PRIMARY KEY (source, device))""",
    """CREATE TABLE IF NOT EXISTS ingest_digests (
        source VARCHAR NOT NULL,
        digest VARCHAR NOT NULL,
        received_ns BIGINT NOT NULL,
        PRIMARY KEY (source, digest))""",
)

Migration = Callable[[duckdb.DuckDBPyConnection], None]


def _v1_to_v2(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in CREATE_V2:
        con.execute(stmt)


def _v2_to_v3(con: duckdb.DuckDBPyConnection) -> None:
    for stmt in duckdb_artifacts.CREATE:
        con.execute(stmt)


#: ``MIGRATIONS[n]`` upgrades a file from version ``n`` to ``n + 1``; add one per schema change
#: and bump `SCHEMA_VERSION`. Each runs inside the opening transaction.
MIGRATIONS: dict[int, Migration] = {1: _v1_to_v2, 2: _v2_to_v3}


def _stored_version(con: duckdb.DuckDBPyConnection) -> int | None:
    """The file's schema version, or ``None`` for a brand-new (empty) database."""
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    if "meta" not in tables:
        return None
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    return int(row[0][0]) if row else None


def ensure_schema(con: duckdb.DuckDBPyConnection, *, what: str) -> int:
    """Create or migrate the schema to `SCHEMA_VERSION`; returns the version found before.

    Raises ``RuntimeError`` (wrapped by the caller) for a file newer than this code, so an old
    twinloop never writes into a schema it does not understand.
    """
    found = _stored_version(con)
    if found is None:
        for stmt in CREATE_V1:
            con.execute(stmt)
        version = 1
    elif found > SCHEMA_VERSION:
        raise RuntimeError(
            f"{what} has schema version {found}, this twinloop understands up to {SCHEMA_VERSION}"
        )
    else:
        version = found
    while version < SCHEMA_VERSION:
        MIGRATIONS[version](con)
        version += 1
    con.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", [str(SCHEMA_VERSION)])
    return found or 0


__all__ = ["CREATE_V1", "CREATE_V2", "MIGRATIONS", "SCHEMA_VERSION", "Migration", "ensure_schema"]
