"""POST /ingest and the quarantine endpoints, over a real runtime on memory:// and on DuckDB."""

import json

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinloop.api.app import create_app
from twinloop.core.clock import ManualClock
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path

T0 = 1_767_225_600 * 10**9  # 2026-01-01T00:00:00Z
ISO0 = "2026-01-01T00:00:00Z"


@pytest.fixture(params=["memory", "duckdb"])
def rt(request, tmp_path):
    url = "memory://" if request.param == "memory" else f"duckdb:///{tmp_path / 't.duckdb'}"
    settings = load_settings(store_url=url, plant=example_plant_path(), ingest=False)
    with Runtime.open(settings, clock=ManualClock(T0), bootstrap=True) as runtime:
        yield runtime


@pytest.fixture
def client(rt):
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def auth(rt):
    def make(role: str) -> dict[str, str]:
        _, token = rt.keys.create(f"test-{role}", role)
        return {"Authorization": f"Bearer {token}"}

    return make


def _post(client, headers, body, content_type="application/json", **extra):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return client.post("/ingest", content=data, headers={**headers, "Content-Type": content_type, **extra})


def _latest(client, headers, twin):
    r = client.get(f"/twins/{twin}/state", headers=headers)
    assert r.status_code == 200, r.text
    return {c["channel"]: c for c in r.json()["channels"]}


def test_json_readings_land_in_state_and_history_with_units_converted(client, auth):
    op = auth("operator")
    body = {"readings": [
        {"twin_id": "pump-A1", "channel": "flow", "ts": ISO0, "value": 101.5},
        {"twin_id": "pump-A1", "channel": "bearing.temperature", "ts": T0, "value": 212, "unit": "degF"},
        {"twin_id": "pump-A1", "channel": "flow", "ts": T0 + 10**9, "value": 102.0, "quality": "UNCERTAIN"},
    ]}
    r = _post(client, op, body)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 3, "rejected": 0, "duplicates": 0, "quarantine_ids": [],
                        "problems": [], "idempotent_replay": False}
    state = _latest(client, op, "pump-A1")
    assert state["bearing.temperature"]["value"] == pytest.approx(100.0)
    assert state["bearing.temperature"]["unit"] == "degC"
    assert state["flow"]["value"] == 102.0 and state["flow"]["quality"] == 1
    hist = client.get("/twins/pump-A1/history", params={"channel": "flow"}, headers=op).json()
    assert hist["columns"]["value"] == [101.5, 102.0]


def test_csv_lands_too_and_bad_lines_are_quarantined_by_line(client, auth):
    op = auth("operator")
    csv = ("twin_id,channel,ts,value,unit,quality\n"
           f"pump-B2,flow,{ISO0},55.5,m**3/h,0\n"
           f"pump-B2,bearing.temperature,{T0},140,degF,\n"
           f"pump-B2,flow,{T0 + 10**9},lots,,\n"
           "pump-B2,flow\n")
    r = _post(client, op, csv, "text/csv; charset=utf-8")
    assert r.status_code == 200, r.text
    out = r.json()
    assert (out["accepted"], out["rejected"]) == (2, 2)
    assert any(p.startswith("line 4: wrong_type") for p in out["problems"])
    assert any(p.startswith("line 5: malformed") for p in out["problems"])
    state = _latest(client, op, "pump-B2")
    assert state["flow"]["value"] == 55.5
    assert state["bearing.temperature"]["value"] == pytest.approx(60.0)


def test_bad_rows_are_quarantined_with_reason_and_raw_record_good_rows_stored(client, auth):
    op = auth("operator")
    body = [
        {"twin_id": "pump-A1", "channel": "flow", "ts": T0, "value": 100.0},
        {"twin_id": "pump-Z9", "channel": "flow", "ts": T0, "value": 1.0},
        {"twin_id": "pump-A1", "channel": "flow", "ts": T0 + 10**9, "value": 9999.0},
        {"twin_id": "pump-A1", "channel": "no_such", "ts": T0, "value": 1.0},
        {"twin_id": "pump-A1", "channel": "speed", "ts": T0, "value": 3.0, "unit": "furlong"},
    ]
    r = _post(client, op, body)
    out = r.json()
    assert r.status_code == 200 and out["accepted"] == 1 and out["rejected"] == 4
    assert len(out["quarantine_ids"]) == 4
    assert [p.split(":")[0] for p in out["problems"]] == ["[1]", "[2]", "[3]", "[4]"]
    page = client.get("/quarantine", headers=auth("viewer")).json()
    by_reason = {q["reason"]: q for q in page["items"]}
    assert set(by_reason) == {"unknown_twin", "out_of_range", "unknown_channel", "unit_mismatch"}
    twin = by_reason["unknown_twin"]
    assert twin["twin_id"] == "pump-Z9" and twin["source"] == "http" and twin["reason_text"]
    assert twin["payload_encoding"] == "utf-8"
    assert json.loads(twin["payload"]) == {"readings": [body[1]]}  # its own record, not the body
    assert twin["received"].startswith("2026-01-01")
    assert page["open"] == 4 and page["next_after"] is None
    only = client.get("/quarantine", params={"reason": "out_of_range"}, headers=op).json()["items"]
    assert [q["value"] for q in only] == [9999.0]
    assert client.get("/quarantine", params={"twin_id": "pump-Z9"}, headers=op).json()["items"][0]["id"] \
        == twin["id"]
    paged = client.get("/quarantine", params={"limit": 2}, headers=op).json()
    rest = client.get("/quarantine", params={"after": paged["next_after"]}, headers=op).json()
    assert len(paged["items"]) == 2 and len(rest["items"]) == 2


