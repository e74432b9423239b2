"""Benchmark: 1,000 pump units run to bearing failure in one state matrix, against a per-unit loop.

Prints human lines, then one JSON object as the last line::

    python benchmarks/sim_batch.py --units 1000 --seed 1 --out /tmp/rtf.parquet

The baseline steps the same physics (the same `run_fleet` code path) one unit at a time in a
Python loop for a few units, each capped at ``--baseline-hours`` of simulated time, and is
compared in simulated unit-hours per second.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time

import numpy as np

from twinloop.sim.batch import run_fleet, write_parquet


def _peak_rss_mb() -> float:
    scale = 1024.0 if sys.platform != "darwin" else 1024.0 * 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dt", type=float, default=600.0, help="physics step [s]")
    ap.add_argument("--out", default=None, help="write the readings as Parquet here")
    ap.add_argument("--baseline-units", type=int, default=10)
    ap.add_argument("--baseline-hours", type=float, default=500.0)
    args = ap.parse_args(argv)

    t0 = time.perf_counter()
    fleet = run_fleet(n_units=args.units, seed=args.seed, dt_s=args.dt)
    seconds = time.perf_counter() - t0
    fail_h = np.asarray(fleet.units.column("failure_h"))
    unit_hours = float(np.nansum(fail_h))
    rows = fleet.readings.num_rows
    rate = unit_hours / seconds
    print(f"units               {args.units} (failed: {int(np.isfinite(fail_h).sum())})")
    print(
        f"life [h]            p5 {np.nanpercentile(fail_h, 5):.0f}  median {np.nanmedian(fail_h):.0f}  "
        f"p95 {np.nanpercentile(fail_h, 95):.0f}"
    )
    print(f"simulated unit-h    {unit_hours:,.0f}")
    print(f"rows                {rows:,}")
    print(f"seconds             {seconds:.2f}")
    print(f"unit_hours_per_s    {rate:,.0f}")
    print(f"peak RSS            {_peak_rss_mb():,.0f} MB")
    if args.out:
        t1 = time.perf_counter()
        path = write_parquet(fleet.readings, args.out)
        write_parquet(fleet.units, path.with_name(path.stem + "-units.parquet"))
        size_mb, took = path.stat().st_size / 1e6, time.perf_counter() - t1
        print(f"parquet             {path} ({size_mb:.1f} MB, {took:.1f} s)")

    t0 = time.perf_counter()
    base_hours = 0.0
    for i in range(args.baseline_units):  # the loop the batch replaces: one unit at a time
        one = run_fleet(n_units=1, seed=args.seed * 1000 + i, dt_s=args.dt, max_hours=args.baseline_hours)
        last = one.readings.column("t_h").to_numpy()
        base_hours += float(last.max()) if last.size else 0.0
    base_seconds = time.perf_counter() - t0
    base_rate = base_hours / base_seconds
    print(
        f"baseline            {args.baseline_units} units one at a time, {base_hours:,.0f} unit-h in "
        f"{base_seconds:.2f} s = {base_rate:,.0f} unit-h/s"
    )
    print(f"ratio               {rate / base_rate:,.0f}x")
    result = {
        "units": args.units,
        "seconds": round(seconds, 3),
        "unit_hours_per_s": round(rate, 1),
        "rows": rows,
        "baseline_unit_hours_per_s": round(base_rate, 1),
        "ratio": round(rate / base_rate, 1),
    }
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
