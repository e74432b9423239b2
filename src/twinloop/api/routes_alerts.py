"""Alerts: list and inspect them (viewer), acknowledge and resolve them (operator and up)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from twinloop.analytics.alerts import Alert
from twinloop.api.deps import require
from twinloop.core.clock import ns_to_datetime
from twinloop.runtime.access import Principal
from twinloop.runtime.alert_service import AlertService

router = APIRouter(prefix="/alerts", tags=["alerts"])
#: The lowest role that may acknowledge or resolve alerts.


def get_alerts(request: Request) -> AlertService:
    """The runtime's alert service (created on first use when the runtime does not wire one)."""
    return request.app.state.runtime.alerts


Alerts = Annotated[AlertService, Depends(get_alerts)]
Reader = Annotated[Principal, Depends(require("read"))]
Manager = Annotated[Principal, Depends(require("alerts:manage"))]


class AlertPublic(BaseModel):
    id: str
    twin_id: str
    state: str
    severity: str
    detector: str
    channels: list[str] = Field(description="the channels that drove the alert, strongest first")
    attributions: dict[str, float] = Field(description="share of the score per leading channel")
    score: float
    peak_score: float
    level: float
    occurrences: int = Field(description="how often the condition was found (duplicates counted here)")
    message: str
    started: str
    raised: str
    last_seen: str
    acknowledged_by: str | None = None
    acknowledged: str | None = None
    note: str = ""
    resolved_by: str | None = None
    resolved: str | None = None
    reason: str = ""

    @classmethod
    def of(cls, a: Alert) -> AlertPublic:
        def iso(ns: int | None) -> str | None:
            return ns_to_datetime(ns).isoformat() if ns is not None else None

        return cls(
            id=a.alert_id, twin_id=a.twin_id, state=a.state, severity=a.severity, detector=a.detector,
            channels=a.channels, attributions=a.attributions, score=a.score, peak_score=a.peak_score,
            level=a.level, occurrences=a.occurrences, message=a.message, started=iso(a.started_ns) or "",
            raised=iso(a.raised_ns) or "", last_seen=iso(a.last_seen_ns) or "",
            acknowledged_by=a.acknowledged_by, acknowledged=iso(a.acknowledged_ns), note=a.note,
            resolved_by=a.resolved_by, resolved=iso(a.resolved_ns), reason=a.reason,
        )


class AckBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=1000)


class ResolveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field("", max_length=1000)


@router.get("", response_model=list[AlertPublic], summary="List alerts, newest first")
def list_alerts(
    alerts: Alerts,
    _: Reader,
    state: Annotated[
        Literal["open", "acknowledged", "resolved", "active"] | None,
        Query(description="active = open or acknowledged"),
    ] = None,
    twin_id: str | None = None,
    severity: Literal["warning", "major", "critical"] | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[AlertPublic]:
    return [AlertPublic.of(a) for a in alerts.list(state, twin_id, severity)[:limit]]


class LearningPublic(BaseModel):
    twin_id: str
    type_id: str
    learned: bool
    reason: str = Field(description="'learned', or why the twin still waits (collecting, not operating …)")
    learned_from: str | None = None
    learned_until: str | None = None
    evaluated_until: str | None = Field(None, description="plant time up to which readings are judged")


class MonitorPublic(BaseModel):
    running: bool = Field(description="whether the live alert monitor runs (it does while ingesting)")
    lag_s: float | None = Field(
        None, description="plant seconds between the newest reading ingested and the oldest point a "
                          "learned twin has been judged up to; null before anything is learned")
    last_pass_s: float | None = Field(None, description="wall seconds the last pass took")
    twins: list[LearningPublic] = Field(default_factory=list)


@router.get("/monitor", response_model=MonitorPublic, summary="How far the live alert monitor has got")
def monitor_status(request: Request, _: Reader) -> MonitorPublic:
    monitor = request.app.state.runtime.monitor
    if monitor is None:
        return MonitorPublic(running=False, lag_s=None, last_pass_s=None)

    def iso(ns: int | None) -> str | None:
        return ns_to_datetime(ns).isoformat() if ns is not None else None

    twins = [LearningPublic(twin_id=s.twin_id, type_id=s.type_id, learned=s.learned, reason=s.reason,
                            learned_from=iso(s.window[0]) if s.window else None,
                            learned_until=iso(s.window[1]) if s.window else None,
                            evaluated_until=iso(s.evaluated_ns))
             for s in monitor.progress()]
    return MonitorPublic(running=True, lag_s=monitor.lag_s(), last_pass_s=monitor.last_pass_s, twins=twins)


@router.get("/{alert_id}", response_model=AlertPublic, summary="One alert")
def get_alert(alert_id: str, alerts: Alerts, _: Reader) -> AlertPublic:
    return AlertPublic.of(alerts.get(alert_id))


@router.post("/{alert_id}/ack", response_model=AlertPublic, summary="Acknowledge an open alert")
def ack_alert(alert_id: str, alerts: Alerts, principal: Manager, body: AckBody | None = None) -> AlertPublic:
    return AlertPublic.of(alerts.acknowledge(alert_id, actor=principal.actor, note=(body or AckBody()).note))


@router.post("/{alert_id}/resolve", response_model=AlertPublic, summary="Resolve an alert")
def resolve_alert(
    alert_id: str, alerts: Alerts, principal: Manager, body: ResolveBody | None = None
) -> AlertPublic:
    reason = (body or ResolveBody()).reason
    return AlertPublic.of(alerts.resolve(alert_id, actor=principal.actor, reason=reason))


__all__ = ["AlertPublic", "LearningPublic", "MonitorPublic", "get_alerts", "router"]
