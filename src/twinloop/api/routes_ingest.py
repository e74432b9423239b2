"""HTTP batch ingestion (``POST /ingest``) and the quarantine (list, replay, discard)."""

from __future__ import annotations

import base64
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from twinloop.api.deps import require
from twinloop.core.clock import ns_to_datetime
from twinloop.core.errors import ValidationError
from twinloop.ingest.rejected import REASONS
from twinloop.runtime.access import Principal
from twinloop.runtime.ingest_service import IngestService, media_kind
from twinloop.store.protocol import QuarantineRecord

router = APIRouter(tags=["ingest"])
Writer = Annotated[Principal, Depends(require("readings:write"))]
Reader = Annotated[Principal, Depends(require("read"))]
Engineer = Annotated[Principal, Depends(require("quarantine:manage"))]


def get_ingest(request: Request) -> IngestService:
    return request.app.state.runtime.ingest


Service = Annotated[IngestService, Depends(get_ingest)]


class IngestResultPublic(BaseModel):
    accepted: int = Field(description="readings stored")
    rejected: int = Field(description="readings (or unreadable bodies) quarantined")
    duplicates: int = Field(description="readings already stored before, not stored again")
    quarantine_ids: list[int] = Field(description="ids of the new quarantine records")
    problems: list[str] = Field(description="the first few reasons, each naming its row or line")
    idempotent_replay: bool = Field(False, description="the answer to an earlier request with this key")


class QuarantinePublic(BaseModel):
    id: int
    status: str
    reason: str
    reason_text: str = Field(description="what the reason code means")
    message: str
    twin_id: str | None
    channel: str | None
    value: float | None
    ts: str | None
    item: str | None = Field(description="the reading inside the payload; null: the whole payload")
    source: str
    topic: str
    received: str
    attempts: int
    resolved: str | None
    payload: str
    payload_encoding: Literal["utf-8", "base64"]

    @classmethod
    def of(cls, r: QuarantineRecord) -> QuarantinePublic:
        try:
            payload, encoding = r.payload.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            payload, encoding = base64.b64encode(r.payload).decode(), "base64"
        return cls(
            id=r.id, status=r.status, reason=r.reason, reason_text=REASONS.get(r.reason, ""),
            message=r.message, twin_id=r.twin_id, channel=r.channel, value=r.value,
            ts=None if r.ts_ns is None else ns_to_datetime(r.ts_ns).isoformat(), item=r.item,
            source=r.source, topic=r.topic, received=ns_to_datetime(r.received_ns).isoformat(),
            attempts=r.attempts,
            resolved=None if r.resolved_ns is None else ns_to_datetime(r.resolved_ns).isoformat(),
            payload=payload, payload_encoding=encoding,  # type: ignore[arg-type]
        )


class QuarantinePage(BaseModel):
    items: list[QuarantinePublic]
    open: int = Field(description="open records in all (matching the reason filter)")
    next_after: int | None = Field(description="pass as ?after= for the next page; null at the end")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReplayRequest(_In):
    ids: list[int] | None = Field(None, description="records to replay")
    reason: str | None = Field(None, description="or: every open record with this reason")
    twin_id: str | None = Field(None, description="or: every open record of this twin")
    all: bool = Field(False, description="or: every open record (up to limit)")
    limit: int = Field(1000, ge=1, le=10_000)


class ReplayPublic(BaseModel):
    replayed: list[int]
    still_failing: list[int]
    readings: int = Field(description="readings stored by this replay")
    new_records: list[int] = Field(description="one-reading records split off whole-message ones")
    problems: list[str]


class DiscardRequest(_In):
    ids: list[int] = Field(min_length=1, max_length=10_000)


class DiscardPublic(BaseModel):
    discarded: int


_BODY_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "object"}, "example": {"readings": [
                {"twin_id": "pump-A1", "channel": "flow", "ts": "2026-01-01T00:00:00Z", "value": 101.5},
                {"twin_id": "pump-A1", "channel": "bearing.temperature", "ts": 1767225600000000000,
                 "value": 131.0, "unit": "degF"}]}},
            "text/csv": {"schema": {"type": "string"},
                         "example": "twin_id,channel,ts,value,unit\npump-A1,flow,2026-01-01T00:00:00Z,"
                                    "101.5,m**3/h\n"},
        },
    }
}


