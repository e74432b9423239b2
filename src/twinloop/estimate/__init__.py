"""State and parameter estimation over a PhysicsModel, vectorized across all twins of one type.

Pick a filter by name with `make_estimator`; see docs/estimation.md for the maths and the
measured accuracy.
"""

from __future__ import annotations

from typing import Any

from twinloop.core.errors import ValidationError
from twinloop.estimate.ekf import ExtendedKalmanFilter
from twinloop.estimate.fleet import FleetEstimator
from twinloop.estimate.particle import ParticleFilter
from twinloop.estimate.result import FleetEstimate, UpdateReport
from twinloop.estimate.spec import EstimatorSpec
from twinloop.estimate.ukf import UnscentedKalmanFilter

ESTIMATORS: dict[str, type[FleetEstimator]] = {
    "ukf": UnscentedKalmanFilter,
    "ekf": ExtendedKalmanFilter,
    "particle": ParticleFilter,
}


def make_estimator(kind: str, spec: EstimatorSpec, **options: Any) -> FleetEstimator:
    """A fresh estimator of ``kind`` (``ukf``, ``ekf`` or ``particle``) for ``spec``."""
    try:
        cls = ESTIMATORS[kind]
    except KeyError:
        raise ValidationError(f"unknown estimator {kind!r}",
                              hint="one of: " + ", ".join(ESTIMATORS)) from None
    return cls(spec, **options)


__all__ = [
    "ESTIMATORS",
    "EstimatorSpec",
    "ExtendedKalmanFilter",
    "FleetEstimate",
    "FleetEstimator",
    "ParticleFilter",
    "UnscentedKalmanFilter",
    "UpdateReport",
    "make_estimator",
]
