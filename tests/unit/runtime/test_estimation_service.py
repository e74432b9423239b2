"""Live estimation against the pump-station simulator's own physics, stepped in plant time.

The simulator's plant is stepped in-process (5 s samples: plant time, never wall time) and its
samples go through the store into `EstimationService` exactly as the pipeline commits them:
every device's channels as readings, the lines' header pressures included. Figures when written
(seed 1, 2 plant-hours): fault-free running pumps have their NIS in the 95 % χ² band in ≈ 94 %
of steps after their calibration at 1 h, every channel's ``ν/σ`` has mean within ±0.7 and std
0.92 … 1.09; with the old preset's 55 m static head and 25 °C ambient the share is ≈ 0 and the
health says so.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from fastapi.testclient import TestClient

from twinloop.api.app import create_app
from twinloop.core.errors import NotFoundError
from twinloop.core.readings import Quality, ReadingBatch
from twinloop.sim.pump_station import PumpStationPlant
from twinloop.twins.asset_type import Analytics

START = 1_767_225_600 * 10**9
PERIOD_S = 5.0


def plant_batches(seconds: float, seed: int = 1) -> list[ReadingBatch]:
    """One batch per sample of every online device, as the simulator publishes them."""
    plant = PumpStationPlant(seed=seed)
    out = []
    for _ in range(int(seconds / PERIOD_S)):
        plant.step(PERIOD_S)
        s = plant.sample()
        ids, channels, values = [], [], []
        for d, v, online in zip(plant.devices, s.values, s.online, strict=True):
            if online:
                ids += [d.id] * len(d.channels)
                channels += [c.name for c in d.channels]
                values.append(v)
        ts = np.full(len(ids), START + int(s.t_s * 1e9))
        out.append(ReadingBatch.from_arrays(np.array(ids, object), np.array(channels, object), ts,
                                            np.concatenate(values)))
    return out


def feed(rt, batches: list[ReadingBatch]) -> list[dict]:
    """Store and estimate each batch; collect each running pump's NIS band verdict per step."""
    steps = []
    est = rt.estimation
    for b in batches:
        rt.store.append(b)
        est.update(b)
        te = est.type_of("pump-A1")
        f = te.filter
        running = f.u[:, 0] > 100
        share_inputs = np.isfinite(f.innovation).sum(axis=1)
        steps.append({"nis": f.nis.copy(), "m": share_inputs, "running": running,
                      "z": f.innovation / f.innovation_std})
    return steps


def band_share(steps: list[dict], skip: int) -> tuple[float, np.ndarray, np.ndarray]:
    from scipy.stats import chi2

    nis = np.array([s["nis"] for s in steps[skip:]])
    m = np.array([s["m"] for s in steps[skip:]])
    run = np.array([s["running"] for s in steps[skip:]])
    z = np.array([s["z"] for s in steps[skip:]])
    inside = (nis >= chi2.ppf(0.025, m)) & (nis <= chi2.ppf(0.975, m))
    return float(inside[run].mean()), np.nanmean(z[run], axis=0), np.nanstd(z[run], axis=0)


@pytest.fixture(scope="module")
def two_hours() -> list[ReadingBatch]:
    return plant_batches(2 * 3600.0)


def test_fault_free_running_pumps_are_consistent_after_their_calibration(rt, two_hours) -> None:
    steps = feed(rt, two_hours)
    after_calibration = int(3600 / PERIOD_S) + 60  # the first stretch is 1 h; 5 min to settle
    share, mean, std = band_share(steps, after_calibration)
    assert share >= 0.9, share
    assert np.all(np.abs(mean) < 1.0) and np.all((std > 0.8) & (std < 1.25)), (mean, std)
    health = rt.estimation.fleet_health("Pump")
    running = [h for h in health if h["steps"] > 0]
    assert len(running) == 9 and all(h["consistent"] for h in running), running
    # the fit is on the twin: a new revision with the parameters, used by the live filter
    twin = rt.twins.get("pump-C3")
    fitted = twin.attributes["model_parameters"]
    assert set(fitted) >= {"shutoff_head", "max_efficiency"} and rt.twins.revisions("pump-C3") == [1, 2]
    te = rt.estimation.type_of("pump-C3")
    row = te.filter.rows(["pump-C3"])[0]
    col = [q.name for q in te.spec.model.parameters].index("max_efficiency")
    assert te.filter.p[row, col] == pytest.approx(fitted["max_efficiency"])
    assert rt.store.artifacts("calibration", "pump-C3")  # and its report is kept
    # health readings are stored for RUL to gate on
    stored = rt.store.history("pump-C3", ["est.consistent"])
    assert len(stored) and stored.values[-1] == 1.0 and set(stored.quality) == {Quality.SUBSTITUTED}
    # standby pumps never ran: not judged, and say why
    assert rt.estimation.health("pump-A4")["consistent"] is None


