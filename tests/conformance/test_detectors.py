"""Every built-in detector passes the whole `twinloop.analytics.anomaly.checks` battery.

The data-quality detector looks at gaps and frozen values, not levels, so it has its own tests
(tests/unit/analytics/anomaly) and is not asked to find a level shift here.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from twinloop.analytics.anomaly import build_detector
from twinloop.analytics.anomaly.base import Detector
from twinloop.analytics.anomaly.checks import CHECKS, check_detects_and_explains

SPECS: dict[str, dict] = {
    "pca": {"detector": "pca"},
    "pca-smoothed": {"detector": "pca", "window": 5},
    "mset": {"detector": "mset", "memory": 80},
    "iforest": {"detector": "iforest", "n_trees": 50, "seed": 3},
    "autoencoder": {"detector": "autoencoder", "max_iter": 150, "seed": 3},
    "hst": {"detector": "hst", "n_trees": 10, "height": 8, "seed": 3},
    "residual": {"detector": "residual"},
    "residual-cov": {"detector": "residual", "covariance": True},
    "ensemble": {"detector": "ensemble", "members": {"pca": {}, "residual": {}}},
    "limits": {"detector": "limits", "window": 1},
}


def factory(spec: dict) -> Callable[[], Detector]:
    return lambda: build_detector(spec)


#: Known weaknesses, kept visible: strict xfails turn into failures the day they are fixed.
WEAK = {
    ("hst", check_detects_and_explains): "Half-Space Trees' mass estimates from 400 rows are too coarse "
    "to rank a 7-sigma shift above the top quarter of normal rows",
}


def cases() -> list:
    out = []
    for name in SPECS:
        for check in CHECKS:
            reason = WEAK.get((name, check))
            marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
            out.append(pytest.param(check, name, marks=marks, id=f"{check.__name__}-{name}"))
    return out


@pytest.mark.parametrize("check, name", cases())
def test_detector(check: Callable, name: str) -> None:
    check(factory(SPECS[name]))
