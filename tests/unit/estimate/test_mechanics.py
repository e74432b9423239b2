"""Specs, batches in, estimates out: the plumbing around the filters."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.core.errors import ConflictError, ValidationError
from twinloop.core.readings import Quality, ReadingBatch
from twinloop.estimate import make_estimator
from twinloop.estimate.covariance import guarded_cholesky
from twinloop.estimate.result import EST_PREFIX, INNOV_PREFIX
from twinloop.estimate.spec import EstimatorSpec
from twinloop.physics.tank import TankModel

TANK = {"channels": {"level": "level"}, "inputs": {"inflow": "inflow", "outflow": ("outflow", 0.0)},
        "measurement": {"level": [0.01, 0.0]}, "process": {"level": 0.05},
        "estimate_parameters": ["cross_section"], "initial_std": {"level": 0.5, "cross_section": 0.2},
        "publish": {"level": "tank.level"}}


def tank_spec(**changes) -> EstimatorSpec:
    return EstimatorSpec.from_dict(TankModel(), {**TANK, **changes})


@pytest.mark.parametrize("changes, match", [
    ({"channels": {"level": "depth"}}, "not declared"),
    ({"measurement": {}}, "no measurement noise"),
    ({"inputs": {"inflow": 1.0}}, "without a source"),
    ({"process": {"pressure": 1.0}}, "neither a state"),
    ({"estimate_parameters": ["diameter"]}, "not declared"),
    ({"measurement": {"level": [0.0, 0.0]}}, "not all 0"),
    ({"colour": "red"}, "unknown keys"),
])
def test_a_wrong_spec_is_refused_with_what_is_wrong(changes, match) -> None:
    with pytest.raises(ValidationError, match=match):
        tank_spec(**changes)


def test_joint_parameter_estimation_finds_a_tanks_cross_section() -> None:
    """Level rises at inflow/area: the filter learns the area (log space) from the level alone."""
    est = make_estimator("ukf", tank_spec())
    est.add_twins(["t1", "t2"])
    area = np.array([14.0, 30.0])
    level = np.array([1.0, 1.0])
    rng = np.random.default_rng(0)
    ts = 10**18
    batches = []
    for _ in range(40):
        ts += 600 * 10**9
        level = level + 40.0 * 600 / 3600 / area
        y = level + rng.normal(0, 0.01, 2)
        batches.append(ReadingBatch.from_arrays(["t1", "t1", "t2", "t2"], ["level", "inflow"] * 2,
                                                ts, [y[0], 40.0, y[1], 40.0]))
    report = est.update(ReadingBatch.concat(batches))
    assert report.epochs == 80 and report.waiting == 0
    e = est.estimate()
    assert e.names == ("tank.level", "cross_section")
    assert np.allclose(e.mean[:, 1], area, rtol=0.05), e.mean[:, 1]


def test_batch_problems_are_counted_never_silently_dropped() -> None:
    est = make_estimator("ekf", tank_spec())
    est.add_twins(["t1", "t2"])
    with pytest.raises(ValidationError, match="does not hold"):
        est.update(ReadingBatch.from_arrays(["t9"], ["level"], [1], [2.0]))
    b = ReadingBatch.from_arrays(
        ["t1", "t1", "t1", "t2", "t2"], ["level", "inflow", "level", "level", "colour"],
        [10, 10, 20, 10, 10], [2.0, 5.0, 2.1, 3.0, 1.0],
        [Quality.GOOD, Quality.GOOD, Quality.BAD, Quality.GOOD, Quality.GOOD])
    report = est.update(b)
    assert report.bad == 1  # the BAD level reading
    assert report.waiting == 1  # t2 has no inflow yet: its epoch waits for its inputs
    assert report.epochs == 1 and est.ready.tolist() == [True, False]
    assert est.update(ReadingBatch.from_arrays(["t1"], ["level"], [5], [2.0])).late == 1
    with pytest.raises(ConflictError):
        est.add_twins(["t1"])


def test_estimates_become_substituted_readings() -> None:
    est = make_estimator("ukf", tank_spec())
    est.add_twins(["t1", "idle"])
    est.update(ReadingBatch.from_arrays(["t1", "t1"], ["level", "inflow"], [7, 7], [2.0, 5.0]))
    out = est.estimate().to_batch()
    assert set(out.asset_ids) == {"t1"}  # a twin never updated has nothing to say
    assert set(out.quality) == {Quality.SUBSTITUTED}
    channels = set(out.channels)
    assert {f"{EST_PREFIX}tank.level", f"{EST_PREFIX}tank.level_std", f"{EST_PREFIX}cross_section",
            f"{INNOV_PREFIX}level", f"{EST_PREFIX}nis"} <= channels
    assert set(out.ts_ns) == {7}
    twin = est.estimate().twin("t1")
    assert twin["states"]["tank.level"]["std"] > 0 and twin["innovations"]["level"]["value"] is not None


def test_unknown_estimator_kind() -> None:
    with pytest.raises(ValidationError, match="one of"):
        make_estimator("kalman9000", tank_spec())


def test_one_indefinite_covariance_does_not_stop_the_batch() -> None:
    P = np.tile(np.eye(3), (1000, 1, 1))
    P[417] = [[1.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 1.0]]
    P[900, 0, 0] = np.nan
    L, fixed = guarded_cholesky(P, np.full((1000, 3), 1e-9), np.eye(3)[None])
    assert np.flatnonzero(fixed).tolist() == [417, 900]
    assert np.isfinite(L).all() and np.allclose(L[0], np.eye(3))
