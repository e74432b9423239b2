"""Live estimation: readings in, estimates stored as readings, served on the API."""

from __future__ import annotations

import numpy as np
import pytest
from fastapi.testclient import TestClient

from twinloop.api import routes_estimate
from twinloop.api.app import create_app
from twinloop.core.errors import NotFoundError
from twinloop.core.readings import Quality, ReadingBatch
from twinloop.estimate.presets import PUMP_MEASUREMENTS
from twinloop.physics.model import index
from twinloop.physics.pump_unit import PumpUnitModel, nominal_inputs
from twinloop.runtime.estimation_service import EstimationService

MODEL = PumpUnitModel()
START = 1_767_225_600 * 10**9


def station_readings(pumps: list[str], steps: int, seed: int = 0) -> ReadingBatch:
    """Pumps at the preset's plant facts (55 m static head, 25 °C), plus a tank level."""
    rng = np.random.default_rng(seed)
    n = len(pumps)
    u = nominal_inputs(MODEL, n, speed_setpoint=rng.uniform(2600, 2950, n))
    p = np.tile([q.default for q in MODEL.parameters], (n, 1))
    x = MODEL.initial_state(p, u)
    channels = {**{c: o for c, (o, _, _) in PUMP_MEASUREMENTS.items()}, "speed": "speed",
                "valve.opening": "valve_opening", "suction_pressure": "suction_pressure"}
    ids, names, ts, values = [], [], [], []
    for k in range(steps):
        x = MODEL.next_state(x, u, 60.0, p)
        y = MODEL.output(x, u, p)
        for c, o in channels.items():
            ids += pumps
            names += [c] * n
            ts += [START + k * 60 * 10**9] * n
            values += (y[:, index(MODEL.outputs, o)] * (1 + rng.normal(0, 0.002, n))).tolist()
        ids.append("tank-A"), names.append("level"), ts.append(START + k * 60 * 10**9), values.append(2.0)
    return ReadingBatch.from_arrays(ids, names, ts, values)


@pytest.fixture
def service(rt) -> EstimationService:
    rt.estimation = EstimationService(rt.store, rt.twins)  # what Runtime.open will do once wired
    return rt.estimation


def test_readings_become_stored_estimates(rt, service) -> None:
    batch = station_readings(["pump-A1", "pump-A2"], 20)
    rt.state.record(batch)
    reports = service.update(batch)
    assert set(reports) == {"Pump"}  # the tank has no estimator: its readings are not touched
    assert reports["Pump"].epochs == 40 and reports["Pump"].faults == 0
    stored = rt.store.history("pump-A1", ["est.bearing.wear", "est.bearing.wear_std", "innov.flow"])
    assert len(stored) == 3 and set(stored.quality) == {Quality.SUBSTITUTED}
    assert set(stored.ts_ns) == {START + 19 * 60 * 10**9}
    wear = service.estimate("pump-A1")["states"]["bearing.wear"]
    assert abs(wear["mean"]) < 3 * wear["std"] and wear["std"] < 0.06  # a new bearing, honestly uncertain
    fleet = service.fleet("Pump")
    assert fleet.innovation.shape == (2, len(PUMP_MEASUREMENTS)) and np.isfinite(fleet.innovation).any()


def test_only_updated_twins_are_written_again(rt, service) -> None:
    service.update(station_readings(["pump-A1", "pump-A2"], 3))
    before = rt.store.count_readings("pump-A2")
    later = station_readings(["pump-A1"], 2, seed=1)
    shifted = ReadingBatch.from_arrays(later.asset_ids, later.channels, later.ts_ns + 10**12, later.values)
    service.update(shifted)
    assert rt.store.count_readings("pump-A2") == before


def test_twins_without_an_estimate_say_why(service) -> None:
    with pytest.raises(NotFoundError, match="has no estimator"):
        service.estimate("tank-A")
    with pytest.raises(NotFoundError, match="no estimate for twin"):
        service.estimate("pump-B1")
    with pytest.raises(NotFoundError):
        service.estimate("pump-Z9")
    with pytest.raises(NotFoundError, match="has no estimator"):
        service.fleet("Tank")


def test_api_serves_the_estimate(rt, service) -> None:
    service.update(station_readings(["pump-A1"], 5))
    app = create_app(rt)
    app.include_router(routes_estimate.router)  # create_app will include it once wired
    auth = {"Authorization": f"Bearer {rt.bootstrap_token}"}
    with TestClient(app, raise_server_exceptions=False) as client:
        ok = client.get("/twins/pump-A1/estimate", headers=auth)
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["estimator"] == "ukf" and body["ts"].startswith("2026-01-01T00:04")
        assert set(body["states"]["bearing.wear"]) == {"mean", "std"}
        assert "bearing.temperature" in body["innovations"]
        assert client.get("/twins/tank-A/estimate", headers=auth).status_code == 404
        assert client.get("/twins/nope/estimate", headers=auth).status_code == 404
        assert client.get("/twins/pump-A1/estimate").status_code == 401
