"""Live estimation on the real path: the simulator over MQTT (embedded broker), the runtime's
pipeline, the estimation worker — accelerated plant time, judged by the filters' own health.

Two plant-hours at 5 s samples: every running pump is calibrated on its first hour and its filter
is consistent afterwards (NIS inside the 95 % χ² band in ≥ 90 % of its judged steps).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from twinloop.connectors.mqtt import MqttClient
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime, example_plant_path
from twinloop.sim.mqtt_transport import MqttTransport
from twinloop.sim.pump_station import PumpStationPlant
from twinloop.sim.runner import SimRunner

from .conftest import eventually

PLANT_S = 2 * 3600.0
CALIBRATE_S = 1.25 * 3600.0  # past the first hour of operation every running pump is fitted on
PERIOD_S = 5.0


async def _settle(rt: Runtime) -> None:
    """Until the pipeline has committed what it got (no new readings for 15 s)."""
    seen: list[int] = []

    def settled() -> bool:
        seen.append(len(rt.store.history("pump-C3", ["flow"])))
        return len(seen) > 300 and seen[-1] == seen[-301]

    await eventually(settled, 300, "the pipeline to commit what it received")


async def test_running_pumps_are_calibrated_and_consistent_over_mqtt(tmp_path: Path, mapping: Path) -> None:
    settings = load_settings(data_dir=tmp_path, plant=example_plant_path(), mapping=mapping,
                             embedded_broker_port=0, alerts_types=[])
    with Runtime.open(settings) as rt:
        await rt.start()
        try:
            assert rt.ingestion is not None and await rt.ingestion.wait_connected()
            plant = PumpStationPlant(seed=1)
            client = MqttClient(rt.ingestion.mqtt_url, client_id="sim-estimation")
            await client.connect()
            transport = MqttTransport(client, plant.name, plant.devices, qos=1)
            runner = SimRunner(plant, speed=200.0, sample_period_s=PERIOD_S, transports=(transport,))
            est = rt.estimation
            assert est is not None
            try:
                # The first stretch of operation, then a pause until it is estimated and calibrated:
                # fits run on a worker of their own and, at 200x, land later in plant time than at
                # 1x; the second stretch is judged with the fitted parameters whatever the speed.
                await runner.run(duration_s=CALIBRATE_S)
                await _settle(rt)
                assert await asyncio.to_thread(est.wait_idle, 600)
                await runner.run(duration_s=PLANT_S - CALIBRATE_S)
            finally:
                await runner.close()
                await client.disconnect()
            await _settle(rt)
            assert await asyncio.to_thread(est.wait_idle, 300)
            assert est.lag_s() == 0.0  # everything committed is estimated
            newest = int(rt.store.history("pump-C3", ["flow"]).ts_ns.max())
            f = est.type_of("pump-C3").filter
            assert int(f.ts_ns[f.rows(["pump-C3"])[0]]) == newest
            running = [h for h in est.fleet_health("Pump") if h["steps"] > 0]
            assert len(running) == 9, running
            for h in running:
                assert h["calibrations"] == 1 and h["consistent"], h
                assert h["nis_in_band_share"] >= 0.9, h
            assert rt.twins.revisions("pump-A1") == [1, 2]
        finally:
            await rt.stop()
