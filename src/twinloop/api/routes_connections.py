"""Connections: availability of every ingest connection, as its supervisor sees it, and pipeline totals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from twinloop.api.deps import get_runtime, require
from twinloop.core.clock import ns_to_datetime
from twinloop.core.errors import NotFoundError
from twinloop.runtime.access import Principal
from twinloop.runtime.connections import ConnectionStatus
from twinloop.runtime.wiring import Runtime

router = APIRouter(prefix="/connections", tags=["connections"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Reader = Annotated[Principal, Depends(require("read"))]


class ConnectionPublic(BaseModel):
    """One connection: is it up since when, what came over it, what went wrong last."""

    name: str
    kind: str
    url: str
    connected: bool
    status: str = Field(description="connected, disconnected, or degraded: up, but most of its recent "
                                    "readings are rejected for one reason (see rejecting)")
    rejecting: dict[str, Any] | None = Field(
        None, description='while degraded: {"reason", "share", "readings"} of its recent readings')
    since: str | None
    last_message: str | None
    messages: int
    errors: int
    last_error: str
    twins: int

    @classmethod
    def of(cls, row: ConnectionStatus) -> ConnectionPublic:
        return cls(name=row.name, kind=row.kind, url=_public_url(row.url), connected=row.connected,
                   status=row.status, rejecting=row.rejecting, since=_iso(row.since_ns),
                   last_message=_iso(row.last_message_ns), messages=row.messages,
                   errors=row.errors, last_error=row.last_error, twins=len(row.twins))


class ConnectionDetailPublic(ConnectionPublic):
    twin_ids: list[str]


class IngestPublic(BaseModel):
    """Pipeline totals since the runtime started (all zero when ingestion is off)."""

    running: bool
    messages: int = 0
    readings: int = 0
    rejected: int = 0
    duplicates: int = 0
    batches: int = 0
    store_retries: int = 0
    pending: int = 0
    journal_backlog: int = Field(0, description="readings acknowledged (durable in the store's ingest "
                                                "journal) and not yet in the store's tables")
    last_commit: str | None = None


class ConnectionsPublic(BaseModel):
    connections: list[ConnectionPublic]
    ingest: IngestPublic
    analytics_lag_s: dict[str, float | None] = Field(
        default_factory=dict,
        description="plant seconds each live analytics stage (estimation, alerts, rul) is behind "
                    "ingestion; null where a stage is off or has nothing to judge yet")


def _iso(ns: int) -> str | None:
    return ns_to_datetime(ns).isoformat() if ns else None


def _public_url(url: str) -> str:
    """The URL without credentials (``mqtt://user:secret@host`` → ``mqtt://host``)."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


@router.get("", response_model=ConnectionsPublic, summary="Connections and their availability")
def list_connections(runtime: RuntimeDep, _: Reader) -> ConnectionsPublic:
    pipeline = runtime.ingestion.pipeline if runtime.ingestion is not None else None
    ingest = IngestPublic(running=pipeline is not None)
    if pipeline is not None:
        st = pipeline.stats
        ingest = IngestPublic(running=True, messages=st.messages, readings=st.readings, rejected=st.rejected,
                              duplicates=st.duplicates, batches=st.batches, store_retries=st.store_retries,
                              pending=pipeline.pending, last_commit=_iso(st.last_commit_ns),
                              journal_backlog=int(getattr(runtime.store, "pending_readings", 0)))
    return ConnectionsPublic(connections=[ConnectionPublic.of(r) for r in runtime.connections.rows()],
                             ingest=ingest, analytics_lag_s=runtime.analytics_lag())


@router.get("/{name:path}", response_model=ConnectionDetailPublic, summary="One connection")
def get_connection(name: str, runtime: RuntimeDep, _: Reader) -> ConnectionDetailPublic:
    try:
        row = runtime.connections.get(name)
    except KeyError:
        known = ", ".join(r.name for r in runtime.connections.rows()) or "none"
        raise NotFoundError(f"no connection {name!r}", hint=f"connections: {known}") from None
    return ConnectionDetailPublic(**ConnectionPublic.of(row).model_dump(),
                                  twin_ids=runtime.connections.twins_of(name))


__all__ = ["ConnectionDetailPublic", "ConnectionPublic", "ConnectionsPublic", "IngestPublic", "router"]
