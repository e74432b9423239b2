"""Prognosers for live twins: from what the store holds about one twin to a `RulDistribution`.

A `TwinPrognoser` names the channels it needs and predicts from the twin's latest readings and
its bucketed history (both handed over by the runtime; nothing here reads a store or a clock):

* `PumpPhysicsTwinPrognoser` — wear read off vibration (`pump.pump_state_from_readings`), then
  the `PhysicsPrognoser` under the pump's present duty. Needs no training data.
* `TrajectoryTwinPrognoser` — any fitted data-driven prognoser (trained, e.g., on
  `twinloop.sim.batch.run_fleet` output, whose columns are the Pump channel names) over the
  twin's hourly history. Age counts from the twin's first stored reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

from twinloop.analytics.rul.distribution import RulDistribution
from twinloop.analytics.rul.physics import PhysicsPrognoser
from twinloop.analytics.rul.protocol import Prognoser
from twinloop.analytics.rul.pump import CHANNELS as PUMP_CHANNELS
from twinloop.analytics.rul.pump import pump_load_from_readings, pump_state_from_readings
from twinloop.analytics.rul.trajectories import Trajectories
from twinloop.core.errors import ValidationError
from twinloop.physics.pump_unit import PumpUnitModel

HOUR_NS = 3600 * 10**9


@runtime_checkable
class TwinPrognoser(Protocol):
    """RUL of one live twin from its readings."""

    channels: tuple[str, ...]
    bucket_ns: int | None  # None: needs only the latest readings

    def predict_twin(self, latest: Mapping[str, float], history: pa.Table | None) -> RulDistribution:
        """``latest``: channel → newest value; ``history``: `HISTORY_SCHEMA` buckets (or None)."""
        ...


class PumpPhysicsTwinPrognoser:
    """Physics-based RUL of a Pump twin's bearing (see the module docstring)."""

    channels = PUMP_CHANNELS
    bucket_ns = None

    def __init__(self, n_samples: int = 400, parameter_spread: Mapping[str, float] | None = None,
                 seed: int = 0) -> None:
        self.n_samples = n_samples
        self.parameter_spread = {"bearing_wear_rate": 0.2} if parameter_spread is None else parameter_spread
        self.seed = seed

    def predict_twin(self, latest: Mapping[str, float], history: pa.Table | None = None) -> RulDistribution:
        state = pump_state_from_readings(latest, seed=self.seed)
        prognoser = PhysicsPrognoser(PumpUnitModel(), pump_load_from_readings(latest), "bearing_failure",
                                     self.parameter_spread, self.n_samples, seed=self.seed).fit()
        return prognoser.predict(state)


class TrajectoryTwinPrognoser:
    """A fitted data-driven prognoser over a twin's bucketed history (see the module docstring)."""

    def __init__(self, prognoser: Prognoser, sensors: Sequence[str], bucket_ns: int = HOUR_NS) -> None:
        self.prognoser = prognoser
        self.channels = tuple(sensors)
        self.bucket_ns = bucket_ns

    def predict_twin(self, latest: Mapping[str, float], history: pa.Table | None) -> RulDistribution:
        return self.prognoser.predict(history_to_trajectories(history, self.channels, self.bucket_ns))


def history_to_trajectories(
    history: pa.Table | None, sensors: Sequence[str], bucket_ns: int
) -> Trajectories:
    """Bucket means of one twin as a one-unit trajectory in hours; gaps are carried forward."""
    if history is None or history.num_rows == 0:
        raise ValidationError("no history to predict from",
                              hint=f"the twin needs readings of {list(sensors)}")
    channel = np.asarray(history.column("channel").to_pylist(), dtype=object)
    bucket = history.column("bucket").cast(pa.int64()).to_numpy()
    mean = history.column("mean").to_numpy(zero_copy_only=False).astype(np.float64)
    absent = [s for s in sensors if not np.any(channel == s)]
    if absent:
        raise ValidationError(f"no readings of {absent}",
                              hint="RUL needs every channel the model was trained on")
    times = np.unique(bucket)
    grid = np.full((times.size, len(sensors)), np.nan)
    col = {s: i for i, s in enumerate(sensors)}
    keep = np.isin(channel, list(sensors))
    rows = np.searchsorted(times, bucket[keep])
    cols = np.array([col[c] for c in channel[keep]], dtype=np.int64)
    grid[rows, cols] = mean[keep]
    for j in range(grid.shape[1]):  # carry the last value forward, then back-fill the start
        idx = np.where(np.isfinite(grid[:, j]), np.arange(len(grid)), 0)
        np.maximum.accumulate(idx, out=idx)
        grid[:, j] = grid[idx, j]
        first = np.flatnonzero(np.isfinite(grid[:, j]))[0]
        grid[:first, j] = grid[first, j]
    t_h = (times - times[0]) / HOUR_NS + bucket_ns / HOUR_NS
    return Trajectories(np.zeros(times.size, np.int64), t_h, np.zeros((times.size, 0)), grid,
                        tuple(sensors), (), None, "h")


__all__ = ["PumpPhysicsTwinPrognoser", "TrajectoryTwinPrognoser", "TwinPrognoser", "history_to_trajectories"]
