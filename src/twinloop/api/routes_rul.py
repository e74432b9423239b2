"""Remaining useful life over HTTP: one twin's RUL distribution, a recompute, and the fleet ranking."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, Field

from twinloop.api.deps import get_runtime, require
from twinloop.core.clock import ns_to_datetime
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
    """The runtime's RUL service (built on first use when the runtime was wired without one)."""
    runtime: Runtime = request.app.state.runtime
    service = getattr(runtime, "rul", None)
    if service is None:
        service = getattr(request.app.state, "rul_service", None)
        if service is None:
            service = RulService(runtime.store, runtime.twins, runtime.bus, runtime.clock)
            request.app.state.rul_service = service
    return service


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
    as_of: str = Field(description="time of the newest reading used")
    computed_at: str


class FleetRulPublic(BaseModel):
    horizon_h: float
    twins: list[RulPublic]


def _public(event: RulUpdated, extra: dict[str, float]) -> RulPublic:
    p_fail: dict[str, Any] = dict(event.p_fail)
    p_fail.update({label: event.p_fail_within(h) for label, h in extra.items()})
    return RulPublic(
        twin_id=event.twin_id, model=event.model, unit=event.unit, mean=event.mean, std=event.std,
        interval80=event.interval(0.8), quantiles=event.quantiles, p_fail=p_fail,
        drivers=[DriverPublic(**d) for d in event.drivers],
        as_of=ns_to_datetime(event.as_of_ns).isoformat(), computed_at=ns_to_datetime(event.ts_ns).isoformat(),
    )


@router.get("/twins/{twin_id}/rul", response_model=RulPublic, summary="Remaining useful life of a twin")
def twin_rul(twin_id: str, rul: RulDep, _: Reader, horizon: Horizons = None) -> RulPublic:
    """Mean, quantiles, P(fail within 24 h / 48 h / 7 d and any ``horizon``), and what drove it."""
    extra = parse_horizons(horizon or [])
    return _public(rul.get(twin_id), extra)


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
    return FleetRulPublic(horizon_h=hours, twins=[_public(e, extra) for e, _p in ranked])


__all__ = ["get_rul", "router"]
