"""Every Source passes `connectors.checks`: the fake, MQTT (embedded amqtt and mosquitto) and file replay."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from twinloop.connectors import checks
from twinloop.connectors.broker import EmbeddedBroker, MosquittoBroker
from twinloop.connectors.fake import FakeSource
from twinloop.connectors.file_replay import FileReplaySource
from twinloop.connectors.mqtt import MqttClient
from twinloop.connectors.mqtt_source import MqttSource

from ..conftest import need_service

_ids = itertools.count()


def fake_harness() -> checks.SourceHarness:
    async def prepare(n: int) -> FakeSource:
        source = FakeSource("fake")
        await source.start()
        source.push_many((f"t/{i}", b"x") for i in range(n))
        return source

    return checks.SourceHarness("fake", prepare, timeout_s=2)


def mqtt_harness(url: str, protocol: Any) -> checks.SourceHarness:
    async def prepare(n: int) -> MqttSource:
        topic = f"conf/{next(_ids)}"
        source = MqttSource(url, [f"{topic}/#"], client_id=f"conformance-{next(_ids)}", persistent=False,
                            protocol=protocol)
        await source.start()
        async with MqttClient(url) as pub:
            for i in range(n):
                await pub.publish(f"{topic}/{i}", b"%d" % i, qos=1, wait=True)
        return source

    return checks.SourceHarness(f"mqtt-{protocol}", prepare)


def file_harness(tmp: Path) -> checks.SourceHarness:
    async def prepare(n: int) -> FileReplaySource:
        path = tmp / f"replay-{next(_ids)}.parquet"
        pq.write_table(pa.table({"asset_id": ["p1"] * n, "channel": ["flow"] * n,
                                 "ts": list(range(n)), "value": [1.0] * n}), path)
        source = FileReplaySource(path)
        await source.start()
        return source

    return checks.SourceHarness("file", prepare, timeout_s=2)


@pytest.fixture(scope="module")
def amqtt() -> Iterator[EmbeddedBroker]:
    with EmbeddedBroker() as broker:
        yield broker


@pytest.fixture(scope="module")
def mosquitto() -> Iterator[MosquittoBroker]:
    need_service(MosquittoBroker.available(), "mosquitto (apt-get install mosquitto)")
    with MosquittoBroker() as broker:
        yield broker


@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.__name__)
async def test_fake_source(check: Any) -> None:
    await check(fake_harness())


@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.__name__)
async def test_file_replay_source(check: Any, tmp_path: Path) -> None:
    await check(file_harness(tmp_path))


@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.__name__)
async def test_mqtt_source_on_amqtt(check: Any, amqtt: EmbeddedBroker) -> None:
    await check(mqtt_harness(amqtt.url, "3.1.1"))


@pytest.mark.service
@pytest.mark.parametrize("check", checks.CHECKS, ids=lambda c: c.__name__)
async def test_mqtt_source_on_mosquitto(check: Any, mosquitto: MosquittoBroker) -> None:
    await check(mqtt_harness(mosquitto.url, "5"))


async def test_file_replay_rows_become_json_payloads_on_templated_topics(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("asset_id,channel,ts,value\np1,flow,1000,1.5\np2,head,2000,3.0\n")
    source = FileReplaySource(path, topic="replay/{asset_id}/{channel}")
    await source.start()
    got = [m async for m in source.stream()]
    assert [m.topic for m in got] == ["replay/p1/flow", "replay/p2/head"]
    assert json.loads(got[0].payload) == {"asset_id": "p1", "channel": "flow", "ts": 1000, "value": 1.5}
    await source.ack(got[1])
    await source.ack(got[1])
    assert source.acked == 1


async def test_file_replay_of_recorded_messages_keeps_topic_and_payload(tmp_path: Path) -> None:
    path = tmp_path / "rec.parquet"
    pq.write_table(pa.table({"topic": ["a/b"], "payload": [b"\x00raw"]}), path)
    source = FileReplaySource(path)
    await source.start()
    (m,) = [m async for m in source.stream()]
    assert (m.topic, m.payload) == ("a/b", b"\x00raw")


async def test_file_replay_keeps_the_original_pace_scaled_by_speed(tmp_path: Path) -> None:
    import time

    path = tmp_path / "paced.csv"
    path.write_text("asset_id,ts,value\np1,0,1\np1,1000000000,2\n")  # one second apart
    source = FileReplaySource(path, speed=10)
    await source.start()
    t0 = time.monotonic()
    assert len([m async for m in source.stream()]) == 2
    assert time.monotonic() - t0 >= 0.09  # 1 s of recording at 10x


async def test_file_replay_names_a_missing_template_column(tmp_path: Path) -> None:
    from twinloop.connectors.urls import ConnectorError

    path = tmp_path / "r.csv"
    path.write_text("a,ts\n1,2\n")
    with pytest.raises(ConnectorError, match="asset_id"):
        await FileReplaySource(path).start()
