"""The alerts API over a Runtime on memory:// with the example plant."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from twinloop.analytics.alerts import Finding
from twinloop.api import routes_alerts
from twinloop.api.app import create_app


@pytest.fixture
def client(rt):
    app = create_app(rt)
    if not any(getattr(r, "path", "") == "/alerts" for r in app.routes):
        app.include_router(routes_alerts.router)  # until app.py wires the router itself
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def raise_alert(client, twin="pump-A1", channel="flow") -> str:
    service = routes_alerts.get_alerts(type("R", (), {"app": client.app})())
    a = service.raise_finding(Finding(
        twin_id=twin, detector="pca", start_ns=1, end_ns=None, peak_score=5.0, level=2.0, exceedance=2.5,
        channels=[channel], attributions={channel: 1.0},
    ))
    return a.alert_id


def test_list_filter_ack_and_resolve(client, as_role):
    viewer, operator = as_role("viewer"), as_role("operator")
    first = raise_alert(client)
    raise_alert(client, twin="pump-B1")
    assert raise_alert(client) == first  # a repeat, not a new alert
    r = client.get("/alerts", headers=viewer)
    assert r.status_code == 200 and len(r.json()) == 2
    r = client.get("/alerts", params={"twin_id": "pump-A1", "state": "open"}, headers=viewer)
    [a] = r.json()
    assert a["id"] == first and a["occurrences"] == 2
    assert a["channels"] == ["flow"] and a["severity"] == "major"
    r = client.post(f"/alerts/{first}/ack", json={"note": "looking"}, headers=operator)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged" and r.json()["note"] == "looking"
    assert "test-operator" in r.json()["acknowledged_by"]
    assert client.get("/alerts", params={"state": "open"}, headers=viewer).json()[0]["twin_id"] == "pump-B1"
    r = client.post(f"/alerts/{first}/resolve", headers=operator)
    assert r.status_code == 200 and r.json()["state"] == "resolved"
    assert client.get(f"/alerts/{first}", headers=viewer).json()["state"] == "resolved"


def test_roles_and_bad_requests_get_4xx_with_a_message(client, as_role):
    viewer, operator = as_role("viewer"), as_role("operator")
    alert_id = raise_alert(client)
    assert client.get("/alerts").status_code == 401
    r = client.post(f"/alerts/{alert_id}/ack", headers=viewer)
    assert r.status_code == 403 and "operator" in r.json()["hint"]
    assert client.post("/alerts/al-nope/ack", headers=operator).status_code == 404
    assert client.get("/alerts", params={"state": "sleeping"}, headers=viewer).status_code == 422
    assert client.post(f"/alerts/{alert_id}/ack", json={"colour": 1}, headers=operator).status_code == 422
    client.post(f"/alerts/{alert_id}/resolve", headers=operator)
    r = client.post(f"/alerts/{alert_id}/ack", headers=operator)
    assert r.status_code == 409 and "resolved" in r.json()["message"]


def test_the_monitor_route_says_how_far_learning_and_evaluation_have_got(client, rt, as_role):
    from twinloop.runtime.alert_monitor import AlertMonitor

    viewer = as_role("viewer")
    assert client.get("/alerts/monitor", headers=viewer).json()["running"] is False
    rt.monitor = AlertMonitor(rt.alerts, rt.store, rt.twins)
    body = client.get("/alerts/monitor", headers=viewer).json()
    assert body["running"] is True and body["lag_s"] is None  # nothing learned yet
    pumps = {t["twin_id"]: t for t in body["twins"]}
    assert "pump-C3" in pumps and not pumps["pump-C3"]["learned"]
    assert pumps["pump-C3"]["reason"] == "waiting for readings"
