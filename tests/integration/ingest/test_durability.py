"""Nothing acknowledged is lost, nothing is stored twice: SIGKILL the runtime, restart the broker.

The simulator publishes flat telemetry at QoS 1 to Mosquitto (which keeps persistent sessions and,
with persistence, survives its own restart); the runtime's session is persistent and it acks a
message only after the transaction holding its readings committed. Each sample of a device has its
own simulated ``ts``, so "every sample exactly once" is: per device, the distinct timestamps stored
equal the samples published (``seq`` 0 … n-1), and no (channel, ts) is stored twice.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from twinloop.connectors.broker import MosquittoBroker
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path
from twinloop.store.factory import open_store

from ...conftest import need_service
from .conftest import Station, eventually

pytestmark = pytest.mark.service


def check_exactly_once(store_url: str, published: dict[str, int]) -> dict[str, int]:
    """Per device: samples stored (distinct ts); fails on any (channel, ts) stored twice."""
    store = open_store(store_url)
    try:
        stored = {}
        for device in published:
            batch = store.history(device, limit=None)
            pairs = Counter(zip(batch.channels.tolist(), batch.ts_ns.tolist(), strict=True))
            twice = [p for p, n in pairs.items() if n > 1]
            assert not twice, f"{device}: stored twice: {twice[:3]}"
            stored[device] = len(set(batch.ts_ns.tolist()))
        return stored
    finally:
        store.close()


class RuntimeProcess:
    """``python -m twinloop.runtime.wiring`` with settings in the environment."""

    def __init__(self, data_dir: Path, mapping: Path, mqtt_url: str) -> None:
        self.env = {**os.environ, "TWINLOOP_DATA_DIR": str(data_dir),
                    "TWINLOOP_PLANT": str(example_plant_path()), "TWINLOOP_MAPPING": str(mapping),
                    "TWINLOOP_MQTT_URL": mqtt_url,
                    "TWINLOOP_LOG_LEVEL": "info", "TWINLOOP_MQTT_CLIENT_ID": "durability-runtime"}
        self.log = data_dir / "runtime.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> None:
        offset = self.log.stat().st_size if self.log.exists() else 0
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen([sys.executable, "-m", "twinloop.runtime.wiring"], env=self.env,
                                         stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while "runtime ready" not in self.log.read_text(errors="replace")[offset:]:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"runtime did not get ready: {self.log.read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                pytest.fail("runtime did not stop within 30 s of SIGTERM")
            assert self.proc.returncode == 0, self.log.read_text(errors="replace")[-2000:]


async def test_sigkill_mid_stream_then_restart_loses_and_duplicates_nothing(tmp_path: Path,
                                                                             mapping: Path) -> None:
    need_service(MosquittoBroker.available(), "mosquitto (apt-get install mosquitto)")
    with MosquittoBroker(persistence=True) as broker:
        runtime = RuntimeProcess(tmp_path, mapping, broker.url)
        await asyncio.to_thread(runtime.start)
        station = await Station(broker.url, speed=50.0).start(duration_s=200)  # ~4 s of wall time
        try:
            await asyncio.sleep(1.5)
            runtime.kill()  # mid-stream: batches in flight, acks outstanding
            await asyncio.sleep(0.5)
            await asyncio.to_thread(runtime.start)
            await station.wait(60)
        finally:
            await station.stop()
        published = station.published()
        assert sum(published.values()) > 2000
        url = load_settings(data_dir=tmp_path).resolved_store_url
        stored: dict[str, int] = {}
        for _ in range(5):  # let it drain; a clean stop commits and acks what is queued
            await asyncio.sleep(2)
            await asyncio.to_thread(runtime.stop)
            stored = check_exactly_once(url, published)
            if stored == published:
                break
            await asyncio.to_thread(runtime.start)
        runtime.stop()
        missing = {d: published[d] - stored.get(d, 0) for d in published if stored.get(d) != published[d]}
        assert not missing, f"samples missing per device: {missing}"


async def test_broker_restart_the_runtime_reconnects_and_nothing_is_lost(tmp_path: Path,
                                                                         mapping: Path) -> None:
    need_service(MosquittoBroker.available(), "mosquitto (apt-get install mosquitto)")
    broker = MosquittoBroker(persistence=True).start()
    settings = load_settings(data_dir=tmp_path, plant=example_plant_path(), mapping=mapping,
                             mqtt_url=broker.url, mqtt_client_id="restart-runtime")
    try:
        with Runtime.open(settings) as rt:
            await rt.start()
            assert rt.ingestion is not None and await rt.ingestion.wait_connected()
            station = await Station(broker.url, speed=50.0).start(duration_s=200)
            try:
                await asyncio.sleep(1.5)
                await asyncio.to_thread(broker.stop)
                await eventually(lambda: rt.connections.twin_status("pump-A1") == "offline", 10,
                                 "pump-A1 offline while the broker is down")
                await asyncio.sleep(0.5)
                await asyncio.to_thread(broker.start)
                await eventually(lambda: rt.connections.get("mqtt").connected, 30, "runtime reconnected")
                await station.wait(60)
            finally:
                await station.stop()
            published = station.published()

            def complete() -> bool:
                return all(rt.store.count_readings(d) > 0 for d in published) and all(
                    len(set(rt.store.history(d, ["flow" if d.startswith("pump") else "level"], limit=None)
                            .ts_ns.tolist())) >= published[d]
                    for d in published if d.startswith(("pump", "tank")))

            await eventually(complete, 30, "every published sample stored")
            await rt.stop()
        stored = check_exactly_once(settings.resolved_store_url, published)
        assert stored == published
        assert rt.connections.get("mqtt").errors >= 1
    finally:
        broker.stop()
