"""Twins: create, read, patch, delete; their relationships; desired properties and commands."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response, status

from twinloop.api.deps import get_runtime, require
from twinloop.api.schemas import (
    CommandAccepted,
    CommandCreate,
    DesiredPatch,
    RelationshipCreate,
    RelationshipPublic,
    TwinCreate,
    TwinPatch,
    TwinPublic,
)
from twinloop.core.commands import (
    AddRelationship,
    CreateTwin,
    DeleteTwin,
    InvokeCommand,
    RemoveRelationship,
    UpdateTwin,
)
from twinloop.core.errors import ValidationError
from twinloop.runtime.access import Principal
from twinloop.runtime.wiring import Runtime

router = APIRouter(prefix="/twins", tags=["twins"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def _revision(if_match: str | None, body_revision: int | None) -> int | None:
    """The expected revision from the body or an ``If-Match: "<rev>"`` header."""
    if if_match is None:
        return body_revision
    try:
        return int(if_match.strip().strip('W/').strip('"'))
    except ValueError as err:
        raise ValidationError("If-Match must hold the twin's revision, e.g. \"3\"") from err


def _where(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        where = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValidationError(
            f"'where' is not valid JSON: {err.msg}",
            hint='e.g. where={"rated_flow": {"gt": 100}}',
        ) from err
    if not isinstance(where, dict):
        raise ValidationError("'where' must be a JSON object")
    return where


@router.get("", response_model=list[TwinPublic], summary="List twins")
def list_twins(
    runtime: RuntimeDep,
    _: Annotated[Principal, Depends(require("read"))],
    type: Annotated[str | None, Query(description="asset type id (subtypes included)")] = None,
    where: Annotated[
        str | None, Query(description='attribute filter as JSON: {"line": "A", "rated_flow": {"gt": 100}}')
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> list[TwinPublic]:
    twins = runtime.twins.list(type, _where(where))
    return [TwinPublic.of(t) for t in twins[offset : offset + limit]]


@router.post("", response_model=TwinPublic, status_code=status.HTTP_201_CREATED)
def create_twin(
    body: TwinCreate,
    runtime: RuntimeDep,
    who: Annotated[Principal, Depends(require("twins:write"))],
    response: Response,
) -> TwinPublic:
    twin = runtime.twins.create(
        CreateTwin(twin_id=body.id, type_id=body.type_id, attributes=body.attributes,
                   reported=body.reported, desired=body.desired),
        actor=who.actor,
    )
    response.headers["Location"] = f"/twins/{twin.id}"
    response.headers["ETag"] = f'"{twin.revision}"'
    return TwinPublic.of(twin)


@router.get("/{twin_id}", response_model=TwinPublic)
def get_twin(
    twin_id: str,
    runtime: RuntimeDep,
    _: Annotated[Principal, Depends(require("read"))],
    response: Response,
    revision: Annotated[int | None, Query(ge=1, description="an older revision")] = None,
) -> TwinPublic:
    twin = runtime.twins.get(twin_id, revision)
    response.headers["ETag"] = f'"{twin.revision}"'
    return TwinPublic.of(twin)


@router.get("/{twin_id}/revisions", response_model=list[int])
def twin_revisions(
    twin_id: str, runtime: RuntimeDep, _: Annotated[Principal, Depends(require("read"))]
) -> list[int]:
    return runtime.twins.revisions(twin_id)


@router.patch("/{twin_id}", response_model=TwinPublic)
def patch_twin(
    twin_id: str,
    body: TwinPatch,
    runtime: RuntimeDep,
    who: Annotated[Principal, Depends(require("twins:write"))],
    response: Response,
    if_match: Annotated[str | None, Header()] = None,
) -> TwinPublic:
    twin = runtime.twins.update(
        UpdateTwin(twin_id=twin_id, expected_revision=_revision(if_match, body.expected_revision),
                   attributes=body.attributes, reported=body.reported, desired=body.desired),
        actor=who.actor,
    )
    response.headers["ETag"] = f'"{twin.revision}"'
    return TwinPublic.of(twin)


@router.delete("/{twin_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_twin(
    twin_id: str,
    runtime: RuntimeDep,
    who: Annotated[Principal, Depends(require("twins:write"))],
    if_match: Annotated[str | None, Header()] = None,
) -> Response:
    runtime.twins.delete(
        DeleteTwin(twin_id=twin_id, expected_revision=_revision(if_match, None)), actor=who.actor
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.patch("/{twin_id}/desired", response_model=TwinPublic, summary="Set desired properties")
def patch_desired(
    twin_id: str,
    body: DesiredPatch,
    runtime: RuntimeDep,
    who: Annotated[Principal, Depends(require("twins:desired"))],
) -> TwinPublic:
    twin = runtime.twins.update(
        UpdateTwin(twin_id=twin_id, expected_revision=body.expected_revision,
                   desired=body.desired),
        actor=who.actor,
    )
    return TwinPublic.of(twin)


@router.post(
    "/{twin_id}/commands/{name}", response_model=CommandAccepted,
    status_code=status.HTTP_202_ACCEPTED, summary="Send a declared command to the asset",
)
def invoke_command(
    twin_id: str,
    name: str,
    body: CommandCreate,
    runtime: RuntimeDep,
    who: Annotated[Principal, Depends(require("twins:command"))],
) -> CommandAccepted:
    sent = runtime.twins.invoke(InvokeCommand(twin_id=twin_id, name=name, args=body.args),
                                actor=who.actor)
    return CommandAccepted(command_id=sent.command_id, twin_id=twin_id, name=name, args=sent.args)


@router.get("/{twin_id}/relationships", response_model=list[RelationshipPublic])
def list_relationships(
    twin_id: str,
    runtime: RuntimeDep,
    _: Annotated[Principal, Depends(require("read"))],
    name: str | None = None,
    direction: Annotated[str, Query(pattern="^(out|in|both)$")] = "out",
) -> list[RelationshipPublic]:
    runtime.twins.get(twin_id)
    graph = runtime.twins.graph
    rels = []
    if direction in ("out", "both"):
        rels += graph.relationships(source=twin_id, name=name)
    if direction in ("in", "both"):
        rels += graph.relationships(target=twin_id, name=name)
    return [RelationshipPublic.of(r) for r in rels]


@router.put(
    "/{twin_id}/relationships", response_model=RelationshipPublic,
    status_code=status.HTTP_201_CREATED,
)
def add_relationship(
    twin_id: str,
    body: RelationshipCreate,
    runtime: RuntimeDep,
    who: Annotated[Principal, Depends(require("twins:write"))],
) -> RelationshipPublic:
    rel = runtime.twins.add_relationship(
        AddRelationship(twin_id=twin_id, name=body.name, target=body.target,
                        properties=body.properties),
        actor=who.actor,
    )
    return RelationshipPublic.of(rel)


@router.delete("/{twin_id}/relationships/{name}/{target}", status_code=204)
def remove_relationship(
    twin_id: str,
    name: str,
    target: str,
    runtime: RuntimeDep,
    who: Annotated[Principal, Depends(require("twins:write"))],
) -> Response:
    runtime.twins.remove_relationship(
        RemoveRelationship(twin_id=twin_id, name=name, target=target), actor=who.actor
    )
    return Response(status_code=204)


__all__ = ["router"]
