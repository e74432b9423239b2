"""Shared parts of the ingestion integration tests: a mapping for the simulator, a running station."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from twinloop.connectors.mqtt import MqttClient
from twinloop.sim.mqtt_transport import MqttTransport
from twinloop.sim.pump_station import PumpStationPlant
from twinloop.sim.runner import SimRunner

MAPPING = """\
rules:
  - mqtt: twinloop/pump-station/{device}/telemetry
    format: flat
  - opcua: ns=2;s={device}.{channel}
    format: opcua
"""


def mapping_file(folder: Path) -> Path:
    """The example's mapping when it exists, else a minimal one for the simulator's flat topics."""
    example = Path(__file__).resolve().parents[3] / "examples" / "pump-station" / "mapping.yaml"
    if example.is_file():
        return example
    path = folder / "mapping.yaml"
    path.write_text(MAPPING)
    return path


@pytest.fixture
def mapping(tmp_path: Path) -> Path:
    return mapping_file(tmp_path)


async def eventually(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what}")
        await asyncio.sleep(0.05)


class Station:
    """The simulated pump station publishing flat telemetry at QoS 1 to ``url``, in this process."""

    def __init__(self, url: str, speed: float = 20.0, client_id: str = "sim-station") -> None:
        self.plant = PumpStationPlant(seed=1)
        self.client = MqttClient(url, client_id=client_id)
        self.transport = MqttTransport(self.client, self.plant.name, self.plant.devices, qos=1)
        self.runner = SimRunner(self.plant, speed=speed, sample_period_s=1.0, transports=(self.transport,))
        self._run: asyncio.Task[object] | None = None

    async def start(self, duration_s: float | None = None) -> Station:
        await self.client.connect()
        self._run = asyncio.create_task(self.runner.run(duration_s=duration_s))
        return self

    async def wait(self, timeout: float = 60) -> None:
        assert self._run is not None
        await asyncio.wait_for(self._run, timeout)

    async def stop(self) -> None:
        self.runner.stop()
        if self._run is not None:
            await asyncio.gather(self._run, return_exceptions=True)
        await self.runner.close()
        await self.client.disconnect()

    def published(self) -> dict[str, int]:
        """Samples published per device (the flat payloads' ``seq`` runs 0 … n-1)."""
        return {d.id: int(n) for d, n in zip(self.plant.devices, self.transport._seq, strict=True)}


__all__ = ["MAPPING", "Station", "eventually", "mapping_file", "math"]
