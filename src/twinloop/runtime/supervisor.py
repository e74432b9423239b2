"""One supervisor per connection (the Home Assistant coordinator rule).

It owns the source's lifecycle: start, retry with exponential backoff, rebuild after a lost
session, stop. It logs once when the connection fails and once when it is back — however long the
outage — and keeps the connection's row in the `ConnectionTable` true. Messages go to ``deliver``
(the pipeline's bounded queue, so a slow store pushes back on the reader); acknowledgements come back
through ``ack``, which reaches the source instance that delivered the message, or nobody when that
instance was replaced meanwhile (its broker redelivers, dedupe drops the copy).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

from twinloop.connectors.urls import ConnectorError
from twinloop.core.protocols import RawMessage
from twinloop.runtime.connections import ConnectionTable, ManagedSource

_log = logging.getLogger(__name__)

SourceFactory = Callable[[], ManagedSource]
Deliver = Callable[[RawMessage], Awaitable[None]]


class Supervisor:
    """Keeps one connection's source running; see the module docstring."""

    def __init__(
        self,
        name: str,
        factory: SourceFactory,
        table: ConnectionTable,
        deliver: Deliver,
        *,
        kind: str = "",
        url: str = "",
        backoff_min_s: float = 0.5,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.name = name
        self._factory = factory
        self._table = table
        self._deliver = deliver
        self._backoff = (backoff_min_s, backoff_max_s)
        self.source: ManagedSource | None = None
        self._task: asyncio.Task[None] | None = None
        self._failing = False
        self._generation = 0  # which source instance delivered a message (meta["generation"])
        self.finished = False
        """True when the source's stream ended on its own (a replayed file ran out)."""
        table.add(name, kind, url)

    def start(self) -> None:
        """Start supervising in the background (idempotent)."""
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=f"supervisor-{self.name}")

    async def ack(self, message: RawMessage) -> None:
        """Acknowledge through the instance that delivered ``message``; never raises."""
        source = self.source
        if source is None or message.meta.get("generation") != self._generation:
            return
        try:
            await source.ack(message)
        except Exception as err:  # noqa: BLE001 - a failed ack means a redelivery, not a crash
            _log.debug("ack on %s failed: %s", self.name, err)

    async def ack_many(self, messages: Sequence[RawMessage]) -> None:
        """`ack` for a committed batch: one call when the source has ``ack_many``; never raises."""
        source, generation = self.source, self._generation
        if source is None:
            return
        mine = [m for m in messages if m.meta.get("generation") == generation]
        if not mine:
            return
        try:
            many = getattr(source, "ack_many", None)
            if many is not None:
                many(mine)
            else:
                for message in mine:
                    await source.ack(message)
        except Exception as err:  # noqa: BLE001 - a failed ack means a redelivery, not a crash
            _log.debug("ack on %s failed: %s", self.name, err)

    async def stop_reading(self) -> None:
        """Stop taking messages (unacked ones stay with the peer); the connection stays open for acks."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    async def close(self) -> None:
        """Stop reading and close the connection."""
        await self.stop_reading()
        source, self.source = self.source, None
        if source is not None:
            await _quiet_stop(source)
        self._table.set_connected(self.name, False)

    # --- internals ------------------------------------------------------------------------------
    async def _run(self) -> None:
        delay = self._backoff[0]
        while True:
            source = self._factory()
            try:
                await source.start()
            except (ConnectorError, OSError) as err:
                self._failed(err)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._backoff[1])
                continue
            self._generation += 1
            generation = self._generation
            self.source = source
            self._recovered()
            delay = self._backoff[0]
            on_availability = getattr(source, "on_availability", None)
            if on_availability is not None:  # MQTT reconnects by itself; mirror its availability
                on_availability(self._availability)
            try:
                async for message in source.stream():
                    message.meta["generation"] = generation
                    await self._deliver(message)
            except ConnectorError as err:
                self.source = None
                self._failed(err)
                await _quiet_stop(source)
                await asyncio.sleep(delay)
                continue
            self.finished = True
            _log.info("connection %s: the source has no more messages", self.name)
            return

    def _availability(self, available: bool) -> None:
        # MqttClient already logged the loss/recovery once; only the table changes here
        self._table.set_connected(self.name, available, "" if available else "broker connection lost")

    def _failed(self, err: BaseException) -> None:
        self._table.set_connected(self.name, False, str(err))
        if not self._failing:
            self._failing = True
            _log.warning("connection %s failed: %s; retrying with backoff", self.name, err)
        else:
            _log.debug("connection %s still failing: %s", self.name, err)

    def _recovered(self) -> None:
        self._table.set_connected(self.name, True)
        if self._failing:
            self._failing = False
            _log.info("connection %s is back", self.name)


async def _quiet_stop(source: ManagedSource) -> None:
    try:
        await asyncio.wait_for(source.stop(), 10)
    except Exception as err:  # noqa: BLE001 - stopping anyway
        _log.debug("stopping %s: %s", getattr(source, "name", source), err)


__all__ = ["Deliver", "SourceFactory", "Supervisor"]
