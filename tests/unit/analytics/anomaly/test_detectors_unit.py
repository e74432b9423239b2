"""Frames, data quality, slow channels, ensembles and the detector registry."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.analytics.anomaly import ChannelFrame, build_detector, crossval_scores, detector_for_type
from twinloop.analytics.anomaly.checks import faulty_frame, normal_frame
from twinloop.analytics.anomaly.pca import PcaDetector
from twinloop.analytics.anomaly.quality import MissingDataDetector
from twinloop.core.errors import ConflictError, ValidationError
from twinloop.core.readings import Quality, ReadingBatch


def test_frame_pivots_one_asset_and_drops_bad_readings():
    b = ReadingBatch.from_arrays(
        ["a", "a", "a", "b"], ["x", "y", "x", "x"], [1, 1, 2, 1], [1.0, 2.0, 3.0, 9.0],
        [Quality.GOOD, Quality.BAD, Quality.GOOD, Quality.GOOD],
    )
    f = ChannelFrame.from_readings(b, asset_id="a", channels=["x", "y", "z"])
    assert f.ts_ns.tolist() == [1, 2]
    assert np.array_equal(f.values, [[1.0, np.nan, np.nan], [3.0, np.nan, np.nan]], equal_nan=True)
    with pytest.raises(ValidationError, match="2 assets"):
        ChannelFrame.from_readings(b)


def test_on_grid_makes_silence_visible():
    f = ChannelFrame.from_array([[1.0], [2.0], [3.0]], ts_ns=np.array([0, 10, 50]))
    g = f.on_grid(10, end_ns=70)
    assert g.ts_ns.tolist() == [0, 10, 20, 30, 40, 50, 60, 70]
    assert np.isnan(g.values[[2, 3, 4, 6, 7], 0]).all()


def test_quality_detector_flags_gaps_and_frozen_values_per_channel():
    train = normal_frame()
    d = MissingDataDetector(span=5).learn(train)
    test = faulty_frame().values.copy()
    test[50:80, 2] = np.nan  # temperature drops out
    test[120:150, 0] = test[119, 0]  # flow freezes
    s, a = d.score(ChannelFrame.from_array(test, train.channels))
    assert s[:45].max() == 0.0
    assert s[60] > 0 and a[60].argmax() == 2
    assert s[140] > 0 and a[140].argmax() == 0


def test_stationarize_judges_slow_channels_by_their_change():
    rng = np.random.default_rng(0)
    n = 400
    slow = np.cumsum(rng.normal(0, 0.3, n))  # a temperature wandering on its own
    fast = rng.normal(0, 1, n)
    train = ChannelFrame.from_array(np.column_stack([slow, fast]), ["temp", "flow"])
    d = PcaDetector(window=5, stationarize=0.5).learn(train)
    assert d.slow_.tolist() == [True, False]
    later = np.column_stack([slow[-1] + 30 + np.cumsum(rng.normal(0, 0.3, 200)), rng.normal(0, 1, 200)])
    plain = PcaDetector(window=5).learn(train)
    assert d.score(later)[0].mean() < plain.score(later)[0].mean() / 10


def test_crossval_scores_are_out_of_sample():
    train = normal_frame()
    d = build_detector({"detector": "mset", "memory": 400})
    in_sample = d.clone().learn(train).score(train)[0]
    out = crossval_scores(d, train, folds=4)
    assert out.shape == in_sample.shape and out.mean() > 10 * in_sample.mean()


def test_ensemble_normalizes_and_combines():
    spec = {"detector": "ensemble", "members": {"pca": {}, "mset": {"memory": 60}}, "combine": "max"}
    d = build_detector(spec).learn(normal_frame())
    s, a = d.score(faulty_frame())
    assert s[-5:].min() > np.quantile(s[:150], 0.99)
    assert np.allclose(a.sum(axis=1), 1.0)
    rank = build_detector({**spec, "normalize": "rank"}).learn(normal_frame())
    assert rank.score(faulty_frame())[0][-5:].min() > 1.0


@pytest.mark.parametrize("spec, message", [
    ({"detector": "nope"}, "unknown detector"),
    ({"detector": "pca", "colour": 1}, "unexpected keyword"),
    ({"detector": "ensemble"}, "needs 'members'"),
    ({"detector": "ensemble", "members": {"pca": {}}, "normalize": "odd"}, "unknown normalization"),
    ({"detector": "ensemble", "members": {"pca": {}}, "weights": {"mset": 1.0}}, "unknown members"),
    ({"detector": "pca", "variance": 2.0}, "variance"),
    ({"detector": "pca", "window": 0}, "window"),
])
def test_bad_specs_get_clear_errors(spec, message):
    with pytest.raises(ValidationError, match=message):
        build_detector(spec).learn(normal_frame())


def test_scoring_before_learning_or_the_wrong_asset_is_refused():
    with pytest.raises(ConflictError, match="has not learned"):
        PcaDetector().score(normal_frame())
    d = PcaDetector().learn(normal_frame())
    with pytest.raises(ValidationError, match="none of the learned channels"):
        d.score(ChannelFrame.from_array(np.zeros((5, 2)), ["a", "b"]))
    assert d.score(np.zeros((5, 4)))[0].shape == (5,)  # a plain array of the right width is positional


def test_types_get_their_spec():
    specs = {"Tank": {"detector": "pca", "variance": 0.8}, "default": {"detector": "residual"}}
    assert detector_for_type("Tank", specs).name == "pca"
    assert detector_for_type("Pump", specs).name == "residual"
    assert detector_for_type("Pump").name == "ensemble"
