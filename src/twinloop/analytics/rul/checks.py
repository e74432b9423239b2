"""The conformance battery every prognoser passes (run by ``tests/conformance/test_prognosers.py``).

A `Case` says how to build a prognoser from a seed, what to fit it on, and what to predict
on; each check takes a case and raises ``AssertionError`` with a message on failure.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from twinloop.analytics.rul.distribution import RulDistribution
from twinloop.analytics.rul.protocol import clone, get_params
from twinloop.core.errors import ValidationError

HORIZONS = (0.0, 1.0, 10.0, 24.0, 48.0, 100.0, 168.0, 1e3, 1e4, 1e7)


@dataclass(frozen=True)
class Case:
    """``make(seed)`` → unfitted prognoser; ``fleet`` is what ``predict_fleet`` takes, ``units`` the
    same split into what ``predict`` takes (one per unit, in order)."""

    name: str
    make: Callable[[int], Any]
    train: Any
    fleet: Any
    units: Sequence[Any]


Check = Callable[[Case], None]


def check_constructor_only_stores_parameters(case: Case) -> None:
    p = case.make(0)
    params = get_params(p)
    learned = [k for k in vars(p) if k.endswith("_") and not k.startswith("_")]
    assert not learned, f"{case.name}: learned state {learned} before fit"
    copy = clone(p)
    assert type(copy) is type(p) and get_params(copy).keys() == params.keys(), f"{case.name}: clone differs"


def check_predict_before_fit_is_a_clear_error(case: Case) -> None:
    try:
        case.make(0).predict(case.units[0])
    except ValidationError as err:
        assert "fit" in str(err), f"{case.name}: the error should say to fit first: {err}"
    else:
        raise AssertionError(f"{case.name}: predict before fit must raise ValidationError")


def _fitted(case: Case, seed: int = 0) -> Any:
    p = case.make(seed)
    assert p.fit(case.train) is p, f"{case.name}: fit must return the prognoser"
    return p


def _sane(case: Case, d: RulDistribution) -> None:
    assert isinstance(d, RulDistribution), f"{case.name}: predict must return a RulDistribution"
    levels = np.linspace(0.01, 0.99, 25)
    q = np.array([d.quantile(x) for x in levels])
    assert np.all(np.isfinite(q)) and np.all(q >= 0), f"{case.name}: quantiles must be finite and >= 0"
    assert np.all(np.diff(q) >= -1e-9), f"{case.name}: quantiles must not decrease: {q}"
    assert np.isfinite(d.mean) and d.mean >= 0 and d.std >= 0, f"{case.name}: bad mean/std"
    lo, hi = d.interval(0.8)
    assert lo <= d.quantile(0.5) <= hi, f"{case.name}: the 80 % interval must hold the median"
    p = np.array([d.p_fail_within(h) for h in HORIZONS])
    assert np.all((p >= 0) & (p <= 1)), f"{case.name}: P(fail within h) outside [0, 1]: {p}"
    assert np.all(np.diff(p) >= 0), f"{case.name}: P(fail within h) must grow with h: {p}"
    assert d.p_fail_within(float("inf")) == 1.0, f"{case.name}: P(fail within inf) must be 1"
    json.dumps(d.summary(horizons=(24.0, 48.0)))


def check_distributions_are_sane(case: Case) -> None:
    p = _fitted(case)
    for d in p.predict_fleet(case.fleet):
        _sane(case, d)


def check_fleet_matches_single_predictions(case: Case) -> None:
    p = _fitted(case)
    fleet = p.predict_fleet(case.fleet)
    assert len(fleet) == len(case.units), f"{case.name}: {len(fleet)} answers for {len(case.units)} units"
    for i, (d, u) in enumerate(zip(fleet, case.units, strict=True)):
        one = p.predict(u)
        assert abs(one.mean - d.mean) <= 1e-6 * max(1.0, d.mean), \
            f"{case.name}: unit {i}: predict {one.mean} != predict_fleet {d.mean}"
        _sane(case, one)


def check_deterministic_with_a_seed(case: Case) -> None:
    a = _fitted(case, 3).predict_fleet(case.fleet)
    b = _fitted(case, 3).predict_fleet(case.fleet)
    for x, y in zip(a, b, strict=True):
        assert np.array_equal(x.samples, y.samples) and x.mean == y.mean, f"{case.name}: not deterministic"


def check_predict_rejects_wrong_input(case: Case) -> None:
    p = _fitted(case)
    if len(case.units) > 1:
        try:
            p.predict(case.fleet)
        except ValidationError:
            return
        raise AssertionError(f"{case.name}: predict on many units must raise ValidationError")


CHECKS: list[Check] = [
    check_constructor_only_stores_parameters,
    check_predict_before_fit_is_a_clear_error,
    check_distributions_are_sane,
    check_fleet_matches_single_predictions,
    check_deterministic_with_a_seed,
    check_predict_rejects_wrong_input,
]

__all__ = ["CHECKS", "Case", "Check"]
