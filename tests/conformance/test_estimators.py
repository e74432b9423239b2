"""Every fleet estimator passes the whole `twinloop.estimate.checks` battery.

To add an estimator, append ``(name, make, exact)`` to `ESTIMATORS`; ``exact=False`` for
sampling filters, which match the Kalman answer only approximately.
"""

from __future__ import annotations

import pytest

from twinloop.estimate.checks import CHECKS, Check, Make
from twinloop.estimate.ekf import ExtendedKalmanFilter
from twinloop.estimate.particle import ParticleFilter
from twinloop.estimate.ukf import UnscentedKalmanFilter

ESTIMATORS: list[tuple[str, Make, bool]] = [
    ("ukf", UnscentedKalmanFilter, True),
    ("ekf", ExtendedKalmanFilter, True),
    ("particle", lambda spec: ParticleFilter(spec, n_particles=2000, seed=1), False),
]


@pytest.mark.parametrize("name, make, exact", ESTIMATORS, ids=[e[0] for e in ESTIMATORS])
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_estimator(check: Check, name: str, make: Make, exact: bool) -> None:
    check(make, exact)
