"""Drift wired to retraining: when a twin's inputs drift, retrain its detector behind the guard.

Whoever owns a twin's detector (the alert monitor) calls `RetrainService.check` now and then with
the stretch the detector learned from (``reference``) and recent operation. Drift is classified per
coupling group (`classify_drift`; by default a component's channels form a group, the asset's own
channels another):

* no drift → nothing happens;
* a sensor drifting alone → no retrain (it would teach the detector to accept a broken sensor);
  one `RetrainRejected` with ``reason="sensor_drift"`` per distinct finding;
* a process change → `guarded_retrain` on the rows since its onset: the candidate learns from the
  older part, both are validated on the newer part, and only a candidate that is not worse is kept,
  stored as the next ``detector`` artifact version with both validations in its meta
  (`ModelRetrained`); otherwise `RetrainRejected` with ``reason="guard"`` and the incumbent stays.

`on_drift` is the same without the classification, for a caller that detected drift itself. Every
outcome is returned, so the caller swaps in ``result.model`` (and, after a retrain, learns its next
reference from ``result.reference``). Per asset type, ``analytics.alerts.retrain`` may set
``enabled``, ``holdout_share``, ``tolerance``, ``cooldown_s`` and coupling ``groups``.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from twinloop.analytics.anomaly import ChannelFrame
from twinloop.analytics.drift import (
    DriftDetector,
    DriftFinding,
    GuardedModel,
    RetrainOutcome,
    classify_drift,
    component_groups,
    guarded_retrain,
)
from twinloop.core.clock import Clock
from twinloop.core.errors import ValidationError
from twinloop.core.events import Event
from twinloop.runtime.artifacts import ArtifactService
from twinloop.runtime.bus import EventBus
from twinloop.runtime.twin_service import TwinService
from twinloop.store.protocol import Artifact, AuditRecord, Store

SYSTEM_ACTOR = "system:retrain"
DETECTOR = "detector"
_log = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class ModelRetrained(Event):
    """A retrained model passed the guard and is kept as ``version`` of (``artifact_kind``, ``key``)."""

    artifact_kind: str = DETECTOR
    key: str = ""
    version: int = 0
    previous_version: int = 0
    drift: list[dict[str, Any]] = field(default_factory=list)
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    window_ns: list[int] = field(default_factory=list)


@dataclass(frozen=True, kw_only=True)
class RetrainRejected(Event):
    """Drift was seen but the model was not replaced: ``reason`` is ``guard`` (the candidate was
    worse) or ``sensor_drift`` (retraining would accept a drifting sensor); ``version`` stays."""

    artifact_kind: str = DETECTOR
    key: str = ""
    reason: str = ""
    version: int = 0
    drift: list[dict[str, Any]] = field(default_factory=list)
    before: dict[str, float] = field(default_factory=dict)
    after: dict[str, float] = field(default_factory=dict)
    message: str = ""


@dataclass(frozen=True)
class RetrainResult:
    """What a drift check did. ``model`` is the one to use from now on; ``artifact`` its stored
    version; ``reference`` the rows a retrained model learned from (None unless ``accepted``)."""

    twin_id: str
    accepted: bool
    reason: str  # accepted | guard | sensor_drift | too_little_data | disabled | cooling_down
    model: GuardedModel
    artifact: Artifact | None = None
    outcome: RetrainOutcome | None = None
    findings: tuple[DriftFinding, ...] = ()
    reference: ChannelFrame | None = None


def _validation(v: Any) -> dict[str, float]:
    return {"false_alarm_rate": float(v.false_alarm_rate), "miss_rate": float(v.miss_rate),
            "loss": float(v.loss)}


class RetrainService:
    """Guarded retraining of twins' detectors after drift; the new versions kept as artifacts."""

    def __init__(
        self,
        store: Store,
        twins: TwinService,
        bus: EventBus,
        clock: Clock,
        artifacts: ArtifactService,
        *,
        holdout_share: float = 0.3,
        tolerance: float = 0.0,
        cooldown_s: float = 3600.0,
    ) -> None:
        self._store, self._twins, self._bus, self._clock = store, twins, bus, clock
        self._artifacts = artifacts
        self._defaults = {"holdout_share": holdout_share, "tolerance": tolerance, "cooldown_s": cooldown_s}
        self._lock = threading.Lock()
        self._until_ns: dict[tuple[str, str], int] = {}  # readings time before which no retry
        self._told: dict[tuple[str, str], tuple[Any, ...]] = {}  # the last sensor-drift finding told

    def config(self, twin_id: str) -> dict[str, Any]:
        """This twin's retrain settings: the defaults under its type's ``alerts.retrain`` declaration."""
        type_id = self._twins.get(twin_id).type_id
        declared = self._twins.registry.analytics(type_id, "alerts")
        own = (declared[1].get("retrain") if declared else None) or {}
        if not isinstance(own, Mapping):
            raise ValidationError(f"analytics.alerts.retrain of {type_id} must be a mapping, got {own!r}")
        return {**self._defaults, "enabled": True, **own}

    def load(self, twin_id: str, kind: str = DETECTOR) -> tuple[GuardedModel, Artifact] | None:
        """The latest kept model of a twin (after a restart: the one to resume with)."""
        found = self._artifacts.load(kind, twin_id, expect=GuardedModel)
        return None if found is None else (found[0], found[1])

    # --- the checks ------------------------------------------------------------------------------
    def check(
        self,
        twin_id: str,
        incumbent: GuardedModel,
        reference: ChannelFrame,
        recent: ChannelFrame,
        *,
        kind: str = DETECTOR,
        groups: Mapping[str, Sequence[str]] | None = None,
        detector: DriftDetector | None = None,
    ) -> RetrainResult | None:
        """Look for drift in ``recent`` against ``reference`` and act on it (see the module
        docstring); None when there is no drift (or retraining is off for the type)."""
        cfg = self.config(twin_id)
        if not cfg["enabled"] or len(recent) == 0:
            return None
        channels = list(reference.channels)
        recent = recent.select(channels)
        with self._lock:
            if int(recent.ts_ns[-1]) < self._until_ns.get((kind, twin_id), -(2**63)):
                return None
        groups = groups or cfg.get("groups") or component_groups(channels)
        groups = {g: [c for c in members if c in channels] for g, members in groups.items()}
        found = classify_drift(reference.values, recent.values, channels,
                               {g: m for g, m in groups.items() if m}, detector)
        if not found:
            return None
        process = [f for f in found if f.kind == "process"]
        if not process:
            return self._sensor_drift(twin_id, kind, incumbent, found, recent)
        onset = min(f.onset for f in process)
        drift = [self._finding(f, recent) for f in found]
        return self._retrain(twin_id, incumbent, recent.rows(onset), tuple(found), drift, kind, None, cfg)

    def on_drift(
        self,
        twin_id: str,
        incumbent: GuardedModel,
        recent: ChannelFrame,
        *,
        findings: Sequence[DriftFinding] = (),
        kind: str = DETECTOR,
        threshold: Mapping[str, Any] | None = None,
    ) -> RetrainResult:
        """Retrain ``incumbent`` on ``recent`` (normal operation since the change) behind the guard;
        keep the candidate as the next artifact version only if the guard accepts it."""
        cfg = self.config(twin_id)
        found = tuple(findings)
        if not cfg["enabled"]:
            return RetrainResult(twin_id, False, "disabled", incumbent, findings=found)
        drift = [self._finding(f, recent) for f in found]
        return self._retrain(twin_id, incumbent, recent, found, drift, kind, threshold, cfg)

    def _retrain(self, twin_id: str, incumbent: GuardedModel, recent: ChannelFrame,
                 found: tuple[DriftFinding, ...], drift: list[dict[str, Any]], kind: str,
                 threshold: Mapping[str, Any] | None, cfg: Mapping[str, Any]) -> RetrainResult:
        kept = self._kept(kind, twin_id, incumbent)
        params = dict(threshold) if threshold is not None else {
            f.name: getattr(incumbent.threshold, f.name) for f in fields(incumbent.threshold)}
        try:
            outcome = guarded_retrain(incumbent, recent, float(cfg["holdout_share"]), params,
                                      float(cfg["tolerance"]))
        except ValidationError as err:  # too few rows since the change: wait for more
            _log.debug("retrain of %s waits: %s", twin_id, err)
            return RetrainResult(twin_id, False, "too_little_data", incumbent, kept, findings=found)
        with self._lock:
            self._until_ns[(kind, twin_id)] = int(recent.ts_ns[-1]) + int(float(cfg["cooldown_s"]) * 1e9)
            self._told.pop((kind, twin_id), None)
        before, after = _validation(outcome.before), _validation(outcome.after)
        cut = int(round(len(recent) * (1.0 - float(cfg["holdout_share"]))))
        window = [int(recent.ts_ns[0]), int(recent.ts_ns[-1]) + 1]
        event: Event
        if outcome.accepted:
            artifact = self._artifacts.save(kind, twin_id, outcome.model, {
                "twins": [twin_id], "window_ns": window, "trained_rows": cut,
                "holdout_rows": len(recent) - cut, "channels": list(recent.channels),
                "model": outcome.model.detector.name, "reason": "drift",
                "metrics": {"before": before, "after": after}, "drift": drift,
                "previous_version": kept.version})
            event = ModelRetrained(twin_id=twin_id, revision=self._revision(twin_id),
                                   ts_ns=self._clock.now_ns(), artifact_kind=kind, key=twin_id,
                                   version=artifact.version, previous_version=kept.version, drift=drift,
                                   before=before, after=after, window_ns=window)
            self._record(event, "model.retrain", f"{kind}/{twin_id}", {
                "version": artifact.version, "before": before["loss"], "after": after["loss"]})
            _log.info("retrained the %s of %s after drift: loss %.3f -> %.3f, kept as version %d",
                      kind, twin_id, before["loss"], after["loss"], artifact.version)
            return RetrainResult(twin_id, True, "accepted", outcome.model, artifact, outcome, found,
                                 recent.rows(0, cut))
        event = RetrainRejected(twin_id=twin_id, revision=self._revision(twin_id), ts_ns=self._clock.now_ns(),
                                artifact_kind=kind, key=twin_id, reason="guard", version=kept.version,
                                drift=drift, before=before, after=after,
                                message=f"the retrained {kind} was worse on recent data (loss "
                                        f"{after['loss']:.3f} against {before['loss']:.3f}); version "
                                        f"{kept.version} stays")
        self._record(event, "model.retrain", f"{kind}/{twin_id}",
                     {"rejected": "guard", "before": before["loss"], "after": after["loss"]}, "rejected")
        return RetrainResult(twin_id, False, "guard", incumbent, kept, outcome, found)

    # --- internals -------------------------------------------------------------------------------
    def _sensor_drift(self, twin_id: str, kind: str, incumbent: GuardedModel,
                      found: Sequence[DriftFinding], recent: ChannelFrame) -> RetrainResult:
        signature = tuple(sorted(c for f in found for c in f.channels))
        kept = self._store.artifact(kind, twin_id)
        with self._lock:
            told = self._told.get((kind, twin_id)) == signature
            self._told[(kind, twin_id)] = signature
        if not told:
            drift = [self._finding(f, recent) for f in found]
            text = (f"{', '.join(signature)} drifted alone: a sensor, not the process; the {kind} is "
                    "not retrained (it would learn to accept the drifting sensor)")
            self._record(RetrainRejected(
                twin_id=twin_id, revision=self._revision(twin_id), ts_ns=self._clock.now_ns(),
                artifact_kind=kind, key=twin_id, reason="sensor_drift",
                version=kept.version if kept else 0, drift=drift, message=text),
                "model.retrain", f"{kind}/{twin_id}", {"rejected": "sensor_drift",
                                                       "channels": list(signature)}, "rejected")
        return RetrainResult(twin_id, False, "sensor_drift", incumbent, kept, findings=tuple(found))

    def _kept(self, kind: str, twin_id: str, incumbent: GuardedModel) -> Artifact:
        """The stored version in force; the incumbent is kept first if nothing is (so it can be
        compared with, and gone back to)."""
        kept = self._store.artifact(kind, twin_id)
        if kept is None:
            kept = self._artifacts.save(kind, twin_id, incumbent, {
                "twins": [twin_id], "model": incumbent.detector.name,
                "reason": "incumbent, kept before its first retrain"})
        return kept

    @staticmethod
    def _finding(f: DriftFinding, frame: ChannelFrame) -> dict[str, Any]:
        onset_ns = int(frame.ts_ns[f.onset]) if 0 <= f.onset < len(frame) else None
        return {"kind": f.kind, "channels": list(f.channels), "group": f.group, "onset_ns": onset_ns}

    def _revision(self, twin_id: str) -> int:
        graph = self._twins.graph
        return graph.get(twin_id).revision if twin_id in graph else 0

    def _record(self, event: Event, action: str, target: str, detail: dict[str, Any],
                outcome: str = "ok") -> None:
        self._store.append_events([event])
        self._store.append_audit(AuditRecord(ts_ns=event.ts_ns, actor=SYSTEM_ACTOR, action=action,
                                             target=target, outcome=outcome, detail=detail))
        self._bus.publish([event])


__all__ = ["DETECTOR", "ModelRetrained", "RetrainRejected", "RetrainResult", "RetrainService"]
