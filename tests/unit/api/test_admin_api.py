def test_health_needs_no_key_and_openapi_lists_routes(client):
    assert client.get("/health").json()["status"] == "ok"
    schema = client.get("/openapi.json").json()
    for path in ("/twins", "/twins/{twin_id}/history", "/graph/{twin_id}/impact", "/keys",
                 "/events", "/types/{type_id}/dtdl"):
        assert path in schema["paths"]


def test_key_lifecycle_and_audit(client, admin):
    r = client.post("/keys", json={"name": "dashboard", "role": "viewer"}, headers=admin)
    assert r.status_code == 201
    token, key_id = r.json()["token"], r.json()["key_id"]
    viewer = {"Authorization": f"Bearer {token}"}
    assert client.get("/me", headers=viewer).json()["role"] == "viewer"
    listed = client.get("/keys", headers=admin).json()
    assert key_id in {k["key_id"] for k in listed} and all("token" not in k for k in listed)
    assert client.delete(f"/keys/{key_id}", headers=admin).json()["revoked"] is True
    assert client.get("/me", headers=viewer).status_code == 401
    actions = [a["action"] for a in client.get("/audit", headers=admin).json()]
    assert "key.create" in actions and "key.revoke" in actions
    assert client.post("/keys", json={"name": "x", "role": "root"}, headers=admin).status_code == 422


def test_types_and_dtdl(client, admin):
    ids = {t["id"] for t in client.get("/types", headers=admin).json()}
    assert {"Pump", "Motor", "Bearing", "Valve", "Tank"} <= ids
    dtdl = client.get("/types/Pump/dtdl", headers=admin).json()
    assert "dtmi:dtdl:context;3" in dtdl["@context"] and dtdl["@type"] == "Interface"
    assert dtdl["@id"] == "dtmi:twinloop:Pump;1"


def test_live_events_over_websocket(client, admin):
    token = admin["Authorization"][7:]
    with client.websocket_connect(f"/events/live?key={token}&twin_id=pump-A3") as ws:
        client.patch("/twins/pump-A3/desired", json={"desired": {"speed_setpoint": 900}},
                     headers=admin)
        msg = ws.receive_json()
        assert msg["kind"] == "TwinUpdated" and msg["twin_id"] == "pump-A3"


def test_websocket_refuses_without_key(client):
    import pytest
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect) as err:
        with client.websocket_connect("/events/live") as ws:
            ws.receive_json()
    assert err.value.code == 4401
