"""Thresholds: quantile calibration, hysteresis, minimum durations, streaming = batch."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.analytics.thresholds import AlarmState, QuantileThreshold, episodes
from twinloop.core.errors import ConflictError, ValidationError


def calibrated(**kw) -> QuantileThreshold:
    return QuantileThreshold(**kw).calibrate(np.linspace(0.0, 10.0, 1001))


def test_level_is_the_quantile_raised_by_margin():
    t = calibrated(quantile=0.9, margin=0.5, hysteresis=0.5)
    assert t.median_ == pytest.approx(5.0) and t.level_ == pytest.approx(9.0 + 0.5 * 4.0)
    assert t.release_ == pytest.approx(t.level_ - 0.5 * (t.level_ - 5.0))


def test_hysteresis_keeps_the_alarm_on_near_the_level():
    t = calibrated(quantile=0.9, hysteresis=0.5)  # level 9, release 7
    mask, _ = t.apply(np.array([8, 9.5, 8, 7.5, 6.9, 8.5, 9.5]))
    assert mask.astype(int).tolist() == [0, 1, 1, 1, 0, 0, 1]
    mask, _ = calibrated(quantile=0.9, hysteresis=0.0).apply(np.array([9.5, 8.9, 9.5]))
    assert mask.astype(int).tolist() == [1, 0, 1]


def test_minimum_durations_suppress_blips():
    t = calibrated(quantile=0.9, min_on=3, min_off=2)
    s = np.array([10, 10, 0, 10, 10, 10, 10, 0, 10, 0, 0, 0])
    mask, state = t.apply(s)
    assert mask.astype(int).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0]
    assert state == AlarmState(False, 0)


def test_streaming_in_pieces_equals_one_batch():
    rng = np.random.default_rng(3)
    s = rng.normal(5, 3, 500)
    t = calibrated(quantile=0.8, min_on=3, min_off=4)
    whole, _ = t.apply(s)
    state, parts = None, []
    for chunk in np.array_split(s, 17):
        m, state = t.apply(chunk, state)
        parts.append(m)
    assert np.array_equal(np.concatenate(parts), whole)


def test_nan_scores_never_alarm_and_bad_settings_are_refused():
    mask, _ = calibrated(quantile=0.5).apply(np.array([np.nan, 9.0]))
    assert mask.tolist() == [False, True]
    with pytest.raises(ConflictError):
        QuantileThreshold().apply(np.zeros(3))
    for bad in ({"quantile": 1.0}, {"hysteresis": 2.0}, {"min_on": 0}, {"margin": -1}):
        with pytest.raises(ValidationError):
            QuantileThreshold(**bad)
    with pytest.raises(ValidationError):
        QuantileThreshold().calibrate(np.array([np.nan]))


def test_episodes():
    assert episodes(np.array([1, 1, 0, 1], bool)) == [(0, 2), (3, 4)]
    assert episodes(np.zeros(3, bool)) == []
