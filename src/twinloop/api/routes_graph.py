"""Graph queries: neighbours, transitive upstream/downstream, and failure impact."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query

from twinloop.api.deps import get_runtime, require
from twinloop.api.schemas import ReachPublic, RelationshipPublic, TwinPublic
from twinloop.runtime.access import Principal
from twinloop.runtime.wiring import Runtime
from twinloop.twins.graph import Reach

router = APIRouter(prefix="/graph", tags=["graph"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Reader = Annotated[Principal, Depends(require("read"))]
Names = Annotated[list[str] | None, Query(description="relationship name(s); repeat the parameter")]
Depth = Annotated[int | None, Query(ge=1, le=1000, description="stop after this many hops")]


def _reaches(runtime: Runtime, reaches: list[Reach]) -> list[ReachPublic]:
    graph = runtime.twins.graph
    return [
        ReachPublic(id=r.id, type_id=graph.get(r.id).type_id, depth=r.depth,
                    via=RelationshipPublic.of(r.via) if r.via else None)
        for r in reaches
    ]


@router.get("/{twin_id}/neighbours", response_model=list[TwinPublic])
def neighbours(
    twin_id: str,
    runtime: RuntimeDep,
    _: Reader,
    name: Names = None,
    direction: Annotated[str, Query(pattern="^(out|in|both)$")] = "both",
) -> list[TwinPublic]:
    names = tuple(name) if name else None
    return [TwinPublic.of(t) for t in runtime.twins.graph.neighbours(twin_id, names, direction)]


@router.get("/{twin_id}/downstream", response_model=list[ReachPublic])
def downstream(
    twin_id: str, runtime: RuntimeDep, _: Reader, name: Names = None, max_depth: Depth = None
) -> list[ReachPublic]:
    """Everything ``twin_id`` reaches along the relationship (default ``feeds``), with depth."""
    reaches = runtime.twins.graph.downstream(twin_id, tuple(name or ["feeds"]), max_depth)
    return _reaches(runtime, reaches)


@router.get("/{twin_id}/upstream", response_model=list[ReachPublic])
def upstream(
    twin_id: str, runtime: RuntimeDep, _: Reader, name: Names = None, max_depth: Depth = None
) -> list[ReachPublic]:
    """Everything that reaches ``twin_id`` along the relationship (default ``feeds``)."""
    reaches = runtime.twins.graph.upstream(twin_id, tuple(name or ["feeds"]), max_depth)
    return _reaches(runtime, reaches)


@router.get("/{twin_id}/impact", response_model=list[ReachPublic])
def impact(
    twin_id: str,
    runtime: RuntimeDep,
    _: Reader,
    name: Names = None,
    include_parts: bool = False,
    max_depth: Depth = None,
) -> list[ReachPublic]:
    """What is affected if ``twin_id`` fails: down ``feeds``, onto what is ``poweredBy`` it."""
    names = tuple(name or ["feeds", "poweredBy"])
    reaches = runtime.twins.graph.impact(
        twin_id, names, include_parts=include_parts, max_depth=max_depth
    )
    return _reaches(runtime, reaches)


__all__ = ["router"]
