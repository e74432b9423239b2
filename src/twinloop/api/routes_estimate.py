"""Estimated (hidden) state of a twin: mean and std per state, and the last innovations."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from twinloop.api.deps import get_runtime, require
from twinloop.core.clock import ns_to_datetime
from twinloop.core.errors import NotFoundError
from twinloop.runtime.access import Principal
from twinloop.runtime.wiring import Runtime

router = APIRouter(prefix="/twins", tags=["estimate"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Reader = Annotated[Principal, Depends(require("read"))]


class StateEstimatePublic(BaseModel):
    mean: float | None = Field(description="posterior mean in the model's unit; null if diverged")
    std: float | None = Field(description="posterior standard deviation")


class InnovationPublic(BaseModel):
    value: float | None = Field(
        description="measurement − prediction at the last update; null if not measured")
    std: float | None = Field(description="predicted std of the innovation (sensor + state uncertainty)")


class EstimatePublic(BaseModel):
    twin_id: str
    estimator: str = Field(examples=["ukf"])
    ts: str | None = Field(description="time of the last update (ISO 8601)")
    states: dict[str, StateEstimatePublic]
    innovations: dict[str, InnovationPublic]
    nis: float | None = Field(
        description="normalized innovation squared; ≈ number of channels when consistent")
    covariance_repairs: int = Field(description="times this twin's covariance had to be repaired")


@router.get("/{twin_id}/estimate", response_model=EstimatePublic, summary="Estimated state of a twin")
def twin_estimate(twin_id: str, runtime: RuntimeDep, _: Reader) -> EstimatePublic:
    service = getattr(runtime, "estimation", None)
    if service is None:
        raise NotFoundError("state estimation is not enabled on this server")
    data = service.estimate(twin_id)
    ts = data.pop("ts_ns")
    return EstimatePublic(ts=ns_to_datetime(ts).isoformat() if ts is not None else None, **data)


__all__ = ["EstimatePublic", "router"]
