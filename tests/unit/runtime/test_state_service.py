import numpy as np
import pytest

from twinloop.core.errors import NotFoundError, ValidationError
from twinloop.core.readings import ReadingBatch

T0 = 1_767_225_600 * 10**9
S = 10**9


def test_record_latest_history_and_buckets(rt):
    ts = T0 + np.arange(120) * S
    batch = ReadingBatch.concat([
        ReadingBatch.from_arrays("pump-A1", "flow", ts, np.arange(120.0)),
        ReadingBatch.from_arrays("pump-A1", "speed", ts, np.full(120, 1450.0)),
        ReadingBatch.from_arrays("pump-A2", "flow", ts[:5], np.ones(5)),
    ])
    assert rt.state.record(batch) == 245
    latest = {c.channel: c for c in rt.state.latest("pump-A1")}
    assert latest["flow"].value == 119.0 and latest["flow"].ts_ns == int(ts[-1])
    assert latest["flow"].unit and latest["speed"].value == 1450.0

    raw = rt.state.history("pump-A1", ["flow"], T0, T0 + 10 * S)
    assert raw.num_rows == 10
    buckets = rt.state.history("pump-A1", ["flow"], bucket_ns=60 * S)
    assert buckets.column("count").to_pylist() == [60, 60]
    assert buckets.column("mean").to_pylist() == [29.5, 89.5]
    assert buckets.column("last").to_pylist() == [59.0, 119.0]

    applied = [r.event for r in rt.store.events(kinds=["ReadingsApplied"])]
    assert {(e.twin_id, e.count) for e in applied} == {("pump-A1", 240), ("pump-A2", 5)}
    assert rt.state.fleet_latest("Pump")["pump-A2"]["flow"] == 1.0


def test_history_argument_errors(rt):
    with pytest.raises(ValidationError):
        rt.state.history("pump-A1", start_ns=10, end_ns=5)
    with pytest.raises(ValidationError):
        rt.state.history("pump-A1", bucket_ns=-1)
    with pytest.raises(ValidationError, match="buckets"):
        rt.state.history("pump-A1", start_ns=0, end_ns=T0, bucket_ns=S)
    with pytest.raises(NotFoundError):
        rt.state.history("nope")
