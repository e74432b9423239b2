"""Plant files: the demo plant, for_each expansion, and every bad input ending in DeclarationError."""

from __future__ import annotations

import tempfile
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from twinloop.core.errors import DeclarationError
from twinloop.twins.plant import Plant, load_plant, parse_plant

EXAMPLE = Path(__file__).resolve().parents[3] / "examples" / "pump-station" / "plant.yaml"
PUMPS = [f"pump-{line}{n}" for line in "ABC" for n in range(1, 5)]
ATTRIBUTES = {  # what the pump-station asset types declare
    "Pump": {"manufacturer", "model", "serial", "rated_flow", "rated_head", "line"},
    "Tank": {"capacity"},
    "PowerSupply": {"rated_voltage"},
    "PumpLine": set(),
    "PumpStation": {"site"},
}


# --- the demo plant -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def demo() -> Plant:
    return load_plant(EXAMPLE)


def test_demo_plant_twins(demo: Plant) -> None:
    assert demo.name == "pump-station"
    assert demo.type_paths == [EXAMPLE.parent / "types"]
    kinds = Counter(t.type_id for t in demo.twins)
    assert kinds == {"Pump": 12, "PumpLine": 3, "Tank": 4, "PowerSupply": 2, "PumpStation": 1}
    assert [t.id for t in demo.twins if t.type_id == "Pump"] == PUMPS
    for twin in demo.twins:
        assert set(twin.attributes) <= ATTRIBUTES[twin.type_id], twin.id
    pumps = [t for t in demo.twins if t.type_id == "Pump"]
    assert all(set(p.attributes) == ATTRIBUTES["Pump"] for p in pumps)
    assert len({p.attributes["serial"] for p in pumps}) == 12
    assert all(isinstance(p.attributes["rated_flow"], int | float) for p in pumps)
    assert all(p.attributes["line"] == p.id[5] for p in pumps)


def test_demo_plant_relationships(demo: Plant) -> None:
    names = Counter(r.name for r in demo.relationships)
    # feeds: tank->pump 12, pump->line 12, line->reservoir 3; partOf: 12 pumps + 3 lines
    assert names == {"feeds": 27, "partOf": 15, "poweredBy": 12}
    g = demo.graph()
    assert len(g) == 22
    for line in "ABC":
        assert {t.id for t in g.neighbours(f"line-{line}", "partOf", "in")} == {
            f"pump-{line}{n}" for n in range(1, 5)}
        assert [t.id for t in g.neighbours(f"line-{line}", "partOf")] == ["station-1"]
    assert {t.id for t in g.neighbours("mcc-1", "poweredBy", "in")} == set(PUMPS[:8])


def test_demo_plant_cascades(demo: Plant) -> None:
    g = demo.graph()
    reached = g.downstream("tank-A")
    assert [(r.id, r.depth) for r in reached] == [
        *[(p, 1) for p in PUMPS[:4]], ("line-A", 2), ("reservoir-1", 3)]
    hit = {r.id: r for r in g.impact("mcc-2")}
    assert set(PUMPS[8:]) <= set(hit)
    assert {"line-C", "reservoir-1"} <= set(hit)
    assert not {"line-A", "line-B", *PUMPS[:8]} & set(hit)
    assert hit["pump-C1"].via.name == "poweredBy"


# --- the format ---------------------------------------------------------------------------
def test_for_each_product_pairs_ranges_and_formats() -> None:
    plant = parse_plant({
        "plant": "p",
        "twins": [
            {"id": "m-{k}", "type": "PowerSupply", "for_each": {"k": [1, 2]}},
            {"id": "pump-{line}{n:02d}", "type": "{kind}",
             "for_each": [{"line": ["A", "B"], "n": {"from": 1, "to": 3, "step": 2},
                           "kind": "Pump", "mcc": "m-1", "flow": 120.5},
                          {"line": "C", "n": {"from": 9, "to": 8, "step": -1}, "kind": "Pump",
                           "mcc": "m-2", "flow": 90}],
             "attributes": {"line": "{line}", "rated_flow": "{flow}", "label": "{{{line}}}",
                            "nested": {"tags": ["l-{line}", "{n}"]}},
             "relationships": {"poweredBy": "{mcc}", "feeds": ["m-1", "m-2"]}},
        ],
    })
    pumps = [t for t in plant.twins if t.type_id == "Pump"]
    assert [t.id for t in pumps] == [
        "pump-A01", "pump-A03", "pump-B01", "pump-B03", "pump-C09", "pump-C08"]
    assert pumps[0].attributes == {"line": "A", "rated_flow": 120.5, "label": "{A}",
                                   "nested": {"tags": ["l-A", 1]}}
    assert pumps[-1].attributes["rated_flow"] == 90
    powered = {r.source: r.target for r in plant.relationships if r.name == "poweredBy"}
    assert powered["pump-A01"] == "m-1" and powered["pump-C08"] == "m-2"
    assert sum(r.name == "feeds" for r in plant.relationships) == 12


