"""`JournaledStore`: acknowledged ingest survives crashes exactly once, readers never miss it, and a
failing store delays it without losing it."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest

from twinloop.core.errors import StoreError
from twinloop.core.readings import ReadingBatch
from twinloop.store.duckdb_store import DuckDBStore
from twinloop.store.factory import open_store
from twinloop.store.journal import IngestJournal
from twinloop.store.journaled import APPLIED_KEY, JournaledStore
from twinloop.store.memory import MemoryStore
from twinloop.store.protocol import QuarantineRecord, SeenKeys, SeenSeq

T0 = 1_700_000_000 * 10**9


def _batch(k: int, n: int = 10) -> ReadingBatch:
    return ReadingBatch.from_arrays(["p1"] * n, "flow", T0 + k * 1000 + np.arange(n), np.full(n, float(k)))


def _seen(k: int) -> SeenKeys:
    return SeenKeys([SeenSeq("mqtt", "p1", k + 1)])


def _rejected() -> QuarantineRecord:
    return QuarantineRecord(0, "out_of_range", "too high", b"{}", "t/p1", "mqtt", T0, "p1", "flow", 9e9)


def test_readers_see_everything_journaled_before_them(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s.duckdb")
    assert isinstance(store, JournaledStore)
    for k in range(50):
        store.journal_ingested(_batch(k), _seen(k), [_rejected()] if k % 10 == 0 else [])
    assert store.count_readings() == 500  # no sleep: the read waits for the applier
    assert store.seen_keys().seqs == [SeenSeq("mqtt", "p1", 50)]
    assert store.count_quarantine() == 5
    assert store.latest().values.tolist() == [49.0]
    store.close()
    assert not list((tmp_path / "s.duckdb.journal").glob("*.tlj"))  # applied, so deleted


def test_entries_journaled_but_never_applied_are_stored_at_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    DuckDBStore(path).close()
    journal = IngestJournal(f"{path}.journal")  # as a process that crashed before applying left it
    journal.recover(0)
    for k in range(20):
        journal.append(_batch(k), _seen(k))
    journal.close()
    store = open_store(path)
    assert store.count_readings() == 200 and store.seen_keys().seqs[0].watermark == 20
    assert store.get_meta(APPLIED_KEY) == "20"
    store.close()


def test_entries_already_applied_are_not_stored_twice(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    journal = IngestJournal(f"{path}.journal")
    journal.recover(0)
    entries = [journal.append(_batch(k), _seen(k)) for k in range(10)]
    journal.close()
    inner = DuckDBStore(path)  # a crash after applying seq 6, before its segment was deleted
    for e in entries[:6]:
        inner.append_ingested(e.batch, SeenKeys(e.seqs), meta={APPLIED_KEY: str(e.seq)})
    store = JournaledStore(inner, f"{path}.journal")
    assert store.count_readings() == 100
    assert sorted(set(store.history("p1").values.tolist())) == [float(k) for k in range(10)]
    assert store.journal_ingested(_batch(10)) == 11  # the count goes on
    store.close()


def test_a_killed_process_loses_nothing_it_journaled(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    script = textwrap.dedent(f"""
        import os, numpy as np
        from twinloop.core.readings import ReadingBatch
        from twinloop.store.factory import open_store
        store = open_store({str(path)!r})
        for k in range(300):
            store.journal_ingested(ReadingBatch.from_arrays(["p1"] * 100, "flow",
                                   {T0} + k * 1000 + np.arange(100), np.full(100, float(k))))
        print(store.pending_readings, flush=True)
        os._exit(9)  # no close, no flush: as if killed
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    store = open_store(path)
    history = store.history("p1")
    assert len(history) == 30_000  # every journaled reading, exactly once
    assert np.bincount(history.values.astype(int)).tolist() == [100] * 300
    store.close()


