"""Dedupe: the compact seq state, device restarts, digests, and surviving a process restart."""

from __future__ import annotations

import sys
from pathlib import Path

from twinloop.core.clock import ManualClock
from twinloop.ingest.dedupe import IdempotencyKey, SeenTable
from twinloop.ingest.normalizer import Normalizer
from twinloop.store.duckdb_store import DuckDBStore
from twinloop.store.memory import MemoryStore

sys.path.insert(0, str(Path(__file__).parent))
from ingest_fixtures import T0, TWINS, S, flat, make_mapping  # noqa: E402


def key(seq: int, ts: int = 0, device: str = "d") -> IdempotencyKey:
    return IdempotencyKey("src", device, seq, None, ts, 0)


def feed(t: SeenTable, seqs: list[int]) -> list[bool]:
    out = []
    for s in seqs:
        dup = t.is_duplicate(key(s, ts=s))
        out.append(dup)
        if not dup:
            t.commit([key(s, ts=s)])
    return out


def test_watermark_compacts_and_tolerates_reordering() -> None:
    t = SeenTable(window=100, sparse=4)
    assert feed(t, [10, 12, 11, 11, 9, 13]) == [False, False, False, True, False, False]
    # first contact left a gap of 4 below 10 (6 … 9) for late arrivals; once 4 seqs piled up
    # above the rest of it (6 … 8), it was declared lost and the set folded away
    row = t.delta().seqs[0]
    assert (row.watermark, row.above) == (13, ())
    assert feed(t, [15, 16]) == [False, False]
    assert t.delta().seqs[0][2:4] == (13, (15, 16))  # 14 may still come
    assert feed(t, [14, 8, 16]) == [False, True, True]
    assert t.delta().seqs[0][2:4] == (16, ())


def test_a_gap_older_than_the_window_is_declared_lost() -> None:
    t = SeenTable(window=3, sparse=100)
    feed(t, list(range(200, 300)))
    feed(t, [301, 302])  # 300 lost
    assert t.delta().seqs[0].above == (301, 302)
    feed(t, [303, 304])
    assert t.delta().seqs[0].watermark == 304


def test_device_restart_is_not_a_redelivery() -> None:
    t = SeenTable()
    assert feed(t, [5, 6, 7]) == [False, False, False]
    assert t.is_duplicate(key(6, ts=6))  # redelivery: same payload, same device time
    assert not t.is_duplicate(key(0, ts=100))  # count started over, time moved on


def test_digest_keys_expire_by_arrival_time() -> None:
    t = SeenTable(digest_ttl_ns=10)
    a = IdempotencyKey("src", "d", None, "aa", None, 100)
    assert not t.is_duplicate(a) and t.is_duplicate(a)
    t.commit([a])
    assert t.delta().digests[0].digest == "aa"
    b = IdempotencyKey("src", "d", None, "bb", None, 200)
    t.is_duplicate(b)
    t.commit([b])
    delta = t.delta()
    assert delta.expire_before_ns == 190
    assert not t.is_duplicate(a)  # forgotten after the TTL


def test_dedupe_survives_a_restart_with_a_reopened_duckdb(registry, tmp_path: Path) -> None:
    path = tmp_path / "store.duckdb"
    msgs = [flat("p1", s, {"flow": float(s)}, ts=T0 + s * S) for s in range(5)]
    store = DuckDBStore(path)
    n = Normalizer(make_mapping(), registry, TWINS, ManualClock(T0))
    r = n.normalize(msgs[:3])
    store.append_ingested(r.batch, r.seen, r.rejected)
    store.close()  # "crash" after commit, before the acks: the broker redelivers 0..2
    store = DuckDBStore(path)
    try:
        n2 = Normalizer(make_mapping(), registry, TWINS, ManualClock(T0))
        n2.load_seen(store.seen_keys())
        r = n2.normalize(msgs)  # redelivered 0..2 plus the new 3, 4
        store.append_ingested(r.batch, r.seen, r.rejected)
        assert r.duplicates == 3 and len(r.completed) == 5
        assert sorted(store.history("p1").values.tolist()) == [0.0, 1.0, 2.0, 3.0, 4.0]  # each once
    finally:
        store.close()


def test_a_failed_append_stores_no_keys(registry) -> None:
    store = MemoryStore()
    n = Normalizer(make_mapping(), registry, TWINS, ManualClock(T0))
    r = n.normalize([flat("p1", 1, {"flow": 1.0})])
    bad = r.rejected + [r.rejected[0] if r.rejected else None]  # a None entry makes the store refuse
    try:
        store.append_ingested(r.batch, r.seen, bad)  # type: ignore[arg-type]
    except Exception:
        n.revert(r)
    assert store.seen_keys().seqs == [] and store.count_readings() == 0
    r2 = n.normalize([flat("p1", 1, {"flow": 1.0})])  # the redelivery is taken
    store.append_ingested(r2.batch, r2.seen, r2.rejected)
    assert store.count_readings() == 1 and store.seen_keys().seqs[0].above == (1,)
