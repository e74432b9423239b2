"""`ReadingBatch`: the columnar set of readings that moves through the pipeline.

Columns (Arrow): ``asset_id`` (string), ``channel`` (string), ``ts`` (timestamp, ns, UTC),
``value`` (float64), ``quality`` (uint8, see `Quality`). Everything hot moves as one batch,
never as one Python object per reading.

>>> b = ReadingBatch.from_arrays("p1", ["flow", "head"], [1_000, 1_000], [12.5, 31.0])
>>> len(b), b.channels.tolist(), b.quality.tolist()
(2, ['flow', 'head'], [0, 0])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import IntEnum
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from twinloop.core.errors import ReadingError


class Quality(IntEnum):
    """How far a reading can be trusted (OPC UA's good / uncertain / bad, plus substituted)."""

    GOOD = 0
    UNCERTAIN = 1
    BAD = 2
    SUBSTITUTED = 3


TS_TYPE = pa.timestamp("ns", tz="UTC")
SCHEMA = pa.schema(
    [
        pa.field("asset_id", pa.string(), nullable=False),
        pa.field("channel", pa.string(), nullable=False),
        pa.field("ts", TS_TYPE, nullable=False),
        pa.field("value", pa.float64(), nullable=False),
        pa.field("quality", pa.uint8(), nullable=False),
    ]
)


def _column(values: Any, n: int, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        return np.full(n, arr.item() if arr.dtype != object else values)
    if arr.ndim != 1 or len(arr) != n:
        raise ReadingError(f"column {name!r} has length {len(arr)}, expected {n}")
    return arr


def _ts_ns(values: Any, n: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = np.full(n, arr)
    if np.issubdtype(arr.dtype, np.datetime64):
        arr = arr.astype("datetime64[ns]").astype(np.int64)
    if not np.issubdtype(arr.dtype, np.integer):
        raise ReadingError("column 'ts' must hold integer epoch nanoseconds or datetime64 values")
    if len(arr) != n:
        raise ReadingError(f"column 'ts' has length {len(arr)}, expected {n}")
    return arr.astype(np.int64, copy=False)


class ReadingBatch:
    """An immutable, Arrow-backed batch of readings; see the module docstring for its columns."""

    __slots__ = ("_table",)

    def __init__(self, table: pa.Table) -> None:
        """Wrap a table that already has `SCHEMA`; use `from_table` to cast and check one."""
        self._table = table

    # --- construction -------------------------------------------------------------------
    @classmethod
    def from_arrays(
        cls,
        asset_id: str | Sequence[str] | np.ndarray,
        channel: str | Sequence[str] | np.ndarray,
        ts: int | Sequence[int] | np.ndarray,
        value: float | Sequence[float] | np.ndarray,
        quality: int | Sequence[int] | np.ndarray | None = None,
    ) -> ReadingBatch:
        """Build a batch from columns; scalars are broadcast to the length of the longest column."""
        lengths = [
            len(np.asarray(c)) for c in (asset_id, channel, ts, value, quality)
            if c is not None and np.asarray(c).ndim == 1
        ]
        n = max(lengths) if lengths else 1
        values = _column(value, n, "value")
        try:
            values = values.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise ReadingError("column 'value' must be numeric") from err
        q = _column(Quality.GOOD if quality is None else quality, n, "quality")
        if len(q) and (q.min() < 0 or q.max() > max(Quality)):
            raise ReadingError(f"quality must be one of {[int(x) for x in Quality]}")
        table = pa.Table.from_arrays(
            [
                pa.array(_column(asset_id, n, "asset_id"), pa.string()),
                pa.array(_column(channel, n, "channel"), pa.string()),
                pa.array(_ts_ns(ts, n), pa.int64()).cast(TS_TYPE),
                pa.array(values, pa.float64()),
                pa.array(q.astype(np.uint8), pa.uint8()),
            ],
            schema=SCHEMA,
        )
        return cls(table)

    @classmethod
    def from_table(cls, table: pa.Table) -> ReadingBatch:
        """Check and cast an Arrow table to `SCHEMA`; a missing ``quality`` column means GOOD."""
        names = set(table.column_names)
        missing = {"asset_id", "channel", "ts", "value"} - names
        if missing:
            raise ReadingError(f"reading table lacks columns {sorted(missing)}")
        if "quality" not in names:
            table = table.append_column(
                "quality", pa.array(np.zeros(table.num_rows, np.uint8), pa.uint8())
            )
        try:
            ts = table.column("ts")
            if pa.types.is_integer(ts.type):
                ts = ts.cast(pa.int64()).cast(TS_TYPE)
            elif pa.types.is_timestamp(ts.type):
                ts = ts.cast(pa.timestamp("ns", tz=ts.type.tz or "UTC")).cast(TS_TYPE)
            else:
                raise ReadingError(f"column 'ts' has type {ts.type}, expected timestamp or int64")
            cols = [
                table.column("asset_id").cast(pa.string()),
                table.column("channel").cast(pa.string()),
                ts,
                table.column("value").cast(pa.float64()),
                table.column("quality").cast(pa.uint8()),
            ]
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as err:
            raise ReadingError(f"reading table has wrong column types: {err}") from err
        if any(c.null_count for c in cols):
            raise ReadingError("reading columns may not contain nulls")
        return cls(pa.Table.from_arrays(cols, schema=SCHEMA))

    @classmethod
    def empty(cls) -> ReadingBatch:
        """A batch with no readings."""
        return cls(SCHEMA.empty_table())

    @classmethod
    def concat(cls, batches: Iterable[ReadingBatch]) -> ReadingBatch:
        """One batch holding all readings of ``batches`` in order."""
        tables = [b.table for b in batches]
        if not tables:
            return cls.empty()
        return cls(pa.concat_tables(tables).combine_chunks())

    # --- access ---------------------------------------------------------------------------
    @property
    def table(self) -> pa.Table:
        """The underlying Arrow table (zero-copy)."""
        return self._table

    def __len__(self) -> int:
        return self._table.num_rows

    def __repr__(self) -> str:
        return f"ReadingBatch({len(self)} readings)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ReadingBatch) and self._table.equals(other._table)

    __hash__ = None  # type: ignore[assignment]

    @property
    def asset_ids(self) -> np.ndarray:
        return self._table.column("asset_id").to_numpy(zero_copy_only=False)

    @property
    def channels(self) -> np.ndarray:
        return self._table.column("channel").to_numpy(zero_copy_only=False)

    @property
    def ts_ns(self) -> np.ndarray:
        """Timestamps as int64 epoch nanoseconds."""
        return self._table.column("ts").cast(pa.int64()).to_numpy(zero_copy_only=False)

    @property
    def values(self) -> np.ndarray:
        return self._table.column("value").to_numpy(zero_copy_only=False)

    @property
    def quality(self) -> np.ndarray:
        return self._table.column("quality").to_numpy(zero_copy_only=False)

    # --- transformation -------------------------------------------------------------------
    def filter(self, mask: np.ndarray | pa.Array) -> ReadingBatch:
        """The readings where ``mask`` is true."""
        return ReadingBatch(self._table.filter(pa.array(mask, pa.bool_())))

    def sorted(self) -> ReadingBatch:
        """Readings ordered by asset, channel, then time."""
        idx = pc.sort_indices(
            self._table,
            sort_keys=[("asset_id", "ascending"), ("channel", "ascending"), ("ts", "ascending")],
        )
        return ReadingBatch(self._table.take(idx))

    def of(
        self, asset_ids: Sequence[str] | None = None, channels: Sequence[str] | None = None
    ) -> ReadingBatch:
        """The readings of these assets and channels (``None``: all)."""
        table = self._table
        for column, wanted in (("asset_id", asset_ids), ("channel", channels)):
            if wanted is not None:
                table = table.filter(pc.is_in(table.column(column), pa.array(list(wanted), pa.string())))
        return self if table is self._table else ReadingBatch(table)

    def newest(self) -> ReadingBatch:
        """The newest reading per (asset, channel), ordered by asset then channel; on equal ``ts``
        the later row wins (the sort is stable)."""
        table = self.sorted().table
        if table.num_rows == 0:
            return self
        a = table.column("asset_id").to_numpy(zero_copy_only=False)
        c = table.column("channel").to_numpy(zero_copy_only=False)
        last = np.ones(len(a), bool)
        last[:-1] = (a[1:] != a[:-1]) | (c[1:] != c[:-1])
        return ReadingBatch(table.filter(pa.array(last)))

    def to_records(self) -> list[dict[str, Any]]:
        """Plain dicts (``ts`` as epoch ns) for small batches at the API boundary; never in hot paths."""
        return [
            {"asset_id": a, "channel": c, "ts": int(t), "value": float(v), "quality": int(q)}
            for a, c, t, v, q in zip(
                self.asset_ids, self.channels, self.ts_ns, self.values, self.quality, strict=True
            )
        ]


__all__ = ["SCHEMA", "TS_TYPE", "Quality", "ReadingBatch"]