def test_flat_device_payloads_one_or_a_list_and_their_duplicates(client, auth):
    op = auth("operator")
    one = {"device": "pump-C1", "type": "Pump", "seq": 7, "ts": T0, "values": {"flow": 80.0, "speed": 1450}}
    assert _post(client, op, one).json()["accepted"] == 2
    more = [one, {**one, "seq": 8, "ts": T0 + 10**9, "values": {"flow": 81.0}},
            {"twin_id": "pump-C2", "channel": "flow", "ts": T0, "value": 5.0}]
    out = _post(client, op, more).json()
    assert (out["accepted"], out["duplicates"], out["rejected"]) == (2, 2, 0)
    assert _latest(client, op, "pump-C1")["flow"]["value"] == 81.0


def test_who_may_post_and_who_may_manage_the_quarantine(client, auth):
    body = {"readings": [{"twin_id": "nope", "channel": "flow", "ts": T0, "value": 1.0}]}
    r = client.post("/ingest", json=body)
    assert r.status_code == 401 and "API key" in r.json()["message"]
    assert _post(client, {"Authorization": "Bearer tlk_x_y"}, body).status_code == 401
    r = _post(client, auth("viewer"), body)
    assert r.status_code == 403 and "operator" in r.json()["hint"]
    assert _post(client, auth("operator"), body).status_code == 200
    assert client.get("/quarantine").status_code == 401
    assert client.get("/quarantine", headers=auth("viewer")).status_code == 200
    for path, payload in (("/quarantine/replay", {"all": True}), ("/quarantine/discard", {"ids": [1]})):
        assert client.post(path, json=payload, headers=auth("operator")).status_code == 403
        assert client.post(path, json=payload, headers=auth("engineer")).status_code == 200


def test_too_big_bodies_get_413_and_other_types_415(client, auth, rt):
    op = auth("operator")
    rt.ingest.max_body_bytes = 500
    big = {"readings": [{"twin_id": "pump-A1", "channel": "flow", "ts": T0 + i, "value": 1.0}
                        for i in range(20)]}
    r = _post(client, op, big)
    assert r.status_code == 413 and "500 bytes" in r.json()["message"] and r.json()["hint"]

    def chunks():  # no Content-Length: the limit holds while streaming
        for _ in range(10):
            yield b"x" * 100

    r = client.post("/ingest", content=chunks(), headers={**op, "Content-Type": "application/json"})
    assert r.status_code == 413
    r = _post(client, op, b"<xml/>", "application/xml")
    assert r.status_code == 415 and "text/csv" in r.json()["hint"]
    assert rt.store.count_quarantine() == 0


def test_unreadable_body_is_422_and_quarantined_whole(client, auth):
    op = auth("operator")
    r = _post(client, op, b'{"readings": [oops')
    assert r.status_code == 422, r.text
    out = r.json()
    assert out["error"] == "ValidationError" and "not JSON" in out["message"]
    assert out["accepted"] == 0 and len(out["quarantine_ids"]) == 1
    q = client.get("/quarantine", headers=op).json()["items"][0]
    assert q["reason"] == "malformed" and q["payload"] == '{"readings": [oops' and q["item"] is None
    r = _post(client, op, b"\xff\xfe twin", "text/csv")
    assert r.status_code == 422 and "UTF-8" in r.json()["message"]
    q = client.get("/quarantine", params={"after": q["id"]}, headers=op).json()["items"][0]
    assert q["payload_encoding"] == "base64" and q["topic"].endswith("csv")
    r = _post(client, op, "twin,chan\nx,y\n", "text/csv")
    assert r.status_code == 422 and "missing column" in r.json()["message"]
    assert _post(client, op, {"readings": []}).json()["accepted"] == 0  # readable, just empty


