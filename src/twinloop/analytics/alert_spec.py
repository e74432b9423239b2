"""How one asset type is watched for alerts, read from its ``analytics: {alerts: …}`` declaration.

Each asset type says, beside its channels, what normal operation is learned from and how it is
judged, so a pump station and an office building get the same live loop without pump defaults
in the runtime::

    analytics:
      alerts:
        operating: "speed > 100 for 10m"   # learn and judge only while running and settled
        learn: 2h                          # plant time of operation learned as normal
        period: 10s                        # the grid detectors see readings on
        detector: {detector: ensemble, members: {pca: {window: 10}, quality: {}}, combine: max}
        threshold: {quantile: 0.995, margin: 1.0}
        checks: {limits: {margin: 3}}      # detectors with a level of their own; {} for none

Every key is optional. ``learn`` and ``period`` are durations (``90``, ``5m``, ``1h30m``). By
default the learned-range check (``limits``) runs beside the detector: a sensor drifting out of
the range it kept is alerted even when a warm-up in the learned stretch blunts the detector.

>>> spec = AlertSpec.parse({"operating": "speed > 100 for 10m", "learn": "1h30m"})
>>> spec.gate.channel, spec.learn_s, spec.period_s
('speed', 5400.0, 10.0)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from twinloop.analytics.operating import OperatingGate
from twinloop.core.errors import ValidationError
from twinloop.ingest.clock import parse_duration_s

LEARN_S = 7200.0
PERIOD_S = 10.0
#: ``retrain`` is read by the retrain service (guarded retraining), not here.
KEYS = ("operating", "learn", "period", "detector", "threshold", "checks", "retrain", "enabled")
DEFAULT_CHECKS: dict[str, dict[str, Any]] = {"limits": {}}


@dataclass(frozen=True)
class AlertSpec:
    """What an asset type's alerts learn from and how: detector spec (None: the default ensemble),
    operating gate (None: always judged), learning period and grid, threshold parameters."""

    detector: Mapping[str, Any] | None = None
    gate: OperatingGate | None = None
    learn_s: float = LEARN_S
    period_s: float = PERIOD_S
    threshold: Mapping[str, Any] = field(default_factory=dict)
    checks: Mapping[str, Mapping[str, Any]] = field(default_factory=lambda: dict(DEFAULT_CHECKS))

    @classmethod
    def parse(cls, section: Mapping[str, Any], where: str = "alerts") -> AlertSpec:
        """A spec from an ``alerts`` declaration; `ValidationError` naming ``where`` if it is wrong."""
        unknown = set(section) - set(KEYS)
        if unknown:
            raise ValidationError(f"{where}: unknown keys {sorted(unknown)}",
                                  hint=f"known: {', '.join(KEYS)}")
        detector = section.get("detector")
        if isinstance(detector, str):
            detector = {"detector": detector}
        if detector is not None and not isinstance(detector, Mapping):
            raise ValidationError(f"{where}: detector must be a name or {{detector: name, …}}")
        threshold = section.get("threshold") or {}
        if not isinstance(threshold, Mapping):
            raise ValidationError(f"{where}: threshold must be a mapping, e.g. {{quantile: 0.995}}")
        checks = section.get("checks", DEFAULT_CHECKS)
        if isinstance(checks, list | tuple):
            checks = {str(name): {} for name in checks}
        if not isinstance(checks, Mapping):
            raise ValidationError(f"{where}: checks must name detectors, e.g. {{limits: {{margin: 3}}}}")
        operating = section.get("operating")
        try:
            learn_s = parse_duration_s(section.get("learn", LEARN_S))
            period_s = parse_duration_s(section.get("period", PERIOD_S))
        except ValueError as err:
            raise ValidationError(f"{where}: {err}",
                                  hint="write a duration such as 90, 10s, 5m or 2h") from err
        if learn_s <= 0 or period_s <= 0 or learn_s < 20 * period_s:
            raise ValidationError(f"{where}: learn ({learn_s:g} s) must cover at least 20 periods "
                                  f"({period_s:g} s each)")
        return cls(
            detector=dict(detector) if detector is not None else None,
            gate=OperatingGate.parse(str(operating)) if operating else None,
            learn_s=learn_s, period_s=period_s, threshold=dict(threshold),
            checks={str(k): dict(v or {}) for k, v in checks.items()},
        )


__all__ = ["DEFAULT_CHECKS", "LEARN_S", "PERIOD_S", "AlertSpec"]
