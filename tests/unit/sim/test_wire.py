"""The simulator's wire contract: topics, payload round trips, sequence wrap, dropouts, bad commands."""

import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from twinloop.core.errors import ValidationError
from twinloop.sim import wire
from twinloop.sim.plant import CommandResult

sys.path.insert(0, str(Path(__file__).parent))
from toy_plant import PUMP  # noqa: E402

NAMES = wire.channel_names(PUMP)
TS = 1_700_000_000_123_456_789


def test_topics_follow_the_documented_layout():
    assert wire.telemetry_topic("ps", "pump-A1") == "twinloop/ps/pump-A1/telemetry"
    assert wire.sparkplug_topic("DDATA", "ps", "pump-A1") == "spBv1.0/twinloop/DDATA/ps/pump-A1"
    assert wire.command_topic("ps", "pump-A1", "setSpeed") == "twinloop/ps/pump-A1/cmd/setSpeed"
    assert wire.command_filter("ps") == "twinloop/ps/+/cmd/+"
    assert wire.ack_topic("ps", "pump-A1") == "twinloop/ps/pump-A1/ack"
    assert wire.status_topic("ps", "pump-A1") == "twinloop/ps/pump-A1/status"
    assert wire.status_topic("ps") == "twinloop/ps/status"
    assert wire.parse_command_topic("twinloop/ps/pump-A1/cmd/setSpeed") == ("ps", "pump-A1", "setSpeed")
    for not_cmd in ("twinloop/ps/pump-A1/ack", "twinloop/ps//cmd/x", "other/ps/pump-A1/cmd/x", "a/b"):
        assert wire.parse_command_topic(not_cmd) is None
    assert "twinloop/ps/<device>/telemetry" in wire.topic_layout("ps")


def test_flat_telemetry_round_trips_with_the_whole_sample():
    values = np.array([1450.5, 101.25, 54.125])
    payload = wire.encode_flat(PUMP, NAMES, 123, TS, values)
    obj = json.loads(payload)
    assert obj == {"device": "pump-1", "type": "Pump", "seq": 123, "ts": TS,
                   "values": {"speed": 1450.5, "flow": 101.25, "bearing.temperature": 54.125}}
    t = wire.decode_flat(payload)
    assert (t.device, t.seq, t.ts_ns, t.asset_type) == ("pump-1", 123, TS, "Pump")
    assert t.values == obj["values"]


def test_dropouts_are_omitted_never_sent_as_nan():
    values = np.array([1450.0, np.nan, np.inf])
    flat = wire.encode_flat(PUMP, NAMES, 0, TS, values)
    assert b"NaN" not in flat and b"Infinity" not in flat
    assert wire.decode_flat(flat).values == {"speed": 1450.0}
    spb = wire.encode_sparkplug_data(NAMES, 0, TS, values)
    assert [m["name"] for m in json.loads(spb)["metrics"]] == ["speed"]
    assert wire.encode_flat(PUMP, NAMES, 0, TS, np.full(3, np.nan)).endswith(b'"values":{}}')