def test_plain_entries_relationship_properties_and_dates(tmp_path: Path) -> None:
    file = tmp_path / "site" / "plant.yaml"
    file.parent.mkdir()
    file.write_text(textwrap.dedent("""\
        plant: tiny
        description: two tanks
        types: ../shared-types
        twins:
          - {id: a, type: Tank, attributes: {commissioned: 2021-05-04}, reported: {level: 1.5}}
          - {id: b, type: Tank, desired: {level: 2}}
        relationships:
          - {source: a, name: feeds, target: b, properties: {pipe: "DN{d}"}, for_each: {d: 150}}
        """))
    plant = load_plant(file)
    assert plant.description == "two tanks"
    assert plant.type_paths == [file.parent / "../shared-types"]
    a, b = plant.twins
    assert a.attributes == {"commissioned": "2021-05-04"} and a.reported == {"level": 1.5}
    assert b.desired == {"level": 2}
    assert plant.relationships[0].properties == {"pipe": "DN150"}
    assert parse_plant({"plant": "x"}) == Plant("x", [], [], [])


# --- bad plant files ----------------------------------------------------------------------
TWIN = {"id": "t-1", "type": "Tank"}
DEEP: list[Any] = []
for _ in range(40):
    DEEP = [DEEP]
BAD: list[tuple[str, Any, str, str]] = [
    # (case, data, expected error path, text the message contains)
    ("not a mapping", ["plant"], "", "mapping"),
    ("no name", {"twins": []}, "plant", "required"),
    ("bad name", {"plant": "a b"}, "plant", "invalid plant name"),
    ("unknown top key", {"plant": "p", "twinz": []}, "", "'twinz'"),
    ("types not paths", {"plant": "p", "types": [3]}, "types[0]", "not a path"),
    ("twins not a list", {"plant": "p", "twins": {"id": "x"}}, "twins", "list"),
    ("twin not a mapping", {"plant": "p", "twins": ["t-1"]}, "twins[0]", "mapping"),
    ("unknown twin key", {"plant": "p", "twins": [{**TWIN, "atributes": {}}]}, "twins[0]",
     "'atributes'"),
    ("missing type", {"plant": "p", "twins": [{"id": "x"}]}, "twins[0].type", "required"),
    ("bad twin id", {"plant": "p", "twins": [{"id": "pump 1", "type": "Pump"}]}, "twins[0].id",
     "invalid twin id"),
    ("id not a string", {"plant": "p", "twins": [{"id": 7, "type": "Pump"}]}, "twins[0].id",
     "string"),
    ("duplicate id", {"plant": "p", "twins": [TWIN, {"id": "t-{n}", "type": "Tank",
                                                      "for_each": {"n": [2, 1]}}]},
     "twins[1].id", "first declared at twins[0]"),
    ("undefined placeholder", {"plant": "p", "twins": [{"id": "p-{n}", "type": "Pump",
                                                        "for_each": {"m": [1]}}]},
     "twins[0].id", "{n} is not defined"),
    ("placeholder without for_each", {"plant": "p", "twins": [{**TWIN, "attributes": {
        "line": "{line}"}}]}, "twins[0].attributes.line", "{line} is not defined"),
    ("malformed placeholder", {"plant": "p", "twins": [{"id": "p-{n-1}", "type": "Pump",
                                                        "for_each": {"n": [1]}}]},
     "twins[0].id", "malformed placeholder"),
    ("lone brace", {"plant": "p", "twins": [{**TWIN, "attributes": {"a": "x}"}}]},
     "twins[0].attributes.a", "malformed placeholder"),
    ("bad format spec", {"plant": "p", "twins": [{"id": "p-{n:d}", "type": "Pump",
                                                  "for_each": {"n": ["A"]}}]},
     "twins[0].id", "cannot format"),
    ("too wide a format", {"plant": "p", "twins": [{"id": "p-{n:>99999999}", "type": "Pump",
                                                    "for_each": {"n": [1]}}]},
     "twins[0].id", "too wide"),
    ("empty for_each list", {"plant": "p", "twins": [{**TWIN, "for_each": {"n": []}}]},
     "twins[0].for_each.n", "non-empty list"),
    ("empty range", {"plant": "p", "twins": [{**TWIN, "for_each": {"n": {"from": 3, "to": 1}}}]},
     "twins[0].for_each.n", "range"),
    ("huge range", {"plant": "p", "twins": [{**TWIN, "for_each": {
        "n": {"from": 0, "to": 10**30}}}]}, "twins[0].for_each.n", "more than"),
    ("huge product", {"plant": "p", "twins": [{**TWIN, "for_each": {
        "a": {"from": 1, "to": 2000}, "b": {"from": 1, "to": 2000}}}]},
     "twins[0].for_each", "more than"),
    ("bad variable", {"plant": "p", "twins": [{**TWIN, "for_each": {"1x": [1]}}]},
     "twins[0].for_each.1x", "variable name"),
    ("bad for_each group", {"plant": "p", "twins": [{**TWIN, "for_each": [{"n": [1]}, 3]}]},
     "twins[0].for_each[1]", "must map"),
    ("unsupported value", {"plant": "p", "twins": [{**TWIN, "attributes": {"a": b"x"}}]},
     "twins[0].attributes.a", "unsupported value"),
    ("non-string keys", {"plant": "p", "twins": [{**TWIN, "attributes": {1: "x"}}]},
     "twins[0].attributes", "string keys"),
    ("unknown target", {"plant": "p", "twins": [TWIN], "relationships": [
        {"source": "t-1", "name": "feeds", "target": "t-{n}", "for_each": {"n": [9]}}]},
     "relationships[0]", "target 't-9' is not a declared twin (for n=9)"),
    ("unknown inline target", {"plant": "p", "twins": [{**TWIN, "relationships": {
        "partOf": ["t-1x"]}}]}, "twins[0].relationships.partOf[0]", "'t-1x'"),
    ("self-loop", {"plant": "p", "twins": [{**TWIN, "relationships": {"feeds": "t-1"}}]},
     "twins[0].relationships.feeds", "self-loops"),
    ("duplicate edge", {"plant": "p", "twins": [TWIN, {"id": "t-2", "type": "Tank"}],
                        "relationships": [{"source": "t-1", "name": "feeds", "target": "t-2",
                                           "for_each": {"n": [1, 2]}}]},
     "relationships[0]", "duplicate relationship"),
    ("bad relationship name", {"plant": "p", "twins": [TWIN, {"id": "t-2", "type": "Tank"}],
                               "relationships": [{"source": "t-1", "name": "fe eds",
                                                  "target": "t-2"}]},
     "relationships[0]", "invalid relationship name"),
    ("unknown relationship key", {"plant": "p", "relationships": [
        {"source": "a", "name": "feeds", "target": "b", "to": "c"}]}, "relationships[0]", "'to'"),
    ("too deep", {"plant": "p", "twins": [{**TWIN, "attributes": {"a": DEEP}}]},
     "twins[0].attributes.a" + "[0]" * 32, "deeper"),
]


