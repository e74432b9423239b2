"""Operating-regime normalization on synthetic six-regime data, and window features against a loop."""

from __future__ import annotations

import numpy as np
import pytest

from twinloop.analytics.rul import RegimeNormalizer, Trajectories
from twinloop.analytics.rul.features import window_features
from twinloop.analytics.rul.synthetic import synthetic_fleet
from twinloop.core.errors import ValidationError


def test_six_regimes_are_found_and_removed() -> None:
    runs = synthetic_fleet(n_units=12, seed=3, regimes=6)
    norm = RegimeNormalizer().fit(runs.settings, runs.sensors)
    assert norm.n_regimes_ == 6
    z = norm.transform(runs.settings, runs.sensors)
    # raw sensors are dominated by the regime; normalized ones follow degradation
    rul = runs.rul
    assert rul is not None
    moving = np.abs(runs.sensors[:, 5:].std(axis=0)) > 0
    raw_corr = [abs(np.corrcoef(runs.sensors[:, j], rul)[0, 1]) for j in np.flatnonzero(moving) + 5]
    norm_corr = [abs(np.corrcoef(z[:, j], rul)[0, 1]) for j in np.flatnonzero(moving) + 5]
    assert np.median(norm_corr) > 0.5 > np.median(raw_corr)
    # each regime's sensors are standardized
    r = norm.regimes(runs.settings)
    for k in range(6):
        assert np.allclose(z[r == k].mean(axis=0), 0.0, atol=1e-6)


def test_single_regime_data_is_one_regime_and_constant_sensors_are_dropped() -> None:
    runs = synthetic_fleet(n_units=6, seed=4, regimes=1)
    sensors = runs.sensors.copy()
    sensors[:, 0] = 7.0  # a sensor that never moves
    norm = RegimeNormalizer().fit(runs.settings, sensors)
    assert norm.n_regimes_ == 1 and not norm.informative_[0] and norm.informative_[1:].all()
    with pytest.raises(ValidationError):
        RegimeNormalizer().transform(runs.settings, sensors)
    with pytest.raises(ValidationError):
        norm.transform(runs.settings, sensors[:, :3])


def test_window_features_match_a_plain_loop() -> None:
    rng = np.random.default_rng(1)
    t = Trajectories(np.repeat([1, 2], [7, 4]), np.r_[np.arange(7), np.arange(4)] * 2.0,
                     np.zeros((11, 0)), rng.normal(size=(11, 2)))
    f, names = window_features(t.sensors, t.time, t.row_starts(), ("a", "b"), means=(3,), slopes=(4,),
                               std_window=3, baseline=2)
    for i in range(11):
        s = t.row_starts()[i]
        win = t.sensors[max(s, i - 2):i + 1]
        assert f[i, names.index("a:mean3")] == pytest.approx(win[:, 0].mean())
        assert f[i, names.index("b:std3")] == pytest.approx(win[:, 1].std(), abs=1e-6)
        lo = max(s, i - 3)
        if i - lo >= 1:
            slope = np.polyfit(t.time[lo:i + 1], t.sensors[lo:i + 1, 1], 1)[0]
            assert f[i, names.index("b:slope4")] == pytest.approx(slope)
        assert f[i, names.index("age")] == t.time[i] - t.time[s]


def test_trajectories_reject_bad_input() -> None:
    with pytest.raises(ValidationError, match="contiguous"):
        Trajectories([1, 2, 1], [1, 1, 2], np.zeros((3, 0)), np.zeros((3, 1)))
    with pytest.raises(ValidationError, match="decrease"):
        Trajectories([1, 1], [2, 1], np.zeros((2, 0)), np.zeros((2, 1)))
    with pytest.raises(ValidationError, match="NaN"):
        Trajectories([1, 1], [1, 2], np.zeros((2, 0)), [[np.nan], [1.0]])
