"""`ChannelFrame`: one asset's readings as a dense (time × channel) matrix, the shape detectors need.

A `ReadingBatch` is long (one row per reading); detectors compare channels at the same instant,
so they work on a pivot of it: one row per distinct timestamp, one column per channel, NaN where
a channel has no (good) reading at that instant. The pivot is one vectorized scatter.

>>> from twinloop.core.readings import ReadingBatch
>>> b = ReadingBatch.from_arrays("p1", ["flow", "head", "flow"], [1, 1, 2], [10.0, 30.0, 11.0])
>>> f = ChannelFrame.from_readings(b)
>>> f.channels, f.values.tolist()
(('flow', 'head'), [[10.0, 30.0], [11.0, nan]])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from twinloop.core.errors import ValidationError
from twinloop.core.readings import Quality, ReadingBatch


@dataclass(frozen=True)
class ChannelFrame:
    """Readings of one asset on a time grid: ``values[i, j]`` is channel ``j`` at ``ts_ns[i]``."""

    ts_ns: np.ndarray
    channels: tuple[str, ...]
    values: np.ndarray
    asset_id: str = ""

    def __post_init__(self) -> None:
        ts = np.asarray(self.ts_ns, dtype=np.int64)
        values = np.asarray(self.values, dtype=np.float64)
        if values.ndim != 2:
            raise ValidationError(f"frame values must be 2-D (time × channel), got shape {values.shape}")
        if values.shape != (len(ts), len(self.channels)):
            raise ValidationError(
                f"frame values have shape {values.shape}, expected ({len(ts)}, {len(self.channels)})"
            )
        if len(set(self.channels)) != len(self.channels):
            raise ValidationError(f"frame channels repeat: {list(self.channels)}")
        object.__setattr__(self, "ts_ns", ts)
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "channels", tuple(self.channels))

    def __len__(self) -> int:
        return len(self.ts_ns)

    @classmethod
    def from_array(
        cls,
        values: np.ndarray,
        channels: Sequence[str] | None = None,
        ts_ns: np.ndarray | None = None,
        asset_id: str = "",
    ) -> ChannelFrame:
        """A frame from a plain matrix; channels default to ``c0, c1, …``, times to ``0, 1, …``."""
        v = np.asarray(values, dtype=np.float64)
        if v.ndim == 1:
            v = v[:, None]
        names = tuple(channels) if channels is not None else tuple(f"c{j}" for j in range(v.shape[1]))
        ts = np.arange(len(v), dtype=np.int64) if ts_ns is None else np.asarray(ts_ns, np.int64)
        return cls(ts, names, v, asset_id)

    @classmethod
    def from_readings(
        cls,
        batch: ReadingBatch,
        asset_id: str | None = None,
        channels: Sequence[str] | None = None,
        good_only: bool = True,
    ) -> ChannelFrame:
        """Pivot one asset's readings; BAD readings count as missing when ``good_only``.

        ``asset_id`` picks the asset when the batch holds several (required then); ``channels``
        fixes the column order (channels absent from the batch become all-NaN columns).
        """
        assets = np.unique(batch.asset_ids) if len(batch) else np.array([], dtype=object)
        if asset_id is None:
            if len(assets) > 1:
                raise ValidationError(
                    f"the batch holds {len(assets)} assets", hint="pass asset_id to pick one"
                )
            asset_id = str(assets[0]) if len(assets) else ""
        mask = batch.asset_ids == asset_id if len(assets) > 1 or asset_id not in assets else None
        if mask is not None:
            batch = batch.filter(mask)
        chan = batch.channels
        values = batch.values.copy()
        if good_only:
            values[batch.quality == Quality.BAD] = np.nan
        names = tuple(channels) if channels is not None else tuple(str(c) for c in np.unique(chan))
        col_of = {c: j for j, c in enumerate(names)}
        cols = np.fromiter((col_of.get(c, -1) for c in chan), dtype=np.int64, count=len(chan))
        keep = cols >= 0
        ts_all = batch.ts_ns
        ts, rows = np.unique(ts_all[keep], return_inverse=True)
        grid = np.full((len(ts), len(names)), np.nan)
        grid[rows, cols[keep]] = values[keep]  # later duplicates win, like a latest-value table
        return cls(ts, names, grid, asset_id)

    def select(self, channels: Sequence[str]) -> ChannelFrame:
        """The frame with exactly ``channels`` in that order; absent channels become NaN columns."""
        idx = {c: j for j, c in enumerate(self.channels)}
        out = np.full((len(self), len(channels)), np.nan)
        for k, c in enumerate(channels):
            if c in idx:
                out[:, k] = self.values[:, idx[c]]
        return ChannelFrame(self.ts_ns, tuple(channels), out, self.asset_id)

    def on_grid(self, period_ns: int, start_ns: int | None = None, end_ns: int | None = None) -> ChannelFrame:
        """Resample onto a regular grid (nearest slot, later rows win); empty slots become NaN rows,
        so silence (communication loss) is visible to detectors instead of simply absent.

        >>> f = ChannelFrame.from_array([[1.0], [2.0]], ts_ns=np.array([0, 30]))
        >>> f.on_grid(10).values[:, 0].tolist()
        [1.0, nan, nan, 2.0]
        """
        if period_ns <= 0:
            raise ValidationError(f"grid period must be positive, got {period_ns}")
        if len(self) == 0 and (start_ns is None or end_ns is None):
            return self
        lo = int(self.ts_ns[0]) if start_ns is None else int(start_ns)
        hi = int(self.ts_ns[-1]) if end_ns is None else int(end_ns)
        n = max((hi - lo) // period_ns + 1, 0)
        slot = np.rint((self.ts_ns - lo) / period_ns).astype(np.int64)
        keep = (slot >= 0) & (slot < n)
        grid = np.full((n, len(self.channels)), np.nan)
        grid[slot[keep]] = self.values[keep]
        ts = lo + np.arange(n, dtype=np.int64) * period_ns
        return ChannelFrame(ts, self.channels, grid, self.asset_id)

    def where(self, mask: np.ndarray) -> ChannelFrame:
        """The rows where ``mask`` is true, in order (the grid gets gaps)."""
        keep = np.asarray(mask, dtype=bool)
        return ChannelFrame(self.ts_ns[keep], self.channels, self.values[keep], self.asset_id)

    def rows(self, start: int, stop: int | None = None) -> ChannelFrame:
        """Rows ``start:stop`` (a view of the same data)."""
        return ChannelFrame(self.ts_ns[start:stop], self.channels, self.values[start:stop], self.asset_id)


FrameLike = ChannelFrame | ReadingBatch | np.ndarray


def as_frame(data: FrameLike) -> ChannelFrame:
    """Accept a frame, a one-asset reading batch, or a (time × channel) array."""
    if isinstance(data, ChannelFrame):
        return data
    if isinstance(data, ReadingBatch):
        return ChannelFrame.from_readings(data)
    if isinstance(data, np.ndarray):
        return ChannelFrame.from_array(data)
    raise ValidationError(
        f"detectors take a ChannelFrame, a ReadingBatch or a 2-D array, not {type(data).__name__}"
    )


__all__ = ["ChannelFrame", "FrameLike", "as_frame"]
