"""Remaining useful life: prognosers that answer with a distribution and say what drove it.

``GbmPrognoser`` (quantile gradient boosting on window features), ``SimilarityPrognoser``
(nearest degradation paths), ``PhysicsPrognoser`` (Monte Carlo of a `PhysicsModel` to its
failure event). All share the `Prognoser` protocol and pass the
`twinloop.analytics.rul.checks` battery. Live twins use them through `live.TwinPrognoser`,
by the names in `models`.

Names load on first use (PEP 562): importing ``twinloop.analytics.rul.distribution`` does not
pull in LightGBM and scikit-learn.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "SUMMARY_LEVELS": "distribution", "Driver": "distribution", "RulDistribution": "distribution",
    "cdf_from_quantiles": "distribution", "GbmPrognoser": "gbm", "coverage": "metrics",
    "phm08_score": "metrics", "rmse": "metrics", "Prognoser": "protocol", "clone": "protocol",
    "get_params": "protocol", "RegimeNormalizer": "regimes", "SimilarityPrognoser": "similarity",
    "Trajectories": "trajectories",
}

if TYPE_CHECKING:
    from twinloop.analytics.rul.distribution import (
        SUMMARY_LEVELS,
        Driver,
        RulDistribution,
        cdf_from_quantiles,
    )
    from twinloop.analytics.rul.gbm import GbmPrognoser
    from twinloop.analytics.rul.metrics import coverage, phm08_score, rmse
    from twinloop.analytics.rul.protocol import Prognoser, clone, get_params
    from twinloop.analytics.rul.regimes import RegimeNormalizer
    from twinloop.analytics.rul.similarity import SimilarityPrognoser
    from twinloop.analytics.rul.trajectories import Trajectories


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value


__all__ = [
    "SUMMARY_LEVELS",
    "Driver",
    "GbmPrognoser",
    "Prognoser",
    "RegimeNormalizer",
    "RulDistribution",
    "SimilarityPrognoser",
    "Trajectories",
    "cdf_from_quantiles",
    "clone",
    "coverage",
    "get_params",
    "phm08_score",
    "rmse",
]