class FlakyStore(MemoryStore):
    """A memory store whose ingest commits fail while ``failing`` is set (a disk that is full)."""

    def __init__(self) -> None:
        super().__init__()
        self.failing = threading.Event()

    def append_ingested(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.failing.is_set():
            raise StoreError("disk full")
        return super().append_ingested(*args, **kwargs)


def test_a_failing_store_delays_journaled_readings_but_keeps_them(tmp_path: Path) -> None:
    inner = FlakyStore()
    store = JournaledStore(inner, tmp_path / "journal")
    inner.failing.set()
    for k in range(5):
        store.journal_ingested(_batch(k))  # still durable: acknowledgements go on
    with pytest.raises(StoreError, match="disk full"):
        store.count_readings()  # a reader hears why, instead of missing readings
    assert store.pending_readings == 50
    inner.failing.clear()
    assert store.wait_applied(timeout=10)
    assert store.count_readings() == 50 and store.pending_readings == 0
    store.close()


def test_closing_with_a_failing_store_keeps_the_journal_for_the_next_open(tmp_path: Path) -> None:
    path = tmp_path / "s.duckdb"
    inner = FlakyStore()
    store = JournaledStore(inner, f"{path}.journal")
    inner.failing.set()
    store.journal_ingested(_batch(1))
    store.close(timeout_s=0.5)
    reopened = JournaledStore(DuckDBStore(path), f"{path}.journal")  # a store that works again
    assert reopened.count_readings() == 10
    reopened.close()


def test_a_full_backlog_pushes_back_on_the_writer(tmp_path: Path) -> None:
    inner = FlakyStore()
    store = JournaledStore(inner, tmp_path / "journal", max_pending_readings=30)
    inner.failing.set()
    for k in range(3):
        store.journal_ingested(_batch(k))
    blocked = threading.Thread(target=store.journal_ingested, args=(_batch(3),))
    blocked.start()
    blocked.join(0.3)
    assert blocked.is_alive() and store.pending_readings == 30
    inner.failing.clear()
    blocked.join(10)
    assert not blocked.is_alive()
    assert store.wait_applied(timeout=10) and store.count_readings() == 40
    store.close()


def test_an_empty_commit_writes_nothing(tmp_path: Path) -> None:
    store = JournaledStore(MemoryStore(), tmp_path / "journal")
    seq = store.journal_ingested(_batch(0))
    assert store.journal_ingested(ReadingBatch.empty(), SeenKeys()) == seq
    assert store.wait_applied(timeout=10) and store.count_readings() == 10
    store.close()


def test_latest_is_current_at_once_even_while_the_store_cannot_keep_up(tmp_path: Path) -> None:
    inner = FlakyStore()
    store = JournaledStore(inner, tmp_path / "journal")
    store.journal_ingested(ReadingBatch.from_arrays(["p1", "p2"], "flow", [T0, T0], [1.0, 2.0]))
    assert store.wait_applied(timeout=10)
    inner.failing.set()  # from now on nothing reaches the inner store
    store.journal_ingested(ReadingBatch.from_arrays(["p1", "p1", "p3"], ["flow", "head", "flow"],
                                                    [T0, T0 + 5, T0 - 5], [1.5, 30.0, 3.0]))
    rows = list(zip(*[c.to_pylist() for c in store.latest().table.select(["asset_id", "channel", "value"])
                      .columns], strict=True))
    # p1/flow: same ts, the later reading wins; p2 from the inner store; the rest from the journal
    assert rows == [("p1", "flow", 1.5), ("p1", "head", 30.0), ("p2", "flow", 2.0), ("p3", "flow", 3.0)]
    assert store.latest(["p1"], ["head"]).values.tolist() == [30.0]
    assert inner.count_readings() == 2
    inner.failing.clear()
    store.close()


def test_append_is_journaled_and_does_not_wait_for_a_busy_store(tmp_path: Path) -> None:
    inner = FlakyStore()
    store = JournaledStore(inner, tmp_path / "journal")
    inner.failing.set()
    store.journal_ingested(_batch(0))
    assert store.append(_batch(1)) == 10  # returns at once: durable in the journal
    assert store.pending_readings == 20 and store.latest().values.tolist() == [1.0]
    inner.failing.clear()
    assert store.wait_applied(timeout=10) and inner.count_readings() == 20
    store.close()
