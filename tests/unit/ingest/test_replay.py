"""Replay: fix the cause, replay the quarantine, and only the fixed readings are stored."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from twinloop.core.clock import ManualClock
from twinloop.core.protocols import RawMessage
from twinloop.ingest.normalizer import Normalizer
from twinloop.ingest.replay import replay_quarantine
from twinloop.store.duckdb_store import DuckDBStore
from twinloop.store.memory import MemoryStore
from twinloop.store.protocol import Store

sys.path.insert(0, str(Path(__file__).parent))
from ingest_fixtures import RULES, T0, TWINS, flat, make_mapping  # noqa: E402


@pytest.fixture(params=["memory", "duckdb"])
def store(request, tmp_path: Path):
    s: Store = MemoryStore() if request.param == "memory" else DuckDBStore(tmp_path / "s.duckdb")
    yield s
    s.close()


def ingest(n: Normalizer, store: Store, msgs: list[RawMessage]) -> list[int]:
    r = n.normalize(msgs)
    return store.append_ingested(r.batch, r.seen, r.rejected)


def test_replay_after_registering_the_twin_and_fixing_the_mapping(registry, store: Store) -> None:
    n = Normalizer(make_mapping(), registry, dict(TWINS), ManualClock(T0))
    ids = ingest(n, store, [
        flat("p3", 1, {"flow": 5.0}),  # unknown twin
        flat("p1", 1, {"flow": 7.0, "flow_gpm": 10.0}),  # flow is stored; flow_gpm unknown
        RawMessage("mqtt", "other/p1", b'{"ts": %d, "values": {"flow": 1}}' % T0, T0),  # unmapped
        RawMessage("mqtt", "plant/p1/telemetry", b"garbage", T0),  # stays malformed
    ])
    assert store.count_readings() == 1 and len(ids) == 4
    by = {r.reason: r.id for r in store.quarantine()}
    assert set(by) == {"unknown_twin", "unknown_channel", "unmapped", "malformed"}
    n.reconfigure(
        mapping=make_mapping([*RULES, {"mqtt": "other/{device}"}]),
        twin_types={**TWINS, "p3": "Pump"},
    )
    report = replay_quarantine(store, n)
    assert sorted(report.replayed) == sorted([by["unknown_twin"], by["unmapped"]]) and report.readings == 2
    assert {i: f[0] for i, f in report.failed.items()} == {
        by["unknown_channel"]: "unknown_channel", by["malformed"]: "malformed"}
    # flow of p1 was stored at the first pass and is not stored twice
    assert sorted(store.history("p1").values.tolist()) == [1.0, 7.0]
    assert store.history("p3").values.tolist() == [5.0]
    assert [(r.id, r.attempts) for r in store.quarantine()] == sorted(
        [(by["unknown_channel"], 2), (by["malformed"], 2)])
    assert store.count_quarantine(status="replayed") == 2


def test_unknown_channel_fixed_by_a_rename(registry, store: Store) -> None:
    n = Normalizer(make_mapping(), registry, dict(TWINS), ManualClock(T0))
    ids = ingest(n, store, [flat("p1", 1, {"flow_gpm": 10.0, "speed": 99999.0})])
    assert [r.reason for r in store.quarantine()] == ["unknown_channel", "out_of_range"]
    rules = [dict(RULES[0], channels={"flow_gpm": {"channel": "flow", "unit": "gallon/minute"}}), *RULES[1:]]
    n.reconfigure(mapping=make_mapping(rules))
    report = replay_quarantine(store, n, reason="unknown_channel")
    assert report.replayed == [ids[0]] and report.failed == {}
    assert [round(v, 3) for v in store.history("p1").values.tolist()] == [2.271]  # 10 gpm in m**3/h
    assert [r.id for r in store.quarantine()] == [ids[1]]  # the other record was not asked for


def test_a_whole_message_record_splits_its_still_bad_readings(registry, store: Store) -> None:
    n = Normalizer(make_mapping(), registry, dict(TWINS), ManualClock(T0))
    (mid,) = ingest(n, store, [RawMessage("mqtt", "other/p1",
                                          b'{"ts": %d, "values": {"flow": 1, "speed": -500}}' % T0, T0)])
    n.reconfigure(mapping=make_mapping([*RULES, {"mqtt": "other/{device}"}]))
    report = replay_quarantine(store, n, ids=[mid])
    assert report.replayed == [mid] and report.readings == 1 and len(report.new_records) == 1
    (new,) = store.quarantine()
    assert (new.reason, new.item, new.id) == ("out_of_range", "speed", report.new_records[0])
