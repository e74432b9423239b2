"""`MqttSource`: MQTT subscriptions as a `Source`, acknowledging QoS 1 messages only when told to.

With ``qos=1`` every message's PUBACK is withheld until the pipeline calls ``ack(message)`` after the
data is durably stored, and the session is persistent (stable client id, ``clean=False``): a crash
before the ack leaves the message with the broker, which redelivers it when we come back.

MQTT 5 lets us tell the broker how many unacknowledged messages it may send (``receive_maximum``);
MQTT 3.1.1 leaves that to the broker, and mosquitto's default of 20 in flight per client then paces
ingestion to 20 messages per pipeline commit. Prefer ``protocol="5"`` with mosquitto; amqtt speaks
only 3.1.1 (and keeps persistent sessions only for clients with credentials).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Literal

from twinloop.connectors.mqtt import AvailabilityCallback, MqttClient
from twinloop.connectors.urls import ConnectorError
from twinloop.core.protocols import RawMessage


class MqttSource:
    """Messages of one broker connection, on ``topics``; see the module docstring."""

    def __init__(
        self,
        url: str,
        topics: Sequence[str],
        *,
        name: str | None = None,
        client_id: str | None = None,
        qos: Literal[0, 1] = 1,
        protocol: Literal["3.1.1", "5"] = "3.1.1",
        persistent: bool = True,
        username: str | None = None,
        password: str | None = None,
        ca_file: str | None = None,
        cert_file: str | None = None,
        key_file: str | None = None,
        tls_insecure: bool = False,
        receive_maximum: int = 65_535,
        session_expiry_s: int = 7 * 24 * 3600,
        reconnect_min_s: float = 0.2,
        reconnect_max_s: float = 30.0,
    ) -> None:
        """Store settings; nothing touches the network before ``start``.

        ``persistent`` (the default) needs ``client_id``: the broker knows the session by it.
        """
        if not topics:
            raise ValueError("an MqttSource needs at least one topic filter")
        if qos not in (0, 1):
            raise ValueError(f"qos must be 0 or 1, not {qos!r}")
        if persistent and not client_id:
            raise ValueError("a persistent MQTT session needs a stable client_id")
        self.url = url
        self.name = name or url
        self.topics = tuple(topics)
        self.qos: Literal[0, 1] = qos
        self.client = MqttClient(
            url,
            client_id=client_id,
            protocol=protocol,
            username=username,
            password=password,
            ca_file=ca_file,
            cert_file=cert_file,
            key_file=key_file,
            tls_insecure=tls_insecure,
            clean=not persistent,
            session_expiry_s=session_expiry_s,
            reconnect_min_s=reconnect_min_s,
            reconnect_max_s=reconnect_max_s,
            manual_ack=qos == 1,
            receive_maximum=receive_maximum if protocol == "5" else None,
            name=self.name,
        )
        self.received = 0
        self.acked = 0
        self._started = False

    @property
    def connected(self) -> bool:
        """True while the broker session is up (the client reconnects on its own when it is not)."""
        return self.client.connected

    @property
    def dropped(self) -> int:
        """Messages the client could not buffer (see `MqttClient.dropped`)."""
        return self.client.dropped

    def on_availability(self, callback: AvailabilityCallback) -> None:
        """``callback(False)`` once when the broker is lost, ``callback(True)`` once when it is back."""
        self.client.on_availability(callback)

    async def start(self, timeout: float = 10.0) -> None:
        """Connect and subscribe; ``ConnectorError`` when the broker refuses or does not answer."""
        await self.client.connect(timeout)
        try:
            for topic in self.topics:
                await self.client.subscribe(topic, qos=self.qos, timeout=timeout)
        except ConnectorError:
            await self.client.disconnect()
            raise
        self._started = True

    async def stream(self) -> AsyncIterator[RawMessage]:
        """Every message on the subscribed topics, until ``stop``."""
        async for message in self.client.messages():
            self.received += 1
            yield message

    async def ack(self, message: RawMessage) -> None:
        """Send the PUBACK (QoS 1); idempotent, and a no-op for QoS 0 and for stale connections."""
        self.acked += self.client.ack_many((message,))

    def ack_many(self, messages: Iterable[RawMessage]) -> int:
        """`ack` for a whole committed batch, without one await per message; returns PUBACKs sent."""
        sent = self.client.ack_many(messages)
        self.acked += sent
        return sent

    async def stop(self) -> None:
        """Disconnect cleanly; unacknowledged messages stay with the broker for the next session."""
        if self._started:
            self._started = False
            await self.client.disconnect()


__all__ = ["MqttSource"]
