import numpy as np
import pyarrow as pa
import pytest

from twinloop.core.errors import ReadingError
from twinloop.core.readings import SCHEMA, Quality, ReadingBatch


def test_from_arrays_broadcasts_scalars_and_keeps_schema():
    b = ReadingBatch.from_arrays("p1", ["a", "b", "c"], 10, np.array([1.0, 2.0, 3.0]))
    assert len(b) == 3
    assert b.table.schema == SCHEMA
    assert b.asset_ids.tolist() == ["p1"] * 3
    assert b.ts_ns.tolist() == [10, 10, 10]
    assert b.quality.tolist() == [Quality.GOOD] * 3


def test_datetime64_timestamps_become_utc_nanoseconds():
    ts = np.array(["2026-01-01T00:00:00"], dtype="datetime64[s]")
    b = ReadingBatch.from_arrays("p1", "flow", ts, [1.0])
    assert b.ts_ns[0] == 1_767_225_600 * 10**9
    assert str(b.table.schema.field("ts").type) == "timestamp[ns, tz=UTC]"


def test_length_mismatch_is_a_reading_error():
    with pytest.raises(ReadingError, match="length"):
        ReadingBatch.from_arrays(["a", "b"], "flow", [1, 2, 3], [1.0, 2.0, 3.0])


def test_non_numeric_values_are_rejected():
    with pytest.raises(ReadingError, match="numeric"):
        ReadingBatch.from_arrays("a", "flow", [1], ["high"])


def test_bad_quality_is_rejected():
    with pytest.raises(ReadingError, match="quality"):
        ReadingBatch.from_arrays("a", "flow", [1], [1.0], quality=[9])


def test_from_table_casts_int_timestamps_and_defaults_quality():
    t = pa.table({"asset_id": ["a"], "channel": ["x"], "ts": [5], "value": [1]})
    b = ReadingBatch.from_table(t)
    assert b.table.schema == SCHEMA and b.values.tolist() == [1.0] and b.quality.tolist() == [0]


def test_from_table_rejects_missing_columns_and_nulls():
    with pytest.raises(ReadingError, match="lacks"):
        ReadingBatch.from_table(pa.table({"asset_id": ["a"]}))
    t = pa.table({"asset_id": ["a", None], "channel": ["x", "y"], "ts": [1, 2], "value": [1.0, 2]})
    with pytest.raises(ReadingError, match="null"):
        ReadingBatch.from_table(t)


def test_concat_filter_sorted_and_records():
    a = ReadingBatch.from_arrays("p2", "flow", [3, 1], [3.0, 1.0])
    b = ReadingBatch.from_arrays("p1", "flow", [2], [2.0])
    c = ReadingBatch.concat([a, b])
    assert len(c) == 3 and len(ReadingBatch.concat([])) == 0
    s = c.sorted()
    assert s.asset_ids.tolist() == ["p1", "p2", "p2"] and s.ts_ns.tolist() == [2, 1, 3]
    big = c.filter(c.values > 1.5)
    assert sorted(big.values.tolist()) == [2.0, 3.0]
    assert b.to_records() == [
        {"asset_id": "p1", "channel": "flow", "ts": 2, "value": 2.0, "quality": 0}
    ]
