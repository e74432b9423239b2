"""Whose clock judges a timestamp: the wall clock for a real plant, the announced one for a simulated one."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from ingest_fixtures import T0, S, flat  # noqa: E402

from twinloop.core.errors import DeclarationError
from twinloop.core.protocols import RawMessage
from twinloop.ingest.clock import ClockPolicy, PlantClocks, PlantTime, decode_announcement
from twinloop.ingest.mapping import parse_mapping
from twinloop.ingest.normalizer import NormalizePolicy

CLOCK = "twinloop/plant/clock"
TELEMETRY = {"name": "flat", "mqtt": "plant/{device}/telemetry", "format": "flat"}


def announce(sim_ns: int, wall_ns: int, speed: float | None, received: int = T0) -> RawMessage:
    body = json.dumps({"sim_time": sim_ns, "wall_time": wall_ns, "speed": speed}).encode()
    return RawMessage("mqtt", CLOCK, body, received)


def simulated(make, **clock):  # type: ignore[no-untyped-def]
    return make(rules=[{**TELEMETRY, "clock": {"announced": CLOCK, **clock}}])


def reasons(result) -> list[str]:  # type: ignore[no-untyped-def]
    return sorted(r.reason for r in result.rejected)


def test_a_real_plant_keeps_the_strict_wall_clock_check(make) -> None:
    n = make(rules=[TELEMETRY])
    r = n.normalize([flat("p1", 1, {"flow": 1.0}, ts=T0 + 3600 * S)])
    assert reasons(r) == ["ts_future"]
    assert "after it was received (allowed: 300 s)" in r.rejected[0].message


def test_readings_of_a_60x_simulator_are_judged_by_its_announced_clock(make) -> None:
    # the simulator started an hour of wall time ago at 60x: its plant time is 59 h ahead of the wall
    n = simulated(make)
    start = T0 - 3600 * S
    ahead = T0 + 59 * 3600 * S
    r = n.normalize([announce(start, start, 60.0),
                     flat("p1", 1, {"flow": 1.0}, ts=ahead),
                     flat("p1", 2, {"flow": 2.0}, ts=ahead + 3600 * S)])  # an hour past the plant's now
    assert [x["value"] for x in r.batch.to_records()] == [1.0]
    assert [(x.reason, x.item) for x in r.rejected] == [("ts_future", "flow")]
    assert f"ahead of the plant clock announced on {CLOCK}" in r.rejected[0].message
    assert len(r.completed) == 3  # the announcement is consumed (and acknowledged), not stored


def test_readings_wait_for_their_plants_clock_and_are_judged_by_it_once_heard(make) -> None:
    n = simulated(make)
    early = flat("p1", 1, {"flow": 1.0}, ts=T0 + 3600 * S)  # e.g. a persistent session's backlog
    r = n.normalize([early])
    assert (len(r.batch), r.rejected, r.completed, n.held) == (0, [], [], 1)  # held, not acked
    r = n.normalize([announce(T0 + 3600 * S, T0, 60.0), flat("p1", 2, {"flow": 2.0}, ts=T0 + 3600 * S)])
    assert r.rejected == [] and [x["value"] for x in r.batch.to_records()] == [1.0, 2.0]
    assert early in r.completed and n.held == 0


def test_a_clock_never_heard_leaves_the_wall_clock_to_judge_after_a_while(make, clock) -> None:
    n = simulated(make)
    assert len(n.normalize([flat("p1", 1, {"flow": 1.0}, ts=T0 + 3600 * S)]).completed) == 0
    clock.advance(seconds=1)
    assert n.flush().rejected == [] and n.held == 1  # still waiting
    clock.advance(seconds=5)
    r = n.flush()
    assert [x.reason for x in r.rejected] == ["ts_future"] and n.held == 0
    r = n.normalize([flat("p1", 2, {"flow": 1.0}, ts=T0 + 3600 * S)])  # no more waiting: strict at once
    assert [x.reason for x in r.rejected] == ["ts_future"]


def test_announcements_in_the_same_batch_judge_its_readings(make) -> None:
    n = simulated(make)
    r = n.normalize([flat("p1", 1, {"flow": 1.0}, ts=T0 + 86_400 * S), announce(T0 + 86_400 * S, T0, 1.0)])
    assert r.rejected == [] and len(r.batch) == 1


def test_tolerances_are_plant_time_and_can_be_switched_off(make) -> None:
    n = simulated(make, max_future="10s", max_age="1h")
    base = [announce(T0, T0, 1.0)]
    r = n.normalize([*base, flat("p1", 1, {"flow": 1.0}, ts=T0 + 20 * S),
                     flat("p1", 2, {"flow": 1.0}, ts=T0 - 2 * 3600 * S),
                     flat("p1", 3, {"flow": 1.0}, ts=T0 + 5 * S)])
    assert reasons(r) == ["ts_future", "ts_too_old"] and len(r.batch) == 1
    off = make(rules=[{**TELEMETRY, "clock": {"max_future": "off", "max_age": "off"}}])
    r = off.normalize([flat("p1", 1, {"flow": 1.0}, ts=T0 + 400 * 86_400 * S),
                       flat("p1", 2, {"flow": 1.0}, ts=T0 - 400 * 86_400 * S)])
    assert r.rejected == [] and len(r.batch) == 2


def test_a_plant_running_as_fast_as_it_can_is_bounded_from_below_only(make) -> None:
    n = simulated(make, max_age="1h")
    r = n.normalize([announce(T0 + 86_400 * S, T0, None),
                     flat("p1", 1, {"flow": 1.0}, ts=T0 + 300 * 86_400 * S),
                     flat("p1", 2, {"flow": 1.0}, ts=T0)])  # a day behind the announced time
    assert reasons(r) == ["ts_too_old"] and len(r.batch) == 1


def test_restamp_uses_the_plant_time_at_arrival(make) -> None:
    n = make(NormalizePolicy(skew_action="restamp"), rules=[{**TELEMETRY, "clock": {"announced": CLOCK}}])
    r = n.normalize([announce(T0 + 1000 * S, T0, 1.0), flat("p1", 1, {"flow": 1.0}, ts=T0 + 10**6 * S)])
    assert [(x["ts"], x["quality"]) for x in r.batch.to_records()] == [(T0 + 1000 * S, 1)]


def test_a_malformed_announcement_is_quarantined_and_the_last_good_one_kept(make) -> None:
    n = simulated(make)
    n.normalize([announce(T0 + 86_400 * S, T0, 1.0)])
    bad = RawMessage("mqtt", CLOCK, b'{"sim_time": "soon"}', T0)
    r = n.normalize([bad, flat("p1", 1, {"flow": 1.0}, ts=T0 + 86_400 * S)])
    assert [(x.reason, x.topic) for x in r.rejected] == [("malformed", CLOCK)]
    assert len(r.batch) == 1 and bad in r.completed


def test_the_clock_topic_is_subscribed_first_and_opcua_clock_nodes_listed() -> None:
    m = parse_mapping({"defaults": {"clock": {"announced": CLOCK}}, "rules": [
        {"mqtt": "plant/{device}/telemetry"},
        {"opcua": "ns=2;s={device}.{channel}", "clock": {"announced": "ns=2;s=clock"}},
        {"mqtt": "plant/#", "ignore": True},
    ]})
    assert m.mqtt_filters() == [CLOCK, "plant/+/telemetry"]
    assert m.opcua_nodes({"p1": ["flow"]}) == ["ns=2;s=clock.sim_time", "ns=2;s=clock.speed",
                                               "ns=2;s=p1.flow"]
    assert m.rules[0].clock == ClockPolicy(CLOCK) and m.rules[2].clock == ClockPolicy(CLOCK)


@pytest.mark.parametrize(("clock", "path"), [
    ("simulated", "defaults.clock"),
    ({"announced": "plant/+/clock"}, "defaults.clock.announced"),
    ({"max_future": "soon"}, "defaults.clock.max_future"),
    ({"speed": 60}, "defaults.clock.speed"),
])
def test_bad_clock_declarations_name_the_path(clock: object, path: str) -> None:
    with pytest.raises(DeclarationError) as err:
        parse_mapping({"defaults": {"clock": clock}, "rules": [{"mqtt": "plant/{device}/telemetry"}]})
    assert err.value.path == path


def test_opcua_clock_variables_merge_into_one_plant_time() -> None:
    clocks = PlantClocks([("opcua", "ns=2;s=clock")])
    clocks.hear("ns=2;s=clock.speed", json.dumps({"value": 60.0, "ts": T0}).encode())
    clocks.hear("ns=2;s=clock.sim_time", json.dumps({"value": (T0 + 3600 * S) / S, "ts": T0}).encode())
    assert clocks.now("ns=2;s=clock", T0 + S) == T0 + 3660 * S
    clocks.hear("ns=2;s=clock.speed", json.dumps({"value": math.inf, "ts": T0 + 2 * S}).encode())
    assert not clocks.bounded("ns=2;s=clock") and clocks.now("ns=2;s=clock", T0 + 10 * S) == T0 + 3720 * S


def test_a_stopped_plant_clock_stands_still() -> None:
    t = decode_announcement(json.dumps({"sim_time": T0, "wall_time": T0, "speed": 0}).encode(), None)
    assert t == PlantTime(T0, T0, 0.0) and t.at(T0 + 3600 * S) == T0
