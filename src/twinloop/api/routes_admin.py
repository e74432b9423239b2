"""Health, identity, API keys, the audit trail and asset types (with DTDL export)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status

from twinloop import __version__
from twinloop.api.deps import get_runtime, require
from twinloop.api.params import parse_time
from twinloop.api.schemas import AuditPublic, KeyCreate, KeyCreated, KeyPublic, WhoAmI
from twinloop.runtime.access import Principal
from twinloop.runtime.wiring import Runtime
from twinloop.twins.dtdl import to_dtdl

router = APIRouter()
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@router.get("/health", tags=["meta"], summary="Liveness; needs no key")
def health(runtime: RuntimeDep) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, "twins": len(runtime.twins.graph)}


@router.get("/me", response_model=WhoAmI, tags=["meta"])
def whoami(who: Annotated[Principal, Depends(require("read"))]) -> WhoAmI:
    return WhoAmI(key_id=who.key_id, name=who.name, role=who.role)


@router.get("/types", tags=["types"])
def list_types(
    runtime: RuntimeDep, _: Annotated[Principal, Depends(require("read"))]
) -> list[dict[str, Any]]:
    return [runtime.registry.resolve(t).model_dump(mode="json") for t in runtime.registry.ids()]


@router.get("/types/{type_id}", tags=["types"])
def get_type(
    type_id: str, runtime: RuntimeDep, _: Annotated[Principal, Depends(require("read"))]
) -> dict[str, Any]:
    return runtime.registry.resolve(type_id).model_dump(mode="json")


@router.get("/types/{type_id}/dtdl", tags=["types"], summary="The asset type as DTDL v3")
def get_type_dtdl(
    type_id: str, runtime: RuntimeDep, _: Annotated[Principal, Depends(require("read"))]
) -> dict[str, Any]:
    return to_dtdl(runtime.registry.get(type_id))


@router.post("/keys", response_model=KeyCreated, status_code=status.HTTP_201_CREATED,
             tags=["access"])
def create_key(
    body: KeyCreate, runtime: RuntimeDep,
    who: Annotated[Principal, Depends(require("keys:manage"))],
) -> KeyCreated:
    record, token = runtime.keys.create(body.name, body.role, actor=who.actor)
    return KeyCreated(**KeyPublic.of(record).model_dump(), token=token)


@router.get("/keys", response_model=list[KeyPublic], tags=["access"])
def list_keys(
    runtime: RuntimeDep, _: Annotated[Principal, Depends(require("keys:manage"))]
) -> list[KeyPublic]:
    return [KeyPublic.of(k) for k in runtime.keys.list()]


@router.delete("/keys/{key_id}", response_model=KeyPublic, tags=["access"])
def revoke_key(
    key_id: str, runtime: RuntimeDep,
    who: Annotated[Principal, Depends(require("keys:manage"))],
) -> KeyPublic:
    return KeyPublic.of(runtime.keys.revoke(key_id, actor=who.actor))


@router.get("/audit", response_model=list[AuditPublic], tags=["access"])
def audit(
    runtime: RuntimeDep,
    _: Annotated[Principal, Depends(require("audit:read"))],
    since: Annotated[str | None, Query(description="ISO 8601 or epoch ns")] = None,
    actor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[AuditPublic]:
    return [AuditPublic.of(a) for a in runtime.store.audit(parse_time(since), actor, limit)]


__all__ = ["router"]
