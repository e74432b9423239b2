"""The runtime `benchmarks/live_twin.py` scores: headless, settings from ``TWINLOOP_*``, lag gauges logged.

It runs what ``python -m twinloop.runtime.wiring`` runs (`Runtime.open`, ``start``, ``stop``), and
once a wall second appends the analytics' lag gauges (plant seconds behind ingestion, where a
service has one: ``EstimationService.lag_s``, ``AlertMonitor.lag_s``, ``RulService.lag_s``) and
the pipeline's totals to a JSON-lines file, which the gauges alone cannot show after the process
has gone. The first line, ``{"ready": true}``, says ingestion is connected. Stops on
SIGTERM/SIGINT or when the process that started it is gone::

    TWINLOOP_PLANT=… TWINLOOP_MQTT_URL=… python benchmarks/live_twin_runtime.py lags.jsonl PARENT_PID
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Any

from twinloop.connectors.broker import watch_parent
from twinloop.runtime.settings import load_settings
from twinloop.runtime.wiring import Runtime

#: Wall seconds between two samples of the gauges.
SAMPLE_S = 1.0


def _gauge(obj: object | None, name: str = "lag_s") -> float | None:
    """``obj.lag_s()`` where the service has such a gauge; None where it does not (yet)."""
    fn = getattr(obj, name, None)
    if obj is None or not callable(fn):
        return None
    try:
        value = fn()
    except Exception:  # noqa: BLE001 - a gauge that fails reads as missing, never stops the run
        return None
    return float(value) if isinstance(value, int | float) else None


def sample(rt: Runtime) -> dict[str, Any]:
    """One line of the lag log: the gauges that exist, and the pipeline's totals."""
    line: dict[str, Any] = {"wall_ns": time.time_ns(), "lag_s": {
        "estimation": _gauge(rt.estimation), "alerts": _gauge(rt.monitor), "rul": _gauge(rt.rul)}}
    pipeline = rt.ingestion.pipeline if rt.ingestion is not None else None
    if pipeline is not None:
        st = pipeline.stats
        line["ingest"] = {"messages": st.messages, "readings": st.readings, "rejected": st.rejected}
    return line


async def run(path: Path, parent_pid: int | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if parent_pid:
        watch_parent(parent_pid, lambda: loop.call_soon_threadsafe(stop.set))
    with Runtime.open(load_settings()) as rt, path.open("a", encoding="utf-8") as out:
        await rt.start()
        try:
            if rt.ingestion is not None:
                await rt.ingestion.wait_connected()
            out.write(json.dumps({"ready": True, "wall_ns": time.time_ns()}) + "\n")
            out.flush()
            while not stop.is_set():
                try:
                    await asyncio.wait_for(stop.wait(), SAMPLE_S)
                except TimeoutError:
                    out.write(json.dumps(sample(rt)) + "\n")
                    out.flush()
        finally:
            await rt.stop()


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    path = Path(sys.argv[1])
    parent = int(sys.argv[2]) if len(sys.argv) > 2 else None
    asyncio.run(run(path, parent))


if __name__ == "__main__":
    main()
