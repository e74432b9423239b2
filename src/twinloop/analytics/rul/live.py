"""Prognosers for live twins: from what the store holds about some twins to their `RulDistribution`s.

A `TwinPrognoser` names the channels it needs (latest values and bucketed history) and predicts
for many twins of one type at once from `TwinInputs` (handed over by the runtime; nothing here
reads a store or a clock). Named implementations are registered in `twinloop.analytics.rul.models`:

* `twinloop.analytics.rul.pump_bearing.PumpBearingPrognoser` — physics, from the estimator's wear
  posterior (or, marked as such, from vibration). Needs no training data.
* `TrajectoryTwinPrognoser` — any fitted data-driven prognoser (trained, e.g., on
  `twinloop.sim.batch.run_fleet` output, whose columns are the Pump channel names) over the
  twin's hourly history. Age counts from the twin's first stored reading.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import pyarrow as pa

from twinloop.analytics.rul.distribution import RulDistribution
from twinloop.analytics.rul.protocol import Prognoser
from twinloop.analytics.rul.trajectories import Trajectories
from twinloop.core.errors import TwinloopError, ValidationError

if TYPE_CHECKING:
    from twinloop.analytics.rul.physics import StateEstimate

HOUR_NS = 3600 * 10**9


@dataclass(frozen=True)
class TwinInputs:
    """What the runtime knows about one twin: newest value per channel, bucketed history
    (`HISTORY_SCHEMA` rows, or None), and its estimator's filter health when known. A prognoser
    that declares ``related = (("partOf", "outdoor_temperature"), …)`` also gets that channel of
    the twin the relationship points to, as ``partOf.outdoor_temperature``, in both."""

    twin_id: str
    latest: Mapping[str, float]
    history: pa.Table | None = None
    health: Mapping[str, Any] | None = None


@runtime_checkable
class TwinPrognoser(Protocol):
    """RUL of live twins of one asset type from their readings."""

    name: str
    channels: tuple[str, ...]  # latest values handed over
    history_channels: tuple[str, ...]  # bucketed history handed over (empty: none)
    bucket_ns: int | None
    history_h: float

    def state_of(self, latest: Mapping[str, float]) -> tuple[float, float] | None:
        """The degradation state (mean, std) a prediction would start from; the runtime recomputes
        when it moves by more than a fraction of its std. None when not known."""
        ...

    def predict_twins(self, inputs: Sequence[TwinInputs]) -> list[RulDistribution | TwinloopError]:
        """One answer per twin, in order: its RUL, or the error that says why it has none."""
        ...


class TrajectoryTwinPrognoser:
    """A fitted data-driven prognoser over a twin's bucketed history (see the module docstring)."""

    def __init__(self, prognoser: Prognoser, sensors: Sequence[str], bucket_ns: int = HOUR_NS,
                 history_h: float = 24 * 90, name: str = "trajectory") -> None:
        self.prognoser = prognoser
        self.channels = tuple(sensors)
        self.history_channels = tuple(sensors)
        self.bucket_ns = bucket_ns
        self.history_h = history_h
        self.name = name

    def state_of(self, latest: Mapping[str, float]) -> tuple[float, float] | None:
        return None

    def predict_twins(self, inputs: Sequence[TwinInputs]) -> list[RulDistribution | TwinloopError]:
        out: list[RulDistribution | TwinloopError] = []
        for twin in inputs:  # histories differ in length; the trees are fast per unit
            try:
                runs = history_to_trajectories(twin.history, self.channels, self.bucket_ns)
                d = self.prognoser.predict(runs)
            except TwinloopError as err:
                out.append(err)
                continue
            d.basis = "history"
            out.append(d)
        return out


def predict_each(
    inputs: Sequence[TwinInputs],
    state_of: Callable[[TwinInputs], tuple[StateEstimate, str]],
    predict_fleet: Callable[[list[StateEstimate]], Sequence[RulDistribution]],
) -> list[RulDistribution | TwinloopError]:
    """One answer per twin, in order: the twins whose state can be read are predicted in one fleet
    call (its RUL carries the basis ``state_of`` named), the others get the error that says why."""
    states: list[StateEstimate] = []
    bases: list[str] = []
    out: list[RulDistribution | TwinloopError | None] = []
    for twin in inputs:
        try:
            state, basis = state_of(twin)
        except TwinloopError as err:
            out.append(err)
            continue
        states.append(state)
        bases.append(basis)
        out.append(None)
    if states:
        dists = iter(predict_fleet(states))
        basis_of = iter(bases)
        for i, slot in enumerate(out):
            if slot is None:
                d = next(dists)
                d.basis = next(basis_of)
                out[i] = d
    return [o for o in out if o is not None]


def bucket_columns(history: pa.Table | None, channels: Sequence[str]) -> dict[str, np.ndarray]:
    """Bucket means as aligned columns (NaN where a channel has no bucket); ``_t_h``: bucket time in
    hours since the first bucket. Empty when there is no history.

    >>> t = pa.table({"channel": ["a", "a", "b"], "bucket": pa.array([0, 3600 * 10**9, 0], pa.int64()),
    ...               "mean": [1.0, 2.0, 5.0]})
    >>> cols = bucket_columns(t, ["a", "b"])
    >>> cols["_t_h"].tolist(), cols["a"].tolist(), cols["b"].tolist()
    ([0.0, 1.0], [1.0, 2.0], [5.0, nan])
    """
    if history is None or history.num_rows == 0:
        return {}
    channel = np.asarray(history.column("channel").to_pylist(), dtype=object)
    bucket = history.column("bucket").cast(pa.int64()).to_numpy()
    mean = history.column("mean").to_numpy(zero_copy_only=False).astype(np.float64)
    times = np.unique(bucket)
    out: dict[str, np.ndarray] = {"_t_h": (times - times[0]) / HOUR_NS}
    for name in channels:
        rows = channel == name
        if rows.any():
            col = np.full(times.size, np.nan)
            col[np.searchsorted(times, bucket[rows])] = mean[rows]
            out[name] = col
    return out


def estimator_unusable(twin: TwinInputs, history: Mapping[str, np.ndarray], state: str,
                       nis_limit: float) -> str | None:
    """Why a twin's estimate of ``state`` must not feed its RUL ("" when there is none), None when
    it may: the runtime's filter health decides (``consistent``: None is not trusted yet), else an
    ``est.consistent`` reading, else the median ``est.nis`` of the recent history against
    ``nis_limit``."""
    latest = twin.latest
    if state not in latest:
        return ""
    health = twin.health or {}
    if "consistent" in health:
        if health["consistent"] is None:
            return f"estimator not trusted yet: {health.get('reason') or 'too few steps seen'}"
        if not health["consistent"]:
            return f"estimator inconsistent: {health.get('reason') or 'filter health says so'}"
        return None
    if "est.consistent" in latest:
        return None if latest["est.consistent"] >= 0.5 else "estimator inconsistent (est.consistent = 0)"
    nis = history.get("est.nis")
    recent = nis if nis is not None else np.array([latest.get("est.nis", np.nan)])
    recent = recent[np.isfinite(recent)]
    if recent.size == 0:
        return None
    level = float(np.median(recent[-36:]))
    if level > nis_limit:
        return f"estimator inconsistent: median NIS {level:.3g} > {nis_limit:g}"
    return None


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


__all__ = ["TrajectoryTwinPrognoser", "TwinInputs", "TwinPrognoser", "bucket_columns",
           "estimator_unusable", "history_to_trajectories"]
