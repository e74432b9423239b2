"""The twins half of the DuckDB store: snapshots, revisions and relationships, as SQL.

Every write of a twin appends a snapshot row (``write_seq`` orders them); the current snapshot is
the newest row of an id, and the twin exists unless that row is flagged deleted. Deleting flags
all rows, so `twin_revisions` keeps the history. Callers (`DuckDBStore`) own locking and
transactions; these functions only speak SQL on the connection they are given.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from twinloop.core.errors import ConflictError, NotFoundError, RevisionConflict, ValidationError
from twinloop.twins.twin import Relationship, Twin

Con = duckdb.DuckDBPyConnection

_COLS = "id, type_id, attributes, reported, desired, revision, created_ns, updated_ns"
_CURRENT = f"""
SELECT {_COLS}, deleted FROM twin_snapshots
QUALIFY row_number() OVER (PARTITION BY id ORDER BY write_seq DESC) = 1
"""


def json_text(value: Any, what: str) -> str:
    """JSON for a JSON column. NaN/inf are refused (as JSON and PostgreSQL do), not stored as text
    no JSON reader accepts; a value that cannot be stored is the caller's mistake."""
    try:
        return json.dumps(value, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise ValidationError(f"{what} is not JSON-serializable: {err}") from err


def _twin(row: Sequence[Any]) -> Twin:
    return Twin(
        id=row[0],
        type_id=row[1],
        attributes=json.loads(row[2]),
        reported=json.loads(row[3]),
        desired=json.loads(row[4]),
        revision=int(row[5]),
        created_ns=int(row[6]),
        updated_ns=int(row[7]),
    )


def current(con: Con, twin_id: str) -> Twin | None:
    """The current snapshot, or ``None`` if the twin never existed or was deleted."""
    rows = con.execute(
        f"SELECT {_COLS}, deleted FROM twin_snapshots WHERE id = ? ORDER BY write_seq DESC LIMIT 1",
        [twin_id],
    ).fetchall()
    if not rows or rows[0][8]:
        return None
    return _twin(rows[0])


def put(con: Con, twin: Twin, expected_revision: int | None) -> None:
    """Check ``expected_revision`` (see `Store.put_twin`) and append the snapshot."""
    values = [
        twin.id,
        twin.revision,
        twin.type_id,
        json_text(twin.attributes, f"attributes of twin {twin.id!r}"),
        json_text(twin.reported, f"reported properties of twin {twin.id!r}"),
        json_text(twin.desired, f"desired properties of twin {twin.id!r}"),
        twin.created_ns,
        twin.updated_ns,
    ]
    if expected_revision is not None:
        now = current(con, twin.id)
        if expected_revision == 0:
            if now is not None:
                raise ConflictError(
                    f"twin {twin.id!r} already exists (revision {now.revision})",
                    hint="update it with its current revision, or pick another id",
                )
        elif now is None:
            raise NotFoundError(f"twin {twin.id!r} does not exist")
        elif now.revision != expected_revision:
            raise RevisionConflict(twin.id, expected_revision, now.revision)
    con.execute(
        "INSERT INTO twin_snapshots VALUES (nextval('twin_write_seq'), ?, ?, ?, ?, ?, ?, ?, ?, false)",
        values,
    )


def at_revision(con: Con, twin_id: str, revision: int) -> Twin | None:
    """A stored revision, also of a deleted twin (history is kept for audit)."""
    rows = con.execute(
        f"SELECT {_COLS} FROM twin_snapshots WHERE id = ? AND revision = ? ORDER BY write_seq DESC LIMIT 1",
        [twin_id, int(revision)],
    ).fetchall()
    return _twin(rows[0]) if rows else None


def revisions(con: Con, twin_id: str) -> list[int]:
    rows = con.execute(
        "SELECT DISTINCT revision FROM twin_snapshots WHERE id = ? ORDER BY revision", [twin_id]
    ).fetchall()
    return [int(r[0]) for r in rows]


def list_current(con: Con, type_id: str | None) -> list[Twin]:
    sql = f"SELECT * FROM ({_CURRENT}) WHERE NOT deleted"
    params: list[Any] = []
    if type_id is not None:
        sql += " AND type_id = ?"
        params.append(type_id)
    return [_twin(r) for r in con.execute(sql + " ORDER BY id", params).fetchall()]


def delete(con: Con, twin_id: str) -> None:
    """Flag every snapshot deleted and drop the twin's edges."""
    if current(con, twin_id) is None:
        raise NotFoundError(f"twin {twin_id!r} does not exist")
    con.execute("UPDATE twin_snapshots SET deleted = true WHERE id = ?", [twin_id])
    con.execute("DELETE FROM relationships WHERE source = ? OR target = ?", [twin_id, twin_id])


def put_relationship(con: Con, rel: Relationship) -> None:
    props = json_text(rel.properties, f"properties of relationship {rel.key}")
    for end in dict.fromkeys((rel.source, rel.target)):
        if current(con, end) is None:
            raise NotFoundError(
                f"cannot relate {rel.source!r} -{rel.name}-> {rel.target!r}: twin {end!r} does not exist"
            )
    con.execute(
        "INSERT OR REPLACE INTO relationships VALUES (?, ?, ?, ?)",
        [rel.source, rel.name, rel.target, props],
    )


def delete_relationship(con: Con, source: str, name: str, target: str) -> None:
    rows = con.execute(
        "DELETE FROM relationships WHERE source = ? AND name = ? AND target = ? RETURNING source",
        [source, name, target],
    ).fetchall()
    if not rows:
        raise NotFoundError(f"relationship {source!r} -{name}-> {target!r} does not exist")


def list_relationships(
    con: Con, source: str | None, name: str | None, target: str | None
) -> list[Relationship]:
    clauses, params = ["true"], []
    for column, value in (("source", source), ("name", name), ("target", target)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    rows = con.execute(
        "SELECT source, name, target, properties FROM relationships "
        f"WHERE {' AND '.join(clauses)} ORDER BY source, name, target",
        params,
    ).fetchall()
    return [Relationship(r[0], r[1], r[2], json.loads(r[3])) for r in rows]


__all__ = [
    "at_revision",
    "current",
    "delete",
    "delete_relationship",
    "json_text",
    "list_current",
    "list_relationships",
    "put",
    "put_relationship",
    "revisions",
]
