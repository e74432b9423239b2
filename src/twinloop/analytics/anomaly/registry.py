"""Detectors by name, and which detector each asset type uses.

A detector plugs in by registering its class under its ``name``. Per asset type, a *spec* says
which detector (or ensemble) to build — plain data, so it can live in YAML next to the types::

    default: {detector: ensemble, members: {pca: {window: 10}, mset: {window: 10}}}
    Tank:    {detector: pca, variance: 0.95}

>>> build_detector({"detector": "ensemble", "members": {"pca": {}, "iforest": {"n_trees": 50}}})
... # doctest: +ELLIPSIS
EnsembleDetector(members={'pca': PcaDetector(...), 'iforest': IsolationForestDetector(...)}, ...)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from twinloop.analytics.anomaly.autoencoder import AutoencoderDetector
from twinloop.analytics.anomaly.base import BaseDetector, Detector
from twinloop.analytics.anomaly.ensemble import EnsembleDetector
from twinloop.analytics.anomaly.forest import IsolationForestDetector
from twinloop.analytics.anomaly.limits import LimitsDetector
from twinloop.analytics.anomaly.mset import MsetDetector
from twinloop.analytics.anomaly.pca import PcaDetector
from twinloop.analytics.anomaly.quality import MissingDataDetector
from twinloop.analytics.anomaly.residual import ResidualDetector
from twinloop.analytics.anomaly.streaming import HalfSpaceTreesDetector
from twinloop.core.errors import ValidationError

DETECTORS: dict[str, type[BaseDetector]] = {
    cls.name: cls
    for cls in (
        PcaDetector,
        MsetDetector,
        IsolationForestDetector,
        AutoencoderDetector,
        HalfSpaceTreesDetector,
        ResidualDetector,
        MissingDataDetector,
        LimitsDetector,
    )
}

#: What an asset type without its own spec gets: two complementary multivariate models
#: (correlation breaks via PCA-Q, state novelty via MSET) on 10-row means, plus data quality
#: (gaps, frozen values); the most alarmed member counts. Levels are judged as they are (no
#: ``stationarize``): the runtime learns from hours of normal operation, long enough to see
#: slow channels swing, and a drifting level is exactly what a sensor drift looks like.
DEFAULT_SPEC: dict[str, Any] = {
    "detector": "ensemble",
    "members": {
        "pca": {"window": 10, "stationarize": 0.5},
        "mset": {"window": 10, "stationarize": 0.5},
        "quality": {},
    },
    "combine": "max",
}


def register(cls: type[BaseDetector]) -> type[BaseDetector]:
    """Make a detector class buildable by its ``name`` (usable as a class decorator)."""
    if cls.name in DETECTORS and DETECTORS[cls.name] is not cls:
        raise ValidationError(f"a detector named {cls.name!r} is already registered")
    DETECTORS[cls.name] = cls
    return cls


def build_detector(spec: str | Mapping[str, Any]) -> Detector:
    """An unlearned detector from a name or a spec ``{detector: name, **params}``."""
    if isinstance(spec, str):
        spec = {"detector": spec}
    params = dict(spec)
    name = params.pop("detector", None)
    if name == "ensemble":
        members = params.pop("members", None)
        if not isinstance(members, Mapping) or not members:
            raise ValidationError("an ensemble spec needs 'members': {name: {params}}")
        built = {k: build_detector({"detector": k, **(v or {})}) for k, v in members.items()}
        try:
            return EnsembleDetector(built, **params)
        except TypeError as err:
            raise ValidationError(f"ensemble: {err}") from err
    cls = DETECTORS.get(str(name))
    if cls is None:
        raise ValidationError(
            f"unknown detector {name!r}", hint=f"one of: ensemble, {', '.join(sorted(DETECTORS))}"
        )
    try:
        return cls(**params)
    except TypeError as err:
        raise ValidationError(f"detector {name!r}: {err}") from err


def detector_for_type(type_id: str, specs: Mapping[str, Any] | None = None) -> Detector:
    """The detector configured for an asset type: its own spec, else ``default``, else `DEFAULT_SPEC`."""
    specs = specs or {}
    return build_detector(specs.get(type_id) or specs.get("default") or DEFAULT_SPEC)


__all__ = ["DEFAULT_SPEC", "DETECTORS", "build_detector", "detector_for_type", "register"]