@pytest.mark.parametrize(("data", "path", "text"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_plant_data(data: Any, path: str, text: str) -> None:
    with pytest.raises(DeclarationError) as caught:
        parse_plant(data, file="plant.yaml")
    err = caught.value
    assert err.file == "plant.yaml"
    assert err.path == path
    assert text in str(err)
    assert str(err).startswith(f"plant.yaml:{path}" if path else "plant.yaml:")


@pytest.mark.parametrize(
    ("text", "path", "message"),
    [
        ("plant: p\ntwins:\n  - id: a\n   type: Tank\n", "", "malformed YAML at line 4"),
        ("plant: p\ntwins: [\n", "", "malformed YAML at line 3"),
        ("plant: p\nplant: q\n", "", "duplicate key 'plant' at line 2 (first at line 1)"),
        ("plant: p\n---\nplant: q\n", "", "malformed YAML"),
        ("a: 2024-13-45\n", "", "malformed YAML value"),
        ("", "", "mapping"),
        ("x: !!python/object:os.system {}\n", "", "malformed YAML"),
        ("plant: p\ntwins:\n  - id: a\n    type: Tank\n  - id: a\n    type: Tank\n",
         "twins[1].id", "(line 5)"),
        ("plant: p\ntwins:\n  - id: a\n    type: Tank\n    for_each:\n      n: []\n",
         "twins[0].for_each.n", "(line 6)"),
        ("plant: p\ntwins: []\nrelationships:\n- {source: a, name: feeds, target: b}\n",
         "relationships[0]", "(line 4)"),
        ("plant: p\ntwins:\n- {id: a, type: T, attributes: {x: &x [*x]}}\n",
         "twins[0].attributes.x" + "[0]" * 32, "deeper than 32"),
        ("plant: p\ntwins:\n- id: a\n  type: T\n  attributes:\n"
         + "".join(f"    l{i}: &l{i} [*l{i - 1}, *l{i - 1}, *l{i - 1}]\n" for i in range(1, 20))
         .replace("*l0, *l0, *l0", "1, 2, 3"), "twins[0].attributes", "more than 100000 values"),
    ],
)
def test_bad_plant_files_name_file_path_and_line(tmp_path: Path, text: str, path: str,
                                                 message: str) -> None:
    file = tmp_path / "plant.yaml"
    file.write_text(text)
    with pytest.raises(DeclarationError) as caught:
        load_plant(file)
    assert caught.value.file == str(file)
    assert caught.value.path == path
    assert message in str(caught.value)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DeclarationError, match="cannot read"):
        load_plant(tmp_path / "nope.yaml")
    (tmp_path / "latin1.yaml").write_bytes(b"plant: caf\xe9\n")
    with pytest.raises(DeclarationError, match="cannot read"):
        load_plant(tmp_path / "latin1.yaml")


# --- junk in, DeclarationError out --------------------------------------------------------
scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats() | st.sampled_from(
    ["", "a", "t-1", "t-{n}", "{n", "{n:03d}", "{x}", "feeds", "Tank", "{{", "p-{n}{m}"])
keys = st.sampled_from(["plant", "types", "twins", "relationships", "description", "id",
                        "type", "attributes", "reported", "desired", "for_each", "source",
                        "name", "target", "properties", "n", "m", "from", "to", "step",
                        "feeds", "x"]) | st.integers(0, 2)
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(keys, inner, max_size=5), max_leaves=30)
near_plants = st.fixed_dictionaries(
    {"plant": st.sampled_from(["p", "bad name", 3])},
    optional={"types": junk,
              "twins": st.lists(st.dictionaries(keys, junk, max_size=6) | junk, max_size=4),
              "relationships": st.lists(st.dictionaries(keys, junk, max_size=6), max_size=3)},
)

