"""DuckDB-specific behaviour the conformance battery cannot see: files, errors, threads, schema."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import duckdb
import numpy as np
import pytest

from twinloop.core.errors import StoreError, ValidationError
from twinloop.core.readings import ReadingBatch
from twinloop.store import duckdb_readings as rd
from twinloop.store import duckdb_schema
from twinloop.store.duckdb_store import DuckDBStore
from twinloop.store.memory import MemoryStore
from twinloop.twins.twin import Twin

T0 = 1_700_000_000_000_000_000


def _batch(asset: str, n: int, start: int = 0) -> ReadingBatch:
    i = np.arange(start, start + n)
    return ReadingBatch.from_arrays(asset, np.where(i % 2, "flow", "head"), T0 + i, i * 0.5)


def test_appended_data_survives_a_killed_process(tmp_path: Path) -> None:
    path = tmp_path / "twin.duckdb"
    # append, then die without close(): what append() returned for must already be durable
    script = f"""
import os
import numpy as np
from twinloop.core.readings import ReadingBatch
from twinloop.store.duckdb_store import DuckDBStore
from twinloop.store.memory import MemoryStore
from twinloop.twins.twin import Twin
store = DuckDBStore({str(path)!r})
i = np.arange(1000)
store.append(ReadingBatch.from_arrays("p1", np.where(i % 2, "flow", "head"), {T0} + i, i * 0.5))
store.put_twin(Twin(id="p1", type_id="Pump", revision=1))
os._exit(0)
"""
    subprocess.run([sys.executable, "-c", script], check=True, timeout=60)
    with DuckDBStore(path) as again:
        assert again.count_readings() == 1000
        assert again.get_twin("p1").revision == 1
        assert again.latest().values.tolist() == [499.5, 499.0]


def test_concurrent_appends_and_reads_lose_nothing(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "c.duckdb")
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for j in range(20):
                store.append(_batch(f"a{k}", 500, start=j * 500))
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    def reader() -> None:
        try:
            for _ in range(50):
                store.latest()
                store.history_buckets("a0", 100)
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
    threads.append(threading.Thread(target=reader))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert store.count_readings() == 4 * 20 * 500
    assert sorted(set(store.latest().ts_ns.tolist())) == [T0 + 9998, T0 + 9999]
    store.close()


def test_corrupt_file_raises_store_error_naming_the_file(tmp_path: Path) -> None:
    path = tmp_path / "broken.duckdb"
    path.write_bytes(b"this is not a database" * 1000)
    with pytest.raises(StoreError) as err:
        DuckDBStore(path)
    assert str(path) in str(err.value) and "cannot open" in str(err.value)


def test_unwritable_location_raises_store_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(StoreError) as err:
        DuckDBStore(blocker / "sub" / "store.duckdb")
    assert "writable" in str(err.value)


def test_missing_directories_are_created(tmp_path: Path) -> None:
    store = DuckDBStore(tmp_path / "deep" / "er" / "s.duckdb")
    store.close()
    assert (tmp_path / "deep" / "er" / "s.duckdb").exists()


def test_failed_statement_leaves_store_usable() -> None:
    store = DuckDBStore(":memory:")
    with pytest.raises(ValidationError):
        store.put_twin(Twin(id="p1", type_id="Pump", attributes={"bad": object()}))
    with pytest.raises(StoreError) as err:
        with store._tx("insert into a missing table") as con:
            con.execute("INSERT INTO no_such_table VALUES (1)")
    assert "insert into a missing table failed" in str(err.value)
    store.append(_batch("p1", 10))
    assert store.count_readings() == 10
    store.close()


def test_closed_store_raises_store_error() -> None:
    store = DuckDBStore(":memory:")
    store.close()
    store.close()  # idempotent
    with pytest.raises(StoreError, match="closed"):
        store.count_readings()


def test_schema_version_recorded_and_newer_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "v.duckdb"
    store = DuckDBStore(path)
    assert store.get_meta("schema_version") == str(duckdb_schema.SCHEMA_VERSION)
    store.set_meta("schema_version", str(duckdb_schema.SCHEMA_VERSION + 1))
    store.close()
    with pytest.raises(StoreError, match="upgrade twinloop"):
        DuckDBStore(path)


def test_migration_hook_runs_forward(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "m.duckdb"
    DuckDBStore(path).close()
    ran: list[int] = []

    def to_next(con: duckdb.DuckDBPyConnection) -> None:
        ran.append(1)
        con.execute("ALTER TABLE readings ADD COLUMN source VARCHAR")

    current = duckdb_schema.SCHEMA_VERSION
    monkeypatch.setattr(duckdb_schema, "SCHEMA_VERSION", current + 1)
    monkeypatch.setitem(duckdb_schema.MIGRATIONS, current, to_next)
    store = DuckDBStore(path)
    assert ran == [1] and store.get_meta("schema_version") == str(current + 1)
    store.close()
    DuckDBStore(path).close()  # already at the new version: the migration does not run again
    assert ran == [1]


def test_nanosecond_timestamps_survive_a_file(tmp_path: Path) -> None:
    path = tmp_path / "ns.duckdb"
    batch = ReadingBatch.from_arrays("p1", "x", [T0 + 1, T0 + 2, T0 + 3], [1.0, 2.0, 3.0])
    with DuckDBStore(path) as store:
        store.append(batch)
    with DuckDBStore(path) as store:
        assert store.history("p1").ts_ns.tolist() == [T0 + 1, T0 + 2, T0 + 3]


def _mixed(k: int, n: int) -> ReadingBatch:
    """Readings of 3 assets x 4 channels: new, late (older ts) and equal-ts ones, so folds must order them."""
    rng = np.random.default_rng(k)
    i = np.arange(n)
    ts = T0 + rng.integers(0, 50, n) * 1000 + np.where(i % 5 == 0, 0, k * 100_000)
    return ReadingBatch.from_arrays(
        rng.choice(["a", "b", "c"], n), rng.choice(["w", "x", "y", "z"], n), ts, k * 10_000.0 + i
    )


def _columns(batch: ReadingBatch) -> list[tuple[object, ...]]:
    cols = (batch.asset_ids, batch.channels, batch.ts_ns, batch.values)
    return sorted(zip(*(c.tolist() for c in cols), strict=True))


def test_a_fold_in_progress_loses_and_duplicates_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fold's transaction is held open while appends and reads go on; then a failed fold; then a
    # fold of everything. `latest()` must match the in-memory store's at every step.
    monkeypatch.setattr(rd, "FOLD_ROWS", 1000)
    real_fold = rd.fold_latest
    started, gate = threading.Event(), threading.Event()
    fail = [False]

    def held_fold(con: duckdb.DuckDBPyConnection) -> int:
        n = real_fold(con)
        started.set()
        assert gate.wait(30)
        if fail[0]:
            raise duckdb.Error("simulated fold failure")
        return n

    monkeypatch.setattr(rd, "fold_latest", held_fold)
    store, reference = DuckDBStore(tmp_path / "fold.duckdb"), MemoryStore()

    def append(k: int, n: int) -> None:
        batch = _mixed(k, n)
        if k % 2:
            store.append(batch)
        else:
            store.append_ingested(batch)
        reference.append(batch)

    def check() -> None:
        assert _columns(store.latest()) == _columns(reference.latest())
        assert store.count_readings() == reference.count_readings()
        for asset in "abc":
            assert _columns(store.history(asset)) == _columns(reference.history(asset))

    append(1, 1200)  # past FOLD_ROWS: a fold starts and holds its transaction open
    assert started.wait(30)
    for k in range(2, 6):  # appends commit while the fold is open; no second fold starts meanwhile
        append(k, 700)
        check()
    gate.set()
    assert store.wait_for_fold(30)
    assert store.get_meta("latest_folded_rows") == "1200"  # the fold took only its snapshot
    check()

    started.clear()
    gate.clear()
    fail[0] = True
    append(6, 10)  # 2810 unfolded: the next fold starts, and fails
    assert started.wait(30)
    gate.set()
    assert store.wait_for_fold(30)
    assert store.get_meta("latest_folded_rows") == "1200"
    check()

    fail[0] = False
    append(7, 10)  # the next append retries, and this fold takes everything
    assert store.wait_for_fold(30)
    assert store.get_meta("latest_folded_rows") == str(reference.count_readings())
    check()
    store.close()
    with DuckDBStore(tmp_path / "fold.duckdb") as again:  # and it is all durable
        assert _columns(again.latest()) == _columns(reference.latest())
