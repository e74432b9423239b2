"""Alerts of the running twinloop: learn normal per twin, raise from detector scores, dedupe, ack, resolve.

The store's event log is the only record: raising appends `AlertRaised` (or `AlertRepeated` for a
duplicate), acknowledging and resolving append their events, and the current alerts are folded
from those events (`twinloop.analytics.alerts.materialize`), incrementally by sequence number, so
several processes over one store agree. Every change is audited and published on the bus.

Each asset type says how it is watched in its ``analytics: {alerts: …}`` declaration (`AlertSpec`:
detector, operating gate, learning period, threshold); ``specs``, ``gates`` and ``threshold`` given
here (from settings) go over it. Detectors are learned per twin from a period of normal history
and kept in memory with their calibrated threshold and alarm state.
`evaluate` scores the history since the last evaluation (with enough earlier rows for the
detector's trailing features), so a stream checked every few seconds sees each episode once.
"""

from __future__ import annotations

import builtins
import dataclasses
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from twinloop.analytics.alert_spec import AlertSpec
from twinloop.analytics.alerts import (
    ALERT_EVENT_KINDS,
    Alert,
    AlertAcknowledged,
    AlertRaised,
    AlertRepeated,
    AlertResolved,
    Finding,
    check_transition,
    findings,
    materialize,
    new_alert_id,
)
from twinloop.analytics.anomaly import ChannelFrame, Detector, build_detector, calibration_scores
from twinloop.analytics.anomaly.registry import DEFAULT_SPEC
from twinloop.analytics.operating import OperatingGate
from twinloop.analytics.thresholds import AlarmState, QuantileThreshold
from twinloop.core.clock import Clock
from twinloop.core.errors import ConflictError, NotFoundError, ValidationError
from twinloop.core.events import Event
from twinloop.runtime.bus import EventBus
from twinloop.runtime.twin_service import TwinService
from twinloop.store.protocol import AuditRecord, Store

SYSTEM_ACTOR = "system:anomaly"
#: How the alarm level is set from a twin's normal scores unless the caller says otherwise: twice
#: as far from the normal median as the 99.5th percentile of out-of-sample normal scores, held
#: for 6 rows; an alert costs a person's attention, so the level sits well clear of normal tails.
DEFAULT_THRESHOLD: dict[str, Any] = {
    "quantile": 0.995, "margin": 1.0, "hysteresis": 0.5, "min_on": 6, "min_off": 6,
}


@dataclass
class Check:
    """A detector beside the main one with a level of its own (the learned-range check), and its
    alarm state: it raises its own alerts."""

    detector: Detector
    threshold: QuantileThreshold
    state: AlarmState = field(default_factory=AlarmState)


@dataclass
class TwinModel:
    """A twin's learned detector, its threshold, its checks, and where evaluation has got to."""

    detector: Detector
    threshold: QuantileThreshold
    channels: tuple[str, ...]
    period_ns: int | None
    state: AlarmState = field(default_factory=AlarmState)
    cursor_ns: int | None = None
    checks: list[Check] = field(default_factory=list)

    @property
    def history_rows(self) -> int:
        """Rows before the first judged one that every detector's score needs."""
        detectors = (self.detector, *(c.detector for c in self.checks))
        return max(int(getattr(d, "history_rows", 0)) for d in detectors)


