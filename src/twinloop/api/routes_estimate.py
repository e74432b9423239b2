"""Estimated (hidden) state of a twin, and whether each filter is consistent with its readings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from twinloop.api.deps import get_runtime, require
from twinloop.core.clock import ns_to_datetime
from twinloop.core.errors import NotFoundError
from twinloop.runtime.access import Principal
from twinloop.runtime.wiring import Runtime

if TYPE_CHECKING:
    from twinloop.runtime.estimation_service import EstimationService

router = APIRouter(tags=["estimate"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Reader = Annotated[Principal, Depends(require("read"))]


class StateEstimatePublic(BaseModel):
    mean: float | None = Field(description="posterior mean in the model's unit; null if diverged")
    std: float | None = Field(description="posterior standard deviation")


class InnovationPublic(BaseModel):
    value: float | None = Field(
        description="measurement − prediction at the last update; null if not measured")
    std: float | None = Field(description="predicted std of the innovation (sensor + state uncertainty)")


class ChannelHealthPublic(BaseModel):
    mean: float | None = Field(description="mean normalized innovation ν/σ over the window (≈ 0)")
    std: float | None = Field(description="its standard deviation (≈ 1 when consistent)")


class HealthPublic(BaseModel):
    consistent: bool | None = Field(
        description="NIS inside its 95 % χ² band often enough and no channel biased; null until judged")
    flagged: bool = Field(description="inconsistent after its bounded recalibrations: RUL ignores its wear")
    reason: str | None = None
    nis_in_band_share: float | None = Field(
        description="share of the window's steps whose NIS lies in the 95 % band (≈ 0.95)")
    steps: int
    window: int
    calibrations: int = Field(description="calibrations of this twin (its revisions show when)")
    channels: dict[str, ChannelHealthPublic]


class EstimatePublic(BaseModel):
    twin_id: str
    estimator: str = Field(examples=["ukf"])
    ts: str | None = Field(description="time of the last update (ISO 8601)")
    states: dict[str, StateEstimatePublic]
    innovations: dict[str, InnovationPublic]
    nis: float | None = Field(
        description="normalized innovation squared; ≈ number of channels when consistent")
    covariance_repairs: int = Field(description="times this twin's covariance had to be repaired")
    health: HealthPublic


class TwinHealthPublic(HealthPublic):
    twin_id: str


class FleetHealthPublic(BaseModel):
    type: str
    lag_s: float | None = Field(description="plant seconds estimation trails the newest committed reading")
    consistent_share: float | None = Field(description="share of judged twins whose filter is consistent")
    twins: list[TwinHealthPublic]


def _service(runtime: Runtime) -> EstimationService:
    service = getattr(runtime, "estimation", None)
    if service is None:
        raise NotFoundError("state estimation is not enabled on this server")
    return service


def _health(data: dict) -> dict:
    return {k: v for k, v in data.items() if k in HealthPublic.model_fields or k == "twin_id"}


@router.get("/twins/{twin_id}/estimate", response_model=EstimatePublic, summary="Estimated state of a twin")
def twin_estimate(twin_id: str, runtime: RuntimeDep, _: Reader) -> EstimatePublic:
    data = _service(runtime).estimate(twin_id)
    ts = data.pop("ts_ns")
    data["health"] = _health(data["health"])
    return EstimatePublic(ts=ns_to_datetime(ts).isoformat() if ts is not None else None, **data)


@router.get("/estimates/health", response_model=FleetHealthPublic,
            summary="Filter health of every estimated twin of a type")
def fleet_health(runtime: RuntimeDep, _: Reader,
                 type: Annotated[str, Query(description="asset type, e.g. Pump")]) -> FleetHealthPublic:
    service = _service(runtime)
    twins = [_health(h) for h in service.fleet_health(type)]
    judged = [t["consistent"] for t in twins if t["consistent"] is not None]
    return FleetHealthPublic(type=type, lag_s=service.lag_s(),
                             consistent_share=sum(judged) / len(judged) if judged else None,
                             twins=[TwinHealthPublic(**t) for t in twins])


__all__ = ["EstimatePublic", "FleetHealthPublic", "router"]
