"""`FileReplaySource`: recorded messages or readings from CSV/Parquet, replayed at their pace or faster.

Two file shapes are understood:

- **recorded messages**: columns ``topic`` and ``payload`` (bytes or text), replayed as they were;
- **rows of anything else** (e.g. readings ``asset_id, channel, ts, value``): each row becomes a JSON
  object payload, on the topic ``topic`` formats from the row (``"replay/{asset_id}"``).

``time_column`` (epoch ns, or a timestamp) paces the replay: ``speed=1`` keeps the original gaps,
``speed=60`` plays a minute per second, ``speed=inf`` (the default) goes as fast as the consumer takes.
The stream ends at the end of the file; ``acked`` counts distinct acknowledged rows.
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from twinloop.connectors.urls import ConnectorError
from twinloop.core.protocols import RawMessage


def read_table(path: Path) -> pa.Table:
    """A CSV or Parquet file as an Arrow table; ``ConnectorError`` naming the file when unreadable."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix == ".csv":
            return pacsv.read_csv(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise ConnectorError(f"cannot read replay file: {err}", url=f"file://{path}") from err
    raise ConnectorError(
        f"unsupported replay file type {suffix!r}", url=f"file://{path}", hint="use .csv or .parquet"
    )


class FileReplaySource:
    """Replays a file as a `Source`; see the module docstring."""

    def __init__(
        self,
        path: str | Path,
        *,
        name: str | None = None,
        topic: str = "replay/{asset_id}",
        time_column: str | None = "ts",
        speed: float = math.inf,
    ) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive (inf = as fast as possible)")
        self.path = Path(path)
        self.name = name or f"file://{self.path}"
        self.topic = topic
        self.time_column = time_column
        self.speed = speed
        self.received = 0
        self._table: pa.Table | None = None
        self._acked = np.zeros(0, dtype=bool)
        self._stopped = False

    @property
    def connected(self) -> bool:
        """True from ``start`` until ``stop``."""
        return self._table is not None and not self._stopped

    @property
    def acked(self) -> int:
        """Distinct rows acknowledged so far."""
        return int(self._acked.sum())

    async def start(self) -> None:
        """Read the file (in a worker thread) and check its columns."""
        table = await asyncio.to_thread(read_table, self.path)
        raw = {"topic", "payload"} <= set(table.column_names)
        if self.time_column and self.time_column not in table.column_names:
            self.time_column = None  # no pacing column: replay at once
        if not raw:
            try:
                self.topic.format(**{c: "" for c in table.column_names})
            except KeyError as err:
                raise ConnectorError(
                    f"topic template {self.topic!r} names column {err} the file lacks",
                    url=self.name, hint=f"columns: {', '.join(table.column_names)}",
                ) from None
        self._table = table
        self._acked = np.zeros(table.num_rows, dtype=bool)
        self._stopped = False

    def _times(self, table: pa.Table) -> np.ndarray | None:
        if not self.time_column or math.isinf(self.speed):
            return None
        col = table.column(self.time_column)
        if pa.types.is_timestamp(col.type):
            col = col.cast(pa.timestamp("ns")).cast(pa.int64())
        return np.asarray(col.to_numpy(zero_copy_only=False), dtype=np.int64)

    async def stream(self) -> AsyncIterator[RawMessage]:
        """Each row as a `RawMessage` (meta ``row``), paced by ``time_column`` and ``speed``."""
        table = self._table
        if table is None:
            raise ConnectorError("replay not started", url=self.name, hint="await start() first")
        raw = {"topic", "payload"} <= set(table.column_names)
        times = self._times(table)
        table = _timestamps_as_ns(table)
        start_wall = time.monotonic()
        for offset, batch in _row_batches(table):
            rows = batch.to_pylist()
            for i, row in enumerate(rows):
                if self._stopped:
                    return
                index = offset + i
                if times is not None:
                    due = start_wall + (times[index] - times[0]) / 1e9 / self.speed
                    delay = due - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                topic, payload = _encode(row, raw, self.topic)
                self.received += 1
                yield RawMessage(self.name, topic, payload, time.time_ns(), {"row": index})
            await asyncio.sleep(0)  # let others run between batches when replaying at full speed

    async def ack(self, message: RawMessage) -> None:
        """Mark the row acknowledged (idempotent)."""
        row = message.meta.get("row")
        if isinstance(row, int) and 0 <= row < len(self._acked):
            self._acked[row] = True

    async def stop(self) -> None:
        """End the stream."""
        self._stopped = True


def _timestamps_as_ns(table: pa.Table) -> pa.Table:
    """Timestamp columns as int64 epoch ns: exact, and JSON-ready."""
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type):
            ns = table.column(i).cast(pa.timestamp("ns", tz=field.type.tz)).cast(pa.int64())
            table = table.set_column(i, field.name, ns)
    return table


def _row_batches(table: pa.Table, size: int = 4096) -> list[tuple[int, pa.RecordBatch]]:
    out, offset = [], 0
    for batch in table.to_batches(max_chunksize=size):
        out.append((offset, batch))
        offset += batch.num_rows
    return out


def _encode(row: dict[str, Any], raw: bool, template: str) -> tuple[str, bytes]:
    if raw:
        payload = row["payload"]
        return str(row["topic"]), payload if isinstance(payload, bytes) else str(payload).encode()
    plain = {k: _jsonable(v) for k, v in row.items()}
    return template.format(**row), json.dumps(plain, separators=(",", ":")).encode()


def _jsonable(value: Any) -> Any:
    if hasattr(value, "isoformat"):  # dates; timestamps were made epoch ns already
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value


__all__ = ["FileReplaySource", "read_table"]
