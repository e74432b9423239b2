"""Bounded reordering: hold readings up to a window W so late arrivals come out in time order.

Whole messages are held, never parts of one, so a message is acknowledged once, after all its
readings are stored. A held message is released when it has waited W on the injected clock
(latency never exceeds W), or earlier once the newest device time seen is W past its own
readings. Every release also takes every held message that is not newer than what is released,
and comes out sorted by ``ts``: a reading that arrives up to W after a newer one is emitted
before it. ``W = 0`` passes everything straight through, unsorted.

Columns are numpy arrays of equal length keyed by name; ``msg`` holds a message number that is
unique for the life of the normalizer, ``recv`` the message's arrival time.

>>> buf = ReorderBuffer(window_ns=10)
>>> cols = {"ts": np.array([5, 3]), "msg": np.array([0, 1]), "recv": np.array([0, 1])}
>>> len(buf.push(cols, now_ns=2)["ts"]), buf.held_readings
(0, 2)
>>> buf.push(_empty_like(cols), now_ns=11)["ts"].tolist()
[3, 5]
"""

from __future__ import annotations

import numpy as np

Columns = dict[str, np.ndarray]


def _empty_like(cols: Columns) -> Columns:
    return {k: v[:0] for k, v in cols.items()}


def take(cols: Columns, idx: np.ndarray) -> Columns:
    """Rows ``idx`` (an index array or boolean mask) of every column."""
    return {k: v[idx] for k, v in cols.items()}


def concat(a: Columns, b: Columns) -> Columns:
    if not a or len(a["msg"]) == 0:
        return b
    if len(b["msg"]) == 0:
        return a
    return {k: np.concatenate([a[k], b[k]]) for k in a}


class ReorderBuffer:
    """Holds whole messages for up to ``window_ns``; see the module docstring."""

    def __init__(self, window_ns: int = 0) -> None:
        if window_ns < 0:
            raise ValueError("the reorder window cannot be negative")
        self.window_ns = int(window_ns)
        self._held: Columns = {}
        self._newest_ts = np.iinfo(np.int64).min

    @property
    def held_readings(self) -> int:
        return len(self._held["msg"]) if self._held else 0

    def held_messages(self) -> np.ndarray:
        return np.unique(self._held["msg"]) if self._held else np.zeros(0, np.int64)

    def push(self, cols: Columns, now_ns: int) -> Columns:
        """Add readings; returns those released now (sorted by ts when the window is > 0)."""
        if self.window_ns == 0:
            return cols
        if len(cols["ts"]):
            self._newest_ts = max(self._newest_ts, int(cols["ts"].max()))
        allc = concat(self._held, cols)
        if len(allc["msg"]) == 0:
            self._held = allc
            return allc
        msgs, inv = np.unique(allc["msg"], return_inverse=True)
        ts_max = np.full(len(msgs), np.iinfo(np.int64).min)
        ts_min = np.full(len(msgs), np.iinfo(np.int64).max)
        recv = np.zeros(len(msgs), np.int64)
        np.maximum.at(ts_max, inv, allc["ts"])
        np.minimum.at(ts_min, inv, allc["ts"])
        recv[inv] = allc["recv"]
        go = (recv + self.window_ns <= now_ns) | (ts_max <= self._newest_ts - self.window_ns)
        if go.any():
            go |= ts_min <= ts_max[go].max()
        released = go[inv]
        self._held = take(allc, ~released)
        out = take(allc, released)
        return take(out, np.argsort(out["ts"], kind="stable"))

    def flush(self) -> Columns:
        """Release everything held, sorted by ts."""
        out, self._held = self._held, {}
        if not out:
            return out
        return take(out, np.argsort(out["ts"], kind="stable"))


__all__ = ["Columns", "ReorderBuffer", "concat", "take"]
