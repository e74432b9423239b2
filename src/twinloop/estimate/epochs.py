"""A reading batch pivoted into epochs: one row per (twin, timestamp), one column per channel.

A filter consumes measurement *vectors*; the pipeline moves long-format readings. `pivot` turns
one into the other with sorts and scatters (no loop over readings): channels a twin did not
report at an instant are NaN, and each epoch gets its rank within its twin, so a filter steps
every twin through its k-th epoch at once (a loop over time, never over twins).

Readings with quality BAD, and non-finite values, are not measurements; they are counted
(``bad``) and left NaN.

>>> from twinloop.core.readings import ReadingBatch
>>> b = ReadingBatch.from_arrays(["a", "a", "b", "a"], ["y", "u", "y", "y"], [5, 5, 7, 9],
...                              [1.0, 2.0, 3.0, 4.0])
>>> e = pivot(b, {"a": 0, "b": 1}, ("y", "u"))
>>> e.rows.tolist(), e.rank.tolist(), e.values[:, 0].tolist()
([0, 0, 1], [0, 1, 0], [1.0, 4.0, 3.0])
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from twinloop.core.errors import ValidationError
from twinloop.core.readings import Quality, ReadingBatch


@dataclass(frozen=True)
class Epochs:
    """Readings of one batch as ``(n_epochs, n_channels)`` values, ordered by twin, then time."""

    rows: np.ndarray  # filter row of each epoch
    ts_ns: np.ndarray  # int64 timestamp of each epoch
    rank: np.ndarray  # 0 for a twin's first epoch in the batch, 1 for its second, …
    values: np.ndarray  # (n_epochs, n_channels), NaN where not reported
    bad: int  # readings dropped from the vectors because their quality was BAD


def _codes(labels: np.ndarray, lookup: Mapping[str, int]) -> np.ndarray:
    """Map string labels to ints through ``lookup`` (one dict access per distinct label); -1 if absent."""
    if len(labels) == 0:
        return np.zeros(0, dtype=np.intp)
    uniq, inverse = np.unique(labels, return_inverse=True)
    table = np.array([lookup.get(str(s), -1) for s in uniq], dtype=np.intp)
    return table[inverse]


def pivot(batch: ReadingBatch, rows: Mapping[str, int], channels: Sequence[str]) -> Epochs:
    """Epochs of the twins in ``rows`` over ``channels``; readings of other channels are ignored.

    An asset id not in ``rows`` is an error (the caller routes each twin to its type's filter).
    """
    assets = batch.asset_ids
    row = _codes(assets, rows)
    if (row < 0).any():
        unknown = sorted(set(assets[row < 0].tolist()))
        raise ValidationError(f"readings for twins this estimator does not hold: {unknown[:5]}",
                              hint="add them with add_twins() or route them to their type's estimator")
    col = _codes(batch.channels, {c: i for i, c in enumerate(channels)})
    unusable = (batch.quality == Quality.BAD) | ~np.isfinite(batch.values)
    keep = col >= 0
    bad = int((keep & unusable).sum())
    keep &= ~unusable
    row, col, ts, value = row[keep], col[keep], batch.ts_ns[keep], batch.values[keep]
    order = np.lexsort((ts, row))
    row, col, ts, value = row[order], col[order], ts[order], value[order]
    starts = np.ones(len(row), dtype=bool)
    starts[1:] = (row[1:] != row[:-1]) | (ts[1:] != ts[:-1])
    epoch = np.cumsum(starts) - 1
    n_epochs = int(epoch[-1]) + 1 if len(epoch) else 0
    values = np.full((n_epochs, len(channels)), np.nan)
    values[epoch, col] = value  # a repeated (twin, ts, channel) keeps the last one
    e_rows, e_ts = row[starts], ts[starts]
    first = np.ones(n_epochs, dtype=bool)
    first[1:] = e_rows[1:] != e_rows[:-1]
    group_start = np.maximum.accumulate(np.where(first, np.arange(n_epochs), 0))
    rank = np.arange(n_epochs) - group_start
    return Epochs(rows=e_rows, ts_ns=e_ts, rank=rank, values=values, bad=bad)


__all__ = ["Epochs", "pivot"]