def test_the_old_presets_plant_facts_are_found_inconsistent(rt, two_hours) -> None:
    rt.registry.declare_analytics("Pump", Analytics(estimator={
        "preset": "pump", "inputs": {"discharge_static_head": 55.0, "ambient_temperature": 25.0},
        "calibration": {"enabled": False}}))
    steps = feed(rt, two_hours[: int(1800 / PERIOD_S)])
    share, mean, _ = band_share(steps, 60)
    assert share < 0.2, share
    health = rt.estimation.health("pump-A1")
    assert health["consistent"] is False
    assert "NIS inside its 95 % band" in health["reason"] and "σ on average" in health["reason"]
    assert rt.store.history("pump-A1", ["est.consistent"]).values[-1] == 0.0


def test_a_pump_without_its_lines_pressure_waits_for_it(rt, two_hours) -> None:
    pumps_only = [b.filter(np.char.startswith(b.asset_ids.astype(str), "pump-")) for b in two_hours[:20]]
    for b in pumps_only:
        rt.estimation.update(b)
    report = rt.estimation.update(pumps_only[-1])["Pump"]
    assert report.epochs == 0 and report.waiting > 0  # no static head, no estimate (not a guess)
    with pytest.raises(NotFoundError):
        rt.estimation.estimate("tank-A")


def test_the_worker_applies_every_batch_and_reports_its_lag(rt, two_hours) -> None:
    est = rt.estimation
    assert est.lag_s() is None
    batches = two_hours[:120]
    for b in batches:  # submitted faster than estimated: the backlog is merged, nothing skipped
        est.submit(b)
    assert est.wait_idle(timeout=300)
    assert est.lag_s() == 0.0
    f = est.type_of("pump-A1").filter
    assert (f.ts_ns == batches[-1].ts_ns.max()).all()
    steps = est.health("pump-A1")["steps"]
    assert steps == len(batches)  # one health step per sample: every epoch was applied
    est.stop()


def test_a_failing_update_is_logged_once_with_its_trace(rt, two_hours, caplog, monkeypatch) -> None:
    est = rt.estimation
    est.update(two_hours[0])
    te = est.type_of("pump-A1")

    def broken(batch):
        raise RuntimeError("model blew up")

    monkeypatch.setattr(te.filter, "update", broken)
    with caplog.at_level(logging.ERROR, logger="twinloop.runtime.estimation_service"):
        for b in two_hours[1:4]:
            assert est.update(b) == {}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "Pump" in errors[0].getMessage() and errors[0].exc_info is not None


def test_api_serves_the_estimate_and_the_fleets_health(rt, two_hours) -> None:
    for b in two_hours[:200]:
        rt.estimation.update(b)
    auth = {"Authorization": f"Bearer {rt.bootstrap_token}"}
    with TestClient(create_app(rt), raise_server_exceptions=False) as client:
        ok = client.get("/twins/pump-A1/estimate", headers=auth)
        assert ok.status_code == 200, ok.text
        body = ok.json()
        assert body["estimator"] == "ukf" and set(body["states"]["bearing.wear"]) == {"mean", "std"}
        assert "ambient_temperature" in body["states"]  # estimated: the station publishes no weather
        assert body["health"]["steps"] == 200 and body["health"]["consistent"] is not None
        assert set(body["health"]["channels"]["flow"]) == {"mean", "std"}
        fleet = client.get("/estimates/health", params={"type": "Pump"}, headers=auth)
        assert fleet.status_code == 200, fleet.text
        data = fleet.json()
        assert {t["twin_id"] for t in data["twins"]} == {f"pump-{x}{n}" for x in "ABC" for n in range(1, 5)}
        assert client.get("/estimates/health", params={"type": "Tank"}, headers=auth).status_code == 404
        assert client.get("/twins/tank-A/estimate", headers=auth).status_code == 404
        assert client.get("/twins/pump-A1/estimate").status_code == 401
