"""RUL distributions, stored-quantile CDFs, and the metrics against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest

from twinloop.analytics.rul import RulDistribution, cdf_from_quantiles, coverage, phm08_score, rmse
from twinloop.core.errors import ValidationError


def test_rmse_and_phm08_score_match_hand_computed_values() -> None:
    pred, truth = [100.0, 50.0, 20.0, 7.0], [90.0, 63.0, 20.0, 10.0]
    assert rmse(pred, truth) == pytest.approx(math.sqrt((100 + 169 + 0 + 9) / 4))
    # d = +10 (late) → e^1 − 1; d = −13 (early) → e^1 − 1; d = 0 → 0; d = −3 → e^(3/13) − 1
    expected = 2 * (math.e - 1) + math.exp(3 / 13) - 1
    assert phm08_score(pred, truth) == pytest.approx(expected)
    # late predictions cost more than early ones of the same size
    assert phm08_score([60.0], [50.0]) > phm08_score([40.0], [50.0])
    assert coverage([1.0, 5.0, 9.0], [0.0, 6.0, 9.0], [2.0, 8.0, 10.0]) == pytest.approx(2 / 3)
    with pytest.raises(ValidationError):
        rmse([1.0], [1.0, 2.0])


def test_distribution_from_quantiles_is_monotone_and_answers_horizons() -> None:
    d = RulDistribution.from_quantiles([0.1, 0.5, 0.9], [30.0, 10.0, 60.0], unit="h", point=25.0)
    assert d.mean == 25.0  # the point estimate, not the sample mean
    q = [d.quantile(x) for x in np.linspace(0.01, 0.99, 30)]
    assert np.all(np.diff(q) >= 0) and min(q) >= 0.0  # crossed quantiles are sorted, tail clipped at 0
    p = [d.p_fail_within(h) for h in (0.0, 10.0, 30.0, 60.0, 1e6)]
    assert p == sorted(p) and p[-1] == 1.0 and d.p_fail_within(float("inf")) == 1.0
    assert d.interval(0.8) == pytest.approx((10.0, 60.0), abs=0.2)
    s = d.summary(horizons=(24.0,))
    assert set(s) == {"unit", "model", "mean", "std", "quantiles", "p_fail", "drivers"}
    with pytest.raises(ValidationError):
        d.p_fail_within(-1.0)
    with pytest.raises(ValidationError):
        RulDistribution([np.nan])


def test_cdf_from_stored_quantiles_agrees_with_the_distribution() -> None:
    d = RulDistribution(np.random.default_rng(0).gamma(4.0, 25.0, 5000))
    stored = d.summary()["quantiles"]
    for h in (10.0, 50.0, 100.0, 200.0):
        assert cdf_from_quantiles(stored, h) == pytest.approx(d.p_fail_within(h), abs=0.02)
    assert cdf_from_quantiles(stored, 0.0) == 0.0 and cdf_from_quantiles(stored, 1e9) == 1.0
    with pytest.raises(ValidationError):
        cdf_from_quantiles(stored, float("nan"))
