"""Drift: Page-Hinkley and ADWIN find onsets; sensor drift is told from a process change;
guarded retraining accepts a better model and rolls back a worse one."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.analytics.anomaly import ChannelFrame, build_detector
from twinloop.analytics.drift import (
    Adwin,
    PageHinkley,
    classify_drift,
    component_groups,
    fit_model,
    guarded_retrain,
    still_moving,
)
from twinloop.core.errors import ConflictError, ValidationError

CHANNELS = ["flow", "head", "power", "bearing.temperature"]
GROUPS = {"hydraulics": ["flow", "head", "power"], "bearing": ["bearing.temperature"]}


def plant(n: int, seed: int, process_shift: float = 0.0, sensor_drift: float = 0.0,
          start: int = 0) -> np.ndarray:
    """Residual-like channels: coupled hydraulics driven by one latent load, an independent bearing."""
    rng = np.random.default_rng(seed)
    load = rng.normal(0, 1, n)
    x = np.column_stack([
        load + rng.normal(0, 0.3, n),
        -0.8 * load + rng.normal(0, 0.3, n),
        0.6 * load + rng.normal(0, 0.3, n),
        rng.normal(0, 0.3, n),
    ])
    ramp = np.clip(np.arange(n) - start, 0, None) / max(n - start, 1)
    x[:, :3] += process_shift * ramp[:, None] * np.array([1.0, -1.0, 1.0])
    x[:, 3] += sensor_drift * ramp
    return x


@pytest.mark.parametrize("detector", [PageHinkley(), Adwin()], ids=["page-hinkley", "adwin"])
def test_onsets_are_found_after_the_change_and_not_on_normal_data(detector):
    ref = plant(400, 0)
    x = plant(1000, 1, sensor_drift=4.0, start=500)
    onsets = detector.learn(ref).onsets(x)
    assert onsets[:3].tolist() == [-1, -1, -1]
    assert 500 <= onsets[3] < 900
    assert (detector.onsets(plant(1000, 2)) == -1).all()


def test_sensor_drift_is_told_from_a_process_change():
    ref = plant(400, 0)
    sensor = classify_drift(ref, plant(1000, 1, sensor_drift=4.0, start=400), CHANNELS, GROUPS)
    assert [(f.kind, f.channels) for f in sensor] == [("sensor", ["bearing.temperature"])]
    process = classify_drift(ref, plant(1000, 3, process_shift=2.0, start=400), CHANNELS, GROUPS)
    assert [(f.kind, f.group) for f in process] == [("process", "hydraulics")]
    assert sorted(process[0].channels) == ["flow", "head", "power"]
    lone = classify_drift(ref, plant(1000, 4, sensor_drift=0.0) + np.r_[np.zeros((500, 4)), np.tile(
        [3.0, 0.0, 0.0, 0.0], (500, 1))], CHANNELS, GROUPS)
    assert [(f.kind, f.channels) for f in lone] == [("sensor", ["flow"])]
    assert classify_drift(ref, plant(1000, 5), CHANNELS, GROUPS) == []


def test_drift_input_errors():
    with pytest.raises(ValidationError, match="shape"):
        classify_drift(plant(100, 0), np.zeros((10, 3)), CHANNELS)
    with pytest.raises(ValidationError, match="unknown channels"):
        classify_drift(plant(100, 0), plant(100, 1), CHANNELS, {"g": ["nope"]})
    with pytest.raises(ConflictError):
        PageHinkley().onsets(np.zeros((10, 2)))


def frame(x: np.ndarray) -> ChannelFrame:
    return ChannelFrame.from_array(x, CHANNELS)


def test_retrain_after_a_process_change_is_accepted():
    old = fit_model(build_detector("pca"), frame(plant(600, 0)), {"quantile": 0.99})
    changed = plant(900, 6) + np.array([3.0, -3.0, 3.0, 0.0])  # new operating point, same physics
    outcome = guarded_retrain(old, frame(changed), threshold={"quantile": 0.99})
    assert outcome.accepted and outcome.model is not old
    assert outcome.before.false_alarm_rate > 0.5 and outcome.after.false_alarm_rate < 0.1
    assert outcome.after.loss < outcome.before.loss


def test_retrain_on_a_drifting_sensor_is_rolled_back():
    old = fit_model(build_detector("pca"), frame(plant(600, 0)), {"quantile": 0.99})
    recent = plant(900, 7)
    recent[:630, 1] = recent[:630, 1] * 0.0 + 5.0  # the head transmitter was stuck while we learned
    outcome = guarded_retrain(old, frame(recent), threshold={"quantile": 0.99})
    assert not outcome.accepted and outcome.model is old
    assert outcome.after.loss > outcome.before.loss
    with pytest.raises(ValidationError):
        guarded_retrain(old, frame(plant(10, 0)))


def test_component_channels_form_their_own_coupling_group():
    groups = component_groups(
        ["flow", "bearing.temperature", "head", "bearing.vibration_rms", "motor.current"])
    assert groups == {"asset": ["flow", "head"], "bearing": ["bearing.temperature", "bearing.vibration_rms"],
                      "motor": ["motor.current"]}
    # with those groups, a bearing sensor drifting alone is a sensor, the hydraulics together a process
    names = ["flow", "head", "power", "bearing.temperature"]
    ref = plant(400, 0)
    found = classify_drift(ref, plant(1000, 1, sensor_drift=4.0, start=400), names, component_groups(names))
    assert [(f.kind, f.group) for f in found] == [("sensor", "bearing")]
    found = classify_drift(ref, plant(1000, 3, process_shift=2.0, start=400), names, component_groups(names))
    assert [(f.kind, f.group) for f in found] == [("process", "asset")]


def test_a_settled_change_is_told_from_one_still_moving():
    ref = frame(plant(400, 0))
    settled = frame(plant(600, 8) + np.array([3.0, -3.0, 3.0, 0.0]))
    assert still_moving(ref, settled.rows(0, 400), settled.rows(400), CHANNELS) == []
    trend = plant(600, 9)
    trend[:, 0] += np.linspace(0, 6, 600)  # flow keeps rising: a fault developing, not a new normal
    moving = frame(trend)
    assert still_moving(ref, moving.rows(0, 400), moving.rows(400), CHANNELS) == ["flow"]