def test_sparkplug_seq_wraps_at_256_and_carries_the_full_count():
    values = np.array([1.0, 2.0, 3.0])
    seqs = [json.loads(wire.encode_sparkplug_data(NAMES, n, TS, values))["seq"] for n in range(250, 262)]
    assert seqs == [250, 251, 252, 253, 254, 255, 0, 1, 2, 3, 4, 5]
    payload = wire.encode_sparkplug_data(NAMES, 1000, TS, values)
    obj = json.loads(payload)
    assert obj["seq"] == 1000 % 256 and obj["properties"] == {"seq": 1000}
    assert obj["timestamp"] == TS // 1_000_000
    assert obj["metrics"][1] == {"name": "flow", "value": 2.0, "type": "Double", "timestamp": TS // 1_000_000}
    t = wire.decode_sparkplug(wire.sparkplug_topic("DDATA", "ps", "pump-1"), payload)
    assert (t.device, t.seq, t.ts_ns) == ("pump-1", 1000, TS // 1_000_000 * 1_000_000)
    assert t.values == {"speed": 1.0, "flow": 2.0, "bearing.temperature": 3.0}


def test_sparkplug_birth_names_every_metric_with_its_unit():
    obj = json.loads(wire.encode_sparkplug_birth(PUMP, 7, TS))
    assert [(m["name"], m["properties"]["engUnit"]) for m in obj["metrics"]] == [
        ("speed", "rpm"), ("flow", "m3/h"), ("bearing.temperature", "degC")]
    assert obj["properties"]["type"] == "Pump" and obj["seq"] == 7
    death = json.loads(wire.encode_sparkplug_death(300, TS))
    assert death["seq"] == 300 % 256 and death["properties"]["seq"] == 300


def test_commands_decode_and_acks_round_trip():
    topic = wire.command_topic("ps", "pump-1", "setSpeed")
    cmd = wire.decode_command(topic, wire.encode_command("c-1", {"speed": 1450}))
    assert cmd == wire.CommandRequest("pump-1", "setSpeed", "c-1", {"speed": 1450})
    no_args = wire.decode_command(wire.command_topic("ps", "pump-1", "stop"), b'{"command_id": "c-2"}')
    assert isinstance(no_args, wire.CommandRequest) and no_args.args == {}
    ack = wire.encode_ack("c-1", CommandResult(True, "ok", {"speed": np.float64(1450.0), "v": math.nan}), TS)
    command_id, result, ts = wire.decode_ack(ack)
    assert (command_id, result.ok, result.message, ts) == ("c-1", True, "ok", TS)
    assert result.applied == {"speed": 1450.0, "v": None}
    assert json.loads(wire.encode_status(False, TS)) == {"status": "offline", "ts": TS}
    assert json.loads(wire.encode_status(False, None)) == {"status": "offline"}  # the last will


@pytest.mark.parametrize("payload, reason, command_id", [
    (b"not json", "not JSON", ""),
    (b"\xff\xfe", "not JSON", ""),
    (b"[1, 2]", "JSON object", ""),
    (b'{"args": {"speed": 1}}', "command_id", ""),
    (b'{"command_id": 5}', "command_id", ""),
    (b'{"command_id": "c-9", "args": [1]}', "args", "c-9"),
    (b'{"command_id": "c-9", "args": {"speed": {"x": 1}}}', "speed", "c-9"),
    (b'{"command_id": "c-9", "args": {"speed": null}}', "speed", "c-9"),
])
def test_malformed_commands_come_back_as_a_reason_never_an_exception(payload, reason, command_id):
    got = wire.decode_command("twinloop/ps/pump-1/cmd/setSpeed", payload)
    assert isinstance(got, wire.CommandRejected)
    assert reason in got.reason and got.device == "pump-1" and got.name == "setSpeed"
    assert got.command_id == command_id


def test_a_command_on_a_wrong_topic_is_rejected_with_the_expected_layout():
    got = wire.decode_command("twinloop/ps/pump-1/setSpeed", b'{"command_id": "x"}')
    assert isinstance(got, wire.CommandRejected) and "cmd/<name>" in got.reason


@pytest.mark.parametrize("bad", [b"{", b"[]", b'{"device": "d"}',
                                 b'{"device": "d", "seq": 1, "ts": 1, "values": 3}'])
def test_malformed_telemetry_raises_a_validation_error(bad):
    with pytest.raises(ValidationError):
        wire.decode_flat(bad)
    with pytest.raises(ValidationError):
        wire.decode_sparkplug("spBv1.0/twinloop/DDATA/ps/d", bad)


# --- multi-sample telemetry -----------------------------------------------------------------------


def test_multi_sample_flat_round_trips_with_dropouts_as_null():
    stamps = [TS, TS + 1_000_000_000, TS + 2_000_000_000]
    values = np.array([[1450.0, 101.0, 54.0], [1451.0, np.nan, 54.5], [1452.0, 103.0, np.inf]])
    payload = wire.encode_flat_samples(PUMP, NAMES, 7, stamps, values)
    obj = json.loads(payload)
    assert obj["seq"] == 7 and obj["ts"] == stamps
    assert obj["values"] == {"speed": [1450.0, 1451.0, 1452.0], "flow": [101.0, None, 103.0],
                             "bearing.temperature": [54.0, 54.5, None]}
    assert b"NaN" not in payload and b"Infinity" not in payload
    samples = wire.decode_flat_samples(payload)
    assert [(t.seq, t.ts_ns) for t in samples] == [(7, s) for s in stamps]  # seq counts messages
    assert samples[1].values == {"speed": 1451.0, "bearing.temperature": 54.5}
    assert samples[2].values == {"speed": 1452.0, "flow": 103.0}
    single = wire.decode_flat_samples(wire.encode_flat(PUMP, NAMES, 8, TS, values[0]))
    assert len(single) == 1 and single[0].values["speed"] == 1450.0


def test_multi_sample_flat_refuses_ragged_channels():
    bad = b'{"device": "p", "seq": 1, "ts": [1, 2], "values": {"speed": [1.0]}}'
    with pytest.raises(ValidationError, match="malformed"):
        wire.decode_flat_samples(bad)


def test_multi_sample_sparkplug_carries_one_metric_per_channel_and_sample():
    stamps = [TS, TS + 1_000_000_000]
    values = np.array([[1.0, 2.0, 3.0], [4.0, np.nan, 6.0]])
    obj = json.loads(wire.encode_sparkplug_samples(NAMES, 300, stamps, values))
    assert obj["seq"] == 300 % 256 and obj["properties"]["seq"] == 300
    assert obj["timestamp"] == stamps[-1] // 1_000_000
    assert [(m["name"], m["value"], m["timestamp"]) for m in obj["metrics"]] == [
        ("speed", 1.0, TS // 1_000_000), ("flow", 2.0, TS // 1_000_000),
        ("bearing.temperature", 3.0, TS // 1_000_000),
        ("speed", 4.0, stamps[1] // 1_000_000), ("bearing.temperature", 6.0, stamps[1] // 1_000_000)]
