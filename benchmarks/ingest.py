"""Ingest throughput and latency: in process, and end to end through Mosquitto.

1. **In process**: the ingest core's own figure (`benchmarks/ingest_inprocess.py` ``run_inprocess``),
   single-sample flat messages (``readings_per_s``) and multi-sample ones (``readings_per_s_multi``).
2. **End to end**: ``--publishers`` processes publish multi-sample flat telemetry (``--samples-per-message``
   k samples of one device, ``--channels`` channels each) for ``--assets`` devices at QoS 1 to Mosquitto;
   this process runs `MqttSource` (MQTT 5, manual acks) → `Pipeline` → `Normalizer` →
   ``journal_ingested`` (DuckDB store with its ingest journal, as the runtime opens it) → ack.
   Offered rates are swept (``--rates``, readings/s); a rate is *sustainable*
   when everything published was committed within 1 s after publishing stopped and at least 95 % of
   the offered rate was reached. The ``e2e_*`` figures are those of the highest sustainable rate
   whose p99 stays within ``--p99-budget-ms`` (50 ms; ``e2e_within_budget`` false: none did, and
   the highest sustainable rate is reported); ``e2e_max_sustained_*`` is the highest sustainable
   rate whatever its latency.
   Latency: ``e2e_p50_ms``/``e2e_p99_ms`` are publish-to-commit per reading (commit time minus the
   message's newest sample ``ts``, which the publisher sets to its wall clock when it publishes);
   *commit* is when the batch is durable (synced to the store's ingest journal), acknowledged to
   the broker and handed to the runtime's state (``Pipeline.on_commit``).
   ``queryable_p50_ms``/``queryable_p99_ms``: publish until the journal's applier has stored it in
   DuckDB, where history reads wait for it (latest values are served from commit on).
   ``sample_age_p99_ms`` adds the device-side buffering of a k-sample message ((k-1) sample periods).
3. **Baseline, same run**: the naive path: single-sample messages, one message per DuckDB
   transaction (``max_batch=1``, a plain `DuckDBStore` without the journal), at ``--baseline-rate``.
4. ``bytes_per_twin``: RSS growth of a fresh process per twin after its ingest state (routes, slots with
   the last value per channel, dedupe rows) was built for every twin by one message each; the latest
   values in DuckDB are on disk and not counted.

Run: ``.venv/bin/python benchmarks/ingest.py`` (needs ``mosquitto``). The last line is one JSON object.
Timings on a shared 2-core machine are noisy: publishers, broker and pipeline compete for the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
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
import pyarrow as pa

from twinloop.connectors.broker import MosquittoBroker
from twinloop.connectors.mqtt_source import MqttSource
from twinloop.core.clock import SystemClock
from twinloop.core.readings import ReadingBatch
from twinloop.runtime.bus import EventBus
from twinloop.runtime.connections import ConnectionTable
from twinloop.runtime.pipeline import Pipeline
from twinloop.runtime.supervisor import Supervisor
from twinloop.store.duckdb_store import DuckDBStore
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
            start_at: float, samples: int, period_ns: int, out: Any) -> None:
    """One publisher process: round robin over ``devices`` at ``rate`` messages/s for ``duration``;
    each message holds ``samples`` samples ``period_ns`` apart, the newest stamped now."""
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
    if samples == 1:
        values = "{" + ",".join(f'"c{i}":{20.0 + i}' for i in range(channels)) + "}"
    else:
        values = "{" + ",".join(f'"c{i}":[' + ",".join([f"{20.0 + i}"] * samples) + "]"
                                for i in range(channels)) + "}"
    offsets = [(j - samples + 1) * period_ns for j in range(samples)]
    topics = [TOPIC.format(device=d) for d in devices]
    heads = [f'{{"device":"{d}","type":"BenchAsset","seq":' for d in devices]
    seqs = [0] * len(devices)
    while time.time() < start_at:
        time.sleep(0.001)
    t0 = time.monotonic()
    began = time.time()
    sent, i, n = 0, 0, len(devices)
    while (elapsed := time.monotonic() - t0) < duration:
        due = int(elapsed * rate) + 1
        while sent < due:
            k = i % n
            now = time.time_ns()
            ts = str(now) if samples == 1 else "[" + ",".join(str(now + o) for o in offsets) + "]"
            payload = f'{heads[k]}{seqs[k]},"ts":{ts},"values":{values}}}'
            client.publish(topics[k], payload.encode(), qos=qos)
            seqs[k] += 1
            sent += 1
            i += 1
        time.sleep(0.001)
    deadline = time.monotonic() + 60  # QoS 1: wait for the broker's PUBACK of every message
    while acked[0] < sent and time.monotonic() < deadline:
        time.sleep(0.01)
    ended = time.time()
    client.disconnect()
    client.loop_stop()
    out.put((acked[0] if qos else sent, began, ended))


def rss_bytes() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


async def run_e2e(url: str, folder: Path, *, assets: int, channels: int, rate: float, duration: float,
                  publishers: int, max_batch: int, qos: int, label: str, samples: int = 1,
                  batch_ms: float = 10.0, journal: bool = True) -> dict[str, Any]:
    """Publishers → Mosquitto → MqttSource → Pipeline → DuckDB at ``rate`` readings/s offered."""
    from twinloop.ingest.mapping import load_mapping
    from twinloop.ingest.normalizer import NormalizePolicy, Normalizer

    types, mapping_path = write_fleet(folder, channels)
    devices = device_ids(assets)
    registry = TypeRegistry.from_paths([types])
    normalizer = Normalizer(load_mapping(mapping_path), registry, dict.fromkeys(devices, "BenchAsset"),
                            SystemClock(), NormalizePolicy())
    warm_up(normalizer, devices, channels)
    path = folder / f"{label}.duckdb"
    store: Any = open_store(f"duckdb:///{path}") if journal else DuckDBStore(path)
    clock = SystemClock()
    table = ConnectionTable(clock)
    pipeline = Pipeline(store, normalizer, EventBus(), clock, connections=table, max_batch=max_batch,
                        max_delay_s=batch_ms / 1000, queue_size=max(50_000, max_batch),
                        events_interval_s=1.0)
    latencies: list[np.ndarray] = []
    ages: list[np.ndarray] = []
    queryable: list[np.ndarray] = []

    def since_publish(batch: ReadingBatch, at_ns: int) -> np.ndarray:
        """Per reading: ms from its message's publication (the message's newest ts) to ``at_ns``."""
        per = pa.table({"a": batch.table.column("asset_id"), "t": batch.ts_ns}).group_by("a").aggregate(
            [("t", "max"), ("t", "count")])
        newest = per.column("t_max").to_numpy()
        return np.repeat((at_ns - newest) / 1e6, per.column("t_count").to_numpy())

    def on_commit(batch: ReadingBatch, committed_ns: int) -> None:
        ages.append((committed_ns - batch.ts_ns) / 1e6)
        latencies.append(since_publish(batch, committed_ns))  # one message per asset and batch here

    def on_applied(entries: Any, applied_ns: int) -> None:
        queryable.extend(since_publish(e.batch, applied_ns) for e in entries if len(e.batch))

    pipeline.on_commit(on_commit)
    if hasattr(store, "on_applied"):
        store.on_applied(on_applied)
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
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    start_at = time.time() + 1.5  # spawn and connect first
    msg_rate = rate / (channels * samples)
    period_ns = int(assets * channels / rate * 1e9)  # each device samples once per period
    share = [devices[i::publishers] for i in range(publishers)]
    procs = [ctx.Process(target=publish, args=(url, part, channels, msg_rate / publishers, duration, qos,
                                                start_at, samples, period_ns, out)) for part in share]
    for p in procs:
        p.start()
    while time.time() < start_at:
        await asyncio.sleep(0.005)
    max_pending = 0
    results = [asyncio.ensure_future(asyncio.to_thread(out.get, True, duration + 60)) for _ in procs]
    while not all(r.done() for r in results):
        max_pending = max(max_pending, pipeline.pending)
        await asyncio.sleep(0.05)
    reports = [r.result() for r in results]
    published = sum(r[0] for r in reports)
    t0, publish_end = min(r[1] for r in reports), max(r[2] for r in reports)  # wall clock
    for p in procs:
        p.join()
    deadline = time.monotonic() + 60
    while pipeline.stats.messages < published and time.monotonic() < deadline:
        await asyncio.sleep(0.005)
    done = time.time()
    await sup.stop_reading()
    await pipeline.stop()
    await sup.close()
    stored = store.count_readings()
    store.close()
    gc.unfreeze()
    lat = np.concatenate(latencies) if latencies else np.zeros(1)
    age = np.concatenate(ages) if ages else np.zeros(1)
    visible = np.concatenate(queryable) if queryable else lat  # no journal: committed = queryable
    wall = done - t0
    drain = done - publish_end
    achieved = stored / wall
    return {
        "label": label, "offered_readings_per_s": rate, "samples_per_message": samples,
        "max_batch": max_batch, "batch_ms": batch_ms, "qos": qos, "assets": assets, "channels": channels,
        "publishers": publishers, "published_msgs": published, "processed_msgs": pipeline.stats.messages,
        "expected_readings": published * channels * samples, "stored_readings": stored,
        "wall_s": round(wall, 2), "drain_s": round(drain, 2), "max_queued_msgs": max_pending,
        "readings_per_s": round(achieved), "msgs_per_s": round(published / wall),
        "p50_ms": round(float(np.percentile(lat, 50)), 1), "p99_ms": round(float(np.percentile(lat, 99)), 1),
        "sample_age_p99_ms": round(float(np.percentile(age, 99)), 1), "batches": pipeline.stats.batches,
        "queryable_p50_ms": round(float(np.percentile(visible, 50)), 1),
        "queryable_p99_ms": round(float(np.percentile(visible, 99)), 1),
        "rejected": pipeline.stats.rejected, "duplicates": pipeline.stats.duplicates,
        "sustainable": drain < 1.0 and published >= 0.95 * msg_rate * duration
        and stored == published * channels * samples,
    }


def warm_up(normalizer: Any, devices: list[str], channels: int) -> None:
    """First contact of every twin before the clock starts, as in a running plant (routes resolved,
    slots made; on another source name, so dedupe state is untouched); then freeze the heap so the
    collector does not rescan it."""
    from twinloop.core.protocols import RawMessage

    values = "{" + ",".join(f'"c{i}":{20.0 + i}' for i in range(channels)) + "}"
    ts = time.time_ns() - 3_600 * 10**9
    messages = [RawMessage("warm-up", TOPIC.format(device=d),
                           f'{{"device":"{d}","seq":0,"ts":{ts},"values":{values}}}'.encode(), ts)
                for d in devices]
    for i in range(0, len(messages), 5_000):
        normalizer.normalize(messages[i:i + 5_000])
    gc.collect()
    gc.freeze()


def twin_state_bytes(assets: int, channels: int) -> dict[str, Any]:
    """Ingest state per twin, measured as RSS growth in a fresh process (see the module docstring)."""
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_measure_state, args=(assets, channels, out))
    proc.start()
    result = out.get(True, 300)
    proc.join()
    return result


def _measure_state(assets: int, channels: int, out: Any) -> None:
    from twinloop.core.clock import ManualClock
    from twinloop.core.protocols import RawMessage
    from twinloop.ingest.mapping import parse_mapping
    from twinloop.ingest.normalizer import Normalizer
    from twinloop.twins.asset_type import AssetType

    devices = device_ids(assets)
    names = [f"c{i}" for i in range(channels)]
    registry = TypeRegistry([AssetType(id="BenchAsset", channels=[
        {"name": n, "unit": "degC", "min": -50, "max": 500} for n in names])])
    mapping = parse_mapping({"rules": [{"mqtt": TOPIC, "format": "flat"}]})
    twins = dict.fromkeys(devices, "BenchAsset")
    values = "{" + ",".join(f'"{n}":{20.0 + i}' for i, n in enumerate(names)) + "}"
    ts = 1_700_000_000 * 10**9
    messages = [RawMessage("bench", TOPIC.format(device=d),
                           f'{{"device":"{d}","seq":0,"ts":{ts},"values":{values}}}'.encode(), ts)
                for d in devices]
    normalizer = Normalizer(mapping, registry, twins, ManualClock(ts))
    normalizer.normalize(messages[:1])  # imports and first allocations are not per twin
    gc.collect()
    before = rss_bytes()
    for i in range(0, len(messages), 5_000):
        normalizer.normalize(messages[i:i + 5_000])
    del messages
    gc.collect()
    after = rss_bytes()
    out.put({"bytes_per_twin": round((after - before) / assets), "slots": len(normalizer.routes.slot_twin),
             "routes": len(normalizer.routes), "dedupe_rows": len(normalizer.seen)})


def inprocess(assets: int, channels: int, folder: Path, samples: int = 1) -> dict[str, Any]:
    path = HERE / "ingest_inprocess.py"
    spec = importlib.util.spec_from_file_location("ingest_inprocess", path)
    if spec is None or spec.loader is None or not path.is_file():
        return {"readings_per_s": None, "note": "benchmarks/ingest_inprocess.py not found"}
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.run_inprocess(n_assets=assets, channels=channels, samples=samples,
                                store_path=folder / f"inproc{samples}.duckdb")


def _short(r: dict[str, Any]) -> str:
    return (f"offered {r['offered_readings_per_s']:,.0f}/s: {r['readings_per_s']:,}/s stored "
            f"({r['msgs_per_s']:,} msgs/s), drain {r['drain_s']} s, queue max {r['max_queued_msgs']}, "
            f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms (sample age p99 {r['sample_age_p99_ms']} ms; "
            f"queryable in DuckDB p50 {r['queryable_p50_ms']} ms, p99 {r['queryable_p99_ms']} ms), "
            f"{'sustainable' if r['sustainable'] else 'NOT sustainable'}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--rates", default="50000,100000,150000,200000",
                        help="offered readings/s to sweep, comma-separated, ascending")
    parser.add_argument("--duration", type=float, default=8.0, help="seconds of publishing per rate")
    parser.add_argument("--publishers", type=int, default=2)
    parser.add_argument("--samples-per-message", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=5_000, help="messages per micro-batch at most")
    parser.add_argument("--batch-ms", type=float, default=10.0, help="a micro-batch waits at most this long")
    parser.add_argument("--qos", type=int, default=1, choices=(0, 1))
    parser.add_argument("--baseline-rate", type=float, default=2_000, help="readings/s offered")
    parser.add_argument("--skip-inprocess", action="store_true")
    parser.add_argument("--p99-budget-ms", type=float, default=50.0,
                        help="the e2e_* figures are those of the highest sustainable rate within this p99")
    args = parser.parse_args(argv)
    if not MosquittoBroker.available():
        sys.exit("mosquitto is not installed (apt-get install mosquitto)")
    state = twin_state_bytes(args.assets, args.channels)
    print(f"ingest state per twin: {state}", flush=True)
    with tempfile.TemporaryDirectory(prefix="twinloop-bench-") as tmp:
        folder = Path(tmp)
        inproc = {} if args.skip_inprocess else inprocess(args.assets, args.channels, folder / "in")
        multi = {} if args.skip_inprocess else inprocess(args.assets, args.channels, folder / "in",
                                                          args.samples_per_message)
        if inproc:
            print(f"in process: {inproc.get('readings_per_s'):,} readings/s single-sample "
                  f"({inproc.get('cpu_readings_per_s'):,} per CPU s), {multi.get('readings_per_s'):,} "
                  f"with {args.samples_per_message} samples per message", flush=True)
        runs = []
        with MosquittoBroker() as broker:
            for rate in (float(r) for r in args.rates.split(",")):
                r = asyncio.run(run_e2e(broker.url, folder, assets=args.assets, channels=args.channels,
                                        rate=rate, duration=args.duration, publishers=args.publishers,
                                        max_batch=args.batch_size, qos=args.qos, label=f"e2e{int(rate)}",
                                        samples=args.samples_per_message, batch_ms=args.batch_ms))
                print(f"end to end, {_short(r)}", flush=True)
                runs.append(r)
                if not r["sustainable"]:
                    break
            base = asyncio.run(run_e2e(broker.url, folder, assets=min(args.assets, 1_000),
                                       channels=args.channels, rate=args.baseline_rate,
                                       duration=min(args.duration, 5.0), publishers=1, max_batch=1,
                                       qos=args.qos, label="baseline", samples=1, batch_ms=args.batch_ms,
                                       journal=False))
            print(f"baseline (single-sample messages, one transaction per message), {_short(base)}",
                  flush=True)
    ok = [r for r in runs if r["sustainable"]]
    within = [r for r in ok if r["p99_ms"] < args.p99_budget_ms]
    best = within[-1] if within else ok[-1] if ok else runs[0]  # the reported rate: see the docstring
    top = ok[-1] if ok else runs[0]
    ratio = best["readings_per_s"] / base["readings_per_s"] if base["readings_per_s"] else None
    print("timings are from a shared 2-core machine and noisy")
    print(json.dumps({
        "readings_per_s": inproc.get("readings_per_s"),
        "cpu_readings_per_s": inproc.get("cpu_readings_per_s"),
        "readings_per_s_multi": multi.get("readings_per_s"),
        "e2e_readings_per_s": best["readings_per_s"], "e2e_p50_ms": best["p50_ms"],
        "e2e_p99_budget_ms": args.p99_budget_ms, "e2e_within_budget": bool(within),
        "e2e_max_sustained_readings_per_s": top["readings_per_s"], "e2e_max_sustained_p99_ms": top["p99_ms"],
        "e2e_p99_ms": best["p99_ms"], "e2e_sample_age_p99_ms": best["sample_age_p99_ms"],
        "e2e_queryable_p50_ms": best["queryable_p50_ms"], "e2e_queryable_p99_ms": best["queryable_p99_ms"],
        "e2e_offered_readings_per_s": best["offered_readings_per_s"], "e2e_sustainable": best["sustainable"],
        "e2e_msgs_per_s": best["msgs_per_s"], "e2e_lost": best["expected_readings"] - best["stored_readings"],
        "samples_per_message": args.samples_per_message, "publishers": args.publishers,
        "bytes_per_twin": state["bytes_per_twin"],
        "baseline_e2e_readings_per_s": base["readings_per_s"], "baseline_p99_ms": base["p99_ms"],
        "ratio": round(ratio, 1) if ratio else None, "cores": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
