"""IngestService: splitting bodies, normalizing through the ingest path, idempotency, replay, audit."""

import json

import pytest

from twinloop.core.clock import ManualClock
from twinloop.core.commands import CreateTwin, DeleteTwin
from twinloop.core.errors import ConflictError, ValidationError
from twinloop.core.readings import ReadingBatch
from twinloop.ingest.mapping import RECORDS_TOPIC
from twinloop.ingest.rejected import Rejected
from twinloop.runtime.ingest_service import (
    CSV_TOPIC,
    FLAT_TOPIC,
    IngestService,
    media_kind,
    split_csv,
    split_json,
)
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path

T0 = 1_767_225_600 * 10**9
S = 10**9


@pytest.fixture
def rt():
    settings = load_settings(store_url="memory://", plant=example_plant_path(), ingest=False)
    with Runtime.open(settings, clock=ManualClock(T0)) as runtime:
        yield runtime


@pytest.fixture
def svc(rt):
    return IngestService(rt.store, rt.twins, rt.bus, rt.clock, mapping_path=rt.settings.resolved_mapping)


def _records(*rows) -> bytes:
    return json.dumps({"readings": list(rows)}).encode()


def _pump(rt, twin_id: str) -> None:
    attrs = rt.twins.get("pump-A1").attributes
    rt.twins.create(CreateTwin(twin_id=twin_id, type_id="Pump", attributes=attrs), actor="test")


# --- splitting ---------------------------------------------------------------------------------------
def test_json_bodies_are_split_by_shape():
    body = _records({"twin_id": "a", "channel": "flow", "ts": 1, "value": 1})
    s = split_json(body, 5)
    assert [(m.topic, m.payload) for m in s.messages] == [(RECORDS_TOPIC, body)]  # passed on as is
    assert s.labels[0] == ["readings[0]"]
    flat = json.dumps({"device": "p", "seq": 1, "ts": 1, "values": {"flow": 1}}).encode()
    assert [(m.topic, m.payload) for m in split_json(flat, 5).messages] == [(FLAT_TOPIC, flat)]
    mixed = [{"twin_id": "a", "channel": "flow", "ts": 1, "value": 1},
             {"device": "p", "seq": 1, "ts": 1, "values": {"flow": 1}},
             {"twin_id": "b", "channel": "flow", "ts": 1, "value": 2}]
    s = split_json(json.dumps(mixed).encode(), 5)
    assert [m.topic for m in s.messages] == [RECORDS_TOPIC, FLAT_TOPIC]
    assert s.labels[0] == ["[0]", "[2]"] and s.flat_labels == {1: "[1]"}
    assert all(m.source == "http" and m.received_ns == 5 for m in s.messages)
    for junk in (b"42", b'"x"', b'{"what": 1}', b"{broken"):  # the normalizer says why
        assert [m.topic for m in split_json(junk, 5).messages] == [RECORDS_TOPIC]


def test_csv_is_split_into_records_and_bad_lines_refused_by_line():
    body = ('\ufefftwin_id,channel,ts,value,quality\n'
            'a,flow,2026-01-01T00:00:00Z,1.5,2\n'
            '\n'
            '"b",flow,7,"x,y",GOOD\n'
            'c,flow,7\n').encode()
    s = split_csv(body, 5)
    rows = json.loads(s.messages[0].payload)["readings"]
    assert rows[0] == {"twin_id": "a", "channel": "flow", "ts": "2026-01-01T00:00:00Z", "value": 1.5,
                       "quality": 2, "line": 2}
    assert rows[1]["value"] == "x,y" and rows[1]["quality"] == "GOOD"
    assert s.labels[0] == ["line 2", "line 4"]
    (rej, label), = s.early
    assert label == "line 5" and rej.reason == "malformed" and rej.topic == CSV_TOPIC
    assert rej.payload == b"twin_id,channel,ts,value,quality\nc,flow,7"
    for header, what in (("twin_id,channel,value", "missing column(s) ts"),
                         ("twin_id,channel,ts,value,colour", "unknown column(s) colour"),
                         ("twin_id,channel,ts,value,value", "twice")):
        s = split_csv(f"{header}\n".encode(), 5)
        assert not s.messages and what in s.early[0][0].message
    assert "UTF-8" in split_csv(b"\xff\xfe", 5).early[0][0].message


def test_media_types():
    assert media_kind(None) == media_kind("application/json; charset=utf-8") == "json"
    assert media_kind("application/vnd.x+json") == "json"
    assert media_kind("text/csv") == media_kind("application/csv") == "csv"
    assert media_kind("application/xml") is None


# --- ingestion ---------------------------------------------------------------------------------------
def test_ingest_stores_announces_and_audits(rt, svc):
    seen = []
    rt.bus.on_event(seen.append)
    body = _records({"twin_id": "pump-A1", "channel": "flow", "ts": T0, "value": 100.0},
                    {"twin_id": "pump-A1", "channel": "bearing.temperature", "ts": T0, "value": 212,
                     "unit": "degF"},
                    {"twin_id": "pump-B1", "channel": "flow", "ts": T0, "value": "n/a"})
    report = svc.ingest(body, "application/json", actor="key:k1(test)")
    assert (report.accepted, report.rejected, report.parsed) == (2, 1, True)
    assert report.problems == ["readings[2]: wrong_type: built-in records: 'flow': 'n/a' is not a number"]
    temp = rt.store.latest(["pump-A1"], ["bearing.temperature"]).values[0]
    assert temp == pytest.approx(100.0)
    assert [(e.kind, e.twin_id, e.count) for e in seen] == [("ReadingsApplied", "pump-A1", 2)]
    assert [r.event.kind for r in rt.store.events(kinds=["ReadingsApplied"])] == ["ReadingsApplied"]
    (audit,) = [a for a in rt.store.audit() if a.action == "ingest.http"]
    assert audit.actor == "key:k1(test)" and audit.detail["accepted"] == 2
    assert audit.detail["quarantine_ids"] == report.quarantine_ids


