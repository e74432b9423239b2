"""Multi-sample flat payloads (several samples of one device per message): decode, map, dedupe, loss."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import numpy as np
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from ingest_fixtures import T0, S  # noqa: E402

from twinloop.core.protocols import RawMessage
from twinloop.ingest.decode import FLAT, PayloadError, decode_payload
from twinloop.sim import wire
from twinloop.sim.plant import ChannelSpec, DeviceSpec


def multi(device: str, seq: int, stamps: list[int], values: dict[str, list[Any]], *,
          topic: str | None = None, received: int | None = None) -> RawMessage:
    body = {"device": device, "seq": seq, "ts": stamps, "values": values}
    return RawMessage("mqtt", topic or f"plant/{device}/telemetry", orjson.dumps(body),
                      received if received is not None else max(stamps))


def rows(result):  # type: ignore[no-untyped-def]
    return sorted((r["asset_id"], r["channel"], r["ts"], round(r["value"], 6))
                  for r in result.batch.to_records())


STAMPS = [T0 - 2 * S, T0 - S, T0]


def test_simulator_encoding_round_trips_through_the_normalizer(make) -> None:
    device = DeviceSpec("p1", "Pump", (ChannelSpec("flow", "m**3/h"), ChannelSpec("speed", "rpm")))
    names = wire.channel_names(device)
    values = np.array([[100.0, 1450.0], [np.nan, 1451.0], [102.0, 1452.0]])
    payload = wire.encode_flat_samples(device, names, 4, STAMPS, values)
    r = make().normalize([RawMessage("mqtt", "plant/p1/telemetry", payload, T0)])
    assert r.rejected == [] and len(r.completed) == 1
    assert rows(r) == sorted([("p1", "flow", STAMPS[0], 100.0), ("p1", "flow", STAMPS[2], 102.0),
                              ("p1", "speed", STAMPS[0], 1450.0), ("p1", "speed", STAMPS[1], 1451.0),
                              ("p1", "speed", STAMPS[2], 1452.0)])  # the dropout is no reading
    assert r.keys[0].seq == 4 and r.keys[0].ts_ns == STAMPS[-1]


def test_mapping_applies_to_every_sample_and_rejects_name_the_sample(make) -> None:
    r = make().normalize([multi("p1", 1, STAMPS, {
        "bearing.temp_f": [212.0, 32.0, 9999.0],  # degF -> degC; the last is out of range
        "flow_raw": [100, 200, 300],  # scale 0.1, offset 1
        "debug.x": ["a", "b", "c"],  # ignored by the mapping
        "speed": [1, "fast", 3],  # the second is no number
    })])
    assert rows(r) == sorted([
        ("p1", "bearing.temperature", STAMPS[0], 100.0), ("p1", "bearing.temperature", STAMPS[1], 0.0),
        ("p1", "flow", STAMPS[0], 11.0), ("p1", "flow", STAMPS[1], 21.0), ("p1", "flow", STAMPS[2], 31.0),
        ("p1", "speed", STAMPS[0], 1.0), ("p1", "speed", STAMPS[2], 3.0)])
    assert sorted((x.reason, x.item, x.ts_ns) for x in r.rejected) == [
        ("out_of_range", "bearing.temp_f[2]", STAMPS[2]), ("wrong_type", "speed[1]", STAMPS[1])]
    assert r.ignored == 3 and len(r.completed) == 1


def test_item_names_keep_the_sample_index_across_dropouts(make) -> None:
    r = make().normalize([multi("p1", 1, STAMPS, {"flow": [None, 1.0, None], "speed": [None, None, "x"]})])
    assert [(x.reason, x.item) for x in r.rejected] == [("wrong_type", "speed[2]")]
    assert rows(r) == [("p1", "flow", STAMPS[1], 1.0)]


def test_redelivery_is_a_duplicate_of_every_value_and_a_gap_is_lost_messages(make) -> None:
    n = make()
    first = multi("p1", 10, STAMPS, {"flow": [1.0, 2.0, 3.0], "speed": [4.0, 5.0, 6.0]})
    r1 = n.normalize([first])
    assert len(r1.batch) == 6
    again = n.normalize([first])
    assert len(again.batch) == 0 and again.duplicates == 6 and again.completed == [first]
    # seq 11 never arrives: seq counts messages, so the gap is one lost message of 3 samples
    later = [T0 + S, T0 + 2 * S, T0 + 3 * S]
    r3 = n.normalize([multi("p1", 12, later, {"flow": [1.0, 1.0, 1.0]}, received=T0 + 3 * S)])
    assert len(r3.batch) == 3
    row = r3.seen.seqs[0]
    assert {10, 12} <= set(row.above) and 11 not in row.above and row.watermark < 10  # 11 is the gap
    # a late redelivery of the missing message is new data, not a duplicate
    late = [T0 - 5 * S + i for i in range(3)]
    r4 = n.normalize([multi("p1", 11, late, {"flow": [2.0, 2.0, 2.0]}, received=T0 + 3 * S)])
    assert r4.duplicates == 0 and len(r4.batch) == 3
    assert {10, 11, 12} <= set(r4.seen.seqs[0].above)


def test_malformed_multi_sample_payloads_are_rejected_whole(make) -> None:
    n = make()
    ragged = multi("p1", 1, STAMPS, {"flow": [1.0, 2.0]})
    empty = RawMessage("mqtt", "plant/p1/telemetry", b'{"device":"p1","seq":2,"ts":[],"values":{}}', T0)
    bad_ts = multi("p1", 3, STAMPS, {"flow": [1.0, 2.0, 3.0]})
    bad_ts = RawMessage("mqtt", bad_ts.topic, bad_ts.payload.replace(str(T0).encode(), b'"soon"'), T0)
    r = n.normalize([ragged, empty, bad_ts])
    assert [(x.reason, x.item) for x in r.rejected] == [("malformed", None), ("malformed", None),
                                                       ("ts_invalid", None)]
    assert "values.flow" in r.rejected[0].message and len(r.completed) == 3 and len(r.batch) == 0


def test_receive_time_rules_stamp_every_sample_with_the_arrival(make) -> None:
    r = make().normalize([multi("p1", 1, STAMPS, {"flow": [1.0, 2.0, 3.0]}, topic="rx/p1",
                                received=T0 + 5)])
    assert {rec["ts"] for rec in r.batch.to_records()} == {T0 + 5} and len(r.batch) == 3


def test_decoder_reads_the_form_per_channel() -> None:
    body = {"device": "p", "seq": 1, "ts": [5, 6], "values": {"a": [1, 2], "b": [3, None]}}
    d = decode_payload(orjson.dumps(body), FLAT, {}, "device")
    assert (d.names, d.repeats, d.values, d.item_ts, d.item_index) == (
        ("a", "b"), [2, 1], [1, 2, 3], [5, 6, 5], [0, 1, 0])
    d = decode_payload(b'{"seq": 1, "ts": [5, 6], "values": {"a": [1, 2]}}', FLAT, {}, "device")
    assert d.item_index is None and d.item_ts == [5, 6] and d.ts_ns == 6
    try:
        decode_payload(b'{"ts": [5], "values": {"a": 1}}', FLAT, {}, "device")
    except PayloadError as err:
        assert err.reason == "malformed" and "list of 1" in err.message
    else:
        raise AssertionError("a scalar in the multi-sample form must be refused")
