"""Small synthetic run-to-failure fleets shaped like C-MAPSS, for tests, docs and examples.

Each unit degrades along ``d(t) = (t / life)^shape`` from a random initial wear to failure;
sensors read ``regime offset + gain × d + noise``. With ``regimes > 1`` every row runs in one
of several operating regimes (settings far apart, sensor offsets much larger than the
degradation signal), as in FD002/FD004. `write_cmapss` writes the three text files of the
real data set (whitespace separated, two trailing spaces per row).

>>> runs = synthetic_fleet(n_units=3, seed=1)
>>> runs.sensors.shape[1], sorted(set(runs.units.tolist()))
(21, [1, 2, 3])
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from twinloop.analytics.rul.trajectories import Trajectories

N_SENSORS = 21
N_SETTINGS = 3


def synthetic_fleet(n_units: int = 20, seed: int = 0, regimes: int = 1, life: tuple[int, int] = (90, 200),
                    noise: float = 0.3, world: int = 0) -> Trajectories:
    """``n_units`` complete runs to failure (units numbered from 1, time in cycles from 1).

    ``world`` fixes the regimes and sensor responses (same engine type), ``seed`` the units:
    a train and a test fleet share a world and differ in seed.
    """
    physics = np.random.default_rng([world, 99])
    setting_levels = physics.uniform([0.0, 0.0, 60.0], [42.0, 0.84, 100.0], (regimes, N_SETTINGS))
    sensor_offset = physics.normal(0.0, 20.0, (regimes, N_SENSORS)) + 500.0
    gain = physics.normal(0.0, 3.0, N_SENSORS)
    gain[:5] = 0.0  # some sensors never move, as in C-MAPSS
    rng = np.random.default_rng(seed)
    unit, time, settings, sensors, rul = [], [], [], [], []
    for u in range(1, n_units + 1):
        n = int(rng.integers(life[0], life[1] + 1))
        t = np.arange(1, n + 1, dtype=np.float64)
        start = rng.uniform(0.0, 0.15)
        d = start + (1.0 - start) * (t / n) ** rng.uniform(1.5, 2.5)
        r = rng.integers(0, regimes, n)
        settings.append(setting_levels[r] + rng.normal(0.0, 1e-3, (n, N_SETTINGS)))
        sensors.append(sensor_offset[r] + d[:, None] * gain + rng.normal(0.0, noise, (n, N_SENSORS)))
        unit.append(np.full(n, u))
        time.append(t)
        rul.append(n - t)
    return Trajectories(np.concatenate(unit), np.concatenate(time), np.vstack(settings), np.vstack(sensors),
                        rul=np.concatenate(rul), time_unit="cycle")


def write_cmapss(folder: Path, subset: str, train: Trajectories, test: Trajectories,
                 seed: int = 0) -> np.ndarray:
    """Write ``train_/test_/RUL_<subset>.txt``; test units are cut at random; returns the true RULs."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    keep = np.array([int(rng.integers(max(1, n // 3), n)) for n in test.lengths])
    cut = test.truncate(keep)
    truth = test.lengths - keep
    for name, runs in ((f"train_{subset}.txt", train), (f"test_{subset}.txt", cut)):
        table = np.column_stack([runs.unit, runs.time, runs.settings, runs.sensors])
        lines = [" ".join(f"{v:.4f}" if j > 1 else str(int(v)) for j, v in enumerate(row)) + "  "
                 for row in table]
        (folder / name).write_text("\n".join(lines) + "\n")
    (folder / f"RUL_{subset}.txt").write_text("".join(f"{int(r)} \n" for r in truth))
    return truth


__all__ = ["synthetic_fleet", "write_cmapss"]
