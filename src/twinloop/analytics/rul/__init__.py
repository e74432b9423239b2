"""Remaining useful life: prognosers that answer with a distribution and say what drove it.

``GbmPrognoser`` (quantile gradient boosting on window features), ``SimilarityPrognoser``
(nearest degradation paths), ``PhysicsPrognoser`` (Monte Carlo of a `PhysicsModel` to its
failure event). All share the `Prognoser` protocol and pass the
`twinloop.analytics.rul.checks` battery.
"""

from twinloop.analytics.rul.distribution import SUMMARY_LEVELS, Driver, RulDistribution, cdf_from_quantiles
from twinloop.analytics.rul.gbm import GbmPrognoser
from twinloop.analytics.rul.metrics import coverage, phm08_score, rmse
from twinloop.analytics.rul.protocol import Prognoser, clone, get_params
from twinloop.analytics.rul.regimes import RegimeNormalizer
from twinloop.analytics.rul.similarity import SimilarityPrognoser
from twinloop.analytics.rul.trajectories import Trajectories

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
