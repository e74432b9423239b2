"""Ingest throughput and latency: in process, and end to end through Mosquitto.

1. **In process**: the ingest core's own figure (`benchmarks/ingest_inprocess.py` ``run_inprocess``).
2. **End to end**: ``--publishers`` processes publish the simulator's flat telemetry (one message per
   device sample, all ``--channels`` channels; ``ts`` = wall time at publish) for ``--assets`` devices at
   QoS 1 to a Mosquitto broker; this process runs `MqttSource` (MQTT 5, manual acks) → `Pipeline`
   → `Normalizer` → DuckDB ``append_ingested`` → ack. Measured: readings/s committed, publish-to-commit
   latency p50/p99 (commit time minus the ``ts`` in the payload), RSS growth per twin.
3. **Baseline, same run**: the same path with one message per transaction (``max_batch=1``).

Run: ``.venv/bin/python benchmarks/ingest.py`` (needs ``mosquitto``). The last line is one JSON object.
Timings on a shared 2-core machine are noisy: publishers, broker and pipeline compete for the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import multiprocessing as mp
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from twinloop.connectors.broker import MosquittoBroker
from twinloop.connectors.mqtt_source import MqttSource
from twinloop.core.clock import SystemClock
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.bus import EventBus
from twinloop.runtime.connections import ConnectionTable
from twinloop.runtime.pipeline import Pipeline
from twinloop.runtime.supervisor import Supervisor
from twinloop.store.factory import open_store
from twinloop.twins.registry import TypeRegistry

HERE = Path(__file__).resolve().parent
TOPIC = "bench/{device}/telemetry"


def write_fleet(folder: Path, channels: int) -> tuple[Path, Path]:
    """An asset type with ``channels`` channels and a mapping for the bench topics."""
    types = folder / "types"
    types.mkdir(parents=True, exist_ok=True)
    lines = ["id: BenchAsset", "display_name: Benchmark asset", "channels:"]
    lines += [f"  - {{name: c{i}, unit: degC, min: -50, max: 500}}" for i in range(channels)]
    (types / "bench_asset.yaml").write_text("\n".join(lines) + "\n")
    mapping = folder / "mapping.yaml"
    mapping.write_text(f"rules:\n  - mqtt: {TOPIC}\n    format: flat\n")
    return types, mapping


def device_ids(n: int) -> list[str]:
    return [f"dev-{i:05d}" for i in range(n)]


def publish(url: str, devices: list[str], channels: int, rate: float, duration: float, qos: int,
            start_at: float, out: Any) -> None:
    """One publisher process: round-robin over ``devices`` at ``rate`` messages/s for ``duration``."""
    import paho.mqtt.client as paho
    from paho.mqtt.enums import CallbackAPIVersion

    host, port = url.removeprefix("mqtt://").split(":")
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-pub-{os.getpid()}")
    client.max_inflight_messages_set(2000)
    client.max_queued_messages_set(0)
    acked = [0]
    client.on_publish = lambda *_: acked.__setitem__(0, acked[0] + 1)
    client.connect(host, int(port))
    client.loop_start()
    values = "{" + ",".join(f'"c{i}":{20.0 + i}' for i in range(channels)) + "}"
    topics = [TOPIC.format(device=d) for d in devices]
    heads = [f'{{"device":"{d}","type":"BenchAsset","seq":' for d in devices]
    seqs = [0] * len(devices)
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.monotonic()
    sent, i, n = 0, 0, len(devices)
    while (elapsed := time.monotonic() - t0) < duration:
        due = int(elapsed * rate) + 1
        while sent < due:
            k = i % n
            payload = f'{heads[k]}{seqs[k]},"ts":{time.time_ns()},"values":{values}}}'
            client.publish(topics[k], payload.encode(), qos=qos)
            seqs[k] += 1
            sent += 1
            i += 1
        time.sleep(0.001)
    deadline = time.monotonic() + 60  # QoS 1: wait for the broker's PUBACK of every message
    while acked[0] < sent and time.monotonic() < deadline:
        time.sleep(0.01)
    client.disconnect()
    client.loop_stop()
    out.put(acked[0] if qos else sent)


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


async def run_e2e(url: str, folder: Path, *, assets: int, channels: int, rate: float, duration: float,
                  publishers: int, max_batch: int, qos: int, label: str) -> dict[str, Any]:
    """Publishers → Mosquitto → MqttSource → Pipeline → DuckDB; returns the figures."""
    from twinloop.ingest.mapping import load_mapping
    from twinloop.ingest.normalizer import NormalizePolicy, Normalizer

    types, mapping_path = write_fleet(folder, channels)
    devices = device_ids(assets)
    registry = TypeRegistry.from_paths([types])
    normalizer = Normalizer(load_mapping(mapping_path), registry, dict.fromkeys(devices, "BenchAsset"),
                            SystemClock(), NormalizePolicy())
    store = open_store(f"duckdb:///{folder / f'{label}.duckdb'}")
    clock = SystemClock()
    table = ConnectionTable(clock)
    pipeline = Pipeline(store, normalizer, EventBus(), clock, connections=table, max_batch=max_batch,
                        queue_size=max(50_000, max_batch), events_interval_s=1.0)
    latencies: list[np.ndarray] = []
    committed = [0]

    def on_commit(batch: ReadingBatch, committed_ns: int) -> None:
        committed[0] += len(batch)
        latencies.append((committed_ns - batch.ts_ns) / 1e6)

    pipeline.on_commit(on_commit)
    source_name = f"mqtt-{label}"
    sup = Supervisor(source_name, lambda: MqttSource(url, ["bench/+/telemetry"], name=source_name,
                                                      client_id=f"bench-{label}", persistent=False,
                                                      protocol="5", qos=qos),  # type: ignore[arg-type]
                     table, pipeline.offer)
    pipeline.register_acker(source_name, sup.ack)
    pipeline.start()
    sup.start()
    while not table.get(source_name).connected:
        await asyncio.sleep(0.01)
    rss0 = rss_bytes()
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 1.5  # spawn and connect first
    share = [devices[i::publishers] for i in range(publishers)]
    procs = [ctx.Process(target=publish, args=(url, part, channels, rate / publishers, duration, qos,
                                                start_at, out)) for part in share]
    for p in procs:
        p.start()
    while time.time() < start_at:
        await asyncio.sleep(0.005)
    t0 = time.monotonic()
    published = 0
    for _ in procs:
        published += await asyncio.to_thread(out.get, True, duration + 60)
    for p in procs:
        p.join()
    expected = published * channels
    deadline = time.monotonic() + 60
    while pipeline.stats.messages < published and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    wall = time.monotonic() - t0
    rss1 = rss_bytes()
    await sup.stop_reading()
    await pipeline.stop()
    await sup.close()
    stored = store.count_readings()
    store.close()
    lat = np.concatenate(latencies) if latencies else np.zeros(1)
    return {
        "label": label, "max_batch": max_batch, "qos": qos, "assets": assets, "channels": channels,
        "published_msgs": published, "processed_msgs": pipeline.stats.messages,
        "drain_s": round(time.monotonic() - t0 - duration, 2), "expected_readings": expected,
        "stored_readings": stored,
        "wall_s": round(wall, 2), "readings_per_s": round(stored / wall),
        "msgs_per_s": round(published / wall), "p50_ms": round(float(np.percentile(lat, 50)), 1),
        "p99_ms": round(float(np.percentile(lat, 99)), 1), "batches": pipeline.stats.batches,
        "rejected": pipeline.stats.rejected, "duplicates": pipeline.stats.duplicates,
        "bytes_per_twin": round(max(rss1 - rss0, 0) / assets),
    }


def inprocess(assets: int, channels: int, folder: Path) -> dict[str, Any]:
    path = HERE / "ingest_inprocess.py"
    spec = importlib.util.spec_from_file_location("ingest_inprocess", path)
    if spec is None or spec.loader is None or not path.is_file():
        return {"readings_per_s": None, "note": "benchmarks/ingest_inprocess.py not found"}
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_inprocess(n_assets=assets, channels=channels, store_path=folder / "inproc.duckdb")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--rate", type=float, default=3_000, help="messages/s offered, all publishers")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of publishing")
    parser.add_argument("--publishers", type=int, default=1)
    parser.add_argument("--qos", type=int, default=1, choices=(0, 1))
    parser.add_argument("--baseline-rate", type=float, default=200)
    parser.add_argument("--skip-inprocess", action="store_true")
    args = parser.parse_args(argv)
    if not MosquittoBroker.available():
        sys.exit("mosquitto is not installed (apt-get install mosquitto)")
    with tempfile.TemporaryDirectory(prefix="twinloop-bench-") as tmp:
        folder = Path(tmp)
        inproc = {} if args.skip_inprocess else inprocess(args.assets, args.channels, folder / "in")
        if inproc:
            print(f"in process: {inproc.get('readings_per_s')} readings/s", flush=True)
        with MosquittoBroker() as broker:
            e2e = asyncio.run(run_e2e(broker.url, folder, assets=args.assets, channels=args.channels,
                                      rate=args.rate, duration=args.duration, publishers=args.publishers,
                                      max_batch=5_000, qos=args.qos, label="batched"))
            print(f"end to end (batched): {e2e}", flush=True)
            base = asyncio.run(run_e2e(broker.url, folder, assets=min(args.assets, 1_000),
                                       channels=args.channels, rate=args.baseline_rate,
                                       duration=min(args.duration, 5.0), publishers=1, max_batch=1,
                                       qos=args.qos, label="baseline"))
            print(f"end to end (baseline, one transaction per message): {base}", flush=True)
    ratio = e2e["readings_per_s"] / base["readings_per_s"] if base["readings_per_s"] else None
    print(json.dumps({
        "readings_per_s": inproc.get("readings_per_s"),
        "e2e_readings_per_s": e2e["readings_per_s"], "e2e_p50_ms": e2e["p50_ms"],
        "e2e_p99_ms": e2e["p99_ms"], "bytes_per_twin": e2e["bytes_per_twin"],
        "e2e_offered_msgs_per_s": args.rate, "e2e_lost": e2e["expected_readings"] - e2e["stored_readings"],
        "baseline_e2e_readings_per_s": base["readings_per_s"], "baseline_p99_ms": base["p99_ms"],
        "ratio": round(ratio, 1) if ratio else None, "cores": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
