"""Kept models over HTTP: which learned detectors, calibrations and prognosers the store holds, in
which versions, learned from what. Metadata only; payloads never leave the runtime."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from twinloop.api.deps import get_runtime, require
from twinloop.core.clock import ns_to_datetime
from twinloop.runtime.access import Principal
from twinloop.runtime.wiring import Runtime
from twinloop.store.protocol import Artifact

router = APIRouter(tags=["models"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Reader = Annotated[Principal, Depends(require("read"))]


class ArtifactPublic(BaseModel):
    kind: str = Field(description="detector, calibration, prognoser, thresholds …")
    key: str = Field(description="the twin (or asset type) it belongs to")
    version: int = Field(description="1, 2, … per (kind, key); the highest is in force")
    created_at: str
    created_ns: int
    meta: dict[str, Any] = Field(
        description="what it learned from (twins, window), metrics, model, code version")

    @classmethod
    def of(cls, a: Artifact) -> ArtifactPublic:
        return cls(kind=a.kind, key=a.key, version=a.version, created_ns=a.created_ns,
                   created_at=ns_to_datetime(a.created_ns).isoformat(), meta=a.meta)


class ModelPublic(BaseModel):
    kind: str
    key: str
    latest: int = Field(description="the version in force")
    versions: list[ArtifactPublic] = Field(description="oldest first")


@router.get("/models", response_model=list[ArtifactPublic])
def list_models(
    runtime: RuntimeDep,
    _: Reader,
    kind: Annotated[str | None, Query(description="only this kind (detector, calibration, …)")] = None,
    key: Annotated[str | None, Query(description="only this twin or asset type")] = None,
) -> list[ArtifactPublic]:
    """Every kept version matching the filters, ordered by kind, key, version."""
    return [ArtifactPublic.of(a) for a in runtime.artifacts.versions(kind, key)]


@router.get("/models/{kind}/{key}", response_model=ModelPublic)
def get_model(kind: str, key: str, runtime: RuntimeDep, _: Reader) -> ModelPublic:
    """All versions of one model with their metadata; 404 when none is kept."""
    versions = runtime.artifacts.get(kind, key)
    return ModelPublic(kind=kind, key=key, latest=versions[-1].version,
                       versions=[ArtifactPublic.of(a) for a in versions])


__all__ = ["router"]
