"""Every prognoser passes the whole `twinloop.analytics.rul.checks` battery.

To add a prognoser, append a `Case` to `CASES`: how to build it from a seed, what to fit it on,
and the histories to predict on (a fleet, and the same split into single units).
"""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.analytics.rul import GbmPrognoser, SimilarityPrognoser
from twinloop.analytics.rul.checks import CHECKS, Case, Check
from twinloop.analytics.rul.physics import LoadForecast, PhysicsPrognoser, StateEstimate
from twinloop.analytics.rul.synthetic import synthetic_fleet
from twinloop.physics.model import default_parameters
from twinloop.physics.pump_unit import PumpUnitModel, nominal_inputs

SMALL_TREES = {"n_estimators": 40, "learning_rate": 0.1}
TRAIN = synthetic_fleet(n_units=16, seed=1, life=(60, 110))
HELD = synthetic_fleet(n_units=3, seed=2, life=(60, 110))
FLEET = HELD.truncate(np.array([20, 50, 59]))


def _pump_states() -> list[StateEstimate]:
    m = PumpUnitModel()
    p = default_parameters(m, 1)
    x = m.initial_state(p, nominal_inputs(m, 1))[0]
    out = []
    for wear, sd in ((0.2, 0.05), (0.6, 0.03), (0.95, 0.0)):
        mean = x.copy()
        mean[m.state_index("bearing_wear")] = wear
        out.append(StateEstimate(mean, np.diag([1.0, 0.0, 1.0, 1.0, sd**2]), p[0]))
    return out


def _physics(seed: int) -> PhysicsPrognoser:
    m = PumpUnitModel()
    load = LoadForecast(np.vstack([nominal_inputs(m, 1), nominal_inputs(m, 1, speed_setpoint=2500.0)]),
                        np.array([0.7, 0.3]), switch_h=48.0)
    return PhysicsPrognoser(m, load, "bearing_failure", {"bearing_wear_rate": 0.2}, n_samples=100,
                            dt_h=8.0, seed=seed)


CASES = [
    Case("gbm", lambda s: GbmPrognoser(cap=80.0, tree_params=SMALL_TREES, seed=s), TRAIN, FLEET,
         [FLEET.take_units([u]) for u in FLEET.units]),
    Case("similarity", lambda s: SimilarityPrognoser(cap=80.0, seed=s), TRAIN, FLEET,
         [FLEET.take_units([u]) for u in FLEET.units]),
    Case("physics", _physics, None, _pump_states(), _pump_states()),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_prognoser(check: Check, case: Case) -> None:
    check(case)