def test_a_body_nothing_of_which_can_be_read_is_quarantined_whole(rt, svc):
    report = svc.ingest(b"not json at all", None, actor="t")
    assert not report.parsed and report.rejected == 1 and report.problems[0].startswith("body: malformed")
    (q,) = rt.store.quarantine()
    assert q.payload == b"not json at all" and q.item is None
    assert [a.outcome for a in rt.store.audit() if a.action == "ingest.http"] == ["refused"]
    with pytest.raises(ValidationError, match="content type"):
        svc.ingest(b"x", "image/png", actor="t")
    svc.max_body_bytes = 10
    with pytest.raises(ValidationError, match="over the limit"):
        svc.ingest(b"x" * 11, None, actor="t")


def test_idempotency_keys_are_per_caller_and_survive_a_restart(tmp_path):
    url = f"duckdb:///{tmp_path / 'i.duckdb'}"
    settings = load_settings(store_url=url, plant=example_plant_path(), ingest=False)
    body = _records({"twin_id": "pump-A1", "channel": "flow", "ts": T0, "value": 1.0})
    with Runtime.open(settings, clock=ManualClock(T0)) as rt:
        svc = IngestService(rt.store, rt.twins, rt.bus, rt.clock)
        assert svc.ingest(body, None, actor="alice", idempotency_key="k-1").accepted == 1
    with Runtime.open(settings, clock=ManualClock(T0 + 3600 * S)) as rt:
        svc = IngestService(rt.store, rt.twins, rt.bus, rt.clock)
        again = svc.ingest(body, None, actor="alice", idempotency_key="k-1")
        assert again.idempotent_replay and again.accepted == 1
        with pytest.raises(ConflictError, match="different body"):
            svc.ingest(b"[]", None, actor="alice", idempotency_key="k-1")
        other = svc.ingest(body, None, actor="bob", idempotency_key="k-1")
        assert not other.idempotent_replay
        assert rt.store.count_readings("pump-A1") == 2
        with pytest.raises(ValidationError, match="Idempotency-Key"):
            svc.ingest(body, None, actor="alice", idempotency_key="x" * 201)


def test_the_normalizer_follows_twins_added_and_removed(rt, svc):
    def post(twin: str, ts: int) -> int:
        return svc.ingest(_records({"twin_id": twin, "channel": "flow", "ts": ts, "value": 1.0}),
                          None, actor="t").accepted

    assert post("pump-N1", T0) == 0
    _pump(rt, "pump-N1")
    assert post("pump-N1", T0 + S) == 1
    rt.twins.delete(DeleteTwin(twin_id="pump-N1"), actor="t")
    assert post("pump-N1", T0 + 2 * S) == 0


# --- quarantine --------------------------------------------------------------------------------------
def test_replay_uses_the_mapping_file_for_what_the_pipeline_quarantined(rt, svc):
    flat = json.dumps({"device": "pump-Q1", "seq": 3, "ts": T0, "values": {"flow": 12.0}}).encode()
    (qid,) = rt.store.append_ingested(ReadingBatch.empty(), None, [Rejected(
        "unknown_twin", "flat telemetry: twin 'pump-Q1' does not exist", flat,
        "twinloop/pump-station/pump-Q1/telemetry", "mqtt", T0, twin_id="pump-Q1", item="flow")])
    assert svc.replay([qid], actor="t").still_failing == [qid]
    _pump(rt, "pump-Q1")
    summary = svc.replay(actor="t", reason="unknown_twin")
    assert summary.replayed == [qid] and summary.readings == 1
    assert rt.store.latest(["pump-Q1"]).values.tolist() == [12.0]
    assert rt.store.quarantine(status=None)[0].status == "replayed"


def test_replay_keeps_the_reason_of_unreadable_csv_lines_and_checks_its_arguments(rt, svc):
    report = svc.ingest(b"twin_id,channel,ts,value\npump-A1,flow\n", "text/csv", actor="t")
    summary = svc.replay(report.quarantine_ids, actor="t")
    assert summary.still_failing == report.quarantine_ids and "not replayable" in summary.problems[0]
    assert rt.store.quarantine()[0].reason == "malformed"
    with pytest.raises(ValidationError, match="not both"):
        svc.replay([1], reason="malformed", actor="t")
    with pytest.raises(ValidationError):
        svc.replay([], actor="t")
    with pytest.raises(ValidationError):
        svc.replay(actor="t", limit=0)
    assert svc.discard(report.quarantine_ids, actor="t") == 1
    assert svc.discard(report.quarantine_ids, actor="t") == 0  # already resolved
    with pytest.raises(ValidationError):
        svc.discard([], actor="t")
    with pytest.raises(ValidationError):
        svc.list_quarantine(limit=0)
    actions = [a.action for a in rt.store.audit()]
    assert actions.count("quarantine.replay") == 1 and actions.count("quarantine.discard") == 2
