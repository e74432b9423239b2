import numpy as np

from twinloop.core.readings import ReadingBatch

NEW_PUMP = {
    "id": "pump-Z1",
    "type_id": "Pump",
    "attributes": {"manufacturer": "Grundfos", "model": "NB", "serial": "Z-1",
                   "rated_flow": 90.0, "rated_head": 35.0, "line": "A"},
}


def test_pumps_are_listed_with_a_key_and_refused_without(client, admin):
    r = client.get("/twins", params={"type": "Pump"}, headers=admin)
    assert r.status_code == 200
    assert sorted(t["id"] for t in r.json()) == sorted(
        f"pump-{line}{n}" for line in "ABC" for n in range(1, 5)
    )
    r = client.get("/twins", params={"type": "Pump"})
    assert r.status_code == 401 and r.json()["message"] == "missing API key"
    assert client.get("/twins", headers={"Authorization": "Bearer tlk_x_y"}).status_code == 401
    assert client.get("/twins", headers={"X-API-Key": admin["Authorization"][7:]}).status_code == 200


def test_roles_are_enforced_per_route(client, as_role):
    viewer, operator, engineer = as_role("viewer"), as_role("operator"), as_role("engineer")
    r = client.post("/twins", json=NEW_PUMP, headers=viewer)
    assert r.status_code == 403 and "engineer" in r.json()["hint"]
    assert client.post("/twins", json=NEW_PUMP, headers=operator).status_code == 403
    r = client.post("/twins", json=NEW_PUMP, headers=engineer)
    assert r.status_code == 201 and r.headers["location"] == "/twins/pump-Z1"
    r = client.patch("/twins/pump-Z1/desired", json={"desired": {"speed_setpoint": 1200}},
                     headers=viewer)
    assert r.status_code == 403
    r = client.patch("/twins/pump-Z1/desired", json={"desired": {"speed_setpoint": 1200}},
                     headers=operator)
    assert r.status_code == 200 and r.json()["desired"] == {"speed_setpoint": 1200}
    assert client.get("/keys", headers=engineer).status_code == 403


def test_crud_with_revisions_and_conflicts(client, admin):
    assert client.post("/twins", json=NEW_PUMP, headers=admin).status_code == 201
    r = client.post("/twins", json=NEW_PUMP, headers=admin)
    assert r.status_code == 409
    r = client.patch("/twins/pump-Z1", json={"attributes": {"model": "NB2"}},
                     headers={**admin, "If-Match": '"1"'})
    assert r.status_code == 200 and r.json()["revision"] == 2 and r.headers["etag"] == '"2"'
    r = client.patch("/twins/pump-Z1", json={"attributes": {"model": "NB3"}},
                     headers={**admin, "If-Match": '"1"'})
    assert r.status_code == 409 and "revision 2" in r.json()["message"]
    assert client.get("/twins/pump-Z1?revision=1", headers=admin).json()["attributes"][
        "model"] == "NB"
    assert client.get("/twins/pump-Z1/revisions", headers=admin).json() == [1, 2]
    assert client.delete("/twins/pump-Z1", headers=admin).status_code == 204
    assert client.get("/twins/pump-Z1", headers=admin).status_code == 404


def test_bad_input_gets_a_4xx_with_a_message(client, admin):
    cases = [
        client.post("/twins", json={**NEW_PUMP, "id": "has space"}, headers=admin),
        client.post("/twins", json={**NEW_PUMP, "type_id": "Nope"}, headers=admin),
        client.post("/twins", json={"id": "x"}, headers=admin),
        client.post("/twins", content=b"{not json", headers={**admin,
                                                             "content-type": "application/json"}),
        client.post("/twins", json={**NEW_PUMP, "attributes": {"rated_flow": "lots"}},
                    headers=admin),
        client.get("/twins", params={"where": "{bad"}, headers=admin),
        client.get("/twins", params={"where": "[1]"}, headers=admin),
        client.get("/twins/nope", headers=admin),
        client.get("/twins/pump-A1/history", params={"bucket": "fortnight"}, headers=admin),
        client.get("/twins/pump-A1/history", params={"start": "yesterday"}, headers=admin),
        client.patch("/twins/pump-A1", json={"desired": {"speed_setpoint": -5}}, headers=admin),
        client.patch("/twins/pump-A1", json={}, headers={**admin, "If-Match": "abc"}),
        client.post("/twins/pump-A1/commands/setSpeed", json={"args": {"rpm": 99999}},
                    headers=admin),
        client.put("/twins/pump-A1/relationships", json={"name": "partOf", "target": "nope"},
                   headers=admin),
        client.get("/graph/nope/downstream", headers=admin),
        client.get("/types/Nope", headers=admin),
    ]
    for r in cases:
        assert 400 <= r.status_code < 500, (r.request.url, r.status_code, r.text)
        body = r.json()
        assert body["message"] and "Traceback" not in r.text


