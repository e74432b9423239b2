"""Drift wired to retraining: when a twin's inputs drift, retrain its detector behind the guard.

Whoever owns a twin's detector (the alert monitor) calls `RetrainService.check` now and then with
the stretch the detector learned from (``reference``) and recent operation. Drift is classified per
coupling group (`classify_drift`; by default a component's channels form a group, the asset's own
channels another):

* no drift → nothing happens;
* a sensor drifting alone → no retrain (it would teach the detector to accept a broken sensor);
  one `RetrainRejected` with ``reason="sensor_drift"`` per distinct finding;
* a process change → once it has settled (`still_moving`: a developing fault keeps moving, and
  retraining on it would learn the fault as normal) and while no alert of the twin is open,
  `guarded_retrain` on the rows since its onset: the candidate learns from the older part, both
  are validated on the newer part, and only a candidate that is not worse is kept, stored as the
  next ``detector`` artifact version with both validations in its meta (`ModelRetrained`);
  otherwise `RetrainRejected` with ``reason="guard"`` and the incumbent stays.

A retrain fits a detector (seconds to tens of seconds on a busy machine), so a periodic job that
must keep up hands it over with `check_later`: one worker thread works through the requests, one
pending per twin (a newer request replaces an older one), and calls ``done(result)`` when it is
through; `close` stops it.

`on_drift` is the guarded retrain alone, for a caller that detected (and judged) drift itself.
Every outcome is returned, so the caller swaps in ``result.model`` (and, after a retrain, takes
its next reference from ``result.reference``). A model is anything with a learned ``detector``
and ``threshold`` (the alert service's `TwinModel`, a `GuardedModel`); a retrained one is the
incumbent with those two replaced, so it is kept as the same type the owner reloads. Per asset
type, ``analytics.alerts.retrain`` may set ``enabled``, ``holdout_share``, ``tolerance``,
``cooldown_s``, ``settle_sigma`` and coupling ``groups``.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from twinloop.analytics.alerts import ALERT_EVENT_KINDS, materialize
from twinloop.analytics.anomaly import ChannelFrame
from twinloop.analytics.drift import (
    DriftDetector,
    DriftFinding,
    GuardedModel,
    RetrainOutcome,
    classify_drift,
    component_groups,
    guarded_retrain,
    still_moving,
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
    reason: str  # accepted | guard | sensor_drift | still_changing | alert_open | too_little_data | disabled
    model: Any
    artifact: Artifact | None = None
    outcome: RetrainOutcome | None = None
    findings: tuple[DriftFinding, ...] = ()
    reference: ChannelFrame | None = None


def _guarded(model: Any) -> GuardedModel:
    if isinstance(model, GuardedModel):
        return model
    if not (hasattr(model, "detector") and hasattr(model, "threshold")):
        raise ValidationError(f"a {type(model).__name__} has no learned detector and threshold to retrain")
    return GuardedModel(model.detector, model.threshold)


def _swapped(incumbent: Any, new: GuardedModel) -> Any:
    """The incumbent with the retrained detector and threshold (same type, rest kept)."""
    if isinstance(incumbent, GuardedModel):
        return new
    if dataclasses.is_dataclass(incumbent) and not isinstance(incumbent, type):
        return dataclasses.replace(incumbent, detector=new.detector, threshold=new.threshold)
    out = copy.copy(incumbent)
    out.detector, out.threshold = new.detector, new.threshold
    return out


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
        settle_sigma: float = 1.0,
    ) -> None:
        self._store, self._twins, self._bus, self._clock = store, twins, bus, clock
        self._artifacts = artifacts
        self._defaults = {"holdout_share": holdout_share, "tolerance": tolerance, "cooldown_s": cooldown_s,
                          "settle_sigma": settle_sigma}
        self._lock = threading.Lock()
        self._until_ns: dict[tuple[str, str], int] = {}  # readings time before which no retry
        self._told: dict[tuple[str, str], tuple[Any, ...]] = {}  # the last sensor-drift finding told
        self._cond = threading.Condition()
        self._queue: dict[tuple[str, str], Callable[[], None]] = {}  # pending checks, oldest first
        self._busy = False
        self._closed = False
        self._worker: threading.Thread | None = None

    def config(self, twin_id: str) -> dict[str, Any]:
        """This twin's retrain settings: the defaults under its type's ``alerts.retrain`` declaration."""
        type_id = self._twins.get(twin_id).type_id
        declared = self._twins.registry.analytics(type_id, "alerts")
        own = (declared[1].get("retrain") if declared else None) or {}
        if not isinstance(own, Mapping):
            raise ValidationError(f"analytics.alerts.retrain of {type_id} must be a mapping, got {own!r}")
        return {**self._defaults, "enabled": True, **own}

    def load(self, twin_id: str, kind: str = DETECTOR) -> tuple[Any, Artifact] | None:
        """The latest kept model of a twin (after a restart: the one to resume with)."""
        found = self._artifacts.load(kind, twin_id)
        if found is not None:
            _guarded(found[0])  # a model we can retrain, or a clear error
        return found

    def alert_open(self, twin_id: str) -> bool:
        """Whether an alert of the twin is open or acknowledged (its data may hold a fault)."""
        records = self._store.events(twin_id=twin_id, kinds=list(ALERT_EVENT_KINDS), limit=100_000)
        alerts = materialize(r.event for r in records)
        return any(a.state != "resolved" for a in alerts.values())

    # --- the checks ------------------------------------------------------------------------------
    def check(
        self,
        twin_id: str,
        incumbent: Any,
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
        since = recent.rows(onset)
        if self.alert_open(twin_id):  # the change may be the fault the alert is about: never learn it
            return RetrainResult(twin_id, False, "alert_open", incumbent, findings=tuple(found))
        cut = int(round(len(since) * (1.0 - float(cfg["holdout_share"]))))
        moving = still_moving(reference, since.rows(0, cut), since.rows(cut),
                              [c for f in process for c in f.channels], float(cfg["settle_sigma"]))
        if moving:  # a developing fault keeps moving; a changed process settles: wait for that
            return RetrainResult(twin_id, False, "still_changing", incumbent, findings=tuple(found))
        drift = [self._finding(f, recent) for f in found]
        return self._retrain(twin_id, incumbent, since, tuple(found), drift, kind, None, cfg)

    def on_drift(
        self,
        twin_id: str,
        incumbent: Any,
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

    def _retrain(self, twin_id: str, incumbent: Any, recent: ChannelFrame,
                 found: tuple[DriftFinding, ...], drift: list[dict[str, Any]], kind: str,
                 threshold: Mapping[str, Any] | None, cfg: Mapping[str, Any]) -> RetrainResult:
        guarded = _guarded(incumbent)
        kept = self._kept(kind, twin_id, incumbent)
        params = dict(threshold) if threshold is not None else {
            f.name: getattr(guarded.threshold, f.name) for f in fields(guarded.threshold)}
        try:
            outcome = guarded_retrain(guarded, recent, float(cfg["holdout_share"]), params,
                                      float(cfg["tolerance"]))
        except ValidationError as err:  # too few rows since the change: wait for more
            _log.debug("retrain of %s waits: %s", twin_id, err)
            return RetrainResult(twin_id, False, "too_little_data", incumbent, kept, findings=found)
        with self._lock:
            self._until_ns[(kind, twin_id)] = int(recent.ts_ns[-1]) + int(float(cfg["cooldown_s"]) * 1e9)
            self._told.pop((kind, twin_id), None)
        before, after = _validation(outcome.before), _validation(outcome.after)
        cut = int(round(len(recent) * (1.0 - float(cfg["holdout_share"]))))
        window = [int(recent.ts_ns[0]), int(recent.ts_ns[cut - 1]) + 1]  # what the candidate learned
        holdout = [int(recent.ts_ns[cut]), int(recent.ts_ns[-1]) + 1]  # what both were validated on
        event: Event
        if outcome.accepted:
            model = _swapped(incumbent, outcome.model)
            artifact = self._artifacts.save(kind, twin_id, model, {
                "twins": [twin_id], "window_ns": window, "holdout_ns": holdout, "trained_rows": cut,
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
            return RetrainResult(twin_id, True, "accepted", model, artifact, outcome, found,
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

    # --- off the caller's thread -----------------------------------------------------------------
    def check_later(
        self,
        twin_id: str,
        incumbent: Any,
        reference: ChannelFrame,
        recent: ChannelFrame,
        done: Callable[[RetrainResult | None], None] | None = None,
        *,
        kind: str = DETECTOR,
    ) -> bool:
        """`check` on the worker thread, then ``done(result)`` there (it must be quick and
        thread-safe: adopt ``result.model`` when ``result.accepted``). A request for a twin that
        is still waiting replaces it. False once closed."""

        def job() -> None:
            try:
                result = self.check(twin_id, incumbent, reference, recent, kind=kind)
            except Exception:  # noqa: BLE001 - one twin's failure must not stop the worker
                _log.exception("drift check of %s failed", twin_id)
                return
            if done is not None:
                try:
                    done(result)
                except Exception:  # noqa: BLE001 - the owner's callback; logged, the worker goes on
                    _log.exception("after the drift check of %s, its callback failed", twin_id)

        with self._cond:
            if self._closed:
                return False
            self._queue.pop((kind, twin_id), None)
            self._queue[(kind, twin_id)] = job
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="retrain", daemon=True)
                self._worker.start()
            self._cond.notify_all()
        return True

    def wait_idle(self, timeout_s: float | None = None) -> bool:
        """Wait until every requested check is through; False after ``timeout_s``."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        """Drop the checks not started, let a running one finish (up to ``timeout_s``); idempotent."""
        with self._cond:
            self._closed = True
            self._queue.clear()
            self._cond.notify_all()
            worker = self._worker
        if worker is not None:
            worker.join(timeout_s)

    def _work(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._queue or self._closed)
                if self._closed:
                    return
                key = next(iter(self._queue))
                job = self._queue.pop(key)
                self._busy = True
            try:
                job()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()

    # --- internals -------------------------------------------------------------------------------
    def _sensor_drift(self, twin_id: str, kind: str, incumbent: Any,
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

    def _kept(self, kind: str, twin_id: str, incumbent: Any) -> Artifact:
        """The stored version in force; the incumbent is kept first if nothing is (so it can be
        compared with, and gone back to)."""
        kept = self._store.artifact(kind, twin_id)
        if kept is None:
            kept = self._artifacts.save(kind, twin_id, incumbent, {
                "twins": [twin_id], "model": _guarded(incumbent).detector.name,
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
