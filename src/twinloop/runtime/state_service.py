"""Readings, latest state, history and events of twins: the read side next to the twin registry.

History next to the twin, with time-bucket aggregation, is what Eclipse Ditto's users ask for
most; here it is one call: ``history(twin, bucket_ns=60e9)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from twinloop.core.clock import Clock
from twinloop.core.errors import ValidationError
from twinloop.core.events import ReadingsApplied
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.bus import EventBus
from twinloop.runtime.twin_service import TwinService
from twinloop.store.protocol import EventRecord, Store

MAX_BUCKETS = 100_000


@dataclass(frozen=True)
class ChannelState:
    """The newest reading of one channel, with the unit the asset type declares."""

    channel: str
    value: float
    ts_ns: int
    quality: int
    unit: str | None


class StateService:
    """Records readings and answers latest-state, history and event queries."""

    def __init__(self, store: Store, twins: TwinService, bus: EventBus, clock: Clock) -> None:
        self._store = store
        self._twins = twins
        self._bus = bus
        self._clock = clock

    def record(self, batch: ReadingBatch) -> int:
        """Store readings already normalized by ingest, then announce them per twin."""
        if len(batch) == 0:
            return 0
        stored = self._store.append(batch)
        grouped = batch.table.group_by("asset_id").aggregate(
            [("channel", "count"), ("channel", "distinct")]
        )
        now = self._clock.now_ns()
        events = []
        for asset_id, count, channels in zip(
            grouped.column("asset_id").to_pylist(),
            grouped.column("channel_count").to_pylist(),
            grouped.column("channel_distinct").to_pylist(),
            strict=True,
        ):
            revision = self._twins.graph.get(asset_id).revision if asset_id in self._twins.graph else 0
            events.append(ReadingsApplied(twin_id=asset_id, revision=revision, ts_ns=now,
                                          count=int(count), channels=sorted(channels)))
        self._store.append_events(events)
        self._bus.publish(events)
        return stored

    def latest(self, twin_id: str) -> list[ChannelState]:
        """Newest reading per channel of one twin, with declared units."""
        twin = self._twins.get(twin_id)
        units = self._channel_units(twin.type_id)
        batch = self._store.latest([twin_id])
        return [
            ChannelState(channel=c, value=float(v), ts_ns=int(t), quality=int(q), unit=units.get(c))
            for c, v, t, q in zip(batch.channels, batch.values, batch.ts_ns, batch.quality,
                                  strict=True)
        ]

    def history(
        self,
        twin_id: str,
        channels: Sequence[str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
        bucket_ns: int | None = None,
        limit: int | None = 10_000,
    ) -> pa.Table:
        """Raw readings, or per-bucket count/mean/min/max/first/last when ``bucket_ns`` is set."""
        self._twins.get(twin_id)
        if start_ns is not None and end_ns is not None and end_ns <= start_ns:
            raise ValidationError("history needs start < end")
        if bucket_ns is None:
            return self._store.history(twin_id, channels, start_ns, end_ns, limit).table
        if bucket_ns <= 0:
            raise ValidationError("bucket must be positive")
        if start_ns is not None and end_ns is not None and (end_ns - start_ns) / bucket_ns > MAX_BUCKETS:
            raise ValidationError(
                f"that asks for more than {MAX_BUCKETS} buckets", hint="use a larger bucket"
            )
        table = self._store.history_buckets(twin_id, bucket_ns, channels, start_ns, end_ns)
        return table.slice(0, limit) if limit is not None else table

    def fleet_latest(self, type_id: str | None = None) -> dict[str, dict[str, float]]:
        """Newest value per channel for every twin (of a type): the fleet table of the demo."""
        ids = [t.id for t in self._twins.list(type_id)] if type_id else None
        batch = self._store.latest(ids)
        out: dict[str, dict[str, float]] = {}
        if len(batch):
            t = batch.table
            for asset, channel, value in zip(t.column("asset_id").to_pylist(),
                                             t.column("channel").to_pylist(),
                                             pc.cast(t.column("value"), pa.float64()).to_pylist(),
                                             strict=True):
                out.setdefault(asset, {})[channel] = value
        return out

    def events(
        self,
        after_seq: int = 0,
        twin_id: str | None = None,
        kinds: Sequence[str] | None = None,
        limit: int = 1000,
    ) -> list[EventRecord]:
        if limit < 1 or limit > 10_000:
            raise ValidationError("limit must be between 1 and 10000")
        return self._store.events(after_seq, twin_id, kinds, limit)

    def _channel_units(self, type_id: str) -> dict[str, str]:
        try:
            pairs = self._twins.registry.component_channels(type_id)
        except Exception:  # noqa: BLE001 - a twin whose type was removed still has readings
            return {}
        return {name: ch.unit for name, ch in pairs}


__all__ = ["ChannelState", "StateService"]
