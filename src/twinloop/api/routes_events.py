"""Events: the persisted log (paged by sequence number) and a live WebSocket feed."""

from __future__ import annotations

import contextlib
from typing import Annotated

from fastapi import APIRouter, Depends, Query, WebSocket, WebSocketDisconnect
from fastapi.concurrency import run_in_threadpool

from twinloop.api.deps import get_runtime, require
from twinloop.api.schemas import EventPublic
from twinloop.core.clock import ns_to_datetime
from twinloop.core.errors import AuthError
from twinloop.runtime.access import Principal
from twinloop.runtime.wiring import Runtime

router = APIRouter(tags=["events"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


@router.get("/events", response_model=list[EventPublic])
def list_events(
    runtime: RuntimeDep,
    _: Annotated[Principal, Depends(require("read"))],
    after: Annotated[int, Query(ge=0, description="return events with seq > after")] = 0,
    twin_id: str | None = None,
    kind: Annotated[list[str] | None, Query(description="event kind(s); repeat")] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[EventPublic]:
    return [EventPublic.of(r) for r in runtime.state.events(after, twin_id, kind, limit)]


@router.websocket("/events/live")
async def live_events(
    websocket: WebSocket,
    twin_id: str | None = None,
    kind: Annotated[list[str] | None, Query()] = None,
) -> None:
    """Push events as they happen. Authenticate with ``?key=…`` or an Authorization header."""
    runtime: Runtime = websocket.app.state.runtime
    auth = websocket.headers.get("authorization", "")
    token = websocket.query_params.get("key") or auth.removeprefix("Bearer ").strip() or None
    try:  # the key lookup reads the store: off the event loop, which carries ingestion too
        (await run_in_threadpool(runtime.keys.authenticate, token)).require("read")
    except AuthError as err:
        await websocket.close(code=4401 if type(err) is AuthError else 4403, reason=err.message)
        return
    await websocket.accept()
    sub = runtime.bus.subscribe(kind, twin_id)
    try:
        async for event in sub:
            d = event.to_dict()
            d["ts"] = ns_to_datetime(d.pop("ts_ns")).isoformat()
            await websocket.send_json(d)
    except WebSocketDisconnect:
        pass
    finally:
        runtime.bus.unsubscribe(sub)
        with contextlib.suppress(RuntimeError):
            await websocket.close()


__all__ = ["router"]