def _error(status: int, error: str, message: str, hint: str | None = None, **extra: Any) -> JSONResponse:
    body: dict[str, Any] = {"error": error, "message": message, **extra}
    if hint:
        body["hint"] = hint
    return JSONResponse(body, status_code=status)


async def _read_limited(request: Request, limit: int) -> bytes | None:
    """The body, or ``None`` as soon as it is known to be over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        return None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/ingest", response_model=IngestResultPublic, summary="Post a batch of readings (JSON or CSV)",
    openapi_extra=_BODY_DOC,
    responses={413: {"description": "the body is over the size limit"},
               415: {"description": "neither JSON nor CSV"},
               422: {"description": "nothing in the body could be read; it was quarantined whole"}},
)
async def ingest(
    request: Request,
    service: Service,
    principal: Writer,
    idempotency_key: Annotated[
        str | None, Header(description="a retried request with the same key is not stored twice")
    ] = None,
) -> Any:
    content_type = request.headers.get("content-type")
    if media_kind(content_type) is None:
        return _error(415, "UnsupportedMediaType", f"cannot ingest content type {content_type!r}",
                      hint="send application/json or text/csv")
    body = await _read_limited(request, service.max_body_bytes)
    if body is None:
        return _error(413, "PayloadTooLarge", f"the body is over the limit of {service.max_body_bytes} bytes",
                      hint="split the batch into smaller requests")
    report = await run_in_threadpool(service.ingest, body, content_type,
                                     actor=principal.actor, idempotency_key=idempotency_key)
    result = IngestResultPublic(**{k: v for k, v in report.to_dict().items() if k != "parsed"})
    if not report.parsed:
        reason = report.problems[0] if report.problems else "the body could not be read"
        return _error(422, "ValidationError", f"nothing in the body could be read: {reason}",
                      hint="it was quarantined whole; see GET /quarantine", **result.model_dump())
    return result


@router.get("/quarantine", response_model=QuarantinePage, summary="Rejected readings and messages")
def list_quarantine(
    service: Service,
    _: Reader,
    reason: Annotated[str | None, Query(description="reason code, e.g. unknown_twin")] = None,
    twin_id: Annotated[str | None, Query()] = None,
    after: Annotated[int, Query(ge=0, description="only records with a larger id (paging)")] = 0,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 100,
    status: Annotated[Literal["open", "replayed", "discarded", "all"], Query()] = "open",
) -> QuarantinePage:
    records = service.list_quarantine(reason=reason, twin_id=twin_id, after=after, limit=limit,
                                      status=None if status == "all" else status)
    return QuarantinePage(items=[QuarantinePublic.of(r) for r in records],
                          open=service.count_quarantine(reason),
                          next_after=records[-1].id if len(records) == limit else None)


@router.post("/quarantine/replay", response_model=ReplayPublic, summary="Ingest quarantined records again")
def replay_quarantine(body: ReplayRequest, service: Service, principal: Engineer) -> ReplayPublic:
    filtered = body.reason is not None or body.twin_id is not None
    if body.ids is None and not filtered and not body.all:
        raise ValidationError("name the records to replay",
                              hint='send {"ids": [...]}, a "reason"/"twin_id" filter, or {"all": true}')
    summary = service.replay(body.ids, reason=body.reason, twin_id=body.twin_id, actor=principal.actor,
                             limit=body.limit)
    return ReplayPublic(**summary.to_dict())


@router.post("/quarantine/discard", response_model=DiscardPublic, summary="Discard quarantined records")
def discard_quarantine(body: DiscardRequest, service: Service, principal: Engineer) -> DiscardPublic:
    return DiscardPublic(discarded=service.discard(body.ids, actor=principal.actor))


__all__ = ["get_ingest", "router"]
