"""DTDL v3 import and export: round trips on hand-written interfaces, the example types, and
malformed input that must only ever raise DeclarationError."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinloop.core.errors import DeclarationError
from twinloop.twins.asset_type import Analytics, AssetType
from twinloop.twins.dtdl import export_dtdl, from_dtdl, load_dtdl, to_dtdl

from .conftest import DTDL_DIR

FIXTURES = sorted(DTDL_DIR.glob("*.json"))
IFACE = {"@context": "dtmi:dtdl:context;3", "@id": "dtmi:acme:X;1", "@type": "Interface"}


def via_json(doc: Any) -> Any:
    return json.loads(json.dumps(doc))


def test_there_are_at_least_five_fixtures() -> None:
    assert len(FIXTURES) >= 5


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: p.name)
def test_import_export_import_is_equal(path: Path) -> None:
    first = load_dtdl([path])
    again = from_dtdl(via_json(export_dtdl(first)))
    assert again == first


def test_fixtures_cover_every_supported_element_kind() -> None:
    types = {t.id: t for t in load_dtdl([DTDL_DIR])}
    blower, actuator = types["Blower"], types["Actuator"]
    assert blower.extends == ("Rotating",) and blower.components == {"bearing": "Bearing"}
    part_of = blower.relationships[1]
    assert (part_of.target, part_of.max_multiplicity) == ("Line", 1)
    assert [p.name for p in part_of.properties] == ["position", "pipeLength"]
    assert [(p.name, p.type) for p in actuator.properties] == [
        ("mode", "enum"), ("state", "enum"), ("positions", "array"), ("labels", "map")]
    move = actuator.command("moveTo")
    assert [(a.name, a.unit, a.required) for a in move.args] == [
        ("position", "mm", True), ("duration", "s", False), ("force", None, True)]
    assert move.args[0].max == 250 and move.response and move.response.values == ("done", "blocked")
    thermostat = types["Thermostat"]
    assert thermostat.display_name == "Thermostat"  # language map read as English
    assert thermostat.channel("temperature").unit == "degC"
    assert types["AirSensor"].properties[0].values == ("good", "poor")  # schema by dtmi (v2)
    extras = types["pump-7"]
    assert extras.channel("vibration").unit == "mm/s" and extras.channel("vibration").max == 45
    assert [a.name for a in extras.attributes] == ["ratedPower", "duty"]
    assert extras.attributes[0].required and extras.attributes[1].default == "duty"


def modelled(types: list[AssetType]) -> list[AssetType]:
    """The types as DTDL carries them: everything but the analytics declarations (twinloop's own
    run-time configuration, which DTDL has no place for; export leaves them out on purpose)."""
    return [t.model_copy(update={"analytics": Analytics()}) for t in types]


def test_example_types_survive_export_and_import(example_types: list[AssetType]) -> None:
    docs = via_json(export_dtdl(example_types))
    assert from_dtdl(docs) == modelled(example_types)
    assert any(t.analytics != Analytics() for t in example_types)  # the examples do declare some


def test_export_uses_dtdl_units_and_keeps_the_rest_in_the_comment(pump: AssetType) -> None:
    doc = to_dtdl(pump)
    assert doc["@context"][0] == "dtmi:dtdl:context;3"
    by_name = {c["name"]: c for c in doc["contents"]}
    flow = by_name["flow"]
    assert flow["@type"] == ["Telemetry", "VolumeFlowRate"]
    assert flow["unit"] == "cubicMetrePerHour"
    assert json.loads(flow["comment"].removeprefix("twinloop:")) == {
        "min": 0.0, "max": 600.0, "expected_rate_hz": 1.0}
    assert by_name["speed_setpoint"]["writable"] is True
    assert by_name["manufacturer"]["writable"] is False
    assert '"attribute":true' in by_name["manufacturer"]["comment"]
    assert by_name["setSpeed"]["request"]["unit"] == "revolutionPerMinute"
    assert by_name["motor"] == {"@type": "Component", "name": "motor",
                                "schema": "dtmi:twinloop:Motor;1"}
    assert by_name["partOf"]["target"] == "dtmi:twinloop:PumpLine;1"
    assert all(len(c.get("comment", "")) <= 512 for c in doc["contents"])


def test_export_and_load_from_files(tmp_path: Path, example_types: list[AssetType]) -> None:
    for doc in export_dtdl(example_types):
        name = doc["@id"].split(":")[-1].split(";")[0]
        (tmp_path / f"{name}.json").write_text(json.dumps(doc, indent=2))
    assert sorted(load_dtdl(tmp_path), key=lambda t: t.id) == sorted(
        modelled(example_types), key=lambda t: t.id)


def bad(**changes: Any) -> dict[str, Any]:
    return {**IFACE, **changes}


@pytest.mark.parametrize(
    ("doc", "path", "match"),
    [
        ({**IFACE, "@context": "dtmi:dtdl:context;9"}, "@context", "unknown DTDL context"),
        ({k: v for k, v in IFACE.items() if k != "@id"}, "@id", "missing or invalid dtmi"),
        (bad(**{"@id": "dtmi:1bad;1"}), "@id", "invalid dtmi"),
        ({k: v for k, v in IFACE.items() if k != "@type"}, "@type", "malformed @type"),
        (bad(contents=[{"@type": "Telemetri", "name": "a", "schema": "double"}]),
         "contents[0].@type", "unknown element kind"),
        (bad(contents=[{"@type": "Telemetry", "name": "a"}, {"@type": "Telemetry", "name": "b",
                                                               "schema": {"@type": "Object"}}]),
         "contents[0].schema", "expected a schema"),
        (bad(contents=[{"@type": "Telemetry", "name": "a", "schema": "double"},
                       {"@type": "Telemetry", "name": "b", "schema": "doubel"}]),
         "contents[1].schema", "unknown schema 'doubel'"),
        (bad(contents=[{"@type": "Telemetry", "name": "a", "schema": "string"}]),
         "contents[0].schema", "channels are numeric or boolean"),
        (bad(contents=[{"@type": ["Telemetry", "Temperature"], "name": "a", "schema": "double",
                        "unit": "degreeKelvin"}]), "contents[0].unit", "unknown DTDL unit"),
        (bad(contents=[{"@type": "Telemetry", "name": "a b", "schema": "double"}]),
         "contents[0].name", "invalid name"),
        (bad(contents=[{"@type": "Telemetry", "name": "a", "schema": "double",
                        "comment": "twinloop:{\"min\": 3, \"max\": 1}"}]),
         "contents[0].max", "must be less than max"),
        (bad(contents=[{"@type": "Relationship", "name": "r", "target": "pump"}]),
         "contents[0].target", "invalid dtmi"),
        (bad(contents=[{"@type": "Relationship", "name": "r", "maxMultiplicity": 0}]),
         "contents[0].maxMultiplicity", "integer >= 1"),
        (bad(contents=[{"@type": "Component", "name": "c", "schema": {"@type": "Interface"}}]),
         "contents[0].schema", "invalid dtmi"),
        (bad(contents=[{"@type": "Property", "name": "p", "schema": {
            "@type": "Enum", "valueSchema": "string", "enumValues": [{"name": "a", "enumValue": 1}]}}]),
         "contents[0].schema.enumValues[0].enumValue", "expected a string enumValue"),
        (bad(contents={"a": 1}), "contents", "expected a list"),
    ],
)
def test_malformed_dtdl_names_the_json_path(doc: dict, path: str, match: str) -> None:
    with pytest.raises(DeclarationError, match=match) as err:
        from_dtdl(doc, file="model.json")
    assert err.value.file == "model.json"
    assert err.value.path == path
    assert str(err.value).startswith(f"model.json:{path}: ")


def test_array_paths_and_bad_json_file(tmp_path: Path) -> None:
    with pytest.raises(DeclarationError, match=r"^m.json:\[1\]\.contents\[0\]\.schema"):
        from_dtdl([IFACE, bad(**{"@id": "dtmi:acme:Y;1"},
                              contents=[{"@type": "Telemetry", "name": "x", "schema": 3}])],
                  file="m.json")
    p = tmp_path / "broken.json"
    p.write_text('{"@context": "dtmi:dtdl:context;3",\n "@id": }')
    with pytest.raises(DeclarationError, match="broken.json: malformed JSON at line 2, column 9"):
        load_dtdl([p])


def test_duplicate_ids_are_refused() -> None:
    with pytest.raises(DeclarationError, match="two interfaces map to asset type id 'X'"):
        from_dtdl([IFACE, {**IFACE, "@id": "dtmi:other:X;1"}])


json_leaf = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(
    max_size=8) | st.sampled_from(["double", "dtmi:acme:X;1", "Telemetry", "Property", "Enum",
                                   "twinloop:{\"min\":1}", "degreeCelsius", "Object"])
junk = st.recursive(
    json_leaf, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=6), c,
                                                                   max_size=4), max_leaves=20)
KEYS = ["@type", "name", "schema", "unit", "comment", "writable", "request", "response",
        "target", "maxMultiplicity", "properties", "fields", "enumValues", "valueSchema",
        "elementSchema", "mapValue", "displayName", "description", "nullable"]
element = st.dictionaries(st.sampled_from(KEYS), junk, max_size=6) | st.fixed_dictionaries(
    {"@type": st.sampled_from(["Telemetry", "Property", "Command", "Relationship", "Component",
                               ["Telemetry", "Temperature"]]),
     "name": st.sampled_from(["a", "b", "x y", ""]) | junk},
    optional={k: junk for k in KEYS[2:]})
interface = st.fixed_dictionaries(
    {"@context": st.sampled_from(["dtmi:dtdl:context;3", "dtmi:dtdl:context;2"]) | junk,
     "@id": st.sampled_from(["dtmi:acme:X;1", "dtmi:twinloop:Y;1"]) | junk,
     "@type": st.just("Interface") | junk},
    optional={"contents": st.lists(element, max_size=4) | junk, "extends": junk,
              "schemas": junk, "comment": junk, "displayName": junk})


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(doc=junk | interface | st.lists(interface, max_size=3))
def test_only_declaration_errors_escape(doc: Any) -> None:
    try:
        types = from_dtdl(doc, file="fuzz.json")
    except DeclarationError as err:
        assert str(err).startswith("fuzz.json")
    else:
        assert from_dtdl(via_json(export_dtdl(types))) == types
