"""On the pump station's run-to-failure data, predicted RUL converges to the truth as units age."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from twinloop.analytics.rul import GbmPrognoser, Trajectories
from twinloop.analytics.rul.physics import LoadForecast, PhysicsPrognoser, StateEstimate
from twinloop.physics.model import names
from twinloop.physics.pump_unit import PumpUnitModel, nominal_inputs
from twinloop.sim.batch import run_fleet
from twinloop.sim.pump_station_layout import PUMP_CHANNELS

WEAR_SCALE = 10.0  # time compression: lives of ~100-1000 h instead of ~2000 h
SENSORS = [c for c, _, _ in PUMP_CHANNELS]
AGES = (0.3, 0.6, 0.9)


def _fleet(n: int, seed: int):
    return run_fleet(n_units=n, seed=seed, dt_s=1800.0, sample_every_s=4 * 3600.0, wear_scale=WEAR_SCALE)


@pytest.fixture(scope="module")
def test_fleet():
    run = _fleet(6, 12)
    return run, Trajectories.from_table(run.readings, SENSORS)


def _cuts(runs: Trajectories, share: float) -> np.ndarray:
    return np.maximum(2, np.round(runs.lengths * share).astype(int))


def test_data_driven_rul_converges_on_pump_run_to_failure(test_fleet) -> None:
    train = Trajectories.from_table(_fleet(24, 11).readings, SENSORS)
    prognoser = GbmPrognoser(cap=None, levels=(0.1, 0.5, 0.9), seed=0,
                             tree_params={"n_estimators": 80, "learning_rate": 0.1}).fit(train)
    _, runs = test_fleet
    errors, covered = [], []
    for share in AGES:
        keep = _cuts(runs, share)
        truth = runs.rul[runs.starts + keep - 1]
        dists = prognoser.predict_fleet(runs.truncate(keep))
        pred = np.array([d.mean for d in dists])
        errors.append(np.median(np.abs(pred - truth) / (truth + runs.time[runs.starts + keep - 1])))
        covered += [lo <= t <= hi for d, t in zip(dists, truth, strict=True) for lo, hi in [d.interval(0.8)]]
        assert all(d.unit == "h" and d.drivers for d in dists)
    assert errors[-1] < errors[0], f"relative error should shrink with age: {errors}"
    assert errors[-1] < 0.1, f"near the end the error should be small: {errors}"
    assert np.mean(covered) >= 0.5


def test_physics_rul_converges_given_the_wear_state(test_fleet) -> None:
    run, runs = test_fleet
    m = PumpUnitModel()
    units = run.units
    p_all = np.column_stack([units.column(f"param_{n}").to_numpy() for n in names(m.parameters)])
    p_all[:, names(m.parameters).index("bearing_wear_rate")] *= WEAR_SCALE
    duties = [nominal_inputs(m, 1, speed_setpoint=s, valve_command=v, discharge_static_head=50.0,
                             ambient_temperature=25.0) for s, v in itertools.product((2300.0, 2600.0, 2900.0),
                                                                                      (70.0, 100.0))]
    load = LoadForecast(np.vstack(duties), switch_h=120.0)
    prognoser = PhysicsPrognoser(m, load, "bearing_failure", {"bearing_wear_rate": 0.2}, n_samples=200,
                                 dt_h=1.0, seed=0).fit()
    wear = run.readings.column("wear").to_numpy()
    x_ref = m.initial_state(p_all[:1], duties[-1])[0]
    errors = []
    for share in AGES:
        rows = runs.starts + _cuts(runs, share) - 1
        truth = runs.rul[rows]
        states = []
        for i, r in enumerate(rows):
            mean = x_ref.copy()
            mean[m.state_index("bearing_wear")] = wear[r]  # a stand-in for the estimator's output
            states.append(StateEstimate(mean, np.diag([1.0, 0.0, 1.0, 1.0, 0.02**2]),
                                        p_all[runs.units[i]]))
        pred = np.array([d.mean for d in prognoser.predict_fleet(states)])
        life = truth + runs.time[rows]
        errors.append(np.median(np.abs(pred - truth) / life))
    assert errors[-1] < errors[0], f"relative error should shrink as the bearing wears: {errors}"
    assert errors[-1] < 0.1, f"near the end the error should be small: {errors}"
