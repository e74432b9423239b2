"""Remaining useful life over HTTP: one twin's RUL distribution, a recompute, and the fleet ranking.

Thin: everything is the runtime's `RulService` (``runtime.rul``); these routes only shape answers.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from twinloop.api.deps import get_runtime, require
from twinloop.core.clock import ns_to_datetime
from twinloop.core.errors import ConfigError
from twinloop.runtime.access import Principal
from twinloop.runtime.rul_service import HORIZONS_H, RulService, RulUpdated, parse_horizons
from twinloop.runtime.wiring import Runtime

router = APIRouter(tags=["rul"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Reader = Annotated[Principal, Depends(require("read"))]
Operator = Annotated[Principal, Depends(require("twins:command"))]
Horizons = Annotated[
    list[str] | None,
    Query(description="extra horizon(s) for P(fail within): '36h', '10d', plain hours; repeat"),
]


def get_rul(request: Request) -> RulService:
    """The runtime's RUL service."""
    runtime: Runtime = request.app.state.runtime
    if runtime.rul is None:
        raise ConfigError("this runtime computes no RUL", hint="open it with analytics (twinloop serve)")
    return runtime.rul


RulDep = Annotated[RulService, Depends(get_rul)]


class DriverPublic(BaseModel):
    name: str
    contribution: float = Field(description="how much it moved the RUL, in its unit (negative shortens)")
    value: float | None = None


class RulPublic(BaseModel):
    twin_id: str
    model: str
    unit: str = Field(description="unit of every time below (h)")
    mean: float
    std: float
    interval80: tuple[float, float]
    quantiles: dict[str, float]
    p_fail: dict[str, float] = Field(description="P(failure within horizon) per horizon")
    drivers: list[DriverPublic]
    as_of: str = Field(description="time of the newest reading used (plant time)")
    computed_at: str
    basis: str = Field("", description="what it stood on: estimator, sensors (a fallback), history")
    reason: str = Field("", description="why the basis is not the first choice, or a fault trend noted")
    second_opinion: dict[str, Any] | None = Field(
        None, description="a trained model's answer (mean, p50, interval80, p_fail), or why it is missing")
    disagreement: float | None = Field(
        None, description="|median − second opinion's median| / the larger of the two (0 agree … 1)")
    skipped: str | None = Field(None, description="why the latest recompute did not happen, if it did not")


class FleetRulPublic(BaseModel):
    horizon_h: float
    twins: list[RulPublic]
    lag_s: float = Field(0.0, description="plant seconds the newest RUL is behind the newest reading")


def _public(event: RulUpdated, extra: dict[str, float], skipped: str | None = None) -> RulPublic:
    p_fail: dict[str, Any] = dict(event.p_fail)
    p_fail.update({label: event.p_fail_within(h) for label, h in extra.items()})
    return RulPublic(
        twin_id=event.twin_id, model=event.model, unit=event.unit, mean=event.mean, std=event.std,
        interval80=event.interval(0.8), quantiles=event.quantiles, p_fail=p_fail,
        drivers=[DriverPublic(**d) for d in event.drivers],
        as_of=ns_to_datetime(event.as_of_ns).isoformat(), computed_at=ns_to_datetime(event.ts_ns).isoformat(),
        basis=event.basis, reason=event.reason, second_opinion=event.second_opinion,
        disagreement=event.disagreement, skipped=skipped,
    )


@router.get("/twins/{twin_id}/rul", response_model=RulPublic, summary="Remaining useful life of a twin")
def twin_rul(twin_id: str, rul: RulDep, _: Reader, horizon: Horizons = None) -> RulPublic:
    """Mean, quantiles, P(fail within 24 h / 72 h / 7 d and any ``horizon``), what drove it, what it
    stood on, the second opinion; 404 with the reason while a twin has none."""
    extra = parse_horizons(horizon or [])
    return _public(rul.get(twin_id), extra, rul.skipped(twin_id))


@router.post("/twins/{twin_id}/rul", response_model=RulPublic, summary="Recompute a twin's RUL now")
def update_twin_rul(twin_id: str, rul: RulDep, _: Operator, horizon: Horizons = None) -> RulPublic:
    return _public(rul.update(twin_id), parse_horizons(horizon or []))


@router.get("/rul", response_model=FleetRulPublic, summary="Which twins are likely to fail soonest")
def fleet_rul(
    rul: RulDep,
    _: Reader,
    horizon: Annotated[str, Query(description="rank by P(fail within this), e.g. '7d', '48h'")] = "7d",
    type_id: Annotated[str | None, Query(alias="type", description="asset type id")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
) -> FleetRulPublic:
    (label, hours), = parse_horizons([horizon]).items()
    ranked = rul.fleet(hours, type_id)[:limit]
    extra = {} if label in HORIZONS_H else {label: hours}
    twins = [_public(e, extra, rul.skipped(e.twin_id)) for e, _p in ranked]
    return FleetRulPublic(horizon_h=hours, twins=twins, lag_s=rul.lag_s())


__all__ = ["get_rul", "router"]
