"""Fault declarations, the schedule and vectorized sensor effects."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.core.errors import NotFoundError, ValidationError
from twinloop.sim.faults import Fault, FaultSchedule, sensor_effect


def test_fault_validation_and_defaults() -> None:
    f = Fault("drift", "pump-A1", "bearing.temperature", params={"rate_per_h": 2})
    assert f.params == {"rate_per_h": 2.0}
    assert Fault("spikes", "pump-A1", "flow").params["probability"] == 0.05
    with pytest.raises(ValidationError, match="unknown fault kind"):
        Fault("melt", "pump-A1")
    with pytest.raises(ValidationError, match="needs a channel"):
        Fault("drift", "pump-A1")
    with pytest.raises(ValidationError, match="unknown parameters"):
        Fault("stuck_valve", "pump-A1", params={"factor": 2})
    with pytest.raises(ValidationError, match="before it starts"):
        Fault("comm_loss", "pump-A1", start_s=10, end_s=5)


def test_schedule_active_inject_clear_and_history() -> None:
    s = FaultSchedule([Fault("comm_loss", "mcc-1", start_s=100, end_s=200)])
    assert s.active(50) == [] and [f.kind for f in s.active(150)] == ["comm_loss"]
    assert s.offline(150) == {"mcc-1"} and s.offline(250) == set()
    g = s.inject(Fault("stuck_valve", "pump-B2", start_s=300))
    assert g.id and s.active(1e9, ["stuck_valve"]) == [g]
    cleared = s.clear(g.id, 400)
    assert cleared.end_s == 400 and not cleared.active(400) and cleared.active(399)
    assert [r["id"] for r in s.records()] == [f.id for f in s.faults]
    assert s.records(350)[0]["kind"] == "stuck_valve"
    with pytest.raises(NotFoundError):
        s.clear("nope", 0)
    with pytest.raises(ValidationError):
        s.inject(Fault("comm_loss", "x", id=g.id))


def test_sensor_effects_vectorized() -> None:
    rng = np.random.default_rng(0)
    v = np.full(10_000, 50.0)
    elapsed = np.arange(10_000) * 360.0  # 0.1 h apart
    drift = sensor_effect("drift", {"rate_per_h": 2.0}, v, elapsed, rng)
    assert np.allclose(np.diff(drift), 0.2)  # linear growth
    stuck = sensor_effect("stuck_at", {"value": np.nan}, v + elapsed, elapsed, rng, onset_value=7.0)
    assert np.all(stuck == 7.0)
    spikes = sensor_effect("spikes", {"probability": 0.1, "magnitude": 10.0}, v, 0.0, rng)
    hit = spikes != 50.0
    assert 0.07 < hit.mean() < 0.13 and np.all(np.abs(spikes[hit] - 50.0) == 10.0)
    drop = sensor_effect("dropout", {"probability": 0.3}, v, 0.0, rng)
    assert 0.27 < np.isnan(drop).mean() < 0.33
    burst = sensor_effect("noise_burst", {"std": 3.0}, v, 0.0, rng)
    assert 2.8 < burst.std() < 3.2
    with pytest.raises(ValidationError):
        sensor_effect("comm_loss", {}, v, 0.0, rng)


def test_schedule_applies_sensor_faults_to_flat_vector() -> None:
    cols = {("pump-A1", "flow"): 0, ("pump-A1", "speed"): 1}
    s = FaultSchedule(
        [
            Fault("stuck_at", "pump-A1", "flow", start_s=0),
            Fault("drift", "pump-A1", "speed", start_s=0, params={"rate_per_h": 36.0}),
            Fault("dropout", "pump-X9", "flow", params={"probability": 1.0}),  # unknown device: ignored
        ],
        seed=1,
    )
    first = s.apply_sensor_faults(0.0, np.array([100.0, 2900.0]), lambda d, c: cols.get((d, c)))
    later = s.apply_sensor_faults(3600.0, np.array([120.0, 2900.0]), lambda d, c: cols.get((d, c)))
    assert first[0] == later[0] == 100.0  # stuck at the onset reading
    assert later[1] == pytest.approx(2936.0)
