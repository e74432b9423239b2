"""The store conformance battery: what every `Store` backend must do, as plain functions.

Each function in `CHECKS` takes a fresh, empty store and raises ``AssertionError`` when the
backend behaves in a way a user would notice. Each function in `PERSISTENCE_CHECKS` also takes
``reopen(store) -> store``, which closes the store and opens the same data again; backends that do
not persist (memory) skip those. One parametrized test runs all of them for every backend::

    @pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
    def test_store(check, fresh_store): check(fresh_store)

Model-artifact checks live in `artifact_checks` and are part of both lists. Only the public
protocol is used here, so a new backend (PostgreSQL) gets the same battery.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pyarrow as pa

from twinloop.core.errors import (
    ConflictError,
    NotFoundError,
    RevisionConflict,
    TwinloopError,
    ValidationError,
)
from twinloop.core.events import CommandSent, ReadingsApplied, TwinCreated, TwinUpdated
from twinloop.core.readings import SCHEMA, ReadingBatch
from twinloop.store.artifact_checks import ARTIFACT_CHECKS, ARTIFACT_PERSISTENCE_CHECKS
from twinloop.store.protocol import (
    HISTORY_SCHEMA,
    ApiKeyRecord,
    AuditRecord,
    QuarantineRecord,
    SeenDigest,
    SeenKeys,
    SeenSeq,
    Store,
)
from twinloop.twins.twin import Relationship, Twin

Check = Callable[[Store], None]
PersistenceCheck = Callable[[Store, Callable[[Store], Store]], None]

S = 1_000_000_000  # one second in ns
T0 = 1_700_000_000 * S  # a realistic epoch time, aligned to 10 s


@contextmanager
def _raises(kind: type[TwinloopError]) -> Iterator[list[TwinloopError]]:
    """Like ``pytest.raises`` without depending on pytest at runtime."""
    caught: list[TwinloopError] = []
    try:
        yield caught
    except kind as err:
        caught.append(err)
        return
    raise AssertionError(f"expected {kind.__name__}, nothing was raised")


def _batch(asset: str, channel: str, ts: list[int], values: list[float], q: int = 0) -> ReadingBatch:
    return ReadingBatch.from_arrays(asset, channel, ts, values, q)


def _rows(batch: ReadingBatch) -> list[tuple[str, str, int, float, int]]:
    return [(r["asset_id"], r["channel"], r["ts"], r["value"], r["quality"]) for r in batch.to_records()]


def _pump(twin_id: str = "pump-1", revision: int = 1, type_id: str = "Pump", **kw: object) -> Twin:
    return Twin(id=twin_id, type_id=type_id, revision=revision, created_ns=1, updated_ns=revision, **kw)  # type: ignore[arg-type]


# --- readings -----------------------------------------------------------------------------------
def check_append_and_count(store: Store) -> None:
    assert store.count_readings() == 0
    assert store.append(ReadingBatch.empty()) == 0
    assert store.append(_batch("p1", "flow", [T0, T0 + S], [1.0, 2.0])) == 2
    assert store.append(_batch("p2", "flow", [T0], [3.0])) == 1
    assert store.count_readings() == 3
    assert store.count_readings("p1") == 2
    assert store.count_readings("nope") == 0


def check_latest_is_newest_by_ts(store: Store) -> None:
    # newer first, then an older batch: latest must go by ts, not by arrival
    store.append(_batch("p1", "flow", [T0 + 5 * S, T0 + 9 * S, T0 + 7 * S], [5.0, 9.0, 7.0], 1))
    store.append(_batch("p1", "flow", [T0, T0 + 8 * S], [0.0, 8.0], 0))
    store.append(_batch("p1", "head", [T0 + 1], [42.0], 2))
    latest = store.latest()
    assert latest.table.schema == SCHEMA
    assert _rows(latest) == [("p1", "flow", T0 + 9 * S, 9.0, 1), ("p1", "head", T0 + 1, 42.0, 2)]
    store.append(_batch("p1", "flow", [T0 + 10 * S], [10.0], 3))
    assert _rows(store.latest(channels=["flow"])) == [("p1", "flow", T0 + 10 * S, 10.0, 3)]


def check_latest_filters(store: Store) -> None:
    for asset in ("a1", "a2", "a3"):
        for ch in ("x", "y"):
            store.append(_batch(asset, ch, [T0], [1.0]))
    keys = lambda b: list(zip(b.asset_ids.tolist(), b.channels.tolist(), strict=True))  # noqa: E731
    assert len(store.latest()) == 6
    assert keys(store.latest(asset_ids=["a3", "a1"])) == [
        ("a1", "x"),
        ("a1", "y"),
        ("a3", "x"),
        ("a3", "y"),
    ]
    assert keys(store.latest(channels=["y"])) == [("a1", "y"), ("a2", "y"), ("a3", "y")]
    assert keys(store.latest(asset_ids=["a2"], channels=["x"])) == [("a2", "x")]
    assert len(store.latest(asset_ids=["missing"])) == 0
    assert len(store.latest(asset_ids=[])) == 0


def check_history_bounds_order_limit(store: Store) -> None:
    store.append(_batch("p1", "head", [T0 + 3 * S, T0 + S], [13.0, 11.0]))
    store.append(_batch("p1", "flow", [T0 + 2 * S, T0, T0 + S, T0 + 3 * S], [2.0, 0.0, 1.0, 3.0]))
    store.append(_batch("p2", "flow", [T0 + S], [99.0]))
    h = store.history("p1")
    assert h.table.schema == SCHEMA
    assert [(c, t - T0) for c, t in zip(h.channels, h.ts_ns, strict=True)] == [
        ("flow", 0),
        ("flow", S),
        ("flow", 2 * S),
        ("flow", 3 * S),
        ("head", S),
        ("head", 3 * S),
    ]
    bounded = store.history("p1", start_ns=T0 + S, end_ns=T0 + 3 * S)  # start in, end out
    assert _rows(bounded) == [
        ("p1", "flow", T0 + S, 1.0, 0),
        ("p1", "flow", T0 + 2 * S, 2.0, 0),
        ("p1", "head", T0 + S, 11.0, 0),
    ]
    assert store.history("p1", channels=["head"]).values.tolist() == [11.0, 13.0]
    assert store.history("p1", limit=2).values.tolist() == [0.0, 1.0]
    assert store.history("p1", start_ns=T0 + 3 * S).values.tolist() == [3.0, 13.0]
    assert store.history("p1", end_ns=T0 + 1).values.tolist() == [0.0]
    assert len(store.history("nobody")) == 0


def check_history_roundtrip_exact(store: Store) -> None:
    ts = [T0 + 123_456_789, T0 + 123_456_790, -1_500]  # nanoseconds and pre-epoch survive
    batch = ReadingBatch.from_arrays("p1", ["c", "c", "b"], ts, [0.1, -2.5e300, 3.0], [3, 0, 1])
    store.append(batch)
    assert store.history("p1") == batch.sorted()


def check_history_buckets(store: Store) -> None:
    b = 10 * S
    # channel "flow": bucket T0 gets ts 0,3,7 (appended shuffled), bucket T0+20s gets 25;
    # bucket T0+10s stays empty and must be absent.
    store.append(_batch("p1", "flow", [T0 + 7 * S, T0, T0 + 25 * S], [7.0, 1.0, 4.0]))
    store.append(_batch("p1", "flow", [T0 + 3 * S], [10.0]))
    store.append(_batch("p1", "head", [T0 + 19 * S, T0 + 11 * S], [2.0, 6.0]))
    store.append(_batch("p2", "flow", [T0], [1000.0]))
    out = store.history_buckets("p1", b)
    assert out.schema == HISTORY_SCHEMA
    rows = [
        (r["channel"], r["count"], r["mean"], r["min"], r["max"], r["first"], r["last"])
        for r in out.to_pylist()
    ]
    assert rows == [
        ("flow", 3, 6.0, 1.0, 10.0, 1.0, 7.0),
        ("flow", 1, 4.0, 4.0, 4.0, 4.0, 4.0),
        ("head", 2, 4.0, 2.0, 6.0, 6.0, 2.0),
    ]
    buckets = out.column("bucket").cast(pa.int64()).to_pylist()
    assert buckets == [T0, T0 + 2 * b, T0 + b]
    assert set(out.column("asset_id").to_pylist()) == {"p1"}
    only = store.history_buckets("p1", b, channels=["flow"], start_ns=T0 + 3 * S, end_ns=T0 + 25 * S)
    assert [(r["count"], r["first"], r["last"]) for r in only.to_pylist()] == [(2, 10.0, 7.0)]


def check_history_buckets_edges(store: Store) -> None:
    empty = store.history_buckets("p1", S)
    assert empty.schema == HISTORY_SCHEMA and empty.num_rows == 0
    store.append(_batch("p1", "x", [-5, -10, 0, 9], [1.0, 2.0, 3.0, 4.0]))
    out = store.history_buckets("p1", 10)  # aligned to the epoch, floored before it
    assert out.column("bucket").cast(pa.int64()).to_pylist() == [-10, 0]
    assert out.column("count").to_pylist() == [2, 2]
    with _raises(ValidationError):
        store.history_buckets("p1", 0)


def check_concurrent_appends(store: Store) -> None:
    def work(k: int) -> None:
        for i in range(25):
            store.append(_batch(f"a{k}", "x", [T0 + i * 100 + j for j in range(100)], [1.0] * 100))

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert store.count_readings() == 4 * 25 * 100
    assert store.latest().ts_ns.tolist() == [T0 + 24 * 100 + 99] * 4


# --- twins and relationships --------------------------------------------------------------------
def check_twin_create_update_conflicts(store: Store) -> None:
    t1 = _pump(attributes={"line": "A", "nested": {"k": [1, 2.5, None, True]}})
    assert store.put_twin(t1, expected_revision=0) == t1
    assert store.get_twin("pump-1") == t1
    with _raises(ConflictError) as err:
        store.put_twin(_pump(revision=1), expected_revision=0)
    assert not isinstance(err[0], RevisionConflict)
    t2 = t1.evolve(revision=2, reported={"speed": 1450.0})
    store.put_twin(t2, expected_revision=1)
    with _raises(RevisionConflict) as rc:
        store.put_twin(t1.evolve(revision=3), expected_revision=1)
    assert (rc[0].expected, rc[0].actual, rc[0].twin_id) == (1, 2, "pump-1")
    assert store.get_twin("pump-1") == t2  # a failed check writes nothing
    with _raises(NotFoundError):
        store.put_twin(_pump("ghost", revision=2), expected_revision=1)
    with _raises(NotFoundError):
        store.get_twin("ghost")
    with _raises(ValidationError):  # not JSON: refused up front, nothing written
        store.put_twin(t2.evolve(revision=3, reported={"speed": float("nan")}))
    store.put_twin(t2.evolve(revision=7, desired={"speed": 1500}))  # unconditional
    assert store.get_twin("pump-1").revision == 7
    assert store.twin_revisions("pump-1") == [1, 2, 7]


def check_twin_revisions_and_delete(store: Store) -> None:
    for rev in (1, 2, 3):
        store.put_twin(_pump(revision=rev, reported={"rev": rev}))
    assert store.get_twin("pump-1", revision=2).reported == {"rev": 2}
    with _raises(NotFoundError):
        store.get_twin("pump-1", revision=9)
    store.delete_twin("pump-1")
    with _raises(NotFoundError):
        store.get_twin("pump-1")
    with _raises(NotFoundError):
        store.delete_twin("pump-1")
    with _raises(NotFoundError):
        store.put_twin(_pump(revision=4), expected_revision=3)
    assert store.list_twins() == []
    assert store.twin_revisions("pump-1") == [1, 2, 3]  # history survives deletion
    store.put_twin(_pump(revision=1, reported={"again": True}), expected_revision=0)
    assert store.get_twin("pump-1").reported == {"again": True}


def check_list_twins(store: Store) -> None:
    for twin_id, type_id in (("v-2", "Valve"), ("p-2", "Pump"), ("p-1", "Pump"), ("m-1", "Motor")):
        store.put_twin(_pump(twin_id, type_id=type_id))
    store.put_twin(_pump("p-1", revision=2), expected_revision=1)
    assert [t.id for t in store.list_twins()] == ["m-1", "p-1", "p-2", "v-2"]
    assert [(t.id, t.revision) for t in store.list_twins("Pump")] == [("p-1", 2), ("p-2", 1)]
    assert store.list_twins("Nothing") == []
    store.delete_twin("p-2")
    assert [t.id for t in store.list_twins("Pump")] == ["p-1"]


def check_relationships(store: Store) -> None:
    for twin_id in ("tank", "pump", "motor"):
        store.put_twin(_pump(twin_id))
    with _raises(NotFoundError):
        store.put_relationship(Relationship("pump", "feeds", "ghost"))
    with _raises(NotFoundError):
        store.put_relationship(Relationship("ghost", "feeds", "pump"))
    store.put_relationship(Relationship("pump", "feeds", "tank", {"pipe": "P1"}))
    store.put_relationship(Relationship("motor", "drives", "pump"))
    store.put_relationship(Relationship("motor", "feeds", "tank"))
    store.put_relationship(Relationship("pump", "feeds", "tank", {"pipe": "P2"}))  # replaces
    keys = [r.key for r in store.list_relationships()]
    assert keys == [
        ("motor", "drives", "pump"),
        ("motor", "feeds", "tank"),
        ("pump", "feeds", "tank"),
    ]
    assert store.list_relationships(source="pump")[0].properties == {"pipe": "P2"}
    assert [r.key for r in store.list_relationships(name="feeds", target="tank")] == keys[1:]
    assert store.list_relationships(source="tank") == []
    store.delete_relationship("motor", "feeds", "tank")
    with _raises(NotFoundError):
        store.delete_relationship("motor", "feeds", "tank")
    store.delete_twin("pump")  # removes every edge touching it
    assert store.list_relationships() == []


# --- events, audit, keys, meta ------------------------------------------------------------------
def check_events(store: Store) -> None:
    first = store.append_events(
        [
            TwinCreated(twin_id="p1", revision=1, ts_ns=10, type_id="Pump"),
            TwinUpdated(twin_id="p1", revision=2, ts_ns=11, changes={"reported": ["speed"]}),
            ReadingsApplied(twin_id="p2", ts_ns=12, count=3, channels=["flow", "head"]),
        ]
    )
    second = store.append_events([CommandSent(twin_id="p2", name="stop", args={"fast": True})])
    assert store.append_events([]) == []
    seqs = [r.seq for r in first + second]
    assert all(b > a for a, b in zip(seqs, seqs[1:], strict=False)) and seqs[0] > 0
    stored = store.events()
    assert stored == first + second  # typed round trip: same classes, fields and event ids
    assert isinstance(stored[2].event, ReadingsApplied) and stored[2].event.channels == [
        "flow",
        "head",
    ]
    page1 = store.events(limit=2)
    page2 = store.events(after_seq=page1[-1].seq, limit=2)
    assert page1 + page2 == stored
    assert store.events(after_seq=seqs[-1]) == []
    assert [r.event.kind for r in store.events(twin_id="p2")] == ["ReadingsApplied", "CommandSent"]
    assert [r.seq for r in store.events(kinds=["TwinCreated", "CommandSent"])] == [seqs[0], seqs[3]]
    assert [r.seq for r in store.events(twin_id="p1", kinds=["TwinUpdated"])] == [seqs[1]]


def check_audit(store: Store) -> None:
    recs = [
        AuditRecord(ts_ns=20, actor="ann", action="twin.update", target="p1"),
        AuditRecord(ts_ns=10, actor="bob", action="key.create", outcome="denied", detail={"role": "admin"}),
        AuditRecord(ts_ns=20, actor="bob", action="action.approve", target="a-1"),
        AuditRecord(ts_ns=30, actor="ann", action="twin.delete", target="p1"),
    ]
    for r in recs:
        store.append_audit(r)
    assert store.audit() == [recs[1], recs[0], recs[2], recs[3]]  # oldest first, ties in order
    assert store.audit(since_ns=20) == [recs[0], recs[2], recs[3]]
    assert store.audit(actor="bob") == [recs[1], recs[2]]
    assert store.audit(limit=2) == [recs[1], recs[0]]


def check_keys(store: Store) -> None:
    k1 = ApiKeyRecord("k1", "ci", "operator", "sha256:aa", created_ns=5)
    k0 = ApiKeyRecord("k0", "root", "admin", "sha256:bb", created_ns=1)
    store.put_key(k1)
    store.put_key(k0)
    assert store.get_key("k1") == k1
    assert store.list_keys() == [k0, k1]
    revoked = ApiKeyRecord("k1", "ci", "operator", "sha256:aa", created_ns=5, revoked=True)
    store.put_key(revoked)
    assert store.get_key("k1").revoked is True
    assert len(store.list_keys()) == 2
    with _raises(NotFoundError):
        store.get_key("nope")


def check_meta(store: Store) -> None:
    assert store.get_meta("bootstrap_done") is None
    store.set_meta("bootstrap_done", "1")
    store.set_meta("bootstrap_done", "yes")
    assert store.get_meta("bootstrap_done") == "yes"


# --- ingest: dedupe state and quarantine -------------------------------------------------------
def _rejected(reason: str = "out_of_range", twin: str | None = "p1", payload: bytes = b'{"v": 1}',
              **kw: object) -> QuarantineRecord:
    # A QuarantineRecord has every field a QuarantineEntry needs; its id is ignored on append.
    fields: dict[str, object] = dict(id=0, reason=reason, message=f"{reason} happened", payload=payload,
                                     topic="t/p1", source="mqtt", received_ns=T0, twin_id=twin,
                                     channel="flow", value=1.0, ts_ns=T0, item="flow")
    fields.update(kw)
    return QuarantineRecord(**fields)  # type: ignore[arg-type]


def check_ingested_roundtrip(store: Store) -> None:
    batch = _batch("p1", "flow", [T0, T0 + S], [1.0, 2.0])
    delta = SeenKeys(seqs=[SeenSeq("mqtt", "p1", 4, (6, 9), T0 + S), SeenSeq("opc", "p1", 0)],
                     digests=[SeenDigest("mqtt", "abc", T0), SeenDigest("opc", "def", T0 + S)])
    binary = bytes(range(256))  # raw payloads survive byte for byte, NULs and invalid UTF-8 too
    ids = store.append_ingested(batch, delta, [_rejected(), _rejected("unknown_twin", "ghost", binary)])
    assert len(ids) == 2 and ids[0] < ids[1]
    assert store.count_readings() == 2 and _rows(store.latest()) == [("p1", "flow", T0 + S, 2.0, 0)]
    assert store.seen_keys("mqtt") == SeenKeys(seqs=[SeenSeq("mqtt", "p1", 4, (6, 9), T0 + S)],
                                               digests=[SeenDigest("mqtt", "abc", T0)])
    assert [r.source for r in store.seen_keys().seqs] == ["mqtt", "opc"]
    # rows replace per (source, device); old digests expire
    later = SeenKeys(seqs=[SeenSeq("mqtt", "p1", 9, (), T0 + 2 * S)],
                     digests=[SeenDigest("mqtt", "ghi", T0 + 2 * S)], expire_before_ns=T0 + 1)
    assert store.append_ingested(ReadingBatch.empty(), later) == []
    keys = store.seen_keys("mqtt")
    assert keys.seqs == [SeenSeq("mqtt", "p1", 9, (), T0 + 2 * S)]
    assert [d.digest for d in keys.digests] == ["ghi"]
    records = store.quarantine()
    assert [r.id for r in records] == ids
    first, second = records
    assert (first.reason, first.twin_id, first.channel, first.value, first.ts_ns, first.item,
            first.status, first.attempts, first.resolved_ns) == (
        "out_of_range", "p1", "flow", 1.0, T0, "flow", "open", 1, None)
    assert second.payload == binary and second.topic == "t/p1" and second.source == "mqtt"
    assert [r.id for r in store.quarantine(reason="unknown_twin")] == [ids[1]]
    assert [r.id for r in store.quarantine(twin_id="p1")] == [ids[0]]
    assert [r.id for r in store.quarantine(after_id=ids[0])] == [ids[1]]
    assert [r.id for r in store.quarantine(limit=1)] == [ids[0]]
    assert [r.id for r in store.quarantine(ids=[ids[1], 999])] == [ids[1]]
    assert store.count_quarantine() == 2 and store.count_quarantine(reason="unknown_twin") == 1


def check_quarantine_resolve_and_update(store: Store) -> None:
    ids = store.append_ingested(ReadingBatch.empty(), None, [_rejected(), _rejected(), _rejected()])
    assert store.resolve_quarantine([ids[0], 12345], "discarded", resolved_ns=T0) == 1
    assert store.resolve_quarantine([ids[0]], "replayed") == 0  # already resolved: unchanged
    with _raises(ValidationError):
        store.resolve_quarantine([ids[1]], "deleted")  # type: ignore[arg-type]
    assert [r.id for r in store.quarantine()] == ids[1:]
    gone = store.quarantine(status="discarded")
    assert [(r.id, r.status, r.resolved_ns) for r in gone] == [(ids[0], "discarded", T0)]
    assert len(store.quarantine(status=None)) == 3
    store.update_quarantine({ids[1]: ("unknown_channel", "still unknown"), ids[0]: ("x", "y")})
    rec = store.quarantine(ids=[ids[1]])[0]
    assert (rec.reason, rec.message, rec.attempts) == ("unknown_channel", "still unknown", 2)
    assert store.quarantine(ids=[ids[0]], status=None)[0].reason == "out_of_range"  # resolved: kept
    # replaying stores the readings and resolves the records in one step
    store.append_ingested(_batch("p1", "flow", [T0], [5.0]), None, [], replayed=[ids[1], ids[2]])
    assert store.count_quarantine() == 0 and store.count_quarantine(status="replayed") == 2
    assert store.count_readings() == 1


def check_ingested_is_atomic(store: Store) -> None:
    store.append_ingested(_batch("p1", "flow", [T0], [1.0]), SeenKeys([SeenSeq("mqtt", "p1", 1)]))
    bad = _rejected(payload="not bytes")  # type: ignore[arg-type]
    delta = SeenKeys(seqs=[SeenSeq("mqtt", "p1", 7)], digests=[SeenDigest("mqtt", "d", T0)])
    with _raises(ValidationError):
        store.append_ingested(_batch("p1", "flow", [T0 + S], [2.0]), delta, [_rejected(), bad],
                              meta={"check_mark": "2"})
    assert store.count_readings() == 1  # neither readings, nor keys, nor quarantine records, nor meta
    assert store.get_meta("check_mark") is None
    assert _rows(store.latest()) == [("p1", "flow", T0, 1.0, 0)]
    assert store.seen_keys() == SeenKeys(seqs=[SeenSeq("mqtt", "p1", 1)])
    assert store.count_quarantine(status=None) == 0
    with _raises(ValidationError):  # a dedupe row whose sparse set is not above its watermark
        store.append_ingested(_batch("p1", "flow", [T0 + S], [2.0]),
                              SeenKeys([SeenSeq("mqtt", "p1", 5, (3,))]))
    assert store.count_readings() == 1 and store.seen_keys().seqs[0].watermark == 1
    # meta keys go with a successful commit (a journal records how far it was applied this way)
    store.append_ingested(_batch("p1", "flow", [T0 + S], [2.0]), None, meta={"check_mark": "3"})
    assert store.get_meta("check_mark") == "3" and store.count_readings() == 2


# --- persistence --------------------------------------------------------------------------------
def check_reopen_keeps_everything(store: Store, reopen: Callable[[Store], Store]) -> None:
    batch = _batch("p1", "flow", [T0 + 1, T0, T0 + 2], [1.5, 0.5, 2.5], 1)
    store.append(batch)
    store.put_twin(_pump("p1"), expected_revision=0)
    store.put_twin(_pump("p2"), expected_revision=0)
    store.put_relationship(Relationship("p1", "feeds", "p2", {"n": 1}))
    events = store.append_events([TwinCreated(twin_id="p1", revision=1, type_id="Pump")])
    store.append_audit(AuditRecord(ts_ns=1, actor="ann", action="x"))
    store.put_key(ApiKeyRecord("k1", "ci", "viewer", "h", 1))
    store.set_meta("bootstrap_done", "1")
    store = reopen(store)
    try:
        assert store.history("p1") == batch.sorted()
        assert _rows(store.latest()) == [("p1", "flow", T0 + 2, 2.5, 1)]
        assert [t.id for t in store.list_twins()] == ["p1", "p2"]
        assert store.list_relationships()[0].properties == {"n": 1}
        assert store.events() == events
        assert store.audit()[0].actor == "ann"
        assert store.get_key("k1").role == "viewer"
        assert store.get_meta("bootstrap_done") == "1"
        more = store.append_events([TwinCreated(twin_id="p2", revision=1)])
        assert more[0].seq > events[0].seq  # seq keeps increasing across restarts
        with _raises(ConflictError):
            store.put_twin(_pump("p1"), expected_revision=0)
    finally:
        store.close()


def check_reopen_keeps_ingest_state(store: Store, reopen: Callable[[Store], Store]) -> None:
    delta = SeenKeys(seqs=[SeenSeq("mqtt", "p1", 41, (43, 50), T0)], digests=[SeenDigest("opc", "h", T0)])
    ids = store.append_ingested(_batch("p1", "flow", [T0], [1.0]), delta, [_rejected(), _rejected()])
    store.resolve_quarantine(ids[:1], "discarded", resolved_ns=T0)
    store = reopen(store)
    try:
        assert store.seen_keys() == delta
        assert [(r.id, r.status) for r in store.quarantine(status=None)] == [
            (ids[0], "discarded"), (ids[1], "open")]
        assert store.quarantine()[0].payload == b'{"v": 1}'
        more = store.append_ingested(ReadingBatch.empty(), None, [_rejected()])
        assert more[0] > ids[1]  # ids keep increasing across restarts
    finally:
        store.close()


CHECKS: list[Check] = [
    check_append_and_count,
    check_latest_is_newest_by_ts,
    check_latest_filters,
    check_history_bounds_order_limit,
    check_history_roundtrip_exact,
    check_history_buckets,
    check_history_buckets_edges,
    check_concurrent_appends,
    check_twin_create_update_conflicts,
    check_twin_revisions_and_delete,
    check_list_twins,
    check_relationships,
    check_events,
    check_audit,
    check_keys,
    check_meta,
    check_ingested_roundtrip,
    check_quarantine_resolve_and_update,
    check_ingested_is_atomic,
    *ARTIFACT_CHECKS,  # model artifacts: see `artifact_checks`
]

PERSISTENCE_CHECKS: list[PersistenceCheck] = [
    check_reopen_keeps_everything, check_reopen_keeps_ingest_state, *ARTIFACT_PERSISTENCE_CHECKS,
]

__all__ = ["CHECKS", "PERSISTENCE_CHECKS", "Check", "PersistenceCheck"] + [
    c.__name__ for c in [*CHECKS, *PERSISTENCE_CHECKS] if c.__module__ == __name__
]
