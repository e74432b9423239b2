"""A documented fake `Source` and `Sink` for unit tests: no sockets, fully scripted, fully observable.

`FakeSource` yields what a test ``push``es, remembers what was acknowledged, and can be told to
lose its connection (``fail``) the way a real connector's stream does, so pipelines and supervisors
can be tested without a broker. `FakeSink` records commands and answers them as scripted.

>>> import asyncio
>>> async def demo():
...     source = FakeSource("fake")
...     await source.start()
...     source.push("plant/pump-1", b'{"flow": 1.5}')
...     async for message in source.stream():
...         await source.ack(message)
...         break
...     return [m.topic for m in source.acked]
>>> asyncio.run(demo())
['plant/pump-1']
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Any

from twinloop.connectors.urls import ConnectorError
from twinloop.core.protocols import Ack, DeviceCommand, RawMessage

_STOP = object()


class FakeSource:
    """An in-memory `Source`; every message carries ``meta["id"]``, a running number."""

    def __init__(self, name: str = "fake", *, fail_start: int = 0) -> None:
        """``fail_start``: the first that many ``start`` calls raise `ConnectorError` (tests backoff)."""
        self.name = name
        self.acked: list[RawMessage] = []
        self.starts = 0
        self.received = 0
        self._fail_start = fail_start
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._acked_ids: set[int] = set()
        self._next_id = 0
        self._connected = False

    @property
    def connected(self) -> bool:
        return self._connected

    async def start(self) -> None:
        """Connect; fails while ``fail_start`` says so."""
        self.starts += 1
        if self.starts <= self._fail_start:
            raise ConnectorError(f"scripted start failure {self.starts}", url=f"fake://{self.name}")
        self._connected = True

    def push(self, topic: str, payload: bytes, **meta: Any) -> RawMessage:
        """Queue one message for the stream; returns it."""
        message = RawMessage(self.name, topic, payload, time.time_ns(), {"id": self._next_id, **meta})
        self._next_id += 1
        self._queue.put_nowait(message)
        return message

    def push_many(self, items: Iterable[tuple[str, bytes]]) -> list[RawMessage]:
        """Queue several ``(topic, payload)`` messages."""
        return [self.push(topic, payload) for topic, payload in items]

    def fail(self, reason: str = "connection lost") -> None:
        """Make the stream raise `ConnectorError` after the messages queued so far, as a lost link does."""
        self._queue.put_nowait(ConnectorError(reason, url=f"fake://{self.name}"))

    @property
    def pending(self) -> int:
        """Messages pushed but not yet taken from the stream."""
        return self._queue.qsize()

    async def stream(self) -> AsyncIterator[RawMessage]:
        """Pushed messages in order; ends at ``stop``, raises at ``fail``."""
        while True:
            item = await self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, ConnectorError):
                self._connected = False
                raise item
            self.received += 1
            yield item

    async def ack(self, message: RawMessage) -> None:
        """Record the acknowledgement once per message (acking twice is harmless)."""
        key = message.meta.get("id")
        if key not in self._acked_ids:
            self._acked_ids.add(key)
            self.acked.append(message)

    async def stop(self) -> None:
        """End the stream (after what is queued ahead of the stop)."""
        self._connected = False
        self._queue.put_nowait(_STOP)


Responder = Callable[[DeviceCommand], Ack]


class FakeSink:
    """An in-memory `Sink`: records every command and answers with ``respond`` (default: ok)."""

    def __init__(self, respond: Responder | None = None, *, delay_s: float = 0.0) -> None:
        self.sent: list[DeviceCommand] = []
        self._respond = respond or (lambda c: Ack(c.command_id, True, f"{c.name} applied"))
        self._delay = delay_s

    async def send(self, command: DeviceCommand) -> Ack:
        """Record ``command``, wait ``delay_s``, answer."""
        self.sent.append(command)
        if self._delay:
            await asyncio.sleep(self._delay)
        return self._respond(command)


__all__ = ["FakeSink", "FakeSource", "Responder"]
