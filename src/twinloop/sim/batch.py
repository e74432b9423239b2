"""Run-to-failure data for prognostics: thousands of pump units, one state matrix, no unit loop.

Every unit is one row of a single ``PumpUnitModel`` state matrix. Units differ in their
parameters (manufacturing spread), in a hidden wear-rate multiplier, in where in the year they
start (ambient), and in operating regimes that change every few days (speed band following the
production demand, valve opening, static head, suction pressure). Some suffer a cavitation
episode or a stretch of accelerated wear; the ``fault`` column labels those rows.

Rows are sampled every ``sample_every_s`` with realistic sensor noise and one last row at the
failure step, in the wide layout of C-MAPSS (``unit``, ``t_h``, ``cycle``, operating settings,
channels, then ground truth: ``wear``, ``rul_h``, ``failed``, ``fault``). A unit leaves the
matrix when it fails, so late in the run only the long-lived units cost anything.

>>> fleet = run_fleet(n_units=3, seed=1, dt_s=3600, sample_every_s=24 * 3600, wear_scale=40.0)
>>> sorted(set(fleet.readings.column("unit").to_pylist()))
[0, 1, 2]
>>> bool(all(fleet.units.column("failed").to_pylist()))
True
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from twinloop.physics.model import index, names
from twinloop.physics.pump_unit import PumpUnitModel
from twinloop.sim.environment import DAY_S, Environment
from twinloop.sim.pump_station_layout import NOISE, PUMP_CHANNELS

SETTINGS = (
    "speed_setpoint",
    "valve_command",
    "suction_pressure_setting",
    "static_head",
    "ambient_temperature",
)
FAULT_LABELS = ("none", "cavitation", "bearing_wear")
HALL_RISE_K = 8.0  # pump hall air above outdoor air (motors heat the room)


@dataclass(frozen=True)
class FleetRun:
    """The sampled rows of a run-to-failure batch and one row per unit (failure time, parameters)."""

    readings: pa.Table
    units: pa.Table


def _regimes(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "speed": rng.uniform(2450.0, 2950.0, n),
        "valve": rng.choice([55.0, 70.0, 85.0, 100.0], n),
        "head": rng.uniform(40.0, 60.0, n),
        "suction": rng.uniform(0.2, 0.8, n),
    }


def run_fleet(
    n_units: int = 1000,
    seed: int = 1,
    dt_s: float = 600.0,
    sample_every_s: float = 3600.0,
    max_hours: float = 60_000.0,
    wear_spread: float = 0.2,
    wear_scale: float = 1.0,
    regime_days: float = 5.0,
    cavitation_share: float = 0.15,
    accelerated_share: float = 0.1,
    noise: bool = True,
    environment: Environment | None = None,
    progress: Callable[[float, int], None] | None = None,
) -> FleetRun:
    """Run ``n_units`` independent pump units to bearing failure, vectorized across units.

    ``wear_scale`` multiplies every unit's wear rate (a time-compression knob for quick demos and
    tests; 1 is the model's physics); ``wear_spread`` is the log-normal spread of the hidden
    per-unit multiplier. ``progress(t_h, units_left)`` is called about every 1,000 steps.
    """
    model = PumpUnitModel()
    env = environment or Environment(seed=seed)
    rng = np.random.default_rng([seed, 11])
    sample_every = max(1, round(sample_every_s / dt_s))
    n = n_units
    p_all = model.sample_parameters(n, rng, 0.05)
    hidden = wear_scale * rng.lognormal(0.0, wear_spread, n)
    max_steps = int(np.ceil(max_hours * 3600.0 / dt_s))
    year_offset = rng.integers(0, round(365 * DAY_S / dt_s), n)  # in steps
    t_table = np.arange(int(year_offset.max()) + max_steps + 2) * dt_s
    # The machine hall runs HALL_RISE_K above the outdoor air.
    climate = np.stack([env.ambient_temperature(t_table) + HALL_RISE_K, env.demand(t_table)])
    cav_start = np.where(rng.random(n) < cavitation_share, rng.uniform(0.0, 0.6, n), np.inf)
    cav_len = rng.uniform(0.02, 0.08, n)
    acc_start = np.where(rng.random(n) < accelerated_share, rng.uniform(0.1, 0.7, n), np.inf)
    acc_factor = rng.uniform(3.0, 8.0, n)
    regime = _regimes(rng, n)
    # Fault windows are given as fractions of the unit's nominal life, so they land before failure.
    nominal_life_h = _nominal_life_h(model, p_all) / hidden

    inp = model.inputs
    c_sp, c_valve, c_suc, c_head, c_amb, c_wear, c_stuck = (
        index(inp, k)
        for k in (
            "speed_setpoint",
            "valve_command",
            "suction_pressure",
            "discharge_static_head",
            "ambient_temperature",
            "wear_acceleration",
            "valve_stuck",
        )
    )
    out_cols = [index(model.outputs, o) for _, o, _ in PUMP_CHANNELS]
    noise_abs = np.array([NOISE[c][0] for c, _, _ in PUMP_CHANNELS])
    noise_rel = np.array([NOISE[c][1] for c, _, _ in PUMP_CHANNELS])
    s_wear = index(model.states, "bearing_wear")

    alive = np.arange(n)
    u = np.zeros((n, len(inp)))
    cols = (c_sp, c_valve, c_suc, c_head, c_amb, c_wear, c_stuck)

    def fill(u: np.ndarray, k: int, alive: np.ndarray) -> None:
        """Operating inputs of the units still alive at step ``k`` (regimes, climate, faults)."""
        _fill_inputs(u, k, alive, climate, regime, year_offset, hidden, nominal_life_h,
                     cav_start, cav_len, acc_start, acc_factor, dt_s, cols)

    fill(u, 0, alive)
    x = model.initial_state(p_all, u, rng)
    x[:, s_wear] = 0.0
    p = p_all
    fail_h = np.full(n, np.nan)
    chunks: list[tuple[np.ndarray, ...]] = []
    regime_every = max(1, round(regime_days * DAY_S / dt_s))
    for k in range(1, max_steps + 1):
        t = k * dt_s
        if k % regime_every == 0:  # operators change the duty of every unit every few days
            new = _regimes(rng, alive.size)
            for key in regime:
                regime[key][alive] = new[key]
        x = model.next_state(x, u, dt_s, p)
        done = x[:, s_wear] >= 1.0
        if k % sample_every == 0 or done.any():
            take = np.ones(alive.size, bool) if k % sample_every == 0 else done
            y = model.output(x[take], u[take], p[take])[:, out_cols]
            if noise:
                y = y + (noise_abs + noise_rel * np.abs(y)) * rng.standard_normal(y.shape)
            settings = u[take][:, [c_sp, c_valve, c_suc, c_head, c_amb]].astype(np.float32)
            label = np.where(_in_window(t - dt_s, cav_start, cav_len, nominal_life_h, alive[take]), 1, 0)
            label = np.where(u[take][:, c_wear] > hidden[alive[take]] * 1.5, 2, label)
            chunks.append(
                (
                    alive[take].astype(np.int32),
                    np.full(take.sum(), t / 3600.0),
                    np.full(take.sum(), -(-k // sample_every), np.int32),
                    settings,
                    y.astype(np.float32),
                    x[take][:, s_wear],
                    done[take],
                    label.astype(np.int8),
                )
            )
        if done.any():
            fail_h[alive[done]] = t / 3600.0
            keep = ~done
            alive, x, u, p = alive[keep], x[keep], u[keep], p[keep]
            if alive.size == 0:
                break
        if progress is not None and k % 1000 == 0:
            progress(t / 3600.0, int(alive.size))
        fill(u, k, alive)
    readings = _readings_table(chunks, fail_h)
    units = pa.table(
        {
            "unit": pa.array(np.arange(n), pa.int32()),
            "failure_h": fail_h,
            "failed": np.isfinite(fail_h),
            "wear_multiplier": hidden,
            "cavitation_start_h": np.where(np.isfinite(cav_start), cav_start * nominal_life_h, np.nan),
            "accelerated_start_h": np.where(np.isfinite(acc_start), acc_start * nominal_life_h, np.nan),
            **{f"param_{name}": p_all[:, i] for i, name in enumerate(names(model.parameters))},
        }
    )
    return FleetRun(readings, units)


def _nominal_life_h(model: PumpUnitModel, p: np.ndarray) -> np.ndarray:
    """Life [h] from new at the reference wear rate, ``ln((1 + w0)/w0)/λ``; places fault windows."""
    rate = p[:, index(model.parameters, "bearing_wear_rate")]
    offset = p[:, index(model.parameters, "bearing_wear_offset")]
    return np.log((1.0 + offset) / offset) / rate


def _in_window(
    t_s: float, start: np.ndarray, length: np.ndarray, life_h: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    frac = t_s / 3600.0 / life_h[rows]
    return (frac >= start[rows]) & (frac < start[rows] + length[rows])


def _fill_inputs(
    u: np.ndarray,
    k: int,
    alive: np.ndarray,
    climate: np.ndarray,
    regime: dict[str, np.ndarray],
    year_offset: np.ndarray,
    hidden: np.ndarray,
    life_h: np.ndarray,
    cav_start: np.ndarray,
    cav_len: np.ndarray,
    acc_start: np.ndarray,
    acc_factor: np.ndarray,
    dt_s: float,
    cols: tuple[int, ...],
) -> None:
    """Inputs of the surviving units at step ``k`` (in place; ``u`` rows follow ``alive``).

    ``climate`` is the environment tabulated once per step of the run (rows: hall temperature,
    demand), so each unit looks its conditions up at its own offset into the year.
    """
    c_sp, c_valve, c_suc, c_head, c_amb, c_wear, c_stuck = cols
    t = k * dt_s
    row = year_offset[alive] + k
    u[:, c_sp] = regime["speed"][alive] * (0.85 + 0.15 * np.minimum(climate[1, row], 1.2))
    u[:, c_valve] = regime["valve"][alive]
    cav = _in_window(t, cav_start, cav_len, life_h, alive)
    u[:, c_suc] = regime["suction"][alive] - np.where(cav, 1.3, 0.0)
    u[:, c_head] = regime["head"][alive]
    u[:, c_amb] = climate[0, row]
    frac = t / 3600.0 / life_h[alive]
    u[:, c_wear] = hidden[alive] * np.where(frac >= acc_start[alive], acc_factor[alive], 1.0)
    u[:, c_stuck] = 0.0


def _readings_table(chunks: list[tuple[np.ndarray, ...]], fail_h: np.ndarray) -> pa.Table:
    if not chunks:
        chunks = [
            (
                np.zeros(0, np.int64),
                np.zeros(0),
                np.zeros(0),
                np.zeros((0, len(SETTINGS))),
                np.zeros((0, len(PUMP_CHANNELS))),
                np.zeros(0),
                np.zeros(0, bool),
                np.zeros(0, np.int8),
            )
        ]
    unit, t_h, cycle, settings, y, wear, failed, label = (
        np.concatenate(parts) for parts in zip(*chunks, strict=True)
    )
    order = np.lexsort((t_h, unit))
    unit, t_h = unit[order], t_h[order]
    columns: dict[str, pa.Array | np.ndarray] = {
        "unit": pa.array(unit, pa.int32()),
        "t_h": t_h,
        "cycle": pa.array(cycle[order], pa.int32()),
    }
    for i, name in enumerate(SETTINGS):
        columns[name] = settings[order, i]  # float32: a setting needs no more than a sensor
    for i, (channel, _, _) in enumerate(PUMP_CHANNELS):
        columns[channel] = y[order, i]
    columns["wear"] = wear[order]
    columns["rul_h"] = fail_h[unit] - t_h
    columns["failed"] = failed[order]
    columns["fault"] = pa.DictionaryArray.from_arrays(pa.array(label[order]), pa.array(list(FAULT_LABELS)))
    return pa.table(columns)


def run_to_failure(
    n_units: int = 1000,
    seed: int = 1,
    dt_s: float = 600.0,
    sample_every_s: float = 3600.0,
    max_hours: float = 60_000.0,
    **options: object,
) -> pa.Table:
    """The sampled rows of `run_fleet` (per-unit failure times and parameters: ``run_fleet().units``)."""
    return run_fleet(n_units, seed, dt_s, sample_every_s, max_hours, **options).readings  # type: ignore[arg-type]


def write_parquet(table: pa.Table, path: str | Path) -> Path:
    """Write a table as Parquet (zstd), creating parent folders; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")
    return path


__all__ = ["FAULT_LABELS", "SETTINGS", "FleetRun", "run_fleet", "run_to_failure", "write_parquet"]
