"""Drift: find when residuals move (`PageHinkley`, `Adwin`), tell a drifting sensor from a changed
process (`classify_drift`), and retrain detectors behind validation with rollback (`guarded_retrain`).
"""

from twinloop.analytics.drift.classify import DriftFinding, classify_drift, component_groups
from twinloop.analytics.drift.detectors import Adwin, DriftDetector, PageHinkley
from twinloop.analytics.drift.retrain import (
    GuardedModel,
    RetrainOutcome,
    Validation,
    fit_model,
    guarded_retrain,
    still_moving,
    validate,
)

__all__ = [
    "Adwin",
    "DriftDetector",
    "DriftFinding",
    "GuardedModel",
    "PageHinkley",
    "RetrainOutcome",
    "Validation",
    "classify_drift",
    "component_groups",
    "fit_model",
    "guarded_retrain",
    "still_moving",
    "validate",
]
