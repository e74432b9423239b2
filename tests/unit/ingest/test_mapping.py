"""Mapping files: patterns, captures, overrides, and errors that name the file and the path."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinloop.core.errors import DeclarationError
from twinloop.ingest.mapping import RECORDS_TOPIC, load_mapping, parse_mapping

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "pump-station" / "mapping.yaml"


def test_named_captures_and_mqtt_wildcards() -> None:
    m = parse_mapping({"rules": [
        {"mqtt": "site/{area}/{device}/telemetry", "twin": "{area}-{device}"},
        {"mqtt": "raw/+/x/#", "format": "json", "json": {"values": "v", "ts": "t"}, "twin": "fixed-1"},
    ]})
    rule, caps = m.match("site/north/p7/telemetry")  # type: ignore[misc]
    assert caps == {"area": "north", "device": "p7"} and rule.twin_for(caps, None) == "north-p7"
    assert m.match("site/north/p7/extra/telemetry") is None  # {x} never crosses a level
    assert m.match("raw/a/x/b/c")[0].index == 1  # type: ignore[index]
    assert m.match("raw/a/x")[0].index == 1  # type: ignore[index]  # '#' matches the parent too
    assert m.match("raw/a/y/b") is None
    assert m.match(RECORDS_TOPIC)[0].format == "records"  # type: ignore[index]  # built in, last
    assert m.mqtt_filters() == ["site/+/+/telemetry", "raw/+/x/#"]


def test_opcua_capture_splits_at_first_dot_and_expands_nodes() -> None:
    m = parse_mapping({"rules": [{"opcua": "ns=2;s={device}.{channel}"}]})
    rule, caps = m.match("ns=2;s=pump-A1.bearing.temperature")  # type: ignore[misc]
    assert caps == {"device": "pump-A1", "channel": "bearing.temperature"} and rule.format == "opcua"
    assert m.opcua_nodes({"p1": ["flow", "bearing.temperature"]}) == [
        "ns=2;s=p1.flow", "ns=2;s=p1.bearing.temperature"]


def test_first_rule_wins_and_lookups_are_cached() -> None:
    m = parse_mapping({"rules": [{"mqtt": "a/{device}", "ignore": True}, {"mqtt": "a/{device}"}]})
    first = m.match("a/p1")
    assert first is not None and first[0].ignore
    assert m.match("a/p1") is first  # the cached tuple, no second regex search


def test_overrides_exact_before_glob() -> None:
    m = parse_mapping({"rules": [{"mqtt": "t/{device}", "channels": {
        "a.*": {"ignore": True}, "a.b": {"unit": "degF", "scale": 2, "offset": 1, "max_rate": 3}}}]})
    rule = m.rules[0]
    exact = rule.override("a.b")
    assert exact is not None and (exact.unit, exact.scale, exact.offset, exact.max_rate) == ("degF", 2, 1, 3)
    assert rule.override("a.c").ignore  # type: ignore[union-attr]
    assert rule.override("b") is None


@pytest.mark.parametrize(("data", "path", "words"), [
    ({"rules": [{"format": "flat"}]}, "rules[0]", "exactly one of"),
    ({"rules": [{"mqtt": "a/{device}", "format": "xml"}]}, "rules[0].format", "must be one of"),
    ({"rules": [{"mqtt": "a/{device}", "colour": 1}]}, "rules[0].colour", "unknown key"),
    ({"rules": [{"mqtt": "a/#/b"}]}, "rules[0].mqtt", "last level"),
    ({"rules": [{"mqtt": "a/x+/b"}]}, "rules[0].mqtt", "whole level"),
    ({"rules": [{"mqtt": "a/{device}/{device}"}]}, "rules[0].mqtt", "twice"),
    ({"rules": [{"mqtt": "a/{device}", "twin": "{site}-{device}"}]}, "rules[0].twin", "'site'"),
    ({"rules": [{"mqtt": "a/{device}", "channels": {"t": {"unit": "blorps"}}}]},
     "rules[0].channels.t.unit", "unknown unit"),
    ({"rules": [{"mqtt": "a/{device}", "channels": {"t": {"scale": 0}}}]},
     "rules[0].channels.t.scale", "not be 0"),
    ({"rules": [{"mqtt": "a/{device}", "channels": {"t": {"scale": "x"}}}]}, "rules[0].channels.t.scale",
     "finite number"),
    ({"rules": [{"mqtt": "a/{device}", "format": "json", "json": {"ts": "t"}}]},
     "rules[0].json", "exactly one"),
    ({"rules": [{"mqtt": "a/{device}", "format": "json", "json": {"value": "v"}}]}, "rules[0]", "{channel}"),
    ({"rules": [{"opcua": "ns=2;s={device}"}]}, "rules[0]", "{channel}"),
    ({"rules": [{"mqtt": "a/{device}", "json": {"value": "v"}}]}, "rules[0].json", "only a rule"),
    ({"rules": {"mqtt": "a"}}, "rules", "list"),
    ({"version": 2}, "version", "unsupported"),
])
def test_errors_name_file_and_path(data: object, path: str, words: str) -> None:
    with pytest.raises(DeclarationError) as err:
        parse_mapping(data, file="mapping.yaml")
    assert err.value.file == "mapping.yaml" and err.value.path == path
    assert words in str(err.value) and str(err.value).startswith(f"mapping.yaml:{path}")


def test_load_mapping_file_errors(tmp_path: Path) -> None:
    bad = tmp_path / "m.yaml"
    bad.write_text("rules: [\n")
    with pytest.raises(DeclarationError, match="not valid YAML") as err:
        load_mapping(bad)
    assert err.value.file == str(bad)
    with pytest.raises(DeclarationError, match="cannot read"):
        load_mapping(tmp_path / "missing.yaml")


def test_example_mapping_covers_flat_sparkplug_and_opcua() -> None:
    m = load_mapping(EXAMPLE)
    assert m.match("twinloop/pump-station/pump-A1/telemetry")[0].format == "flat"  # type: ignore[index]
    spb = m.match("spBv1.0/twinloop/DDATA/pump-station/tank-A")
    assert spb is not None and spb[0].format == "sparkplug"
    assert m.match("spBv1.0/twinloop/DBIRTH/pump-station/tank-A")[0].ignore  # type: ignore[index]
    assert m.match("twinloop/pump-station/pump-A1/status")[0].ignore  # type: ignore[index]
    assert m.match("ns=2;s=pump-A1.seq")[0].ignore  # type: ignore[index]
    rule, caps = m.match("ns=2;s=pump-A1.motor.current")  # type: ignore[misc]
    assert rule.format == "opcua" and caps == {"device": "pump-A1", "channel": "motor.current"}
    assert m.mqtt_filters() == ["twinloop/pump-station/clock",  # the simulator's clock, heard first
                                "twinloop/pump-station/+/telemetry", "spBv1.0/twinloop/DDATA/pump-station/+"]
    assert m.rules[0].clock.announced == "twinloop/pump-station/clock"
    assert m.match("ns=2;s=pump-A1.flow")[0].clock.announced is None  # type: ignore[index]
