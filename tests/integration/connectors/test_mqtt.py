"""MqttClient against real brokers on loopback: embedded amqtt always, mosquitto when installed (CI)."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from twinloop.connectors.broker import EmbeddedBroker, MosquittoBroker
from twinloop.connectors.mqtt import MqttClient
from twinloop.connectors.urls import ConnectorError, free_port
from twinloop.core.protocols import RawMessage

from ...conftest import need_service

BROKERS = {"amqtt": EmbeddedBroker, "mosquitto": MosquittoBroker}
KINDS = [
    pytest.param("amqtt", id="amqtt"),
    pytest.param("mosquitto", id="mosquitto", marks=pytest.mark.service),
]


def make_broker(kind: str, **kwargs: object) -> EmbeddedBroker | MosquittoBroker:
    if kind == "mosquitto":
        need_service(MosquittoBroker.available(), "mosquitto (apt-get install mosquitto)")
    return BROKERS[kind](**kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module", params=KINDS)
def broker(request: pytest.FixtureRequest) -> Iterator[EmbeddedBroker | MosquittoBroker]:
    """One anonymous broker per kind for the tests that do not stop it."""
    with make_broker(request.param) as running:
        yield running


async def take(client: MqttClient, n: int, timeout: float = 5.0, strict: bool = True) -> list[RawMessage]:
    """The next ``n`` messages; after ``timeout`` fail (or, not ``strict``, return what arrived)."""
    got: list[RawMessage] = []

    async def collect() -> None:
        async for message in client.messages():
            got.append(message)
            if len(got) == n:
                return

    try:
        await asyncio.wait_for(collect(), timeout)
    except TimeoutError:
        if not strict:
            return got
        pytest.fail(f"received {len(got)} of {n} messages within {timeout} s: {[m.topic for m in got]}")
    return got


async def wait_until(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(0.02)


async def test_qos0_and_qos1_reach_wildcard_subscribers_with_bytes_intact(broker: EmbeddedBroker) -> None:
    payload = bytes(range(256)) * 4  # every byte value, incl. NUL and invalid UTF-8
    async with (
        MqttClient(broker.url) as telemetry,
        MqttClient(broker.url) as everything,
        MqttClient(broker.url) as pub,
    ):
        await telemetry.subscribe("twin/+/telemetry", qos=1)
        await everything.subscribe("#", qos=1)
        await pub.publish("twin/pump-A1/telemetry", payload, qos=0)
        await pub.publish("twin/pump-A2/telemetry", b'{"flow": 12.5}', qos=1, wait=True)
        await pub.publish("twin/pump-A1/status", b"online", qos=1, wait=True)

        got = await take(telemetry, 2)
        assert [m.topic for m in got] == ["twin/pump-A1/telemetry", "twin/pump-A2/telemetry"]
        # MQTT grants min(publish QoS, subscription QoS); amqtt 0.12 upgrades QoS 0 to the subscription's
        assert [m.meta["qos"] for m in got] == ([1, 1] if isinstance(broker, EmbeddedBroker) else [0, 1])
        assert got[0].payload == payload
        assert got[1].payload == b'{"flow": 12.5}'
        assert got[0].source == broker.url and got[0].received_ns > 0 and got[0].meta["retain"] is False

        topics = [m.topic for m in await take(everything, 3)]
        assert topics == ["twin/pump-A1/telemetry", "twin/pump-A2/telemetry", "twin/pump-A1/status"]


async def test_publish_nowait_burst_arrives_complete_and_in_order(broker: EmbeddedBroker) -> None:
    n = 3000
    async with MqttClient(broker.url) as sub, MqttClient(broker.url) as pub:
        await sub.subscribe("burst/#", qos=0)
        for i in range(n):
            assert pub.publish_nowait(f"burst/{i % 7}", str(i).encode())
        got = await take(sub, n, timeout=10)
    assert [int(m.payload) for m in got] == list(range(n))


async def test_retained_message_reaches_late_subscriber(broker: EmbeddedBroker) -> None:
    async with MqttClient(broker.url) as pub:
        await pub.publish("twin/pump-R/config", b"v1", qos=1, retain=True, wait=True)
        async with MqttClient(broker.url) as late:
            await late.subscribe("twin/pump-R/config", qos=1)
            (message,) = await take(late, 1)
        assert message.payload == b"v1" and message.meta["retain"] is True
        await pub.publish("twin/pump-R/config", b"", qos=1, retain=True, wait=True)  # clear it


@pytest.mark.parametrize("kind", KINDS)
async def test_persistent_session_receives_qos1_sent_while_away(kind: str) -> None:
    # amqtt 0.12 queues offline messages only for authenticated (non-anonymous) sessions: use credentials.
    with make_broker(kind, username="sim", password="s3cret") as broker:
        subscriber = MqttClient(
            broker.url, client_id="ingest-1", clean=False, username="sim", password="s3cret"
        )
        await subscriber.connect()
        await subscriber.subscribe("twin/+/telemetry", qos=1)
        await subscriber.disconnect()

        async with MqttClient(broker.url, username="sim", password="s3cret") as pub:
            for i in range(3):
                await pub.publish(f"twin/p{i}/telemetry", f"m{i}".encode(), qos=1, wait=True)

        again = MqttClient(broker.url, client_id="ingest-1", clean=False, username="sim", password="s3cret")
        await again.connect()
        try:
            got = await take(again, 3)
        finally:
            await again.disconnect()
    assert sorted(m.payload for m in got) == [b"m0", b"m1", b"m2"]


@pytest.mark.parametrize("kind", KINDS)
async def test_wrong_password_is_refused_with_the_url(kind: str) -> None:
    with make_broker(kind, username="sim", password="s3cret") as broker:
        client = MqttClient(broker.url, username="sim", password="wrong")
        with pytest.raises(ConnectorError, match="refused") as info:
            await client.connect(timeout=5)
    assert broker.url in str(info.value)


async def test_unreachable_broker_times_out_with_the_url() -> None:
    url = f"mqtt://127.0.0.1:{free_port()}"
    started = time.monotonic()
    with pytest.raises(ConnectorError, match="no MQTT broker answered") as info:
        await MqttClient(url, reconnect_min_s=0.1).connect(timeout=0.5)
    assert url in str(info.value) and time.monotonic() - started < 3


async def test_mqtt5_against_mosquitto_and_amqtt_refuses_it() -> None:
    with EmbeddedBroker() as amqtt:
        with pytest.raises(ConnectorError, match="Unsupported protocol version"):
            await MqttClient(amqtt.url, protocol="5").connect(timeout=5)
    need_service(MosquittoBroker.available(), "mosquitto (apt-get install mosquitto)")
    with MosquittoBroker() as mosquitto:
        async with (
            MqttClient(mosquitto.url, protocol="5") as sub,
            MqttClient(mosquitto.url, protocol="5") as pub,
        ):
            await sub.subscribe("v5/#", qos=1)
            await pub.publish("v5/x", b"hello", qos=1, wait=True)
            (message,) = await take(sub, 1)
            assert message.payload == b"hello"

            # persistent v5 session: clean_start=False plus a session expiry interval
            away = MqttClient(mosquitto.url, protocol="5", client_id="ingest-v5", clean=False)
            await away.connect()
            await away.subscribe("v5/#", qos=1)
            await away.disconnect()
            await pub.publish("v5/y", b"while away", qos=1, wait=True)
            async with MqttClient(mosquitto.url, protocol="5", client_id="ingest-v5", clean=False) as back:
                (message,) = await take(back, 1)
            assert message.payload == b"while away"


@pytest.mark.parametrize("kind", KINDS)
async def test_outage_fires_availability_once_each_way_and_resubscribes(kind: str) -> None:
    broker = make_broker(kind).start()
    events: list[bool] = []
    try:
        sub = MqttClient(broker.url, reconnect_min_s=0.1, reconnect_max_s=0.5, keepalive_s=5)
        sub.on_availability(events.append)
        await sub.connect()
        await sub.subscribe("twin/+/telemetry", qos=1)

        broker.stop()
        await wait_until(lambda: not sub.connected, 5, "the client to notice the broker is gone")
        await asyncio.sleep(0.6)  # several failed reconnect attempts must not log or notify again
        assert events == [False]
        assert sub.publish_nowait("twin/x/telemetry", b"lost") is False and sub.dropped == 1

        broker.start()  # same port
        await wait_until(lambda: sub.connected, 8, "the client to reconnect")
        await wait_until(lambda: events == [False, True], 2, "the recovery callback")
        async with MqttClient(broker.url) as pub:
            # the re-subscription races our first publish; retry until it lands
            got: list[RawMessage] = []
            for _ in range(40):
                await pub.publish("twin/pump-A1/telemetry", b"after", qos=1, wait=True)
                got = await take(sub, 1, timeout=0.2, strict=False)
                if got:
                    break
        assert [m.payload for m in got] == [b"after"]
        await sub.disconnect()
        assert events == [False, True]  # a deliberate disconnect is not an outage
    finally:
        broker.stop()


@pytest.mark.service
async def test_mosquitto_persistence_keeps_retained_messages_across_a_restart() -> None:
    need_service(MosquittoBroker.available(), "mosquitto (apt-get install mosquitto)")
    broker = MosquittoBroker(persistence=True).start()
    try:
        async with MqttClient(broker.url) as pub:
            await pub.publish("twin/pump-A1/config", b"v7", qos=1, retain=True, wait=True)
        broker.stop()  # SIGTERM: mosquitto writes its persistence file
        broker.start()
        async with MqttClient(broker.url) as late:
            await late.subscribe("twin/+/config", qos=1)
            (message,) = await take(late, 1)
        assert message.payload == b"v7"
    finally:
        broker.stop()


async def test_last_will_is_published_when_the_client_vanishes(broker: EmbeddedBroker) -> None:
    async with MqttClient(broker.url) as watcher:
        await watcher.subscribe("plant/+/status", qos=1)
        gateway = MqttClient(broker.url, reconnect_min_s=5)
        gateway.set_will("plant/p1/status", b"offline", qos=1, retain=False)
        await gateway.connect()
        try:
            await gateway.publish("plant/p1/status", b"online", qos=1, wait=True)
            gateway._client.socket().shutdown(socket.SHUT_RDWR)  # a cut cable: no DISCONNECT packet
            got = await take(watcher, 2)
        finally:
            await gateway.disconnect()
    assert [m.payload for m in got] == [b"online", b"offline"]


async def test_disconnect_first_sends_what_was_published(broker: EmbeddedBroker) -> None:
    async with MqttClient(broker.url) as sub:
        await sub.subscribe("bye/#", qos=1)
        pub = await MqttClient(broker.url).connect()
        for i in range(150):  # more QoS 1 than paho keeps in flight (100)
            pub.publish_nowait(f"bye/{i}", b"offline", qos=1)
        for i in range(50):
            pub.publish_nowait(f"bye/q0/{i}", b"offline", qos=0)
        await pub.disconnect()  # at once: must drain, not drop
        got = await take(sub, 200)
    assert len({m.topic for m in got}) == 200


def test_the_embedded_broker_goes_when_its_owner_is_killed() -> None:
    """A runtime killed with SIGKILL must not leave its broker holding the port (a restarted
    runtime would otherwise listen on another port while devices publish to the orphan)."""
    import signal
    import subprocess
    import sys
    import textwrap

    from twinloop.connectors.urls import port_open

    owner = subprocess.Popen([sys.executable, "-c", textwrap.dedent("""
        import time
        from twinloop.connectors.broker import EmbeddedBroker
        broker = EmbeddedBroker().start()
        print(broker.port, flush=True)
        time.sleep(600)
    """)], stdout=subprocess.PIPE, text=True)
    try:
        assert owner.stdout is not None
        port = int(owner.stdout.readline())
        assert port_open("127.0.0.1", port)
        owner.send_signal(signal.SIGKILL)
        owner.wait(10)
        deadline = time.monotonic() + 10
        while port_open("127.0.0.1", port) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not port_open("127.0.0.1", port), "the orphaned broker still holds the port"
    finally:
        if owner.poll() is None:
            owner.kill()
