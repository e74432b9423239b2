"""DuckDB ingest tables: migrating a v1 file keeps old data, and the new tables behave."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from twinloop.core.errors import StoreError
from twinloop.core.readings import ReadingBatch
from twinloop.store.duckdb_schema import CREATE_V1, SCHEMA_VERSION
from twinloop.store.duckdb_store import DuckDBStore
from twinloop.store.protocol import QuarantineRecord, SeenKeys, SeenSeq

T0 = 1_700_000_000 * 1_000_000_000


def _v1_file(path: Path) -> None:
    con = duckdb.connect(str(path))
    for stmt in CREATE_V1:
        con.execute(stmt)
    con.execute("INSERT INTO meta VALUES ('schema_version', '1')")
    con.execute("INSERT INTO readings VALUES ('p1', 'flow', ?, 1.5, 0)", [T0])
    con.execute("INSERT INTO latest VALUES ('p1', 'flow', ?, 1.5, 0)", [T0])
    con.close()


def test_a_v1_file_is_migrated_and_keeps_its_readings(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _v1_file(path)
    with DuckDBStore(path) as store:
        assert store.get_meta("schema_version") == str(SCHEMA_VERSION) == "3"
        assert store.history("p1").values.tolist() == [1.5]
        assert store.count_quarantine() == 0 and store.seen_keys() == SeenKeys()
        store.append_ingested(ReadingBatch.empty(), SeenKeys([SeenSeq("s", "d", 3, (5,), 9)]))
        assert store.artifacts() == []  # v2 -> v3 added the (empty) artifacts table
    with DuckDBStore(path) as store:  # reopening a current file migrates nothing
        assert store.seen_keys().seqs == [SeenSeq("s", "d", 3, (5,), 9)]


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    DuckDBStore(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="schema version 99"):
        DuckDBStore(path)


def test_many_quarantine_records_in_one_append(tmp_path: Path) -> None:
    recs = [QuarantineRecord(0, "out_of_range", f"m{i}", bytes([i % 256]) * 3, "t", "s", T0 + i,
                             twin_id=f"p{i % 7}", value=float(i), item="flow") for i in range(2_000)]
    with DuckDBStore(tmp_path / "q.duckdb") as store:
        ids = store.append_ingested(ReadingBatch.empty(), None, recs)
        assert ids == sorted(ids) and len(set(ids)) == 2_000
        page = store.quarantine(after_id=ids[999], limit=3)
        assert [r.id for r in page] == ids[1000:1003] and page[0].payload == bytes([1000 % 256]) * 3
        p3 = store.quarantine(twin_id="p3", limit=10_000)
        assert len(p3) == len([i for i in range(2_000) if i % 7 == 3])
        assert store.resolve_quarantine(ids[:500], "discarded") == 500
        assert store.count_quarantine() == 1_500
