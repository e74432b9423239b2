"""The DuckDB store's model artifacts: numbered versions per (kind, key), payload as a BLOB.

Numbering reads the highest version and inserts the next inside the caller's transaction, under
the store's one lock; the primary key (kind, key, version) makes a second writer that numbered the
same version fail (and roll back) rather than overwrite.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb

from twinloop.store.duckdb_twins import json_text
from twinloop.store.protocol import Artifact, check_artifact

CREATE: tuple[str, ...] = (
    """CREATE TABLE IF NOT EXISTS artifacts (
        kind VARCHAR NOT NULL,
        key VARCHAR NOT NULL,
        version BIGINT NOT NULL,
        created_ns BIGINT NOT NULL,
        meta JSON NOT NULL,
        payload BLOB NOT NULL,
        PRIMARY KEY (kind, key, version))""",
)


def _artifact(row: Sequence[Any], payload: bool = True) -> Artifact:
    return Artifact(str(row[0]), str(row[1]), int(row[2]), int(row[3]), json.loads(row[4]),
                    bytes(row[5]) if payload else b"")


def put(con: duckdb.DuckDBPyConnection, kind: str, key: str, payload: bytes, meta: Mapping[str, Any],
        created_ns: int) -> Artifact:
    """Insert the next version of (kind, key); run inside a transaction."""
    payload = check_artifact(kind, key, payload)
    text = json_text(dict(meta), f"meta of artifact {kind}/{key}")
    row = con.execute("SELECT coalesce(max(version), 0) FROM artifacts WHERE kind = ? AND key = ?",
                      [kind, key]).fetchone()
    version = int(row[0] if row else 0) + 1
    con.execute("INSERT INTO artifacts VALUES (?, ?, ?, ?, ?, ?)",
                [kind, key, version, int(created_ns), text, payload])
    return Artifact(kind, key, version, int(created_ns), json.loads(text), payload)


def get(con: duckdb.DuckDBPyConnection, kind: str, key: str, version: int | None) -> Artifact | None:
    cols = "SELECT kind, key, version, created_ns, meta, payload FROM artifacts WHERE kind = ? AND key = ?"
    if version is None:
        rows = con.execute(f"{cols} ORDER BY version DESC LIMIT 1", [kind, key]).fetchall()
    else:
        rows = con.execute(f"{cols} AND version = ?", [kind, key, int(version)]).fetchall()
    return _artifact(rows[0]) if rows else None


def listing(con: duckdb.DuckDBPyConnection, kind: str | None, key: str | None) -> list[Artifact]:
    clauses, params = ["true"], []
    if kind is not None:
        clauses.append("kind = ?")
        params.append(kind)
    if key is not None:
        clauses.append("key = ?")
        params.append(key)
    rows = con.execute(
        "SELECT kind, key, version, created_ns, meta, NULL FROM artifacts "
        f"WHERE {' AND '.join(clauses)} ORDER BY kind, key, version", params).fetchall()
    return [_artifact(r, payload=False) for r in rows]


__all__ = ["CREATE", "get", "listing", "put"]