def test_idempotency_key_answers_a_retry_without_storing_twice(client, auth, rt):
    op = auth("operator")
    body = {"readings": [{"twin_id": "pump-A2", "channel": "flow", "ts": T0, "value": 10.0},
                         {"twin_id": "ghost", "channel": "flow", "ts": T0, "value": 1.0}]}
    first = _post(client, op, body, **{"Idempotency-Key": "batch-0001"})
    again = _post(client, op, body, **{"Idempotency-Key": "batch-0001"})
    assert first.status_code == again.status_code == 200
    assert again.json() == {**first.json(), "idempotent_replay": True}
    assert rt.store.count_readings("pump-A2") == 1 and rt.store.count_quarantine() == 1
    r = _post(client, op, {"readings": []}, **{"Idempotency-Key": "batch-0001"})
    assert r.status_code == 409 and "different body" in r.json()["message"]
    assert _post(client, op, body, **{"Idempotency-Key": "has space"}).status_code == 422
    # without a key, the same body again within the dedupe window is recognised by its digest
    assert _post(client, op, body).json()["accepted"] == 1
    assert _post(client, op, body).json()["duplicates"] == 2
    assert rt.store.count_readings("pump-A2") == 2


def test_replay_after_registering_the_missing_twin_then_discard(client, auth, rt):
    op, eng = auth("operator"), auth("engineer")
    body = {"readings": [{"twin_id": "pump-D1", "channel": "flow", "ts": T0, "value": 42.0},
                         {"twin_id": "pump-A1", "channel": "flow", "ts": T0, "value": 6000.0}]}
    ids = _post(client, op, body).json()["quarantine_ids"]
    r = client.post("/quarantine/replay", json={"ids": ids}, headers=eng).json()
    assert r["replayed"] == [] and r["still_failing"] == ids and "unknown_twin" in r["problems"][0]
    attrs = client.get("/twins/pump-A1", headers=eng).json()["attributes"]
    created = client.post("/twins", json={"id": "pump-D1", "type_id": "Pump", "attributes": attrs},
                          headers=eng)
    assert created.status_code == 201, created.text
    r = client.post("/quarantine/replay", json={"twin_id": "pump-D1"}, headers=eng).json()
    assert r["replayed"] == [ids[0]] and r["readings"] == 1
    assert _latest(client, op, "pump-D1")["flow"]["value"] == 42.0
    assert client.post("/quarantine/replay", json={}, headers=eng).status_code == 422
    assert client.post("/quarantine/replay", json={"ids": ids, "reason": "x"}, headers=eng).status_code == 422
    r = client.post("/quarantine/discard", json={"ids": [ids[1], 999]}, headers=eng).json()
    assert r == {"discarded": 1}
    assert client.get("/quarantine", headers=op).json()["items"] == []
    every = client.get("/quarantine", params={"status": "all"}, headers=op).json()["items"]
    assert {q["id"]: q["status"] for q in every} == {ids[0]: "replayed", ids[1]: "discarded"}
    assert all(q["resolved"] for q in every)
    actions = [a.action for a in rt.store.audit()]
    assert {"ingest.http", "quarantine.replay", "quarantine.discard"} <= set(actions)
    assert client.post("/quarantine/discard", json={"ids": []}, headers=eng).status_code == 422


def test_ingest_is_in_the_openapi_document_with_both_body_types(client):
    doc = client.get("/openapi.json").json()
    content = doc["paths"]["/ingest"]["post"]["requestBody"]["content"]
    assert {"application/json", "text/csv"} <= set(content)
    assert {"/quarantine", "/quarantine/replay", "/quarantine/discard"} <= set(doc["paths"])


KEYS = ["readings", "twin_id", "channel", "ts", "value", "unit", "quality", "device", "seq", "values"]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
    | st.sampled_from(["pump-A1", "flow", "degF", ISO0, "GOOD", T0]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=6),
                                                                inner, max_size=6),
    max_leaves=25,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_values | st.binary(max_size=200) | st.text(max_size=200),
       content_type=st.sampled_from(["application/json", "text/csv"]))
def test_whatever_is_posted_the_answer_is_not_5xx_and_accounts_for_the_quarantine(client, rt, body,
                                                                                   content_type):
    headers = {"Authorization": f"Bearer {rt.bootstrap_token}"}
    before = rt.store.count_quarantine()
    data = body if isinstance(body, bytes) else json.dumps(body) if content_type.endswith("json") else \
        str(body)
    r = _post(client, headers, data, content_type)
    assert r.status_code in (200, 422), r.text
    out = r.json()
    assert len(out["quarantine_ids"]) == out["rejected"] == rt.store.count_quarantine() - before
    assert len(out["problems"]) == min(out["rejected"], 5)
    if r.status_code == 422:
        assert out["message"] and out["accepted"] == 0
