"""The connection status table: availability of every connection, and of the twins it feeds.

One row per connection (``connected``, ``since``, ``last_message_ns``, ``messages``, ``errors``,
``last_error``), written by its supervisor and the pipeline, read by ``GET /connections`` and by
twin state: a twin whose readings come over a connection that is down is ``offline``.

A connection that is up but whose readings are mostly refused is no better than one that is down,
so the table also keeps, per connection, the reject reasons of its last ``window`` readings (fed
per committed batch by the pipeline). When one reason takes more than ``degrade_share`` of them the
row's ``status`` is ``degraded`` with ``rejecting: {"reason", "share"}``, and the log says so once,
loudly, with what to do; once more when the share falls below ``recover_share``.

`CommandDispatcher` is the other direction: commands recorded by the twin service go out through a
connection's `Sink`, and the device's answer comes back as an event.

Which twins a connection feeds is learned from what it delivered (the pipeline records the asset
ids of every stored batch), so no second mapping table has to be kept in step.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import Counter, deque
from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from twinloop.core.clock import Clock
from twinloop.core.errors import StoreError
from twinloop.core.events import CommandAcknowledged, CommandSent, Event
from twinloop.core.protocols import Ack, DeviceCommand, RawMessage, Sink
from twinloop.ingest.rejected import REASONS
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
    rejecting: dict[str, Any] | None = None
    """``{"reason", "share", "readings"}`` while one reason refuses most of its readings, else None."""
    twins: set[str] = field(default_factory=set, repr=False)

    @property
    def status(self) -> str:
        """``disconnected``, ``degraded`` (up, but most readings refused for one reason) or ``connected``."""
        if not self.connected:
            return "disconnected"
        return "degraded" if self.rejecting else "connected"

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-ready form (twins as a count; ask `twins_of` for the ids)."""
        return {
            "name": self.name, "kind": self.kind, "url": self.url, "connected": self.connected,
            "status": self.status, "rejecting": dict(self.rejecting) if self.rejecting else None,
            "since_ns": self.since_ns, "last_message_ns": self.last_message_ns,
            "messages": self.messages, "errors": self.errors, "last_error": self.last_error,
            "twins": len(self.twins),
        }


#: What to do about a connection whose readings are mostly refused, by reason.
REJECT_HINTS: dict[str, str] = {
    "ts_future": "the plant's clock runs ahead of this machine's: for a simulator or a replay, set "
                 "`clock: {announced: twinloop/<plant>/clock}` (or `clock: {max_future: 400d}`) in the "
                 "mapping's defaults; for a real plant, fix the device clocks (NTP)",
    "ts_too_old": "the plant's clock runs behind, or an old backlog is arriving: set `clock: {max_age: …}` "
                  "in the mapping, or fix the device clocks",
    "unmapped": "add a mapping rule for these topics (or one with `ignore: true`)",
    "unknown_twin": "add the twins to the plant file, or fix the mapping's `twin:` template",
    "unknown_channel": "rename the channels in the mapping (`channels: {raw: {channel: …}}`) or declare them",
    "unit_mismatch": "give the source unit in the mapping (`channels: {name: {unit: …}}`)",
    "out_of_range": "check the channel's min/max and the mapping's unit, scale and offset",
    "malformed": "the payloads do not match the rule's format: check `format:` in the mapping",
}


class _RejectWindow:
    """Reject reasons of a connection's last ``size`` readings, kept as per-batch tallies."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.parts: deque[tuple[int, Counter[str]]] = deque()
        self.total = 0
        self.counts: Counter[str] = Counter()

    def add(self, readings: int, reasons: Counter[str]) -> None:
        self.parts.append((readings, reasons))
        self.total += readings
        self.counts.update(reasons)
        while self.parts and self.total - self.parts[0][0] >= self.size:
            n, old = self.parts.popleft()
            self.total -= n
            self.counts.subtract(old)

    def worst(self) -> tuple[str, float]:
        """The most frequent reason and its share of the window's readings (``("", 0.0)`` when none)."""
        reason, count = max(self.counts.items(), key=lambda kv: kv[1], default=("", 0))
        return (reason, count / self.total) if count > 0 and self.total else ("", 0.0)


class ConnectionTable:
    """Thread-safe table of `ConnectionStatus` rows, keyed by connection name."""

    def __init__(self, clock: Clock, *, window: int = 1000, min_readings: int = 100,
                 degrade_share: float = 0.5, recover_share: float = 0.25) -> None:
        if not 0 < recover_share <= degrade_share < 1 or min_readings < 1 or window < min_readings:
            raise ValueError("need 0 < recover_share <= degrade_share < 1 and 1 <= min_readings <= window")
        self._clock = clock
        self._rows: dict[str, ConnectionStatus] = {}
        self._twin_conn: dict[str, str] = {}
        self._windows: dict[str, _RejectWindow] = {}
        self._lock = threading.Lock()
        self.window, self.min_readings = window, min_readings
        self.degrade_share, self.recover_share = degrade_share, recover_share

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

    def tally(self, name: str, stored: int, rejected: Mapping[str, int]) -> None:
        """Add one committed batch's outcome: readings stored, and rejects by reason (called per batch)."""
        rejects = sum(rejected.values())
        if stored + rejects == 0:
            return
        with self._lock:
            row = self._rows.get(name)
            if row is None:
                return
            win = self._windows.setdefault(name, _RejectWindow(self.window))
            win.add(stored + rejects, Counter({k: v for k, v in rejected.items() if v}))
            reason, share = win.worst()
            was = row.rejecting
            if win.total < self.min_readings:
                return
            if share > self.degrade_share or (was is not None and share >= self.recover_share):
                row.rejecting = {"reason": reason, "share": round(share, 3), "readings": win.total}
            else:
                row.rejecting = None
        if row.rejecting is not None and (was is None or was["reason"] != reason):
            _log.warning(
                "connection %s is degraded: %.0f%% of its last %d readings were rejected as %s (%s). "
                "What to do: %s. `twinloop quarantine list` shows them; `twinloop quarantine replay "
                "--all` takes them back once fixed", name, share * 100, win.total, reason,
                REASONS.get(reason, reason), REJECT_HINTS.get(reason, "see docs/ingest.md"))
        elif row.rejecting is None and was is not None:
            _log.info("connection %s recovered: %.0f%% of its last %d readings are rejected as %s now "
                      "(it was %.0f%%)", name, win.counts[was["reason"]] / win.total * 100, win.total,
                      was["reason"], was["share"] * 100)

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