ids_ = st.sampled_from(["t-1", "t-2", "t-{n}", "t-{m}{n}", "t-{n:02d}", "{n}", "t {n}", "t-{x}"])
for_each = st.dictionaries(st.sampled_from(["n", "m", "1n"]), st.sampled_from(
    [1, 2, "a", "", [1, 2], [], [1, [2]], {"from": 1, "to": 3}, {"from": 3, "to": 1},
     {"from": 0, "to": 9, "step": 0}, {"to": 3}, True, None, 1.5]), max_size=2)
valid_ish = st.fixed_dictionaries(
    {"plant": st.just("p"),
     "twins": st.lists(st.fixed_dictionaries(
         {"id": ids_, "type": st.sampled_from(["Tank", "{n}", "", 3])},
         optional={"for_each": for_each | st.lists(for_each, max_size=2),
                   "attributes": st.dictionaries(st.sampled_from(["a", "b"]), junk, max_size=2),
                   "relationships": st.dictionaries(st.sampled_from(["feeds", "part Of"]),
                                                    ids_ | st.lists(ids_, max_size=2) | junk)}),
         max_size=4)},
    optional={"relationships": st.lists(st.fixed_dictionaries(
        {"source": ids_, "name": st.sampled_from(["feeds", "{n}"]), "target": ids_},
        optional={"for_each": for_each, "properties": st.dictionaries(st.just("k"), junk)}),
        max_size=3)},
)


@settings(max_examples=300, deadline=None)
@given(junk | near_plants | valid_ish)
def test_junk_data_only_ever_raises_declaration_error(data: Any) -> None:
    try:
        plant = parse_plant(data, file="junk.yaml")
    except DeclarationError as err:
        assert err.file == "junk.yaml"
    else:
        plant.graph()  # whatever parses also loads into a graph


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=st.sampled_from(list("plant: -[]{}\n\t'\"&*!|>#0a1,")), max_size=80)
       | st.text(max_size=40))
def test_junk_yaml_only_ever_raises_declaration_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "plant.yaml"
        file.write_text(text, encoding="utf-8", errors="surrogatepass")
        try:
            load_plant(file)
        except DeclarationError:
            pass
