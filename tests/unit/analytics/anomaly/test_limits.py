"""The learned-range check: a slowly drifting sensor is alerted even when the learned stretch holds
a warm-up transient that blunts detectors calibrated on their own scores."""

import numpy as np

from twinloop.analytics.anomaly import build_detector, calibration_scores
from twinloop.analytics.thresholds import QuantileThreshold


def _warm_up_then_steady(rng: np.random.Generator, n: int) -> np.ndarray:
    """Three channels; the first cools from 34 to 29 over the first third (a machine warming down to
    its running temperature), then holds with noise."""
    t = np.arange(n)
    temp = 29.0 + 5.0 * np.exp(-t / (n / 8)) + rng.normal(0, 0.2, n)
    return np.column_stack([temp, rng.normal(50, 1, n), rng.normal(2.3, 0.05, n)])


def test_a_drift_past_the_learned_range_alarms_where_the_calibrated_ensemble_does_not():
    rng = np.random.default_rng(4)
    train = _warm_up_then_steady(rng, 720)
    later = _warm_up_then_steady(rng, 2000)[1000:]  # steady operation after the warm-up
    drift = later.copy()
    drift[:, 0] += np.linspace(0.0, 8.0, len(drift))  # the thermometer drifts 8 K over the stretch

    limits = build_detector("limits").learn(train)
    alarm = QuantileThreshold(min_on=6).at(limits.level)
    quiet, _ = alarm.apply(limits.score(later)[0])
    assert not quiet.any()  # steady operation inside the learned range: no alarm
    mask, _ = alarm.apply(limits.score(drift)[0])
    first = int(np.argmax(mask))
    assert mask.any() and drift[first, 0] - later[first, 0] < 7.0  # past the warm-up's 34 °C, before 8 K
    assert int(limits.score(drift)[1][first].argmax()) == 0  # and names the thermometer

    ensemble = build_detector({"detector": "ensemble", "combine": "max", "members": {
        "pca": {"window": 10, "stationarize": 0.5}, "mset": {"window": 10, "stationarize": 0.5}}})
    ensemble.learn(train)
    level = QuantileThreshold(quantile=0.995, margin=1.0, min_on=6)
    level.calibrate(calibration_scores(ensemble, train))
    blunt, _ = level.apply(ensemble.score(drift)[0])
    assert not blunt[: first + 60].any()  # what the check adds: the ensemble has not seen it yet
