"""The normalizer: conversion, every reject reason, timestamps, rate of change, reordering."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from ingest_fixtures import T0, S, flat  # noqa: E402

from twinloop.core.protocols import RawMessage
from twinloop.core.readings import Quality
from twinloop.ingest.mapping import RECORDS_TOPIC
from twinloop.ingest.normalizer import NormalizePolicy
from twinloop.ingest.rejected import REASONS


def rows(result):
    return [(r["asset_id"], r["channel"], r["ts"], round(r["value"], 6), r["quality"])
            for r in result.batch.to_records()]


def reasons(result):
    return sorted((r.reason, r.item) for r in result.rejected)


def test_units_scale_offset_rename_and_ignore(make) -> None:
    n = make()
    r = n.normalize([flat("p1", 1, {"bearing.temp_f": 212.0, "flow_lps": 10, "flow_raw": 100,
                                    "speed": 1450, "running": True, "debug.x": "anything"})])
    assert rows(r) == [
        ("p1", "bearing.temperature", T0, 100.0, 0),  # degF -> the type's degC
        ("p1", "flow", T0, 36.0, 0),  # L/s -> m**3/h
        ("p1", "flow", T0, 11.0, 0),  # 100 * 0.1 + 1
        ("p1", "speed", T0, 1450.0, 0),
        ("p1", "running", T0, 1.0, 0),  # a boolean channel takes true/false
    ]
    assert r.ignored == 1 and r.rejected == [] and r.duplicates == 0 and len(r.completed) == 1
    assert r.keys[0].seq == 1 and r.seen.seqs[0].above == (1,)


def test_every_reading_reject_reason(make) -> None:
    n = make(rules=[{"mqtt": "plant/{device}/telemetry",
                     "channels": {"bad_unit": {"channel": "flow", "unit": "degC"}}}])
    r = n.normalize([
        RawMessage("mqtt", "plant/p1/telemetry", json.dumps({
            "device": "p1", "seq": 1, "ts": T0, "values": {
                "flow": "12", "speed": True, "nope": 1.0, "bad_unit": 3.0, "bearing.temperature": 900.0,
                "power_factor": 10**400}}).encode(), T0),
        flat("ghost", 1, {"flow": 1.0}),
        RawMessage("mqtt", "plant/p2/telemetry",
                   b'{"ts": %d, "values": {"flow": NaN, "speed": Infinity}}' % T0, T0),
    ])
    assert reasons(r) == [
        ("not_finite", "flow"), ("not_finite", "speed"),
        ("out_of_range", "bearing.temperature"),
        ("unit_mismatch", "bad_unit"), ("unknown_channel", "nope"), ("unknown_twin", "flow"),
        ("wrong_type", "flow"), ("wrong_type", "power_factor"), ("wrong_type", "speed"),
    ]
    assert len(r.batch) == 0 and len(r.completed) == 3
    by = {(x.reason, x.item): x for x in r.rejected}
    rng = by[("out_of_range", "bearing.temperature")]
    assert (rng.twin_id, rng.channel, rng.value, rng.ts_ns) == ("p1", "bearing.temperature", 900.0, T0)
    assert "outside -20 … 150 degC" in rng.message and rng.payload.startswith(b'{"device": "p1"')
    assert by[("unknown_twin", "flow")].twin_id == "ghost" and "'ghost' does not exist" in by[
        ("unknown_twin", "flow")].message
    assert "'12' is not a number" in by[("wrong_type", "flow")].message
    assert all(x.reason in REASONS and x.topic and x.source == "mqtt" for x in r.rejected)


@pytest.mark.parametrize(("payload", "topic", "reason"), [
    (b"not json", "plant/p1/telemetry", "malformed"),
    (b"[1, 2]", "plant/p1/telemetry", "malformed"),
    (b'{"device": "p1", "ts": 1, "values": [1]}', "plant/p1/telemetry", "malformed"),
    (b'{"device": "p1", "values": {"flow": 1}}', "plant/p1/telemetry", "ts_invalid"),
    (b'{"device": "p1", "ts": "yesterday", "values": {}}', "plant/p1/telemetry", "ts_invalid"),
    (b'{"device": "p1", "seq": -1, "ts": 1, "values": {}}', "plant/p1/telemetry", "malformed"),
    (b'{"device": 7, "ts": 1, "values": {}}', "plant/p1/telemetry", "malformed"),
    (b'{"values": {}}', "elsewhere/p1", "unmapped"),
    (b"x" * 2000, "plant/p1/telemetry", "oversized"),
])
def test_message_reject_reasons(make, payload: bytes, topic: str, reason: str) -> None:
    n = make(NormalizePolicy(max_payload_bytes=1000))
    raw = RawMessage("mqtt", topic, payload, T0)
    r = n.normalize([raw])
    assert [(x.reason, x.item, x.index) for x in r.rejected] == [(reason, None, 0)]
    assert r.completed == [raw] and len(r.batch) == 0
    assert len(r.rejected[0].payload) == min(len(payload), 1000)


def test_timestamp_skew_reject_or_restamp(make) -> None:
    msgs = [flat("p1", 1, {"flow": 1.0}, ts=T0 + 3600 * S),
            flat("p1", 2, {"flow": 2.0}, ts=T0 - 30 * 86_400 * S),
            flat("p1", 3, {"flow": 3.0}, ts=T0 + 10 * S)]
    r = make().normalize(msgs)
    assert reasons(r) == [("ts_future", "flow"), ("ts_too_old", "flow")]
    assert rows(r) == [("p1", "flow", T0 + 10 * S, 3.0, 0)]
    assert "3.6e+03 s after it was received" in r.rejected[0].message
    r = make(NormalizePolicy(skew_action="restamp")).normalize(msgs)
    assert r.rejected == []
    assert rows(r) == [("p1", "flow", T0, 1.0, 1), ("p1", "flow", T0, 2.0, 1),
                       ("p1", "flow", T0 + 10 * S, 3.0, 0)]


def test_receive_time_rule(make) -> None:
    raw = RawMessage("mqtt", "rx/p1", b'{"values": {"flow": 5}}', T0 + 7)
    assert rows(make().normalize([raw])) == [("p1", "flow", T0 + 7, 5.0, 0)]


def test_range_flag_and_margin(make) -> None:
    r = make().normalize([flat("p1", 1, {"flow": -5.0, "speed": 3650.0})])  # within 2 % of the span
    assert len(r.batch) == 2 and r.rejected == []
    r = make(NormalizePolicy(range_action="flag")).normalize([flat("p1", 1, {"flow": 900.0})])
    assert rows(r) == [("p1", "flow", T0, 900.0, int(Quality.BAD))]


def test_rate_of_change_rejects_spike_not_recovery(make) -> None:
    n = make(rules=[{"mqtt": "plant/{device}/telemetry", "channels": {"flow": {"max_rate": 10}}}])
    values = [100, 105, 300, 110, 112]  # the spike is rejected; the way back is not a jump
    r = n.normalize([flat("p1", i, {"flow": float(v)}, ts=T0 + i * S) for i, v in enumerate(values)])
    assert [v for *_, v, _ in rows(r)] == [100.0, 105.0, 110.0, 112.0]
    assert reasons(r) == [("rate_of_change", "flow")] and r.rejected[0].value == 300.0
    # across calls, against the last accepted value; derived from the range by default
    r = n.normalize([flat("p1", 9, {"flow": 112.0 + 25, "speed": 0.0}, ts=T0 + 6 * S)])
    assert reasons(r) == [("rate_of_change", "flow")]
    n2 = make()  # speed: 0 … 3600 rpm in 1 s at most
    r = n2.normalize([flat("p1", 1, {"speed": 0.0}), flat("p1", 2, {"speed": 3000.0}, ts=T0 + S // 2)])
    assert reasons(r) == [("rate_of_change", "speed")]


def test_sparkplug_and_flat_from_the_simulator_encoders(make, registry) -> None:
    from twinloop.sim import wire
    from twinloop.sim.plant import ChannelSpec, DeviceSpec

    device = DeviceSpec(id="p1", asset_type="Pump", channels=(
        ChannelSpec("flow", "m**3/h"), ChannelSpec("bearing.temperature", "degC")))
    names = wire.channel_names(device)
    sample = np.array([120.5, np.nan])  # the dropout is left out by the encoder
    n = make()
    r = n.normalize([
        RawMessage("mqtt", "plant/p1/telemetry", wire.encode_flat(device, names, 300, T0, sample), T0),
        RawMessage("mqtt", "spBv1.0/g/DDATA/plant/p1",
                   wire.encode_sparkplug_data(names, 300, T0, sample), T0),
        RawMessage("mqtt", "spBv1.0/g/DDATA/plant/p1",
                   wire.encode_sparkplug_data(names, 301, T0 + S, np.array([121.0, 40.0])), T0),
        RawMessage("mqtt", "spBv1.0/g/DBIRTH/plant/p1", wire.encode_sparkplug_birth(device, 301, T0), T0),
    ])
    # sample 300 came both ways: stored once (same device, same unbounded seq); birth ignored
    assert rows(r) == [("p1", "flow", T0, 120.5, 0), ("p1", "flow", T0 + S, 121.0, 0),
                       ("p1", "bearing.temperature", T0 + S, 40.0, 0)]
    assert r.duplicates == 1 and len(r.completed) == 4 and r.rejected == []


def test_opcua_json_and_records_formats(make) -> None:
    n = make()
    r = n.normalize([
        RawMessage("opc", "ns=2;s=p1.bearing.temperature",
                   orjson.dumps({"value": 50.0, "ts": T0, "status": "UncertainLastUsableValue"}), T0),
        RawMessage("opc", "ns=2;s=p2.flow", orjson.dumps({"value": 5.0, "ts": T0, "status": 0x80000000}), T0),
        RawMessage("mqtt", "gen/p1/speed", orjson.dumps({"t": T0 // 1_000_000, "data": {"v": 1000}}), T0),
        RawMessage("http", RECORDS_TOPIC, orjson.dumps({"readings": [
            {"twin_id": "p2", "channel": "bearing.temperature", "ts": "2023-11-14T22:13:20Z", "value": 212,
             "unit": "degF"},
            {"twin_id": "p2", "channel": "speed", "ts": T0, "value": 10, "quality": "uncertain"},
            {"twin_id": "p2", "ts": T0, "value": 1},
            {"twin_id": "p2", "channel": "flow", "ts": T0, "value": 1, "unit": "bar"},
        ]}), T0),
    ])
    assert rows(r) == [("p1", "bearing.temperature", T0, 50.0, 1), ("p2", "flow", T0, 5.0, 2),
                       ("p1", "speed", T0, 1000.0, 0), ("p2", "bearing.temperature", T0, 100.0, 0),
                       ("p2", "speed", T0, 10.0, 1)]
    assert reasons(r) == [("malformed", "readings[2]"), ("unit_mismatch", "readings[3]")]


def test_idempotency_key_from_meta_and_payload_digest(make) -> None:
    n = make()
    body = orjson.dumps({"readings": [{"twin_id": "p1", "channel": "flow", "ts": T0, "value": 1}]})
    a = RawMessage("http", RECORDS_TOPIC, body, T0, {"idempotency_key": "k-1"})
    b = RawMessage("http", RECORDS_TOPIC, body + b" ", T0 + 1, {"idempotency_key": "k-1"})
    r = n.normalize([a, b])
    assert len(r.batch) == 1 and r.duplicates == 1
    c = RawMessage("http", RECORDS_TOPIC, body, T0 + 2)  # no key: the payload's hash
    assert len(n.normalize([c]).batch) == 1 and n.normalize([c]).duplicates == 1
    assert r.seen.digests and r.keys[0].digest is not None


def test_reorder_window_orders_late_arrivals_and_holds_acks(make, clock) -> None:
    n = make(NormalizePolicy(reorder_window_ns=2 * S))
    m3, m1, m2 = (flat("p1", s, {"flow": float(s)}, ts=T0 + (1 + s) * S // 2, received=T0) for s in (3, 1, 2))
    r = n.normalize([m3, m1])
    assert len(r.batch) == 0 and r.completed == [] and r.held == 2 and r.keys == [] and not r.seen.seqs
    assert n.normalize([m3]).duplicates == 1 and n.normalize([m3]).completed == []  # waits for the original
    clock.advance(seconds=1)
    r = n.normalize([m2])
    assert len(r.batch) == 0 and n.held == 3
    clock.advance(seconds=1.5)  # m3 and m1 waited 2 s: released with m2 (not newer), in time order
    r = n.normalize([])
    assert [v for *_, v, _ in rows(r)] == [1.0, 2.0, 3.0]
    assert {m.payload for m in r.completed} == {m1.payload, m2.payload, m3.payload}
    assert len(r.completed) == 5 and r.held == 0  # two redeliveries of m3 acked with it
    assert r.seen.seqs[0].above == (1, 2, 3)


def test_flush_releases_everything(make) -> None:
    n = make(NormalizePolicy(reorder_window_ns=60 * S))
    n.normalize([flat("p1", 2, {"flow": 2.0}, ts=T0 + 2 * S), flat("p1", 1, {"flow": 1.0}, ts=T0 + S)])
    r = n.flush()
    assert [v for *_, v, _ in rows(r)] == [1.0, 2.0] and len(r.completed) == 2 and n.held == 0


def test_reconfigure_after_a_twin_is_added(make) -> None:
    n = make()
    assert n.normalize([flat("p3", 1, {"flow": 1.0})]).rejected[0].reason == "unknown_twin"
    n.reconfigure(twin_types={"p1": "Pump", "p3": "Pump"})
    assert len(n.normalize([flat("p3", 2, {"flow": 1.0})]).batch) == 1


def test_revert_forgets_keys_of_a_result_the_store_refused(make) -> None:
    n = make()
    msg = flat("p1", 5, {"flow": 1.0})
    r = n.normalize([msg])
    n.revert(r)
    assert len(n.normalize([msg]).batch) == 1  # the redelivery is not taken for a duplicate


def test_huge_and_odd_numbers_never_raise(make) -> None:
    payload = b'{"device": "p1", "ts": %d, "values": {"flow": 1e999, "speed": -0.0, "running": null}}' % T0
    r = make().normalize([RawMessage("mqtt", "plant/p1/telemetry", payload, T0)])
    assert reasons(r) == [("not_finite", "flow"), ("wrong_type", "running")]
    assert rows(r) == [("p1", "speed", T0, 0.0, 0)] and not math.isnan(r.batch.values[0])
