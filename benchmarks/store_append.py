"""How fast `DuckDBStore.append` takes readings, against the naive row-wise insert it replaces.

Run: ``.venv/bin/python benchmarks/store_append.py --rows 1000000 --batch 100000``. Prints a few
human lines, then one JSON object as the last line (for CI trend tracking).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np

from twinloop.core.readings import ReadingBatch
from twinloop.store.duckdb_store import DuckDBStore

T0 = 1_700_000_000_000_000_000


def make_batches(rows: int, batch: int, assets: int, channels: int) -> list[ReadingBatch]:
    """Synthetic, time-ordered readings: every (asset, channel) ticks once per second."""
    rng = np.random.default_rng(0)
    names_a = np.array([f"asset-{k:04d}" for k in range(assets)])
    names_c = np.array([f"ch-{k:02d}" for k in range(channels)])
    per_tick = assets * channels
    out = []
    for start in range(0, rows, batch):
        i = np.arange(start, min(start + batch, rows))
        g = i % per_tick
        out.append(
            ReadingBatch.from_arrays(
                names_a[g // channels],
                names_c[g % channels],
                T0 + (i // per_tick) * 1_000_000_000,
                rng.normal(50.0, 5.0, len(i)),
            )
        )
    return out


def baseline_rows_per_s(sample: ReadingBatch, path: Path) -> float:
    """The naive way: one parameterized INSERT per reading via ``executemany``."""
    con = duckdb.connect(str(path))
    try:
        con.execute(
            "CREATE TABLE readings (asset_id VARCHAR, channel VARCHAR, ts BIGINT, "
            "value DOUBLE, quality UTINYINT)"
        )
        rows = [(r["asset_id"], r["channel"], r["ts"], r["value"], r["quality"]) for r in sample.to_records()]
        t0 = time.perf_counter()
        con.executemany("INSERT INTO readings VALUES (?, ?, ?, ?, ?)", rows)
        return len(rows) / (time.perf_counter() - t0)
    finally:
        con.close()


def main(argv: list[str] | None = None) -> dict[str, float]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--batch", type=int, default=100_000)
    p.add_argument("--assets", type=int, default=100)
    p.add_argument("--channels", type=int, default=10)
    p.add_argument("--baseline-rows", type=int, default=20_000)
    p.add_argument("--path", type=Path, default=None, help="DuckDB file (default: a temp file)")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="twinloop-bench-") as tmp:
        path = args.path or Path(tmp) / "bench.duckdb"
        for stale in (path, Path(f"{path}.wal")):
            stale.unlink(missing_ok=True)
        batches = make_batches(args.rows, args.batch, args.assets, args.channels)

        store = DuckDBStore(path)
        latencies = []
        t0 = time.perf_counter()
        for b in batches:
            t1 = time.perf_counter()
            store.append(b)
            latencies.append(time.perf_counter() - t1)
        elapsed = time.perf_counter() - t0
        stored = store.count_readings()
        t1 = time.perf_counter()
        n_latest = len(store.latest())
        latest_ms = (time.perf_counter() - t1) * 1e3
        store.close()
        size_mb = path.stat().st_size / 1e6

        sample = ReadingBatch.concat(batches)
        sample = ReadingBatch(sample.table.slice(0, min(args.baseline_rows, len(sample))))
        base = baseline_rows_per_s(sample, Path(tmp) / "baseline.duckdb")

    assert stored == args.rows, f"stored {stored} readings, expected {args.rows}"
    rate = args.rows / elapsed
    lat_ms = np.array(latencies) * 1e3
    peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "rows": args.rows,
        "rows_per_s": round(rate),
        "peak_rss_mb": round(peak_rss_mb, 1),
        "baseline_rows_per_s": round(base),
        "ratio": round(rate / base, 1),
        "batch_p99_ms": round(float(np.percentile(lat_ms, 99)), 1),
    }
    print(
        f"appended {args.rows:,} readings in {len(batches)} batches of {args.batch:,}: "
        f"{elapsed:.2f} s, {rate:,.0f} rows/s"
    )
    print(
        f"per batch: p50 {np.percentile(lat_ms, 50):.1f} ms, p99 {result['batch_p99_ms']} ms; "
        f"latest() over {n_latest} series: {latest_ms:.1f} ms"
    )
    print(f"file {size_mb:.1f} MB, peak RSS {peak_rss_mb:.0f} MB")
    print(
        f"baseline executemany ({len(sample):,} rows): {base:,.0f} rows/s -> "
        f"batched is {result['ratio']}x faster"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
