"""The ingestion pipeline: sources → micro-batches → normalize → store (one transaction) → ack → apply.

::

    supervisors ──offer()──► bounded queue ──► micro-batch (what is queued, ≤ max_batch messages)
        ▲                                          │ Normalizer.normalize (worker thread)
        │                                          ▼
        └──── ack every message ◄── Store.journal_ingested (or append_ingested): readings,
                                                   │        dedupe keys, quarantine; durable
                                                   ▼ then
                    ReadingsApplied per twin (coalesced per events_interval_s) → store events + bus

Nothing is acknowledged before its readings, dedupe keys and quarantine records are durable
together: appended and synced to the store's ingest journal when it has one (`JournaledStore`, the
default for DuckDB files: a DuckDB checkpoint then never delays an ack), else committed in one
transaction. A crash in between leads to a redelivery that dedupe removes. Only the
messages the normalizer lists as ``completed`` are acknowledged: one whose readings wait in the
reorder window is acknowledged with the batch that finally stores them (``flush`` releases them when
no new messages come). A store failure
retries the same batch with backoff (never re-normalizes it: the normalizer's dedupe state already
counts it) while the bounded queue pushes back on the sources. One batch is in flight at a time, so
readings are stored in arrival order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc

from twinloop.core.clock import Clock
from twinloop.core.errors import StoreError
from twinloop.core.events import ReadingsApplied
from twinloop.core.protocols import RawMessage
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.bus import EventBus
from twinloop.runtime.connections import ConnectionTable
from twinloop.store.protocol import Store
from twinloop.twins.graph import TwinGraph

_log = logging.getLogger(__name__)
_EVENTS_PER_WRITE = 500

Acker = Callable[[RawMessage], Any]
BatchAcker = Callable[[list[RawMessage]], Any]
CommitListener = Callable[[ReadingBatch, int], None]
"""Called with ``(batch, committed_ns)`` after every commit (benchmarks measure latency with it)."""


class NormalizeResultLike(Protocol):
    @property
    def batch(self) -> ReadingBatch: ...
    @property
    def rejected(self) -> Sequence[Any]: ...
    @property
    def duplicates(self) -> int: ...
    @property
    def seen(self) -> Any: ...
    @property
    def completed(self) -> Sequence[RawMessage]: ...


class NormalizerLike(Protocol):
    """What the pipeline needs of ``twinloop.ingest.Normalizer``."""

    @property
    def held(self) -> int: ...

    def normalize(self, messages: Sequence[RawMessage]) -> NormalizeResultLike: ...

    def flush(self) -> NormalizeResultLike: ...


@dataclass
class PipelineStats:
    """Running totals, for ``GET /connections`` and benchmarks."""

    messages: int = 0
    readings: int = 0
    rejected: int = 0
    duplicates: int = 0
    batches: int = 0
    store_retries: int = 0
    events: int = 0
    last_commit_ns: int = 0


class Pipeline:
    """Micro-batching ingestion with ack-after-store; see the module docstring."""

    def __init__(
        self,
        store: Store,
        normalizer: NormalizerLike,
        bus: EventBus,
        clock: Clock,
        *,
        graph: TwinGraph | None = None,
        connections: ConnectionTable | None = None,
        max_batch: int = 5_000,
        max_delay_s: float = 0.02,
        queue_size: int = 50_000,
        events_interval_s: float = 1.0,
        retry_max_s: float = 10.0,
    ) -> None:
        if max_batch < 1 or max_delay_s <= 0 or queue_size < max_batch:
            raise ValueError("need max_batch >= 1, max_delay_s > 0 and queue_size >= max_batch")
        self._store = store
        # a store with an ingest journal makes a batch durable there; any other commits it directly
        self._commit_ingested = getattr(store, "journal_ingested", None) or store.append_ingested
        self._normalizer = normalizer
        self._bus = bus
        self._clock = clock
        self._graph = graph
        self._connections = connections
        self.max_batch = max_batch
        self.max_delay_s = max_delay_s
        self.events_interval_s = events_interval_s
        self._retry_max_s = retry_max_s
        self._queue: asyncio.Queue[RawMessage] = asyncio.Queue(queue_size)
        self._ackers: dict[str, Acker] = {}
        self._batch_ackers: dict[str, BatchAcker] = {}
        self._listeners: list[CommitListener] = []
        self._applied: list[pa.Table] = []
        self._last_events = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._events_task: asyncio.Task[None] | None = None
        self._store_failing = False
        self.stats = PipelineStats()

    # --- wiring ---------------------------------------------------------------------------------
    def register_acker(self, source: str, ack: Acker) -> None:
        """Messages whose ``source`` is ``source`` are acknowledged with ``ack`` after commit.

        When ``ack`` is the bound ``ack`` method of an object that also has ``ack_many`` (a `Supervisor`),
        a committed batch is acknowledged with one ``ack_many(messages)`` call instead of an await per
        message.
        """
        self._ackers[source] = ack
        owner = getattr(ack, "__self__", None)
        many = getattr(owner, "ack_many", None) if getattr(ack, "__name__", "") == "ack" else None
        if callable(many):
            self._batch_ackers[source] = many
        else:
            self._batch_ackers.pop(source, None)

    def on_commit(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    async def offer(self, message: RawMessage) -> None:
        """Queue a message; waits while the queue is full (backpressure on the source)."""
        await self._queue.put(message)

    @property
    def pending(self) -> int:
        """Messages queued and not yet in a batch."""
        return self._queue.qsize()

    # --- lifecycle ------------------------------------------------------------------------------
    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="ingest-pipeline")

    async def stop(self, drain_timeout_s: float = 10.0) -> None:
        """Commit what is queued (bounded by ``drain_timeout_s``), publish pending events, stop."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        deadline = time.monotonic() + drain_timeout_s
        while not self._queue.empty() and time.monotonic() < deadline:
            await self._commit(self._drain())
        if getattr(self._normalizer, "held", 0):
            await self._commit([], flush=True)
        await self._wait_events()
        self._flush_events()

    # --- the loop -------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            if getattr(self._normalizer, "held", 0):
                try:
                    first = await asyncio.wait_for(self._queue.get(), self.max_delay_s)
                except TimeoutError:  # idle, with readings held for reordering: release them
                    await self._commit([], flush=True)
                    continue
            else:
                first = await self._queue.get()
            messages = await self._collect(first)
            try:
                await self._commit(messages)
            except Exception:  # a bug must not stop ingestion; unacked messages stay with the peer
                _log.exception("ingesting a batch of %d messages failed; they were not acknowledged",
                               len(messages))
            if time.monotonic() - self._last_events >= self.events_interval_s and self._events_task is None:
                self._events_task = asyncio.create_task(self._flush_events_async(), name="ingest-events")

    async def _collect(self, first: RawMessage) -> list[RawMessage]:
        """A batch: what is queued now, plus what arrives while it keeps arriving (≤ max_delay_s).

        It is committed as soon as the queue runs dry: waiting for a fuller batch only adds latency at
        low load, and under load batches grow by themselves while the previous commit is in flight.
        """
        messages = [first]
        deadline = time.monotonic() + self.max_delay_s
        while len(messages) < self.max_batch:
            more = self._drain(self.max_batch - len(messages))
            if not more or time.monotonic() >= deadline:
                messages.extend(more)
                break
            messages.extend(more)
            await asyncio.sleep(0)  # let the sources hand over what they have already received
        return messages

    def _drain(self, limit: int | None = None) -> list[RawMessage]:
        queue, out = self._queue, []
        n = queue.qsize() if limit is None else min(limit, queue.qsize())
        for _ in range(n):
            out.append(queue.get_nowait())
        return out

    async def _commit(self, messages: list[RawMessage], flush: bool = False) -> None:
        if not messages and not flush:
            return
        groups = _by_source(messages)
        results = await asyncio.to_thread(self._normalize, groups, flush)
        delay = 0.05
        while True:
            try:
                await asyncio.to_thread(self._store_all, results)
                break
            except StoreError as err:  # keep the batch, keep the acks back, retry the same result
                self.stats.store_retries += 1
                if not self._store_failing:
                    self._store_failing = True
                    _log.error("storing a batch of %d messages failed: %s; retrying", len(messages), err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)
        if self._store_failing:
            self._store_failing = False
            _log.info("storing batches works again")
        committed_ns = self._clock.now_ns()
        await self._ack(results)
        self._after_commit(groups, results, committed_ns)

    async def _ack(self, results: dict[str, NormalizeResultLike]) -> None:
        """Acknowledge the completed messages, per source in one call where the acker allows it."""
        completed: list[RawMessage] = []
        for result in results.values():
            completed.extend(result.completed)
        if not completed:
            return
        for source, messages in _by_source(completed).items():
            many = self._batch_ackers.get(source)
            if many is not None:
                outcome = many(messages)
                if asyncio.iscoroutine(outcome):
                    await outcome
                continue
            ack = self._ackers.get(source)
            if ack is not None:
                for message in messages:
                    await ack(message)

    def _normalize(self, groups: dict[str, list[RawMessage]], flush: bool) -> dict[str, NormalizeResultLike]:
        out = {source: self._normalizer.normalize(group) for source, group in groups.items()}
        if flush:
            out[""] = self._normalizer.flush()
        return out

    def _store_all(self, results: dict[str, NormalizeResultLike]) -> None:
        for result in results.values():
            self._commit_ingested(result.batch, result.seen, result.rejected)

    def _after_commit(
        self, groups: dict[str, list[RawMessage]], results: dict[str, NormalizeResultLike], committed_ns: int
    ) -> None:
        stats = self.stats
        stats.batches += 1
        stats.last_commit_ns = committed_ns
        for source, result in results.items():
            group = groups.get(source, [])
            batch = result.batch
            stats.messages += len(group)
            stats.readings += len(batch)
            stats.rejected += len(result.rejected)
            stats.duplicates += int(result.duplicates)
            if self._connections is not None and group:
                self._connections.count(source, len(group), group[-1].received_ns)
                self._connections.tally(source, len(batch), Counter(r.reason for r in result.rejected))
                if len(batch):
                    self._connections.feeds(source, pc.unique(batch.table.column("asset_id")).to_pylist())
            if len(batch):
                self._applied.append(batch.table.select(["asset_id", "channel"]))
                for listener in self._listeners:
                    listener(batch, committed_ns)

    def _flush_events(self) -> None:
        """One `ReadingsApplied` per twin for everything committed since the last flush."""
        self._bus_publish(self._store_events(self._take_applied()))

    async def _flush_events_async(self) -> None:
        """`_flush_events` with the store write in a worker thread, so the loop keeps reading and acking."""
        try:
            events = await asyncio.to_thread(self._store_events, self._take_applied())
            self._bus_publish(events)
        except Exception:  # a bug must not stop ingestion; the readings are stored
            _log.exception("publishing ReadingsApplied events failed")
        finally:
            self._events_task = None

    async def _wait_events(self) -> None:
        task = self._events_task
        if task is not None:
            await asyncio.gather(task, return_exceptions=True)

    def _take_applied(self) -> list[pa.Table]:
        self._last_events = time.monotonic()
        applied, self._applied = self._applied, []
        return applied

    def _store_events(self, applied: list[pa.Table]) -> list[ReadingsApplied]:
        if not applied:
            return []
        table = pa.concat_tables(applied)
        per_channel = table.group_by(["asset_id", "channel"]).aggregate([("channel", "count")])
        per_twin = per_channel.group_by("asset_id").aggregate(
            [("channel_count", "sum"), ("channel", "list")]
        )
        now = self._clock.now_ns()
        graph = self._graph
        events = [
            ReadingsApplied(
                twin_id=asset, ts_ns=now, count=int(count), channels=sorted(channels),
                revision=graph.get(asset).revision if graph is not None and asset in graph else 0,
            )
            for asset, count, channels in zip(
                per_twin.column("asset_id").to_pylist(),
                per_twin.column("channel_count_sum").to_pylist(),
                per_twin.column("channel_list").to_pylist(),
                strict=True,
            )
        ]
        # in slices: a commit waiting for the store lock waits for one slice, not for every twin's event
        for start in range(0, len(events), _EVENTS_PER_WRITE):
            chunk = events[start:start + _EVENTS_PER_WRITE]
            try:
                self._store.append_events(chunk)
            except StoreError as err:  # the readings are stored; only the announcement is lost
                _log.warning("could not store %d ReadingsApplied events: %s", len(chunk), err)
        return events

    def _bus_publish(self, events: list[ReadingsApplied]) -> None:
        if events:
            self._bus.publish(events)
            self.stats.events += len(events)


def _by_source(messages: list[RawMessage]) -> dict[str, list[RawMessage]]:
    if not messages:
        return {}
    first = messages[0].source
    if all(m.source == first for m in messages):  # the usual case: one connection per batch
        return {first: messages}
    groups: dict[str, list[RawMessage]] = {}
    for m in messages:
        groups.setdefault(m.source, []).append(m)
    return groups


__all__ = [
    "BatchAcker", "CommitListener", "NormalizeResultLike", "NormalizerLike", "Pipeline", "PipelineStats",
]
