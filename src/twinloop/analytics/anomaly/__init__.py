"""Anomaly detectors: learn normal operation, score new readings, say which channels drove it.

Every detector implements `Detector` (``learn``, ``score``, ``clone``) and passes the battery in
`twinloop.analytics.anomaly.checks`. Build one by name with `build_detector`.
"""

from twinloop.analytics.anomaly.base import (
    BaseDetector,
    Detector,
    calibration_scores,
    crossval_scores,
    holdout_scores,
    shares,
)
from twinloop.analytics.anomaly.frame import ChannelFrame, as_frame
from twinloop.analytics.anomaly.registry import DEFAULT_SPEC, DETECTORS, build_detector, detector_for_type

__all__ = [
    "DEFAULT_SPEC",
    "DETECTORS",
    "BaseDetector",
    "ChannelFrame",
    "Detector",
    "as_frame",
    "build_detector",
    "calibration_scores",
    "crossval_scores",
    "detector_for_type",
    "holdout_scores",
    "shares",
]
