"""In-process ingest throughput: pre-encoded flat JSON -> Normalizer -> latest -> DuckDB.

A fleet of ``n_assets`` assets with ``channels`` channels each (one published in degF, so unit
conversion is part of the work); one flat message per asset sample, all channels (or, with
``--samples-per-message k``, k consecutive samples of one asset in the multi-sample form), encoded
before the clock starts. Each micro-batch of ``batch_messages`` messages goes through
`Normalizer.normalize` (decode, map, convert, validate, dedupe), the `StateService` work per
batch (per-twin grouping for `ReadingsApplied`; latest per channel is the store's own upsert),
and the store commit the runtime uses: ``journal_ingested`` of a DuckDB store opened with
`open_store` (readings + dedupe state + quarantine, synced to the ingest journal, stored in DuckDB
by the journal's applier). The clock stops only when everything is in DuckDB (``wait_applied``).

Figures are wall-clock (``readings_per_s``) and, because the 2 cores are shared with other work,
also per CPU second of this process (``cpu_readings_per_s``: DuckDB's threads count too).

The first sample of every asset is timed apart (``first_contact_*``): it resolves each asset's
routes, once per process; ``readings_per_s`` is the steady state after it.

Baseline, measured in the same run on a subset: the naive path, with one Python object per
reading and a per-reading unit conversion and range check, feeding the same store appends.

Run: ``.venv/bin/python benchmarks/ingest_inprocess.py [--assets 10000 --channels 10 --messages 100000]``.
The last line is one JSON object. The machine has 2 shared cores: timings are noisy.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from twinloop.core.clock import ManualClock
from twinloop.core.protocols import RawMessage
from twinloop.core.readings import ReadingBatch
from twinloop.core.units import convert
from twinloop.ingest.mapping import parse_mapping
from twinloop.ingest.normalizer import Normalizer
from twinloop.store.duckdb_store import DuckDBStore
from twinloop.store.factory import open_store
from twinloop.twins.asset_type import AssetType
from twinloop.twins.registry import TypeRegistry

S = 1_000_000_000
T0 = 1_700_000_000 * S


def _fleet(n_assets: int, channels: int) -> tuple[TypeRegistry, dict[str, str], Any, list[str]]:
    names = [f"c{i}" for i in range(channels)]
    asset = AssetType(id="BenchAsset", channels=[
        {"name": n, "unit": "degC", "min": -50, "max": 500} for n in names])
    registry = TypeRegistry([asset])
    twins = {f"dev-{i:05d}": "BenchAsset" for i in range(n_assets)}
    mapping = parse_mapping({"rules": [{"mqtt": "bench/{device}/telemetry", "format": "flat",
                                        "channels": {"c0": {"unit": "degF"}}}]})
    return registry, twins, mapping, names


def _messages(twins: list[str], names: list[str], count: int, seed: int = 1,
              samples: int = 1) -> list[RawMessage]:
    """``count`` messages, round robin over the fleet, each with ``samples`` samples of its device."""
    rng = np.random.default_rng(seed)
    values = rng.uniform(20.0, 80.0, size=(count, samples, len(names)))
    values[:, :, 0] = values[:, :, 0] * 1.8 + 32  # c0 is published in degF
    out = []
    for k in range(count):
        device = twins[k % len(twins)]
        seq = k // len(twins)
        ts = T0 + seq * samples * S
        if samples == 1:
            body = {"device": device, "type": "BenchAsset", "seq": seq, "ts": ts,
                    "values": dict(zip(names, values[k, 0].tolist(), strict=True))}
        else:
            body = {"device": device, "type": "BenchAsset", "seq": seq,
                    "ts": [ts + j * S for j in range(samples)],
                    "values": dict(zip(names, values[k].T.tolist(), strict=True))}
        out.append(RawMessage("bench", f"bench/{device}/telemetry", orjson.dumps(body), ts + samples * S))
    return out


def _state_work(batch: ReadingBatch) -> int:
    """What `StateService.record` does per batch besides storing: group readings per twin."""
    grouped = batch.table.group_by("asset_id").aggregate([("channel", "count"), ("channel", "distinct")])
    return grouped.num_rows


def _naive(messages: list[RawMessage], registry: TypeRegistry, twins: dict[str, str],
           store: DuckDBStore, batch_messages: int) -> tuple[int, float]:
    """One Python object per reading, per-reading conversion and checks, then the same appends.
    Returns readings stored and the seconds spent outside the store."""
    channels = {name: ch for name, ch in registry.component_channels("BenchAsset")}
    stored = 0
    t_norm = 0.0
    for start in range(0, len(messages), batch_messages):
        t = time.perf_counter()
        readings: list[dict[str, Any]] = []
        for raw in messages[start:start + batch_messages]:
            obj = json.loads(raw.payload)
            if obj["device"] not in twins:
                continue
            stamps = obj["ts"] if isinstance(obj["ts"], list) else [obj["ts"]]
            for name, column in obj["values"].items():
                ch = channels[name]
                src = "degF" if name == "c0" else ch.unit
                column = column if isinstance(column, list) else [column]
                for stamp, value in zip(stamps, column, strict=True):
                    v = float(convert(np.array([float(value)]), src, ch.unit or "")[0])
                    if not math.isfinite(v) or not (ch.min or -math.inf) <= v <= (ch.max or math.inf):
                        continue
                    readings.append({"asset_id": obj["device"], "channel": name, "ts": int(stamp),
                                     "value": v, "quality": 0})
        batch = ReadingBatch.from_arrays([r["asset_id"] for r in readings], [r["channel"] for r in readings],
                                         [r["ts"] for r in readings], [r["value"] for r in readings],
                                         [r["quality"] for r in readings])
        _state_work(batch)
        t_norm += time.perf_counter() - t
        store.append_ingested(batch)
        stored += len(batch)
    return stored, t_norm


def run_inprocess(n_assets: int = 10_000, channels: int = 10, messages: int = 100_000,
                  store_path: str | Path | None = None, batch_messages: int = 5_000,
                  baseline_messages: int = 5_000, samples: int = 1) -> dict[str, Any]:
    """Measure ingest throughput in process; returns the figures (see the module docstring).

    ``messages`` (after first contact) and ``batch_messages`` count device samples; a message
    holds ``samples`` of them."""
    registry, twins, mapping, names = _fleet(n_assets, channels)
    ids = list(twins)
    messages, batch_messages = max(1, messages // samples), max(1, batch_messages // samples)
    msgs = _messages(ids, names, n_assets + messages, samples=samples)
    subset = _messages(ids, names, max(1, min(baseline_messages // samples, messages)), seed=2,
                       samples=samples)
    gc.collect()
    gc.freeze()  # the pre-encoded input is not the pipeline's garbage: keep it out of GC scans
    with tempfile.TemporaryDirectory(prefix="twinloop-ingest-bench-") as tmp:
        path = Path(store_path) if store_path is not None else Path(tmp) / "bench.duckdb"
        path.parent.mkdir(parents=True, exist_ok=True)
        store: Any = open_store(path)
        try:
            normalizer = Normalizer(mapping, registry, twins, ManualClock(T0))
            # first contact: every asset's first sample resolves its routes (once per process)
            warm = min(n_assets, len(msgs))
            start = time.perf_counter()
            for i in range(0, warm, batch_messages):
                first = normalizer.normalize(msgs[i:min(i + batch_messages, warm)])
                _state_work(first.batch)
                store.journal_ingested(first.batch, first.seen, first.rejected)
            store.wait_applied()
            cold = time.perf_counter() - start
            t_norm = t_store = 0.0
            readings = rejected = 0
            cpu = time.process_time()
            start = time.perf_counter()
            for i in range(warm, len(msgs), batch_messages):
                t = time.perf_counter()
                result = normalizer.normalize(msgs[i:i + batch_messages])
                _state_work(result.batch)
                t_norm += time.perf_counter() - t
                t = time.perf_counter()
                store.journal_ingested(result.batch, result.seen, result.rejected)
                t_store += time.perf_counter() - t
                readings += len(result.batch)
                rejected += len(result.rejected)
            store.wait_applied()  # throughput counts the readings into DuckDB, not only into the journal
            elapsed = time.perf_counter() - start
            cpu = time.process_time() - cpu
            base_store = DuckDBStore(Path(tmp) / "baseline.duckdb")
            try:
                start = time.perf_counter()
                base_readings, base_norm = _naive(subset, registry, twins, base_store, batch_messages)
                base_elapsed = time.perf_counter() - start
            finally:
                base_store.close()
            stored = store.count_readings()
        finally:
            store.close()
            gc.unfreeze()
    rate = readings / elapsed
    base_rate = base_readings / base_elapsed
    return {
        "n_assets": n_assets, "channels": channels, "samples_per_message": samples, "messages": messages,
        "batch_messages": batch_messages, "cpu_s": round(cpu, 3), "cpu_readings_per_s": round(readings / cpu),
        "readings": readings, "stored": stored, "rejected": rejected, "seconds": round(elapsed, 3),
        "first_contact_s": round(cold, 3),
        "first_contact_readings_per_s": round(warm * channels * samples / cold),
        "normalize_s": round(t_norm, 3), "store_s": round(t_store, 3),
        "normalize_readings_per_s": round(readings / t_norm), "readings_per_s": round(rate),
        "baseline_readings": base_readings, "baseline_readings_per_s": round(base_rate),
        "ratio": round(rate / base_rate, 1),
        "baseline_normalize_readings_per_s": round(base_readings / base_norm),
        "normalize_ratio": round(readings / t_norm / (base_readings / base_norm), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assets", type=int, default=10_000)
    parser.add_argument("--channels", type=int, default=10)
    parser.add_argument("--messages", type=int, default=100_000, help="device samples in all")
    parser.add_argument("--batch", type=int, default=5_000, help="device samples per micro-batch")
    parser.add_argument("--samples-per-message", type=int, default=1)
    args = parser.parse_args(argv)
    out = run_inprocess(args.assets, args.channels, args.messages, batch_messages=args.batch,
                        samples=args.samples_per_message)
    print(f"first contact (one sample of each of {out['n_assets']} assets, routes resolved): "
          f"{out['first_contact_s']} s, {out['first_contact_readings_per_s']:,} readings/s")
    print(f"steady state: {out['readings']} readings in {out['seconds']} s: {out['readings_per_s']:,} "
          f"readings/s (normalize {out['normalize_s']} s = {out['normalize_readings_per_s']:,}/s, "
          f"store {out['store_s']} s); {out['cpu_readings_per_s']:,} readings per CPU second")
    print(f"baseline (per-reading objects and conversion, same store): "
          f"{out['baseline_readings_per_s']:,} readings/s (normalize alone "
          f"{out['baseline_normalize_readings_per_s']:,}/s); ratio {out['ratio']}x end to end, "
          f"{out['normalize_ratio']}x normalize alone")
    print("timings are from a shared 2-core machine and noisy")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
