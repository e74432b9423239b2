"""`OpcUaSource`: OPC UA data-change subscriptions as a `Source`.

Each notification becomes one `RawMessage`: ``topic`` is the node id (``ns=2;s=pump-A1.flow``), the
payload ``{"value": v, "ts": source timestamp in epoch ns, "status": code}`` (JSON), so an ingest
mapping (``opcua: ns=2;s={device}.{channel}``) treats OPC UA like any other topic space. Nodes are
given as node id strings, or as server paths (``pump-A1.flow``) in ``namespace``. OPC UA has no
acknowledgement the server could redeliver from, so ``ack`` only counts.

Reconnecting is not asyncua's job here: when the session is lost the stream raises
`ConnectorError`, and the connection's supervisor builds a new source with backoff (the
subscription, its deadband and queue size are recreated with it).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from typing import Any

from asyncua import Client, Node, ua

from twinloop.connectors.urls import ConnectorError, parse_url
from twinloop.core.protocols import RawMessage

_log = logging.getLogger(__name__)
_STOP = object()


class OpcUaSource:
    """Data changes of ``paths`` on one server; see the module docstring."""

    def __init__(
        self,
        endpoint: str,
        paths: Sequence[str],
        *,
        name: str | None = None,
        namespace: str = "urn:twinloop:sim",
        period_ms: float = 100.0,
        queuesize: int = 1000,
        deadband: float = 0.0,
        deadband_percent: bool = False,
        timeout: float = 5.0,
        max_pending: int = 100_000,
        strict: bool = True,
    ) -> None:
        """``queuesize`` > 1 keeps every sample between publish cycles (DEPENDENCY-NOTES §4);
        ``deadband`` > 0 reports only changes larger than that (absolute, or percent of EURange).
        ``strict`` refuses to start when the server lacks a path; otherwise those are logged and skipped."""
        parse_url(endpoint)
        if not paths:
            raise ValueError("an OpcUaSource needs at least one variable path")
        if deadband < 0:
            raise ValueError("deadband must be >= 0")
        self.endpoint = endpoint
        self.name = name or endpoint
        self.paths = tuple(paths)
        self.namespace = namespace
        self.period_ms = period_ms
        self.queuesize = queuesize
        self.deadband = deadband
        self.deadband_percent = deadband_percent
        self._timeout = timeout
        self._strict = strict
        self._queue: asyncio.Queue[Any] = asyncio.Queue(max_pending)
        self._client: Client | None = None
        self._connected = False
        self.received = 0
        self.acked = 0

    @property
    def connected(self) -> bool:
        """True while the session is up."""
        return self._connected

    async def start(self) -> None:
        """Connect, resolve the namespace and subscribe; ``ConnectorError`` when anything fails."""
        client = Client(self.endpoint, timeout=self._timeout, watchdog_intervall=1.0)
        client.connection_lost_callback = self._lost
        try:
            await client.connect()
            ns = await client.get_namespace_index(self.namespace)
            sub = await client.create_subscription(self.period_ms, self, queue_maxsize=0)
            ids = [_node_id(p, ns) for p in self.paths]
            nodes = [client.get_node(i) for i in ids]
            self._by_node = {i: i.to_string() for i in ids}
            if self.deadband > 0:
                handles = await sub.deadband_monitor(
                    nodes, self.deadband, 2 if self.deadband_percent else 1, self.queuesize
                )
            else:
                handles = await sub.subscribe_data_change(
                    nodes, queuesize=self.queuesize, sampling_interval=0
                )
        except (OSError, TimeoutError, ua.UaError, ValueError) as err:
            await _quiet_disconnect(client)
            raise ConnectorError(
                f"cannot subscribe: {err or type(err).__name__}",
                url=self.endpoint,
                hint=f"is the server running, and does it serve namespace {self.namespace}?",
            ) from err
        bad = [p for p, h in zip(self.paths, handles, strict=True) if isinstance(h, ua.StatusCode)]
        if bad and (self._strict or len(bad) == len(self.paths)):
            await _quiet_disconnect(client)
            raise ConnectorError(
                f"server refused to monitor {len(bad)} variable(s), e.g. {bad[:3]}",
                url=self.endpoint,
                hint="check the paths in the mapping against the server's address space",
            )
        if bad:
            _log.warning("%s serves no variable for %d of %d paths, e.g. %s; not subscribed",
                         self.endpoint, len(bad), len(self.paths), bad[:3])
        self._client = client
        self._connected = True

    # asyncua subscription handler (called from asyncua's tasks on our loop)
    async def datachange_notification(self, node: Node, val: Any, data: Any) -> None:
        path = self._by_node.get(node.nodeid, str(node.nodeid))
        stamp: datetime | None = data.monitored_item.Value.SourceTimestamp
        ts_ns = int(stamp.timestamp() * 1e9) if stamp is not None else time.time_ns()
        value = val if isinstance(val, (bool, int, float, str)) or val is None else str(val)
        status = data.monitored_item.Value.StatusCode
        code = int(status.value) if status is not None else 0
        payload = json.dumps({"value": value, "ts": ts_ns, "status": code}).encode()
        await self._queue.put(RawMessage(self.name, path, payload, time.time_ns(), {"qos": 0}))

    def status_change_notification(self, status: Any) -> None:
        _log.info("OPC UA subscription status on %s: %s", self.endpoint, status)

    async def _lost(self, err: Exception) -> None:
        self._connected = False
        if self._queue.full():  # make room for the news; the rebuilt subscription re-reads values
            self._queue.get_nowait()
        self._queue.put_nowait(err)

    async def stream(self) -> AsyncIterator[RawMessage]:
        """Every data change, until ``stop``; raises `ConnectorError` when the session is lost."""
        while True:
            item = await self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, BaseException):
                raise ConnectorError(
                    f"OPC UA session lost: {item or type(item).__name__}", url=self.endpoint
                ) from item
            self.received += 1
            yield item

    async def ack(self, message: RawMessage) -> None:
        """OPC UA cannot redeliver, so there is nothing to confirm; counted for the status table."""
        self.acked += 1

    async def stop(self) -> None:
        """End the stream and close the session."""
        client, self._client = self._client, None
        self._connected = False
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(_STOP)
        if client is not None:
            await _quiet_disconnect(client)


def _node_id(entry: str, ns: int) -> ua.NodeId:
    """A node id string (``ns=2;s=a.b``, ``i=85``) as given; anything else is a path in ``ns``."""
    if entry.startswith(("ns=", "i=", "s=", "g=", "b=", "nsu=")):
        return ua.NodeId.from_string(entry)
    return ua.NodeId(entry, ns)


async def _quiet_disconnect(client: Client) -> None:
    try:
        await asyncio.wait_for(client.disconnect(), 3)
    except Exception:  # noqa: BLE001 - the session is being abandoned either way
        pass


__all__ = ["OpcUaSource"]
