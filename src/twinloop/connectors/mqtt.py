"""An asyncio MQTT client over paho-mqtt 2.x: bytes in, bytes out, reconnecting on its own.

paho runs its network loop in a thread (``loop_start``) and reconnects there with exponential backoff;
this wrapper hands every message, acknowledgement and availability change to the asyncio loop with
``call_soon_threadsafe``, re-subscribes after a reconnect, and logs once when the broker is lost and once
when it is back (the Home Assistant rule), however long the outage lasts.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from types import TracebackType
from typing import Any, Literal

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from twinloop.connectors.urls import ConnectorError, parse_url
from twinloop.core.protocols import RawMessage

_log = logging.getLogger(__name__)

AvailabilityCallback = Callable[[bool], Any]
"""Called in the event loop with ``False`` once when the connection is lost, ``True`` once when it is back."""


class MqttClient:
    """One MQTT connection; see the module docstring. Use ``async with MqttClient(url) as client``."""

    def __init__(
        self,
        url: str,
        *,
        client_id: str | None = None,
        protocol: Literal["3.1.1", "5"] = "3.1.1",
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        tls_insecure: bool = False,
        clean: bool = True,
        session_expiry_s: int = 3600,
        keepalive_s: int = 30,
        reconnect_min_s: float = 0.2,
        reconnect_max_s: float = 30.0,
        max_inflight: int = 100,
        max_buffered: int = 1_000_000,
        manual_ack: bool = False,
        receive_maximum: int | None = None,
        name: str | None = None,
    ) -> None:
        """Store settings; nothing touches the network before ``connect``.

        ``clean=False`` asks for a persistent session (needs a stable ``client_id``): the broker keeps the
        subscriptions and queues QoS 1 messages while we are away. ``protocol`` defaults to 3.1.1 because
        the embedded amqtt broker speaks nothing newer; use "5" with mosquitto or any MQTT 5 broker.

        ``manual_ack=True`` withholds the PUBACK of every received QoS 1 message until ``ack(message)``:
        the broker keeps (and after a reconnect redelivers) what the application has not made durable.
        ``receive_maximum`` (MQTT 5) tells the broker how many unacknowledged messages it may send us.
        ``name`` is the ``source`` of every received `RawMessage` (default: the URL).
        """
        endpoint = parse_url(url)
        if endpoint.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ConnectorError(
                "not an MQTT URL", url=url, hint="write mqtt://host:port or mqtts://host:port"
            )
        if protocol not in ("3.1.1", "5"):
            raise ValueError(f"protocol must be '3.1.1' or '5', not {protocol!r}")
        if not clean and not client_id:
            raise ValueError("a persistent session (clean=False) needs a fixed client_id")
        self.url = url
        self.name = name or url
        self.client_id = client_id or f"twinloop-{uuid.uuid4().hex[:12]}"
        self.protocol = protocol
        self.clean = clean
        self._endpoint = endpoint
        self._keepalive = keepalive_s
        self._session_expiry = session_expiry_s
        self._max_buffered = max_buffered
        self.manual_ack = manual_ack
        self._receive_maximum = receive_maximum
        v5 = protocol == "5"
        self._client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            clean_session=None if v5 else clean,
            protocol=paho.MQTTv5 if v5 else paho.MQTTv311,
            manual_ack=manual_ack,
        )
        # typed int in paho, but its backoff arithmetic is float; sub-second first retries shorten outages
        self._client.reconnect_delay_set(reconnect_min_s, reconnect_max_s)  # type: ignore[arg-type]
        self._client.max_inflight_messages_set(max_inflight)
        user = username if username is not None else endpoint.username
        if user is not None:
            self._client.username_pw_set(user, password if password is not None else endpoint.password)
        if endpoint.tls:
            self._client.tls_set(
                ca_certs=ca_file, certfile=cert_file, keyfile=key_file, cert_reqs=ssl.CERT_REQUIRED
            )
            self._client.tls_insecure_set(tls_insecure)
        self._client.on_connect = self._on_connect
        self._client.on_connect_fail = self._on_connect_fail
        self._client.on_disconnect = self._on_disconnect
        self._client.on_message = self._on_message
        self._client.on_subscribe = self._on_subscribe
        self._client.on_publish = self._on_publish

        self._loop: asyncio.AbstractEventLoop | None = None
        self._connected = False
        self._ever_connected = False
        self._closing = False
        self._last_error = ""
        self._first_connack: asyncio.Future[tuple[bool, str]] | None = None
        self._subscriptions: dict[str, int] = {}
        self._lock = threading.Lock()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._early: dict[int, Any] = {}
        self._inbox: deque[RawMessage] = deque()
        self._inbox_event = asyncio.Event()
        self._wake_scheduled = False
        self._availability: list[AvailabilityCallback] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        # manual acks: mids are only valid on the connection that delivered them, so every CONNACK
        # starts a new epoch and forgets the old mids (the broker redelivers those messages)
        self._ack_lock = threading.Lock()
        self._epoch = 0
        self._unacked: set[int] = set()
        self._issued = 0  # publishes paho accepted (event-loop thread writes)
        self._sent = 0  # of those, sent or acknowledged (network thread writes)
        self.dropped = 0
        """Messages lost here: QoS 0 publishes while disconnected, or received ones over ``max_buffered``."""

    # ---------------------------------------------------------------- lifecycle

    @property
    def connected(self) -> bool:
        """True while a broker session is established."""
        return self._connected

    def on_availability(self, callback: AvailabilityCallback) -> None:
        """Register ``callback(available: bool)``; it fires once per loss and once per recovery."""
        self._availability.append(callback)

    def set_will(self, topic: str, payload: bytes, qos: Literal[0, 1] = 1, retain: bool = True) -> None:
        """Leave a last will before ``connect``: the broker publishes it if we vanish without DISCONNECT.

        The usual availability pattern: will ``offline`` (retained), then publish ``online`` once connected.
        """
        self._client.will_set(topic, payload, qos=qos, retain=retain)

    async def connect(self, timeout: float = 10.0) -> MqttClient:
        """Connect and wait for the broker's CONNACK; raise ``ConnectorError`` on refusal or timeout.

        After this returns, losses are handled in the background: paho reconnects with backoff and we
        re-subscribe, so callers never reconnect by hand.
        """
        self._loop = asyncio.get_running_loop()
        self._closing = False
        self._ever_connected = False  # the first CONNACK of this connect() is not a "recovery"
        self._first_connack = self._loop.create_future()
        props = None
        clean_start: Any = paho.MQTT_CLEAN_START_FIRST_ONLY
        if self.protocol == "5":
            clean_start = self.clean
            props = Properties(PacketTypes.CONNECT)
            if not self.clean:  # expiry 0 (the default) would end the session at disconnect
                props.SessionExpiryInterval = self._session_expiry
            if self._receive_maximum:
                props.ReceiveMaximum = self._receive_maximum
            if self.clean and not self._receive_maximum:
                props = None
        host, port = self._endpoint.host, self._endpoint.port
        self._client.connect_async(
            host, port, keepalive=self._keepalive, clean_start=clean_start, properties=props
        )
        self._client.loop_start()
        try:
            ok, reason = await asyncio.wait_for(asyncio.shield(self._first_connack), timeout)
        except TimeoutError:
            await self._stop_loop()
            detail = f" (last error: {self._last_error})" if self._last_error else ""
            hint = "is the broker running and reachable from here?"
            if self.protocol == "5":
                hint += " amqtt speaks only MQTT 3.1.1"
            raise ConnectorError(
                f"no MQTT broker answered within {timeout:g} s{detail}", url=self.url, hint=hint
            ) from None
        if not ok:
            await self._stop_loop()
            raise ConnectorError(
                f"broker refused the connection: {reason}",
                url=self.url,
                hint="check username/password, client id and protocol version (amqtt speaks only 3.1.1)",
            )
        return self

    async def disconnect(self, timeout: float = 5.0) -> None:
        """Send what is queued, say goodbye and stop the network thread; no availability callback fires.

        Waits (up to ``timeout``) until every accepted publish has left (QoS 0) or been acknowledged
        (QoS 1), so a "device offline" published just before closing is not lost.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._connected and self._sent < self._issued and loop.time() < deadline:
            await asyncio.sleep(0.005)
        self._closing = True
        if self._connected:
            self._client.disconnect()
            while self._connected and loop.time() < deadline:  # _on_disconnect runs once it is written
                await asyncio.sleep(0.005)
        await self._stop_loop()
        self._connected = False
        self._inbox_event.set()  # a waiting messages() iteration sees _closing and ends

    async def _stop_loop(self) -> None:
        self._closing = True
        await asyncio.to_thread(self._client.loop_stop)

    async def __aenter__(self) -> MqttClient:
        return await self.connect()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.disconnect()

    # ---------------------------------------------------------------- publish / subscribe

    def publish_nowait(
        self, topic: str, payload: bytes, qos: Literal[0, 1] = 0, retain: bool = False
    ) -> bool:
        """Hand a message to the network thread without waiting; for hot loops.

        Returns False when it was dropped (QoS 0 while disconnected). QoS 1 messages are queued by paho
        while disconnected and sent after the reconnect.
        """
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            qos > 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN
        ):
            self._issued += 1
            return True
        self.dropped += 1
        return False

    async def publish(
        self,
        topic: str,
        payload: bytes,
        qos: Literal[0, 1] = 0,
        retain: bool = False,
        *,
        wait: bool = False,
        timeout: float = 10.0,
    ) -> None:
        """Publish one message; with ``qos=1, wait=True`` return only after the broker's PUBACK.

        Raises ``ConnectorError`` for a QoS 0 message while disconnected (it would be lost) and when the
        PUBACK does not come within ``timeout``.
        """
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and qos == 0:
            self.dropped += 1
            raise ConnectorError(
                "not connected; QoS 0 message dropped", url=self.url, hint="use qos=1 to queue"
            )
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise ConnectorError(f"publish failed: {paho.error_string(info.rc)}", url=self.url)
        self._issued += 1
        if qos == 0 or not wait:
            return
        try:
            await asyncio.wait_for(self._acked(info), timeout)
        except TimeoutError:
            raise ConnectorError(f"no PUBACK for {topic!r} within {timeout:g} s", url=self.url) from None

    async def _acked(self, info: paho.MQTTMessageInfo) -> None:
        # paho sets is_published() just *after* on_publish, so poll it as a fallback for the small window
        # in which the PUBACK arrives before our future is registered.
        assert self._loop is not None
        fut = self._loop.create_future()
        with self._lock:
            self._pending[info.mid] = fut
        try:
            while not info.is_published():
                try:
                    await asyncio.wait_for(asyncio.shield(fut), 0.05)
                    return
                except TimeoutError:
                    continue
        finally:
            with self._lock:
                self._pending.pop(info.mid, None)

    async def subscribe(self, topic_filter: str, qos: Literal[0, 1] = 1, timeout: float = 10.0) -> None:
        """Subscribe and wait for the SUBACK; remembered and renewed after every reconnect."""
        self._subscriptions[topic_filter] = qos
        if not self._connected:
            return  # _on_connect subscribes when the connection is (re)established
        assert self._loop is not None
        fut: asyncio.Future[Any] = self._loop.create_future()
        rc, mid = self._client.subscribe(topic_filter, qos)
        if rc != MQTTErrorCode.MQTT_ERR_SUCCESS or mid is None:
            return  # lost the connection just now; the reconnect subscribes
        with self._lock:
            if mid in self._early:
                fut.set_result(self._early.pop(mid))
            else:
                self._pending[mid] = fut
        try:
            codes = await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise ConnectorError(
                f"no SUBACK for {topic_filter!r} within {timeout:g} s", url=self.url
            ) from None
        finally:
            with self._lock:
                self._pending.pop(mid, None)
        if any(code.is_failure for code in codes):
            del self._subscriptions[topic_filter]
            raise ConnectorError(f"broker refused subscription {topic_filter!r}: {codes[0]}", url=self.url)

    def ack(self, message: RawMessage) -> bool:
        """Send the PUBACK of a QoS 1 message received with ``manual_ack``; True when one went out.

        Idempotent and safe at any time: a message already acknowledged, one of QoS 0, or one delivered on
        an earlier connection (the broker redelivers that one; its mid may now name another message) is
        answered with False and nothing is sent.
        """
        return self.ack_many((message,)) == 1

    def ack_many(self, messages: Iterable[RawMessage]) -> int:
        """`ack` for a committed batch under one lock; returns how many PUBACKs went out."""
        if not self.manual_ack:
            return 0
        sent, ok, client = 0, MQTTErrorCode.MQTT_ERR_SUCCESS, self._client
        with self._ack_lock:
            epoch, unacked = self._epoch, self._unacked
            for message in messages:
                meta = message.meta
                if meta.get("qos") != 1 or meta.get("epoch") != epoch:
                    continue
                mid = meta.get("mid")
                if mid not in unacked:
                    continue
                unacked.discard(mid)
                if client.ack(mid, 1) == ok:
                    sent += 1
        return sent

    @property
    def unacked(self) -> int:
        """Received QoS 1 messages of this connection still waiting for ``ack``."""
        return len(self._unacked)

    async def messages(self) -> AsyncIterator[RawMessage]:
        """Every received message, in arrival order, as ``RawMessage`` (meta: qos, retain, mid).

        One consumer at a time; messages received before iteration starts are buffered. The iteration
        ends once ``disconnect`` was called and the buffer is empty.
        """
        inbox, event = self._inbox, self._inbox_event
        while True:
            while inbox:
                yield inbox.popleft()
            if self._closing:
                return
            event.clear()
            if not inbox:
                await event.wait()

    # ---------------------------------------------------------------- paho callbacks (network thread)

    def _call(self, fn: Callable[..., Any], *args: Any) -> None:
        loop = self._loop
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    def _on_connect(self, client: paho.Client, _: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._last_error = str(reason)
            self._call(self._resolve_first_connack, False, str(reason))
            return
        with self._ack_lock:
            self._epoch += 1
            self._unacked.clear()
        self._connected = True
        if not flags.session_present:
            for topic_filter, qos in list(self._subscriptions.items()):
                client.subscribe(topic_filter, qos)
        self._call(self._resolve_first_connack, True, "")
        if self._ever_connected:
            _log.info("MQTT connection to %s is back", self.url)
            self._call(self._notify, True)
        self._ever_connected = True

    def _on_connect_fail(self, client: paho.Client, _: Any) -> None:
        self._last_error = "connection refused or unreachable"

    def _on_disconnect(self, client: paho.Client, _: Any, flags: Any, reason: Any, props: Any) -> None:
        was_connected, self._connected = self._connected, False
        if not was_connected and not self._closing:
            self._last_error = f"broker closed the connection before CONNACK ({reason})"
        if was_connected and not self._closing:
            self._last_error = str(reason)
            _log.warning("MQTT connection to %s lost (%s); reconnecting in the background", self.url, reason)
            self._call(self._notify, False)

    def _on_message(self, client: paho.Client, _: Any, msg: paho.MQTTMessage) -> None:
        if len(self._inbox) >= self._max_buffered:
            self.dropped += 1
            return
        meta = {"qos": msg.qos, "retain": bool(msg.retain), "mid": msg.mid, "epoch": self._epoch,
                "dup": bool(msg.dup)}
        if self.manual_ack and msg.qos == 1:
            with self._ack_lock:
                self._unacked.add(msg.mid)
        self._inbox.append(RawMessage(self.name, msg.topic, msg.payload, time.time_ns(), meta))
        if not self._wake_scheduled:
            self._wake_scheduled = True
            self._call(self._wake)

    def _on_subscribe(self, client: paho.Client, _: Any, mid: int, codes: list[Any], props: Any) -> None:
        with self._lock:
            fut = self._pending.pop(mid, None)
            if fut is None:
                self._early[mid] = codes
                if len(self._early) > 256:  # SUBACKs of reconnect re-subscriptions nobody waits for
                    self._early.pop(next(iter(self._early)))
                return
        self._call(_set_result, fut, codes)

    def _on_publish(self, client: paho.Client, _: Any, mid: int, reason: Any, props: Any) -> None:
        self._sent += 1  # QoS 0: written to the socket; QoS 1: PUBACK received
        with self._lock:
            fut = self._pending.pop(mid, None)
        if fut is not None:
            self._call(_set_result, fut, reason)

    # ---------------------------------------------------------------- event-loop side

    def _wake(self) -> None:
        self._wake_scheduled = False
        self._inbox_event.set()

    def _resolve_first_connack(self, ok: bool, reason: str) -> None:
        if self._first_connack is not None and not self._first_connack.done():
            self._first_connack.set_result((ok, reason))

    def _notify(self, available: bool) -> None:
        for callback in self._availability:
            try:
                result = callback(available)
                if asyncio.iscoroutine(result):
                    task = asyncio.ensure_future(result)
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
            except Exception:  # a broken observer must not break the connection
                _log.exception("availability callback %r failed", callback)


def _set_result(fut: asyncio.Future[Any], value: Any) -> None:
    if not fut.done():
        fut.set_result(value)


__all__ = ["AvailabilityCallback", "MqttClient"]
