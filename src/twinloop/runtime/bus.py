"""An in-process event bus: services publish events after storing them; subscribers get them live.

Publishing is safe from any thread (FastAPI runs sync routes in a thread pool); each async
subscriber gets a bounded queue on its own event loop, so one slow WebSocket client cannot
hold up the others — when its queue is full it loses the oldest events and is told how many.

A sync handler that raises never breaks publishing, and is never silent either: its first failure
for a twin is logged with the trace, repeats for that (handler, twin) are not, and the first event
it handles for that twin afterwards logs that it recovered (Home Assistant's log-once rule).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field

from twinloop.core.events import Event

Handler = Callable[[Event], None]
_log = logging.getLogger(__name__)


@dataclass(eq=False)
class Subscription:
    """One subscriber's queue; iterate it with ``async for``."""

    kinds: frozenset[str] | None
    twin_id: str | None
    queue: asyncio.Queue[Event]
    loop: asyncio.AbstractEventLoop
    dropped: int = 0
    _closed: bool = field(default=False, repr=False)

    def wants(self, event: Event) -> bool:
        if self.kinds is not None and event.kind not in self.kinds:
            return False
        return self.twin_id is None or event.twin_id == self.twin_id

    def _offer(self, event: Event) -> None:
        if self.queue.full():
            self.queue.get_nowait()
            self.dropped += 1
        self.queue.put_nowait(event)

    async def __aiter__(self) -> AsyncIterator[Event]:
        while not self._closed:
            yield await self.queue.get()


class EventBus:
    """Fan-out of events to async subscribers and sync handlers."""

    def __init__(self, queue_size: int = 1000) -> None:
        self._lock = threading.Lock()
        self._subs: list[Subscription] = []
        self._handlers: list[Handler] = []
        self._queue_size = queue_size
        self._failing: set[tuple[int, str]] = set()  # (handler id, twin id) whose last call raised

    def subscribe(
        self, kinds: Iterable[str] | None = None, twin_id: str | None = None
    ) -> Subscription:
        """A live subscription on the running event loop; call `unsubscribe` when done."""
        sub = Subscription(
            kinds=frozenset(kinds) if kinds else None,
            twin_id=twin_id,
            queue=asyncio.Queue(self._queue_size),
            loop=asyncio.get_running_loop(),
        )
        with self._lock:
            self._subs.append(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        sub._closed = True
        with self._lock:
            if sub in self._subs:
                self._subs.remove(sub)

    def on_event(self, handler: Handler) -> None:
        """Call ``handler`` synchronously for every event (keep it fast; errors are isolated and logged)."""
        with self._lock:
            self._handlers.append(handler)

    def publish(self, events: Iterable[Event]) -> None:
        """Deliver events to everyone interested; never raises because of a subscriber."""
        events = list(events)
        with self._lock:
            subs, handlers = list(self._subs), list(self._handlers)
        for event in events:
            for handler in handlers:
                self._call(handler, event)
            for sub in subs:
                if sub.wants(event) and not sub.loop.is_closed():
                    sub.loop.call_soon_threadsafe(sub._offer, event)

    def _call(self, handler: Handler, event: Event) -> None:
        key = (id(handler), event.twin_id)
        try:
            handler(event)
        except Exception:  # noqa: BLE001 - a faulty handler must not break publishing; logged once
            with self._lock:
                first = key not in self._failing
                self._failing.add(key)
            if first:
                _log.exception("event handler %s failed on %s for twin %r; further failures for this "
                               "twin are not logged until it recovers", _name(handler), event.kind,
                               event.twin_id)
            return
        if self._failing and key in self._failing:
            with self._lock:
                self._failing.discard(key)
            _log.info("event handler %s recovered for twin %r", _name(handler), event.twin_id)

    def failing(self) -> list[tuple[str, str]]:
        """(handler, twin id) pairs whose last call raised, for health checks."""
        with self._lock:
            keys = set(self._failing)
            handlers = {id(h): h for h in self._handlers}
        return sorted((_name(handlers[h]) if h in handlers else str(h), t) for h, t in keys)

    @property
    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subs)


def _name(handler: Handler) -> str:
    return getattr(handler, "__qualname__", None) or repr(handler)


__all__ = ["EventBus", "Subscription"]