class AlertService:
    """Raise, deduplicate, acknowledge and resolve alerts; list them from the event log."""

    def __init__(
        self,
        store: Store,
        twins: TwinService,
        bus: EventBus,
        clock: Clock,
        specs: Mapping[str, Any] | None = None,
        threshold: Mapping[str, Any] | None = None,
        gates: Mapping[str, OperatingGate | None] | None = None,
    ) -> None:
        self._store = store
        self._twins = twins
        self._bus = bus
        self._clock = clock
        self._specs = dict(specs or {})
        self._threshold = dict(threshold or {})
        self._gates = dict(gates or {})
        self._spec_cache: dict[str, AlertSpec | None] = {}
        self._lock = threading.RLock()
        self._alerts: dict[str, Alert] = {}
        self._seq = 0
        self._models: dict[str, TwinModel] = {}

    # --- reading -----------------------------------------------------------------------------------
    def _refresh(self) -> dict[str, Alert]:
        """Fold alert events appended since the last call (by any process) into the cache."""
        with self._lock:
            while True:
                records = self._store.events(after_seq=self._seq, kinds=list(ALERT_EVENT_KINDS), limit=1000)
                if not records:
                    break
                self._alerts = materialize((r.event for r in records), self._alerts)
                self._seq = records[-1].seq
            return self._alerts

    def list(
        self, state: str | None = None, twin_id: str | None = None, severity: str | None = None
    ) -> list[Alert]:
        """Alerts, newest first, filtered by state, twin and severity."""
        if state is not None and state not in ("open", "acknowledged", "resolved", "active"):
            raise ValidationError(f"unknown alert state {state!r}",
                                  hint="use open, acknowledged, resolved, or active (open + acknowledged)")
        alerts = list(self._refresh().values())
        out = [
            a for a in alerts
            if (state is None or a.state == state or (state == "active" and a.state != "resolved"))
            and (twin_id is None or a.twin_id == twin_id)
            and (severity is None or a.severity == severity)
        ]
        return sorted(out, key=lambda a: (a.raised_ns, a.alert_id), reverse=True)

    def get(self, alert_id: str) -> Alert:
        alert = self._refresh().get(alert_id)
        if alert is None:
            raise NotFoundError(f"no alert {alert_id!r}", hint="list alerts with GET /alerts")
        return alert

    # --- lifecycle ---------------------------------------------------------------------------------
    def raise_finding(self, finding: Finding, *, actor: str = SYSTEM_ACTOR, message: str = "") -> Alert:
        """Raise an alert for a finding, or count it as a repeat of the matching unresolved one."""
        with self._lock:
            self._twins.get(finding.twin_id)
            key = (finding.twin_id, finding.channels[0] if finding.channels else "")
            active = self.list(state="active", twin_id=finding.twin_id)
            match = next((a for a in active if a.fingerprint == key), None)
            now = self._clock.now_ns()
            event: Event
            if match is not None:
                event = AlertRepeated(
                    twin_id=finding.twin_id, revision=self._revision(finding.twin_id), ts_ns=now,
                    alert_id=match.alert_id, score=finding.peak_score, severity=finding.severity,
                )
                action, alert_id = "alert.repeat", match.alert_id
            else:
                alert_id = new_alert_id()
                text = message or (
                    f"{finding.detector} score {finding.peak_score:.3g} above {finding.level:.3g} on "
                    f"{finding.twin_id}, driven by {', '.join(finding.channels) or 'no single channel'}"
                )
                event = AlertRaised(
                    twin_id=finding.twin_id, revision=self._revision(finding.twin_id), ts_ns=now,
                    alert_id=alert_id, detector=finding.detector, severity=finding.severity,
                    score=finding.peak_score, level=finding.level, channels=list(finding.channels),
                    attributions=dict(finding.attributions), started_ns=finding.start_ns, message=text,
                )
                action = "alert.raise"
            self._record(event, actor, action, alert_id, {"severity": finding.severity,
                                                          "channels": list(finding.channels)})
            return self.get(alert_id)

    def acknowledge(self, alert_id: str, *, actor: str, note: str = "") -> Alert:
        """Mark an open alert as seen and owned by ``actor``."""
        return self._transition(alert_id, "acknowledged", actor, note)

    def resolve(self, alert_id: str, *, actor: str, reason: str = "") -> Alert:
        """Close an open or acknowledged alert."""
        return self._transition(alert_id, "resolved", actor, reason)

    def _transition(self, alert_id: str, to: str, actor: str, text: str) -> Alert:
        if len(text) > 1000:
            raise ValidationError("a note or reason may have at most 1000 characters")
        with self._lock:
            alert = self.get(alert_id)
            check_transition(alert, to)  # type: ignore[arg-type]
            now = self._clock.now_ns()
            rev = self._revision(alert.twin_id)
            event: Event
            if to == "acknowledged":
                event = AlertAcknowledged(twin_id=alert.twin_id, revision=rev, ts_ns=now, alert_id=alert_id,
                                          actor=actor, note=text)
            else:
                event = AlertResolved(twin_id=alert.twin_id, revision=rev, ts_ns=now, alert_id=alert_id,
                                      actor=actor, reason=text)
            self._record(event, actor, f"alert.{'ack' if to == 'acknowledged' else 'resolve'}", alert_id,
                         {"text": text} if text else {})
            return self.get(alert_id)

    # --- detection ---------------------------------------------------------------------------------
    def learn(
        self,
        twin_id: str,
        start_ns: int | None = None,
        end_ns: int | None = None,
        period_ns: int | None = None,
        frame: ChannelFrame | None = None,
        min_rows: int = 1,
        resume_ns: int | None = None,
    ) -> TwinModel:
        """Learn a twin's normal operation from its stored history in ``[start, end)`` (or ``frame``).

        ``period_ns`` puts readings on a regular grid, so missing readings and silence count. With an
        operating gate for the twin's type, only operating rows are learned; fewer than ``min_rows``
        of them is a `ConflictError` (not yet: a standby machine has nothing to learn).
        ``evaluate`` goes on after ``resume_ns`` (default: the end of the learned period).
        """
        twin = self._twins.get(twin_id)
        channels = tuple(name for name, _ in self._twins.registry.component_channels(twin.type_id))
        if frame is None:
            frame = self._frame(twin_id, channels, start_ns, end_ns, period_ns)
        gate = self._gate(twin.type_id)
        if gate is not None and len(frame):
            frame = frame.where(self._operating(gate, frame))
            if len(frame) < min_rows:
                raise ConflictError(
                    f"{twin_id} has not run long enough to be learned: {gate.channel} > {gate.above:g} "
                    f"(settled) in {len(frame)} of the {min_rows} rows needed",
                    hint="it is learned once it has; a standby machine waits for its turn")
        if len(frame) == 0:
            raise ValidationError(f"no readings of {twin_id} to learn from",
                                  hint="record normal operation first, or widen the period")
        spec = self.spec(twin.type_id) or AlertSpec()
        detector = build_detector(spec.detector or DEFAULT_SPEC).learn(frame)
        threshold = QuantileThreshold(**{**DEFAULT_THRESHOLD, **spec.threshold}).calibrate(
            calibration_scores(detector, frame))
        checks = []
        for name, params in spec.checks.items():
            check = build_detector({"detector": name, **(params or {})}).learn(frame)
            level = getattr(check, "level", None)  # a check whose score means something by itself
            limit = QuantileThreshold(**{**DEFAULT_THRESHOLD, **spec.threshold})
            checks.append(Check(check, limit.at(float(level)) if level is not None else
                                limit.calibrate(calibration_scores(check, frame))))
        cursor = int(frame.ts_ns[-1]) if resume_ns is None else int(resume_ns)
        model = TwinModel(detector, threshold, frame.channels, period_ns, cursor_ns=cursor, checks=checks)
        with self._lock:
            self._models[twin_id] = model
        return model

    def evaluate(
        self, twin_id: str, end_ns: int | None = None, frame: ChannelFrame | None = None
    ) -> builtins.list[Alert]:
        """Score a twin's readings since its last evaluation; raise (or repeat) an alert per episode."""
        model = self._models.get(twin_id)
        if model is None:
            raise ConflictError(f"no detector has learned {twin_id} yet",
                                hint="learn normal operation first (AlertService.learn)")
        history = model.history_rows
        gate = self._gate(self._twins.get(twin_id).type_id)
        if frame is None:
            start = None
            if model.cursor_ns is not None and model.period_ns:
                back = (history + 1) * model.period_ns
                if gate is not None:  # enough look-back to tell whether the run has settled
                    back = max(back, int(gate.settle_s * 1e9) + model.period_ns)
                start = model.cursor_ns - back
            frame = self._frame(twin_id, model.channels, start, end_ns, model.period_ns)
        new = frame.ts_ns > (model.cursor_ns if model.cursor_ns is not None else np.iinfo(np.int64).min)
        if gate is not None:
            new &= self._operating(gate, frame)  # a stopped machine is not judged
        if not new.any():  # nothing to judge; rows while stopped are not looked at again
            if len(frame) and (model.cursor_ns is None or int(frame.ts_ns[-1]) > model.cursor_ns):
                model.cursor_ns = int(frame.ts_ns[-1])
            return []
        rows = np.flatnonzero(new)
        found, model.state = self._judge(twin_id, model.detector, model.threshold, model.state, frame, rows)
        for check in model.checks:
            more, check.state = self._judge(twin_id, check.detector, check.threshold, check.state,
                                            frame, rows)
            found += more
        model.cursor_ns = int(frame.ts_ns[-1])
        touched = {}  # one condition found by two detectors is one alert, raised then repeated
        for f in sorted(found, key=lambda f: f.start_ns):
            alert = self.raise_finding(f)
            touched[alert.alert_id] = alert
        return list(touched.values())

    @staticmethod
    def _judge(twin_id: str, detector: Detector, threshold: QuantileThreshold, state: AlarmState,
               frame: ChannelFrame, rows: np.ndarray) -> tuple[builtins.list[Finding], AlarmState]:
        """The episodes one detector finds in ``rows`` of ``frame``, and its alarm state after them."""
        scores, attributions = detector.score(frame)
        was_on = state.on
        mask, state = threshold.apply(scores[rows], state)
        found = findings(twin_id, detector.name, frame.ts_ns[rows], scores[rows], attributions[rows], mask,
                         frame.channels, threshold.level_, threshold.median_)
        if was_on and found and found[0].start_ns == int(frame.ts_ns[rows[0]]):
            found = found[1:]  # the episode already alerted on continues
        return found, state

    def model(self, twin_id: str) -> TwinModel | None:
        """The learned model of a twin (None before it is learned)."""
        return self._models.get(twin_id)

    def adopt(self, twin_id: str, model: TwinModel) -> None:
        """Take a model learned earlier (kept as an artifact) instead of learning the twin again."""
        self._twins.get(twin_id)
        with self._lock:
            self._models[twin_id] = model

    def spec(self, type_id: str) -> AlertSpec | None:
        """How twins of ``type_id`` are watched: the nearest ``alerts`` declaration in its lineage with
        the settings' overrides on top; None when neither declares anything for it."""
        if type_id in self._spec_cache:
            return self._spec_cache[type_id]
        lineage = self._twins.registry.lineage(type_id)
        found = self._twins.registry.analytics(type_id, "alerts")
        declared = AlertSpec.parse(found[1], f"{found[0]}.analytics.alerts") if found else None
        gate_over = next((t for t in lineage if t in self._gates), None)
        detector_over = self._specs.get(type_id) or self._specs.get("default")
        spec = declared
        if spec is None and (gate_over or detector_over or self._threshold):
            spec = AlertSpec()
        if spec is not None:
            spec = dataclasses.replace(
                spec,
                gate=self._gates[gate_over] if gate_over is not None else spec.gate,
                detector=detector_over if detector_over else spec.detector,
                threshold={**spec.threshold, **self._threshold},
            )
        self._spec_cache[type_id] = spec
        return spec

    def _gate(self, type_id: str) -> OperatingGate | None:
        """The operating gate of a type (declared, or the settings' for it or a type it extends)."""
        spec = self.spec(type_id)
        return spec.gate if spec is not None else None

    def operating_since(self, twin_id: str, start_ns: int, end_ns: int, period_ns: int) -> int | None:
        """The first settled operating row of a twin in ``[start, end)`` (None: not operating in it;
        without a gate, the first row)."""
        twin = self._twins.get(twin_id)
        gate = self._gate(twin.type_id)
        channels = [gate.channel] if gate is not None else None
        frame = self._frame(twin_id, channels or [c for c, _ in
                                                  self._twins.registry.component_channels(twin.type_id)],
                            start_ns, end_ns, period_ns)
        on = self._operating(gate, frame) if gate is not None else np.isfinite(frame.values).any(axis=1)
        rows = np.flatnonzero(on)
        return int(frame.ts_ns[rows[0]]) if len(rows) else None

    @staticmethod
    def _operating(gate: OperatingGate, frame: ChannelFrame) -> np.ndarray:
        if gate.channel not in frame.channels:
            return np.zeros(len(frame), bool)  # nothing says it runs: nothing is judged
        return gate.mask(frame.ts_ns, frame.values[:, frame.channels.index(gate.channel)])

    def _frame(self, twin_id: str, channels: Sequence[str], start_ns: int | None, end_ns: int | None,
               period_ns: int | None) -> ChannelFrame:
        batch = self._store.history(twin_id, list(channels), start_ns, end_ns, None)
        frame = ChannelFrame.from_readings(batch, asset_id=twin_id, channels=channels)
        if period_ns:
            frame = frame.on_grid(period_ns, start_ns, end_ns - 1 if end_ns is not None else None)
        return frame

    # --- internals ---------------------------------------------------------------------------------
    def _revision(self, twin_id: str) -> int:
        graph = self._twins.graph
        return graph.get(twin_id).revision if twin_id in graph else 0

    def _record(self, event: Event, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:
        self._store.append_events([event])
        self._store.append_audit(AuditRecord(ts_ns=event.ts_ns, actor=actor, action=action, target=target,
                                             detail=detail))
        self._bus.publish([event])


__all__ = ["DEFAULT_THRESHOLD", "SYSTEM_ACTOR", "AlertService", "Check", "TwinModel"]
