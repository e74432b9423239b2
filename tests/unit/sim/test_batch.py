"""Run-to-failure batches: every unit fails, truth columns are consistent, deterministic, Parquet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from twinloop.sim.batch import FAULT_LABELS, FleetRun, run_fleet, run_to_failure, write_parquet
from twinloop.sim.pump_station_layout import PUMP_CHANNELS


@pytest.fixture(scope="module")
def fleet() -> FleetRun:
    # wear_scale compresses life ~20x so the test runs in about a second; physics unchanged otherwise.
    return run_fleet(
        n_units=40,
        seed=3,
        dt_s=1800,
        sample_every_s=3600,
        wear_scale=20.0,
        cavitation_share=0.3,
        accelerated_share=0.3,
    )


def test_every_unit_fails_and_leaves_a_last_row_at_failure(fleet: FleetRun) -> None:
    units = fleet.units
    assert units.num_rows == 40 and all(units.column("failed").to_pylist())
    t = fleet.readings
    assert set(t.column("unit").to_pylist()) == set(range(40))
    last = t.filter(t.column("failed"))
    assert last.num_rows == 40
    assert np.allclose(last.column("wear").to_numpy(), 1.0) and np.all(last.column("rul_h").to_numpy() == 0)
    fail_h = dict(zip(units.column("unit").to_pylist(), units.column("failure_h").to_pylist(), strict=True))
    assert all(
        fail_h[u] == h
        for u, h in zip(last.column("unit").to_pylist(), last.column("t_h").to_pylist(), strict=True)
    )


def test_wear_monotone_and_rul_counts_down_to_zero_per_unit(fleet: FleetRun) -> None:
    t = fleet.readings
    unit, t_h = t.column("unit").to_numpy(), t.column("t_h").to_numpy()
    wear, rul, cycle = t.column("wear").to_numpy(), t.column("rul_h").to_numpy(), t.column("cycle").to_numpy()
    for u in range(40):
        m = unit == u
        assert np.all(np.diff(t_h[m]) > 0) and np.all(np.diff(cycle[m]) > 0)
        assert np.all(np.diff(wear[m]) >= 0)
        assert np.allclose(np.diff(rul[m]), -np.diff(t_h[m])) and rul[m][-1] == 0


def test_columns_settings_channels_and_fault_labels(fleet: FleetRun) -> None:
    names = fleet.readings.column_names
    assert names[:3] == ["unit", "t_h", "cycle"]
    assert [c for c, _, _ in PUMP_CHANNELS] == [n for n in names if n in {c for c, _, _ in PUMP_CHANNELS}]
    assert {"wear", "rul_h", "failed", "fault", "speed_setpoint", "ambient_temperature"} <= set(names)
    labels = set(pc.unique(fleet.readings.column("fault").combine_chunks().dictionary_decode()).to_pylist())
    assert labels <= set(FAULT_LABELS) and {"none", "cavitation", "bearing_wear"} <= labels
    # Cavitation rows show up in the hidden physics: more bearing vibration at a given wear.
    t = fleet.readings
    cav = t.filter(pc.equal(t.column("fault").combine_chunks().dictionary_decode(), "cavitation"))
    assert np.all(cav.column("suction_pressure").to_numpy() < 0)


def test_accelerated_units_fail_earlier(fleet: FleetRun) -> None:
    u = fleet.units
    fail = u.column("failure_h").to_numpy()
    life = fail * u.column("wear_multiplier").to_numpy()
    accelerated = np.isfinite(u.column("accelerated_start_h").to_numpy())
    assert np.median(life[accelerated]) < np.median(life[~accelerated])


def test_deterministic_with_seed() -> None:
    a = run_to_failure(n_units=5, seed=9, dt_s=3600, sample_every_s=7200, wear_scale=40.0)
    b = run_to_failure(n_units=5, seed=9, dt_s=3600, sample_every_s=7200, wear_scale=40.0)
    c = run_to_failure(n_units=5, seed=10, dt_s=3600, sample_every_s=7200, wear_scale=40.0)
    assert a.equals(b) and not a.equals(c)


def test_parquet_round_trip(fleet: FleetRun, tmp_path: Path) -> None:
    path = write_parquet(fleet.readings, tmp_path / "deep" / "rtf.parquet")
    assert pq.read_metadata(path).row_group(0).column(0).compression == "ZSTD"
    assert pq.read_table(path).equals(fleet.readings)


def test_censored_units_have_no_failure_time() -> None:
    short = run_fleet(n_units=3, seed=1, dt_s=3600, max_hours=24, noise=False)
    assert not any(short.units.column("failed").to_pylist())
    assert np.all(np.isnan(short.readings.column("rul_h").to_numpy()))
