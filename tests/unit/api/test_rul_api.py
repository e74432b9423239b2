"""RUL over a real Runtime (memory:// store, example plant): service, API and CLI."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from twinloop.api.app import create_app
from twinloop.cli import rul_cmd
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.rul_service import RUL_CHANNELS, RulService, RulUpdated
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path

WORN = {"speed": 2950.0, "valve.opening": 100.0, "bearing.temperature": 70.0,
        "bearing.vibration_rms": 4.5, "bearing.defect_band_energy": 25.0}
NEW = {**WORN, "bearing.vibration_rms": 1.1, "bearing.defect_band_energy": 1.05}


def _record(rt: Runtime, twin_id: str, values: dict[str, float]) -> None:
    ts = rt.clock.now_ns()
    rt.state.record(ReadingBatch.from_arrays(twin_id, list(values), ts, list(values.values())))


@pytest.fixture
def rul_client(rt):
    with TestClient(create_app(rt), raise_server_exceptions=False) as c:
        yield c


def test_rul_is_computed_stored_and_served(rt, rul_client, admin, as_role) -> None:
    viewer, operator = as_role("viewer"), as_role("operator")
    r = rul_client.get("/twins/pump-A1/rul", headers=viewer)
    assert r.status_code == 404 and "no RUL" in r.json()["message"]
    _record(rt, "pump-A1", WORN)  # the runtime's RUL service updates live from here on
    _record(rt, "pump-B1", NEW)
    assert rul_client.post("/twins/pump-A1/rul", headers=viewer).status_code == 403
    for twin in ("pump-A1", "pump-B1"):
        assert rul_client.post(f"/twins/{twin}/rul", headers=operator).status_code == 200
    body = rul_client.get("/twins/pump-A1/rul?horizon=36h&horizon=30d", headers=viewer).json()
    assert body["unit"] == "h" and body["model"].startswith("physics")
    lo, hi = body["interval80"]
    assert 0 <= lo <= body["quantiles"]["0.5"] <= hi
    p = body["p_fail"]
    assert set(p) == {"24h", "72h", "7d", "36h", "30d"}
    assert 0.0 <= p["24h"] <= p["36h"] <= p["72h"] <= p["7d"] <= p["30d"] <= 1.0
    assert body["drivers"] and {"name", "contribution", "value"} <= set(body["drivers"][0])
    fresh = rul_client.get("/twins/pump-B1/rul", headers=viewer).json()
    assert fresh["mean"] > body["mean"], "a new bearing must have more life left than a worn one"
    fleet = rul_client.get("/rul?horizon=30d&type=Pump", headers=viewer).json()
    assert [t["twin_id"] for t in fleet["twins"]] == ["pump-A1", "pump-B1"] and fleet["horizon_h"] == 720
    history = rul_client.get("/twins/pump-A1/history?channel=rul.mean_h", headers=viewer).json()
    assert history["rows"] == 2  # the live update on arrival, then the recompute asked for
    kinds = [e.event.kind for e in rt.store.events(0, "pump-A1")]
    assert "RulUpdated" in kinds


def test_rul_errors_are_4xx_with_a_message(rt, rul_client, as_role) -> None:
    operator = as_role("operator")
    assert rul_client.get("/twins/nope/rul", headers=operator).status_code == 404
    r = rul_client.post("/twins/tank-A/rul", headers=operator)
    assert r.status_code == 422 and "no prognoser" in r.json()["message"]
    r = rul_client.post("/twins/pump-C1/rul", headers=operator)  # no readings yet
    assert r.status_code == 422 and "pump-C1" in r.json()["message"]
    _record(rt, "pump-C2", {**WORN, "speed": 0.0})
    assert rul_client.post("/twins/pump-C2/rul", headers=operator).status_code == 422  # stopped
    _record(rt, "pump-A1", WORN)
    rul_client.post("/twins/pump-A1/rul", headers=operator)
    assert rul_client.get("/twins/pump-A1/rul?horizon=soon", headers=operator).status_code == 422
    assert rul_client.get("/twins/pump-A1/rul?horizon=-5h", headers=operator).status_code == 422
    assert rul_client.get("/rul?horizon=xyz", headers=operator).status_code == 422


def test_service_updates_live_and_reloads_from_the_store(rt) -> None:
    service = rt.rul  # attached to the bus by the runtime, throttled to once an hour per twin
    assert service is not None
    _record(rt, "pump-A2", WORN)
    first = service.get("pump-A2")
    assert isinstance(first, RulUpdated) and first.p_fail["7d"] >= first.p_fail["24h"]
    _record(rt, "pump-A2", WORN)  # within the hour: throttled
    assert len(rt.store.events(0, "pump-A2", ["RulUpdated"])) == 1
    again = RulService(rt.store, rt.twins, rt.bus, rt.clock).get("pump-A2")  # cold: read from events
    assert again.event_id == first.event_id and again.p_fail_within(1e9) == 1.0
    latest = {c for c in rt.store.latest(["pump-A2"]).channels}
    assert set(RUL_CHANNELS) <= latest
    done, skipped = service.update_fleet("Pump")
    assert [e.twin_id for e in done] == ["pump-A2"] and "pump-A1" in skipped


def test_cli_shows_one_twin_and_the_fleet(tmp_path) -> None:
    url = f"duckdb:///{tmp_path / 'rul.duckdb'}"
    with Runtime.open(load_settings(store_url=url, plant=example_plant_path())) as rt:
        _record(rt, "pump-B3", WORN)
        RulService(rt.store, rt.twins, rt.bus, rt.clock).update("pump-B3")
    runner = CliRunner()
    shown = runner.invoke(rul_cmd.app, ["show", "pump-B3", "--store", url, "--horizon", "36h"])
    assert shown.exit_code == 0, shown.output
    assert "P(fail within)" in shown.output and "36h" in shown.output and "bearing_wear" in shown.output
    fleet = runner.invoke(rul_cmd.app, ["fleet", "--store", url, "--horizon", "30d", "--json"])
    assert fleet.exit_code == 0, fleet.output
    assert json.loads(fleet.output)["twins"][0]["twin_id"] == "pump-B3"
    missing = runner.invoke(rul_cmd.app, ["show", "pump-A1", "--store", url])
    assert missing.exit_code == 1 and "no RUL" in missing.output
