"""Latest state and history of a twin, with time-bucket aggregation."""

from __future__ import annotations

from typing import Annotated

import pyarrow as pa
from fastapi import APIRouter, Depends, Query

from twinloop.api.deps import get_runtime, require
from twinloop.api.params import parse_duration, parse_time
from twinloop.api.schemas import ChannelStatePublic, HistoryPublic, TwinStatePublic
from twinloop.core.clock import ns_to_datetime
from twinloop.runtime.access import Principal
from twinloop.runtime.wiring import Runtime

router = APIRouter(prefix="/twins", tags=["state"])
RuntimeDep = Annotated[Runtime, Depends(get_runtime)]
Reader = Annotated[Principal, Depends(require("read"))]


@router.get("/{twin_id}/state", response_model=TwinStatePublic, summary="Latest state of a twin")
def twin_state(twin_id: str, runtime: RuntimeDep, _: Reader) -> TwinStatePublic:
    twin = runtime.twins.get(twin_id)
    channels = [
        ChannelStatePublic(channel=c.channel, value=c.value, unit=c.unit, quality=c.quality,
                           ts=ns_to_datetime(c.ts_ns).isoformat())
        for c in runtime.state.latest(twin_id)
    ]
    conn = runtime.connections.for_twin(twin_id)
    return TwinStatePublic(id=twin.id, type_id=twin.type_id, revision=twin.revision,
                           status=runtime.connections.twin_status(twin_id),
                           connection=conn.name if conn else None,
                           reported=twin.reported, desired=twin.desired, channels=channels)


def _columns(table: pa.Table) -> dict[str, list]:
    out: dict[str, list] = {}
    for name in table.column_names:
        col = table.column(name)
        if pa.types.is_timestamp(col.type):
            out[name] = [ns_to_datetime(v).isoformat() for v in col.cast(pa.int64()).to_pylist()]
        else:
            out[name] = col.to_pylist()
    return out


@router.get("/{twin_id}/history", response_model=HistoryPublic, summary="History of a twin")
def twin_history(
    twin_id: str,
    runtime: RuntimeDep,
    _: Reader,
    channel: Annotated[list[str] | None, Query(description="channel(s); repeat; default all")] = None,
    start: Annotated[str | None, Query(description="ISO 8601 or epoch ns, inclusive")] = None,
    end: Annotated[str | None, Query(description="ISO 8601 or epoch ns, exclusive")] = None,
    bucket: Annotated[
        str | None, Query(description="aggregate per bucket: '10s', '5m', '1h'; raw if absent")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1_000_000)] = 10_000,
) -> HistoryPublic:
    bucket_ns = parse_duration(bucket) if bucket else None
    table = runtime.state.history(
        twin_id, channel, parse_time(start), parse_time(end), bucket_ns, limit
    )
    return HistoryPublic(twin_id=twin_id, bucket_s=bucket_ns / 1e9 if bucket_ns else None,
                         rows=table.num_rows, columns=_columns(table))


__all__ = ["router"]
