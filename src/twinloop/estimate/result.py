"""What an estimator reports: per-twin mean and std of every state, and the innovations.

`FleetEstimate` is a snapshot of a whole type's fleet as arrays; `FleetEstimate.to_batch`
turns it into readings the store keeps without any schema change:

* ``est.<name>`` and ``est.<name>_std``: mean and standard deviation of each state or estimated
  parameter (``<name>`` is the spec's published name, e.g. ``est.bearing.wear``);
* ``innov.<channel>``: the last innovation (measurement − prediction) of each measured channel;
* ``est.nis``: normalized innovation squared (≈ number of channels when the filter is consistent).

All with quality SUBSTITUTED: they are computed, not measured.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from twinloop.core.errors import NotFoundError
from twinloop.core.readings import Quality, ReadingBatch

EST_PREFIX = "est."
INNOV_PREFIX = "innov."


@dataclass(frozen=True)
class UpdateReport:
    """What one `update` did: epochs applied and readings it could not use, with the reason."""

    epochs: int = 0
    twins: int = 0
    late: int = 0  # epochs older than the twin's last one (a forward filter cannot go back)
    bad: int = 0  # readings with quality BAD
    waiting: int = 0  # epochs of twins whose inputs are not known yet
    faults: int = 0  # twin updates reverted because the numbers went non-finite


@dataclass(frozen=True)
class FleetEstimate:
    """Estimates of every twin of one type: arrays ``(n_twins, n_states)`` in model units."""

    kind: str
    twin_ids: tuple[str, ...]
    names: tuple[str, ...]
    mean: np.ndarray
    std: np.ndarray
    ts_ns: np.ndarray  # last update per twin; -1 if never updated
    channels: tuple[str, ...]
    innovation: np.ndarray  # (n_twins, n_channels), NaN where not measured at the last update
    innovation_std: np.ndarray
    nis: np.ndarray
    repairs: np.ndarray  # covariance repairs so far per twin (non-PD guard)

    def row(self, twin_id: str) -> int:
        try:
            return self.twin_ids.index(twin_id)
        except ValueError:
            raise NotFoundError(f"no estimate for twin {twin_id!r}",
                                hint="the estimator has not seen readings of this twin yet") from None

    def twin(self, twin_id: str) -> dict[str, Any]:
        """One twin as plain data (for the API): states with mean/std, innovations, consistency."""
        i = self.row(twin_id)

        def num(v: float) -> float | None:
            return float(v) if np.isfinite(v) else None

        return {
            "twin_id": twin_id,
            "estimator": self.kind,
            "ts_ns": int(self.ts_ns[i]) if self.ts_ns[i] >= 0 else None,
            "states": {n: {"mean": num(self.mean[i, j]), "std": num(self.std[i, j])}
                       for j, n in enumerate(self.names)},
            "innovations": {c: {"value": num(self.innovation[i, j]), "std": num(self.innovation_std[i, j])}
                            for j, c in enumerate(self.channels)},
            "nis": num(self.nis[i]),
            "covariance_repairs": int(self.repairs[i]),
        }

    def to_batch(self, only: np.ndarray | None = None) -> ReadingBatch:
        """Readings of the estimates (see the module docstring) for twins updated at least once.

        ``only``: boolean mask or row indices restricting which twins are written.
        """
        rows = np.flatnonzero(self.ts_ns >= 0)
        if only is not None:
            chosen = np.zeros(len(self.twin_ids), dtype=bool)
            chosen[only] = True
            rows = rows[chosen[rows]]
        if len(rows) == 0:
            return ReadingBatch.empty()
        est = [f"{EST_PREFIX}{n}" for n in self.names]
        names = [*est, *(f"{c}_std" for c in est), *(f"{INNOV_PREFIX}{c}" for c in self.channels),
                 f"{EST_PREFIX}nis"]
        values = np.concatenate([self.mean[rows], self.std[rows], self.innovation[rows],
                                 self.nis[rows, None]], axis=1)
        k = len(names)
        ids = np.repeat(np.array(self.twin_ids, dtype=object)[rows], k)
        channel = np.tile(np.array(names, dtype=object), len(rows))
        ts = np.repeat(self.ts_ns[rows], k)
        flat = values.ravel()
        keep = np.isfinite(flat)  # an innovation of a channel not measured this time is no reading
        return ReadingBatch.from_arrays(ids[keep], channel[keep], ts[keep], flat[keep],
                                        np.full(int(keep.sum()), Quality.SUBSTITUTED, np.uint8))


__all__ = ["EST_PREFIX", "INNOV_PREFIX", "FleetEstimate", "UpdateReport"]