def test_where_filter_and_paging(client, admin):
    r = client.get("/twins", params={"type": "Pump", "where": '{"line": "C"}'}, headers=admin)
    assert [t["id"] for t in r.json()] == ["pump-C1", "pump-C2", "pump-C3", "pump-C4"]
    r = client.get("/twins", params={"type": "Pump", "limit": 2, "offset": 1}, headers=admin)
    assert [t["id"] for t in r.json()] == ["pump-A2", "pump-A3"]


def test_graph_walks(client, admin):
    r = client.get("/graph/tank-A/downstream", headers=admin)
    reached = {x["id"]: x for x in r.json()}
    assert {"pump-A1", "pump-A4", "reservoir-1"} <= set(reached)
    assert reached["pump-A1"]["depth"] == 1 and reached["pump-A1"]["via"]["name"] == "feeds"
    r = client.get("/graph/pump-C1/upstream", params={"name": "feeds"}, headers=admin)
    assert "tank-C" in {x["id"] for x in r.json()}
    r = client.get("/graph/mcc-2/impact", headers=admin)
    assert {"pump-C1", "pump-C4"} <= {x["id"] for x in r.json()}
    r = client.get("/graph/line-A/neighbours", params={"direction": "in", "name": "partOf"},
                   headers=admin)
    assert {t["id"] for t in r.json()} == {"pump-A1", "pump-A2", "pump-A3", "pump-A4"}


def test_state_history_and_events(client, admin, rt):
    t0 = 1_767_225_600 * 10**9
    ts = t0 + np.arange(600) * 10**9
    rt.state.record(ReadingBatch.from_arrays("pump-A1", "flow", ts, np.arange(600.0)))
    state = client.get("/twins/pump-A1/state", headers=admin).json()
    flow = {c["channel"]: c for c in state["channels"]}["flow"]
    assert flow["value"] == 599.0 and flow["ts"].startswith("2026-01-01T00:09:59")
    r = client.get("/twins/pump-A1/history", headers=admin,
                   params={"channel": "flow", "start": "2026-01-01T00:00:00Z",
                           "end": "2026-01-01T00:05:00Z", "bucket": "1m"})
    body = r.json()
    assert body["rows"] == 5 and body["bucket_s"] == 60.0
    assert body["columns"]["mean"] == [29.5, 89.5, 149.5, 209.5, 269.5]
    assert body["columns"]["bucket"][1].startswith("2026-01-01T00:01:00")
    raw = client.get("/twins/pump-A1/history", params={"limit": 3}, headers=admin).json()
    assert raw["rows"] == 3 and raw["columns"]["value"] == [0.0, 1.0, 2.0]
    events = client.get("/events", params={"kind": "ReadingsApplied"}, headers=admin).json()
    assert events[-1]["twin_id"] == "pump-A1" and events[-1]["data"]["count"] == 600
    after = events[-1]["seq"]
    assert client.get("/events", params={"after": after}, headers=admin).json() == []


def test_commands_are_accepted_and_recorded(client, as_role):
    op = as_role("operator")
    r = client.post("/twins/pump-B2/commands/setSpeed", json={"args": {"rpm": 1400}}, headers=op)
    assert r.status_code == 202 and r.json()["status"] == "sent"
    ev = client.get("/events", params={"twin_id": "pump-B2", "kind": "CommandSent"},
                    headers=op).json()
    assert ev[-1]["data"]["command_id"] == r.json()["command_id"]
