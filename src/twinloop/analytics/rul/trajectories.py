"""`Trajectories`: the run histories prognosers learn from and predict on, one row per unit and time.

Columnar and fleet-wide, like C-MAPSS and `twinloop.sim.batch` output: ``unit`` ids (rows of a
unit contiguous, time ascending), ``time`` (cycles or hours), operating ``settings`` and
``sensors`` as matrices, and — for training — the true remaining life ``rul`` of every row.

>>> t = Trajectories(unit=[1, 1, 2], time=[1, 2, 1], settings=np.zeros((3, 0)),
...                  sensors=[[1.0], [2.0], [3.0]], sensor_names=("s1",))
>>> t.units.tolist(), t.last_rows().tolist(), len(t.take_units([2]))
([1, 2], [1, 2], 1)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from twinloop.core.errors import ValidationError


@dataclass(frozen=True, eq=False)
class Trajectories:
    """Histories of many units; see the module docstring. Construction checks shapes and order."""

    unit: np.ndarray
    time: np.ndarray
    settings: np.ndarray
    sensors: np.ndarray
    sensor_names: tuple[str, ...] = ()
    setting_names: tuple[str, ...] = ()
    rul: np.ndarray | None = None
    time_unit: str = "cycle"
    _starts: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        unit = np.asarray(self.unit, dtype=np.int64)
        time = np.asarray(self.time, dtype=np.float64)
        n = unit.size
        settings = np.asarray(self.settings, dtype=np.float64).reshape(n, -1)
        sensors = np.asarray(self.sensors, dtype=np.float64).reshape(n, -1)
        names = tuple(self.sensor_names) or tuple(f"sensor_{i + 1}" for i in range(sensors.shape[1]))
        set_names = tuple(self.setting_names) or tuple(f"setting_{i + 1}" for i in range(settings.shape[1]))
        if time.shape != (n,):
            raise ValidationError(f"time has {time.size} rows, unit has {n}")
        if len(names) != sensors.shape[1] or len(set_names) != settings.shape[1]:
            raise ValidationError("sensor/setting names do not match the matrix widths")
        if n == 0:
            raise ValidationError("trajectories need at least one row")
        if not (np.all(np.isfinite(time)) and np.all(np.isfinite(settings)) and np.all(np.isfinite(sensors))):
            raise ValidationError("trajectories hold NaN or infinite values",
                                  hint="fill or drop missing readings before predicting")
        change = np.flatnonzero(np.diff(unit) != 0) + 1
        starts = np.r_[0, change]
        if np.unique(unit[starts]).size != starts.size:
            raise ValidationError("rows of one unit must be contiguous", hint="sort by (unit, time)")
        same = np.diff(unit) == 0
        if np.any(np.diff(time)[same] < 0):
            raise ValidationError("time must not decrease within a unit", hint="sort by (unit, time)")
        rul = None if self.rul is None else np.asarray(self.rul, dtype=np.float64)
        if rul is not None and rul.shape != (n,):
            raise ValidationError(f"rul has {rul.size} rows, expected {n}")
        for key, value in (("unit", unit), ("time", time), ("settings", settings), ("sensors", sensors),
                           ("sensor_names", names), ("setting_names", set_names), ("rul", rul),
                           ("_starts", starts)):
            object.__setattr__(self, key, value)

    # --- shape ------------------------------------------------------------------------------
    def __len__(self) -> int:
        return int(self.unit.size)

    @property
    def units(self) -> np.ndarray:
        """Unit ids in row order."""
        return self.unit[self._starts]

    @property
    def starts(self) -> np.ndarray:
        """First row of each unit."""
        return self._starts

    @property
    def lengths(self) -> np.ndarray:
        """Rows per unit."""
        return np.diff(np.r_[self._starts, len(self)])

    def row_starts(self) -> np.ndarray:
        """For every row, the first row of its unit (rolling windows stop there)."""
        return np.repeat(self._starts, self.lengths)

    def last_rows(self) -> np.ndarray:
        """The last row of each unit: where a prediction is asked for."""
        return np.r_[self._starts[1:], len(self)] - 1

    # --- selection --------------------------------------------------------------------------
    def take_rows(self, rows: np.ndarray) -> Trajectories:
        rows = np.asarray(rows)
        return Trajectories(
            self.unit[rows], self.time[rows], self.settings[rows], self.sensors[rows],
            self.sensor_names, self.setting_names, None if self.rul is None else self.rul[rows],
            self.time_unit,
        )

    def take_units(self, units: Sequence[int] | np.ndarray) -> Trajectories:
        """The rows of the given units, in their stored order."""
        mask = np.isin(self.unit, np.asarray(units, dtype=np.int64))
        if not mask.any():
            raise ValidationError("none of the requested units is in these trajectories")
        return self.take_rows(np.flatnonzero(mask))

    def truncate(self, keep: np.ndarray) -> Trajectories:
        """Each unit cut after ``keep[i]`` rows (>= 1): histories as seen part-way through life."""
        keep = np.asarray(keep, dtype=np.int64)
        if keep.shape != self._starts.shape or np.any(keep < 1) or np.any(keep > self.lengths):
            raise ValidationError("truncate needs 1 <= keep <= length for every unit")
        rows = np.concatenate([np.arange(s, s + k) for s, k in zip(self._starts, keep, strict=True)])
        return self.take_rows(rows)

    # --- construction -----------------------------------------------------------------------
    @classmethod
    def from_table(
        cls,
        table: pa.Table,
        sensors: Sequence[str],
        settings: Sequence[str] = (),
        *,
        unit: str = "unit",
        time: str = "t_h",
        rul: str | None = "rul_h",
        time_unit: str = "h",
    ) -> Trajectories:
        """From a wide table such as `twinloop.sim.batch.run_fleet(...).readings` (sorted by unit, time)."""
        missing = [c for c in (unit, time, *sensors, *settings, *([rul] if rul else [])) if c not in
                   table.column_names]
        if missing:
            raise ValidationError(f"table lacks columns {missing}", hint=f"it has {table.column_names}")

        def matrix(cols: Sequence[str]) -> np.ndarray:
            if not cols:
                return np.zeros((table.num_rows, 0))
            return np.column_stack([table.column(c).to_numpy().astype(np.float64) for c in cols])

        return cls(
            table.column(unit).to_numpy(), table.column(time).to_numpy(), matrix(settings),
            matrix(sensors), tuple(sensors), tuple(settings),
            table.column(rul).to_numpy() if rul else None, time_unit,
        )


__all__ = ["Trajectories"]
