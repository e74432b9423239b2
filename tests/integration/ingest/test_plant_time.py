"""Plant time as the README documents it: ``twinloop simulate pump-station --embedded-broker --speed 60``
in one process, ``twinloop serve``'s runtime pointed at that broker in another, default settings (no
special clock skew). The simulator's readings run ahead of the wall clock by 59 s every second; they
are judged by the clock it announces, so they are stored and every twin is online."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from twinloop.connectors.broker import MosquittoBroker
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path

from ...conftest import need_service
from .conftest import eventually

S = 1_000_000_000
URL = re.compile(r"(mqtt://127\.0\.0\.1:\d+)")


class Simulator:
    """``python -m twinloop simulate …`` as a user starts it, its output read in the background."""

    def __init__(self, *args: str) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200"}
        self.proc = subprocess.Popen([sys.executable, "-m", "twinloop", "simulate", "pump-station", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    def said(self, text: str) -> bool:
        if self.proc.poll() is not None and not any(text in line for line in self.lines):
            pytest.fail("the simulator exited:\n" + "".join(self.lines))
        return any(text in line for line in self.lines)

    def broker_url(self) -> str:
        found = [m.group(1) for line in self.lines if (m := URL.search(line))]
        assert found, "".join(self.lines)
        return found[0]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def simulator() -> Iterator[Simulator]:
    sim = Simulator("--embedded-broker", "--speed", "60")
    yield sim
    sim.stop()


async def mirrors_plant_time(tmp_path: Path, url: str) -> None:
    """A runtime as ``twinloop serve --plant examples/pump-station/plant.yaml`` builds it, on ``url``."""
    settings = load_settings(data_dir=tmp_path, plant=example_plant_path(), mqtt_url=url)
    assert settings.ingest_max_future_s == 300  # the strict default of a real plant
    with Runtime.open(settings, bootstrap=True) as rt:
        await rt.start()
        try:
            assert rt.ingestion is not None and await rt.ingestion.wait_connected(60)
            # plant time well past the 5 minutes of skew the wall clock would allow
            def ahead_s() -> float:
                latest = rt.state.latest("pump-A1")
                return max((c.ts_ns for c in latest), default=0) / S - time.time()

            assert rt.ingestion.pipeline is not None
            stats = rt.ingestion.pipeline.stats
            await eventually(lambda: stats.readings > 50_000 and ahead_s() > 900, 180,
                             "50 k readings stored, 15 min of plant time ahead of the wall")
            pumps = [t.id for t in rt.twins.list("Pump")]
            await eventually(lambda: all(rt.connections.twin_status(p) == "online" for p in pumps), 60,
                             "every pump online")
            assert stats.rejected <= 0.01 * stats.readings, f"{stats.rejected} of {stats.readings} rejected"
            row = rt.connections.get("mqtt")
            assert row.status == "connected" and row.rejecting is None
            assert rt.store.count_readings("pump-A1") > 50 and rt.store.count_readings("tank-A") > 5
        finally:
            await rt.stop()


async def test_serve_mirrors_the_simulator_at_60x_as_the_readme_shows(tmp_path: Path,
                                                                     simulator: Simulator) -> None:
    await eventually(lambda: simulator.said("simulating pump-station"), 180, "the simulator to start")
    await mirrors_plant_time(tmp_path, simulator.broker_url())


@pytest.mark.service
async def test_serve_on_mosquitto_mirrors_the_simulator_at_60x(tmp_path: Path) -> None:
    need_service(MosquittoBroker.available(), "mosquitto (apt-get install mosquitto)")
    with MosquittoBroker() as broker:
        sim = Simulator("--mqtt", broker.url, "--speed", "60", "--qos", "1")
        try:
            await eventually(lambda: sim.said("simulating pump-station"), 180, "the simulator to start")
            await mirrors_plant_time(tmp_path, broker.url)
        finally:
            sim.stop()


async def test_the_opcua_clock_gives_ingest_the_plants_time() -> None:
    """The OPC UA transport's clock variables, read through `OpcUaSource` as the runtime reads them."""
    import asyncio

    from twinloop.connectors.opcua import OpcUaServer
    from twinloop.connectors.opcua_source import OpcUaSource
    from twinloop.connectors.urls import free_port
    from twinloop.ingest.clock import PlantClocks
    from twinloop.sim.opcua_transport import OpcUaTransport
    from twinloop.sim.pump_station import PumpStationPlant
    from twinloop.sim.runner import SimRunner

    endpoint = f"opc.tcp://127.0.0.1:{free_port('127.0.0.1')}/twinloop/"
    server = await OpcUaServer(endpoint).start()
    plant = PumpStationPlant(seed=1)
    runner = SimRunner(plant, speed=20.0, sample_period_s=1.0, transports=(OpcUaTransport(server, plant),))
    run = asyncio.create_task(runner.run())
    clocks = PlantClocks([("opcua", "ns=2;s=clock")])
    source = OpcUaSource(endpoint, ["ns=2;s=clock.sim_time", "ns=2;s=clock.speed"], period_ms=50)
    try:
        await source.start()
        stream = source.stream()
        while not (clocks.times.get("ns=2;s=clock") and clocks.times["ns=2;s=clock"].speed == 20.0
                   and runner.steps > 100):
            message = await asyncio.wait_for(anext(stream), 60)
            clocks.hear(message.topic, message.payload)
        plant_now = clocks.now("ns=2;s=clock", time.time_ns())
        sim_now = runner.epoch_ns(plant.t_s)
        assert plant_now is not None and abs(plant_now - sim_now) < 300 * S  # within the default skew
        assert sim_now - time.time_ns() > 60 * S  # and the plant is well ahead of the wall clock
    finally:
        await source.stop()
        runner.stop()
        await run
        await server.stop()


@pytest.mark.service
async def test_a_restarted_serve_takes_its_sessions_backlog_by_the_plants_clock(tmp_path: Path) -> None:
    """The persistent session's backlog arrives before the retained clock is sent again: it is judged
    by the plant's clock all the same (within a batch, or waiting for it: see test_clock.py)."""
    need_service(MosquittoBroker.available(), "mosquitto (apt-get install mosquitto)")
    with MosquittoBroker() as broker:
        sim = Simulator("--mqtt", broker.url, "--speed", "60", "--qos", "1")
        try:
            await eventually(lambda: sim.said("simulating pump-station"), 180, "the simulator to start")
            settings = load_settings(data_dir=tmp_path, plant=example_plant_path(), mqtt_url=broker.url)
            with Runtime.open(settings, bootstrap=True) as rt:
                await rt.start()
                try:
                    assert rt.ingestion is not None and await rt.ingestion.wait_connected(60)
                    assert rt.ingestion.pipeline is not None
                    first = rt.ingestion.pipeline.stats
                    await eventually(lambda: first.readings > 5_000, 120, "readings before the restart")
                finally:
                    await rt.stop()
            with Runtime.open(settings) as rt:  # the same store and client id: the session resumes
                await rt.start()
                try:
                    assert rt.ingestion is not None and await rt.ingestion.wait_connected(60)
                    assert rt.ingestion.pipeline is not None
                    stats = rt.ingestion.pipeline.stats
                    await eventually(lambda: stats.readings > 20_000, 120, "readings after the restart")
                    assert stats.rejected <= 0.01 * stats.readings, f"{stats.rejected} of {stats.readings}"
                    assert rt.connections.get("mqtt").status == "connected"
                finally:
                    await rt.stop()
        finally:
            sim.stop()
