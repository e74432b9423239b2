"""The connection status table: availability of every connection, and of the twins it feeds.

One row per connection (``connected``, ``since``, ``last_message_ns``, ``messages``, ``errors``,
``last_error``), written by its supervisor and the pipeline, read by ``GET /connections`` and by
twin state: a twin whose readings come over a connection that is down is ``offline``.

`CommandDispatcher` is the other direction: commands recorded by the twin service go out through a
connection's `Sink`, and the device's answer comes back as an event.

Which twins a connection feeds is learned from what it delivered (the pipeline records the asset
ids of every stored batch), so no second mapping table has to be kept in step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from twinloop.core.clock import Clock
from twinloop.core.errors import StoreError
from twinloop.core.events import CommandAcknowledged, CommandSent, Event
from twinloop.core.protocols import Ack, DeviceCommand, RawMessage, Sink
from twinloop.runtime.bus import EventBus
from twinloop.store.protocol import Store
from twinloop.twins.graph import TwinGraph

_log = logging.getLogger(__name__)


@runtime_checkable
class ManagedSource(Protocol):
    """A `core.protocols.Source` with the lifecycle a supervisor owns (see `connectors.checks`)."""

    name: str

    async def start(self) -> None: ...

    def stream(self) -> AsyncIterator[RawMessage]: ...

    async def ack(self, message: RawMessage) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class ConnectionStatus:
    """One row of the status table."""

    name: str
    kind: str
    url: str
    connected: bool = False
    since_ns: int = 0
    last_message_ns: int = 0
    messages: int = 0
    errors: int = 0
    last_error: str = ""
    twins: set[str] = field(default_factory=set, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form (twins as a count; ask `twins_of` for the ids)."""
        return {
            "name": self.name, "kind": self.kind, "url": self.url, "connected": self.connected,
            "since_ns": self.since_ns, "last_message_ns": self.last_message_ns,
            "messages": self.messages, "errors": self.errors, "last_error": self.last_error,
            "twins": len(self.twins),
        }


class ConnectionTable:
    """Thread-safe table of `ConnectionStatus` rows, keyed by connection name."""

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._rows: dict[str, ConnectionStatus] = {}
        self._twin_conn: dict[str, str] = {}
        self._lock = threading.Lock()

    def add(self, name: str, kind: str, url: str) -> ConnectionStatus:
        """Register a connection (down until its supervisor says otherwise)."""
        with self._lock:
            row = self._rows.setdefault(name, ConnectionStatus(name, kind, url))
            row.since_ns = row.since_ns or self._clock.now_ns()
            return row

    def set_connected(self, name: str, connected: bool, error: str = "") -> bool:
        """Record availability; True when it changed. An error message counts as one error."""
        with self._lock:
            row = self._rows[name]
            changed = row.connected != connected
            if changed:
                row.connected = connected
                row.since_ns = self._clock.now_ns()
            if error:
                row.errors += 1
                row.last_error = error
            return changed

    def count(self, name: str, messages: int, last_message_ns: int) -> None:
        """Add delivered messages (called per batch, not per message)."""
        row = self._rows.get(name)
        if row is not None:
            row.messages += messages
            row.last_message_ns = max(row.last_message_ns, last_message_ns)

    def feeds(self, name: str, twin_ids: Iterable[str]) -> None:
        """Remember that ``name`` delivered readings of these twins."""
        with self._lock:
            row = self._rows.get(name)
            if row is None:
                return
            for twin_id in twin_ids:
                if twin_id not in row.twins:
                    row.twins.add(twin_id)
                    self._twin_conn[twin_id] = name

    def get(self, name: str) -> ConnectionStatus:
        """One row; `KeyError` for an unknown connection."""
        return self._rows[name]

    def rows(self) -> list[ConnectionStatus]:
        """Every row, by name."""
        with self._lock:
            return [self._rows[k] for k in sorted(self._rows)]

    def twins_of(self, name: str) -> list[str]:
        """Twins fed by the connection, sorted."""
        with self._lock:
            return sorted(self._rows[name].twins)

    def for_twin(self, twin_id: str) -> ConnectionStatus | None:
        """The connection that feeds a twin, or None when none has delivered its readings yet."""
        name = self._twin_conn.get(twin_id)
        return self._rows.get(name) if name is not None else None

    def twin_status(self, twin_id: str) -> str:
        """``online`` / ``offline`` from its connection's availability; ``unknown`` when unfed."""
        row = self.for_twin(twin_id)
        if row is None:
            return "unknown"
        return "online" if row.connected else "offline"




class CommandDispatcher:
    """Sends every `CommandSent` through a `Sink` and records the device's answer as `CommandAcknowledged`.

    `TwinService.invoke` validates and records a command; this hook, attached to the bus, carries it
    to the device. Bus handlers run in whatever thread published, so the send is handed to the
    runtime's event loop. A sink that fails or times out answers ``ok=False``: every sent command
    ends in exactly one acknowledgement event.
    """

    def __init__(
        self, sink: Sink, store: Store, bus: EventBus, graph: TwinGraph, clock: Clock,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._sink = sink
        self._store = store
        self._bus = bus
        self._graph = graph
        self._clock = clock
        self._loop = loop
        self._tasks: set[asyncio.Task[None]] = set()
        self._closed = False
        bus.on_event(self._on_event)

    def _on_event(self, event: Event) -> None:
        if isinstance(event, CommandSent) and not self._closed and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._spawn, event)

    def _spawn(self, event: CommandSent) -> None:
        task = self._loop.create_task(self._dispatch(event), name=f"command-{event.command_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _dispatch(self, event: CommandSent) -> None:
        command = DeviceCommand(event.command_id, event.twin_id, event.name, dict(event.args))
        try:
            ack = await self._sink.send(command)
        except Exception as err:  # noqa: BLE001 - a broken sink is an answer too
            ack = Ack(event.command_id, False, f"sink failed: {type(err).__name__}: {err}")
        twin = self._graph.get(event.twin_id) if event.twin_id in self._graph else None
        answer = CommandAcknowledged(
            twin_id=event.twin_id, revision=twin.revision if twin else event.revision,
            ts_ns=self._clock.now_ns(), command_id=ack.command_id, ok=ack.ok, message=ack.message,
        )
        try:
            await asyncio.to_thread(self._store.append_events, [answer])
        except StoreError as err:
            _log.warning("could not store the ack of command %s: %s", event.command_id, err)
        self._bus.publish([answer])

    async def close(self, timeout: float = 5.0) -> None:
        """Take no new commands; wait (bounded) for those in flight."""
        self._closed = True
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)


__all__ = ["CommandDispatcher", "ConnectionStatus", "ConnectionTable", "ManagedSource"]
