"""Alerts: thresholded findings with a lifecycle, stored as events and rebuilt from them.

An alert is never updated in place. Its history is a sequence of typed events in the store's
event log, and the current alert is a fold over them (`materialize`)::

    AlertRaised ──► (AlertRepeated …) ──► AlertAcknowledged ──► AlertResolved
         └────────────────────────────────────────────────────────►┘   (resolve without ack)

* **open** after `AlertRaised`; **acknowledged** after `AlertAcknowledged`; **resolved** last.
* **Deduplication**: a finding on a twin that already has an unresolved alert about the same
  leading channel is a *repeat* of it (`AlertRepeated` bumps its count, peak score and severity),
  not a new alert, whichever detector found it: the detector and a check beside it (the
  learned-range check) seeing one drifting sensor is one condition for a person to look at.
* **Severity** grows with how far the peak score exceeds the alarm level, in units of the
  level's distance from the normal median: below 2× *warning*, from 2× *major*, from 4× *critical*.

>>> raised = AlertRaised(twin_id="pump-A1", alert_id="al-1", ts_ns=1, detector="pca",
...                      severity="warning", channels=["bearing.temperature"], score=3.0)
>>> acked = AlertAcknowledged(twin_id="pump-A1", alert_id="al-1", ts_ns=2, actor="key:x(op)")
>>> alert = materialize([raised, acked])["al-1"]
>>> alert.state, alert.channels, alert.acknowledged_by
('acknowledged', ['bearing.temperature'], 'key:x(op)')
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from twinloop.analytics.thresholds import episodes
from twinloop.core.errors import ConflictError, ValidationError
from twinloop.core.events import Event
from twinloop.core.ids import new_id

AlertState = Literal["open", "acknowledged", "resolved"]
Severity = Literal["warning", "major", "critical"]
STATES: tuple[AlertState, ...] = ("open", "acknowledged", "resolved")
SEVERITIES: tuple[Severity, ...] = ("warning", "major", "critical")


# --- events ------------------------------------------------------------------------------------
@dataclass(frozen=True, kw_only=True)
class AlertRaised(Event):
    """A new alert on ``twin_id``: what drove it (``channels``, ``attributions``), how bad, since when."""

    alert_id: str = ""
    detector: str = ""
    severity: str = "warning"
    score: float = 0.0
    level: float = 0.0
    channels: list[str] = field(default_factory=list)
    attributions: dict[str, float] = field(default_factory=dict)
    started_ns: int = 0
    message: str = ""


@dataclass(frozen=True, kw_only=True)
class AlertRepeated(Event):
    """The same condition was found again while the alert was unresolved (deduplicated)."""

    alert_id: str = ""
    score: float = 0.0
    severity: str = "warning"


@dataclass(frozen=True, kw_only=True)
class AlertAcknowledged(Event):
    """Someone has seen the alert and owns it."""

    alert_id: str = ""
    actor: str = ""
    note: str = ""


@dataclass(frozen=True, kw_only=True)
class AlertResolved(Event):
    """The alert is closed: fixed, a false alarm, or the condition cleared."""

    alert_id: str = ""
    actor: str = ""
    reason: str = ""


ALERT_EVENT_KINDS: tuple[str, ...] = ("AlertRaised", "AlertRepeated", "AlertAcknowledged", "AlertResolved")


# --- the materialized alert ----------------------------------------------------------------------
@dataclass(frozen=True)
class Alert:
    """An alert as of its latest event."""

    alert_id: str
    twin_id: str
    detector: str
    state: AlertState
    severity: Severity
    score: float
    peak_score: float
    level: float
    channels: list[str]
    attributions: dict[str, float]
    started_ns: int
    raised_ns: int
    last_seen_ns: int
    occurrences: int = 1
    message: str = ""
    acknowledged_by: str | None = None
    acknowledged_ns: int | None = None
    note: str = ""
    resolved_by: str | None = None
    resolved_ns: int | None = None
    reason: str = ""

    @property
    def fingerprint(self) -> tuple[str, str]:
        """What deduplication compares: the twin and the leading channel."""
        return (self.twin_id, self.channels[0] if self.channels else "")


def _more_severe(a: str, b: str) -> Severity:
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    return max((a, b), key=lambda s: rank.get(s, 0))  # type: ignore[return-value]


def apply_event(alerts: dict[str, Alert], event: Event) -> None:
    """Fold one alert event into ``alerts`` (in place); other event kinds are ignored."""
    if isinstance(event, AlertRaised):
        alerts[event.alert_id] = Alert(
            alert_id=event.alert_id, twin_id=event.twin_id, detector=event.detector, state="open",
            severity=event.severity if event.severity in SEVERITIES else "warning",  # type: ignore[arg-type]
            score=event.score, peak_score=event.score, level=event.level, channels=list(event.channels),
            attributions=dict(event.attributions), started_ns=event.started_ns or event.ts_ns,
            raised_ns=event.ts_ns, last_seen_ns=event.ts_ns, message=event.message,
        )
        return
    alert = alerts.get(getattr(event, "alert_id", ""))
    if alert is None:
        return
    if isinstance(event, AlertRepeated):
        alerts[alert.alert_id] = dataclasses.replace(
            alert, occurrences=alert.occurrences + 1, score=event.score, last_seen_ns=event.ts_ns,
            peak_score=max(alert.peak_score, event.score),
            severity=_more_severe(alert.severity, event.severity),
        )
    elif isinstance(event, AlertAcknowledged):
        alerts[alert.alert_id] = dataclasses.replace(
            alert, state="acknowledged", acknowledged_by=event.actor, acknowledged_ns=event.ts_ns,
            note=event.note,
        )
    elif isinstance(event, AlertResolved):
        alerts[alert.alert_id] = dataclasses.replace(
            alert, state="resolved", resolved_by=event.actor, resolved_ns=event.ts_ns, reason=event.reason
        )


def materialize(events: Iterable[Event], alerts: dict[str, Alert] | None = None) -> dict[str, Alert]:
    """Current alerts by id from their events, in log order (optionally on top of earlier ones)."""
    out = dict(alerts or {})
    for event in events:
        apply_event(out, event)
    return out


def check_transition(alert: Alert, to: AlertState) -> None:
    """Raise `ConflictError` unless ``alert`` may move to state ``to``."""
    allowed = {"open": {"acknowledged", "resolved"}, "acknowledged": {"resolved"}, "resolved": set()}
    if to not in allowed[alert.state]:
        raise ConflictError(
            f"alert {alert.alert_id} is {alert.state}; it cannot become {to}",
            hint="resolved alerts are final; a new finding raises a new alert",
        )


# --- from scores to findings --------------------------------------------------------------------
@dataclass(frozen=True)
class Finding:
    """One episode above the alarm level on one twin: when, how bad, which channels drove it."""

    twin_id: str
    detector: str
    start_ns: int
    end_ns: int | None
    peak_score: float
    level: float
    exceedance: float
    channels: list[str]
    attributions: dict[str, float]

    @property
    def severity(self) -> Severity:
        return severity_for(self.exceedance)


def severity_for(exceedance: float) -> Severity:
    """Severity from how far the peak exceeds the level (1 = at the level).

    >>> severity_for(1.2), severity_for(2.5), severity_for(9.0)
    ('warning', 'major', 'critical')
    """
    if exceedance >= 4.0:
        return "critical"
    if exceedance >= 2.0:
        return "major"
    return "warning"


def leading_channels(attributions: np.ndarray, channels: Sequence[str], cover: float = 0.8,
                     most: int = 3) -> tuple[list[str], dict[str, float]]:
    """The fewest channels (at most ``most``) whose mean attribution covers ``cover`` of the total."""
    mean = np.asarray(attributions, dtype=np.float64).mean(axis=0) if len(attributions) else np.zeros(0)
    order = np.argsort(mean)[::-1]
    picked: list[str] = []
    total = 0.0
    for j in order[:most]:
        picked.append(channels[j])
        total += float(mean[j])
        if total >= cover:
            break
    return picked, {channels[j]: round(float(mean[j]), 4) for j in order[:most]}


def findings(
    twin_id: str,
    detector: str,
    ts_ns: np.ndarray,
    scores: np.ndarray,
    attributions: np.ndarray,
    mask: np.ndarray,
    channels: Sequence[str],
    level: float,
    median: float = 0.0,
) -> list[Finding]:
    """One `Finding` per alarm episode in ``mask``; an episode still on at the end has no end."""
    if not (len(ts_ns) == len(scores) == len(mask) == len(attributions)):
        raise ValidationError("findings: ts, scores, attributions and mask must have the same length")
    out = []
    span = max(level - median, 1e-12)
    for a, b in episodes(mask):
        peak = float(np.max(scores[a:b]))
        names, shares = leading_channels(attributions[a:b], channels)
        out.append(Finding(
            twin_id=twin_id, detector=detector, start_ns=int(ts_ns[a]),
            end_ns=int(ts_ns[b - 1]) if b < len(mask) else None, peak_score=peak, level=float(level),
            exceedance=(peak - median) / span, channels=names, attributions=shares,
        ))
    return out


def new_alert_id() -> str:
    """A short, unique, URL-safe alert id."""
    return f"al-{new_id()[:16]}"


def alert_events(events: Sequence[Any]) -> list[Event]:
    """The alert events among ``events`` (typed events or store records with ``.event``)."""
    out = []
    for e in events:
        ev = getattr(e, "event", e)
        if isinstance(ev, AlertRaised | AlertRepeated | AlertAcknowledged | AlertResolved):
            out.append(ev)
    return out


__all__ = [
    "ALERT_EVENT_KINDS",
    "SEVERITIES",
    "STATES",
    "Alert",
    "AlertAcknowledged",
    "AlertRaised",
    "AlertRepeated",
    "AlertResolved",
    "AlertState",
    "Finding",
    "Severity",
    "alert_events",
    "apply_event",
    "check_transition",
    "findings",
    "leading_channels",
    "materialize",
    "new_alert_id",
    "severity_for",
]
