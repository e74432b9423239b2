"""Loading asset types from YAML, the errors people see, and the type registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinloop.core.errors import ConflictError, DeclarationError, NotFoundError
from twinloop.twins.asset_type import AssetType
from twinloop.twins.loader import load_asset_types, parse_asset_type
from twinloop.twins.registry import TypeRegistry

from .conftest import EXAMPLE_TYPES

PLANT_IDS = ["Bearing", "Motor", "PowerSupply", "Pump", "PumpLine", "PumpStation", "Tank", "Valve"]


def write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text, encoding="utf-8")
    return p


def test_example_types_load_and_check() -> None:
    reg = TypeRegistry.from_paths([EXAMPLE_TYPES])
    assert reg.ids() == PLANT_IDS
    pump = reg.get("Pump")
    assert pump.components == {"motor": "Motor", "bearing": "Bearing", "valve": "Valve"}
    assert {r.name: r.target for r in pump.relationships} == {
        "feeds": None, "partOf": "PumpLine", "poweredBy": "PowerSupply"}
    names = [n for n, _ in reg.component_channels("Pump")]
    assert names[:5] == ["flow", "discharge_pressure", "suction_pressure", "speed", "power"]
    assert {"motor.current", "bearing.temperature", "valve.opening"} <= set(names)
    for t in reg:
        assert t.channels, f"{t.id} declares no channels"
        assert all(c.rate_hz for c in t.channels), f"{t.id} has a channel without a rate"


def test_one_list_and_types_forms(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", "id: A\n")
    write(tmp_path, "b.yml", "- id: B\n- id: C\n")
    write(tmp_path, "c.yaml", "types:\n  - id: D\n")
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "notes.txt", "id: Ignored\n")
    assert [t.id for t in load_asset_types([tmp_path])] == ["A", "B", "C", "D"]
    assert [t.id for t in load_asset_types(tmp_path / "a.yaml")] == ["A"]


def test_malformed_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    p = write(tmp_path, "bad.yaml", "id: Pump\nchannels:\n  - name: flow\n   unit: m**3/h\n")
    with pytest.raises(DeclarationError) as err:
        load_asset_types([p])
    assert err.value.file == str(p)
    assert "bad.yaml" in str(err.value) and "line 4" in str(err.value)


def test_bad_unit_names_file_path_entity_and_line(tmp_path: Path) -> None:
    p = write(tmp_path, "pump.yaml", (
        "id: Pump\nchannels:\n  - {name: flow, unit: m**3/h}\n  - {name: speed, unit: rpm}\n"
        "  - name: head\n    unit: metres of water\n"))
    with pytest.raises(DeclarationError) as err:
        load_asset_types([p])
    e = err.value
    assert e.file == str(p) and e.path == "channels[2].unit"
    assert str(e).startswith(f"{p}:channels[2].unit: channel 'head': unknown unit")
    assert "(line 6)" in str(e) and "use a pint unit" in str(e)
    assert "Traceback" not in str(e) and "pydantic" not in str(e)


def test_every_problem_is_reported_one_per_line(tmp_path: Path) -> None:
    p = write(tmp_path, "multi.yaml", """
types:
  - id: Ok
  - id: Valve
    channels:
      - {name: opening, unit: percent, min: 100, max: 0}
    comands: []
    commands:
      - name: setPosition
        args:
          - {name: position, type: enum}
""")
    with pytest.raises(DeclarationError) as err:
        load_asset_types([p])
    lines = str(err.value).splitlines()
    assert lines[0] == f"{p}: 3 problems:"
    body = "\n".join(lines[1:])
    assert "types[1].channels[0].max (line 6): channel 'opening': min (100) must be less" in body
    assert "types[1].comands (line 7): unknown key (allowed: id, dtmi" in body
    assert "types[1].commands[0].args[0].values" in body and "argument 'position'" in body
    assert [p for p, _ in err.value.problems][0] == "types[1].channels[0].max"


def test_parse_asset_type_without_file() -> None:
    with pytest.raises(DeclarationError, match="^attributes\\[0\\].type: attribute 'x': must be"):
        parse_asset_type({"id": "T", "attributes": [{"name": "x", "type": "text"}]})
    with pytest.raises(DeclarationError, match="must be a mapping"):
        parse_asset_type(["id", "T"], file="t.yaml")


def test_missing_path_and_duplicate_ids(tmp_path: Path) -> None:
    with pytest.raises(DeclarationError, match="no such file"):
        load_asset_types([tmp_path / "nope"])
    write(tmp_path, "a.yaml", "id: A\n")
    write(tmp_path, "b.yaml", "id: A\n")
    with pytest.raises(DeclarationError, match="'A' is declared twice") as err:
        load_asset_types([tmp_path])
    assert "a.yaml" in str(err.value) and "b.yaml" in str(err.value)


def test_registry_lookup() -> None:
    reg = TypeRegistry([AssetType(id="A")])
    assert "A" in reg and "B" not in reg and len(reg) == 1
    with pytest.raises(NotFoundError) as err:
        reg.get("B")
    assert "A" in (err.value.hint or "")
    reg.add(AssetType(id="A"))  # the same declaration again is fine
    with pytest.raises(ConflictError):
        reg.add(AssetType(id="A", description="another"))


def test_resolve_flattens_extends_in_order() -> None:
    reg = TypeRegistry([
        AssetType.model_validate({"id": "Base", "channels": [{"name": "a"}],
                                  "attributes": [{"name": "tag"}]}),
        AssetType.model_validate({"id": "Mid", "extends": ["Base"], "channels": [{"name": "b"}]}),
        AssetType.model_validate({"id": "Other", "extends": ["Base"],
                                  "commands": [{"name": "reset"}]}),
        AssetType.model_validate({"id": "Leaf", "extends": ["Mid", "Other"],
                                  "channels": [{"name": "c"}]}),
    ])
    reg.check()
    leaf = reg.resolve("Leaf")
    assert [c.name for c in leaf.channels] == ["a", "b", "c"]
    assert [a.name for a in leaf.attributes] == ["tag"]
    assert [c.name for c in leaf.commands] == ["reset"]
    assert leaf.extends == () and reg.get("Leaf").extends == ("Mid", "Other")
    # nearest first, a diamond's base once: what per-type settings (estimators, gates) look through
    assert reg.lineage("Leaf") == ["Leaf", "Mid", "Other", "Base"]


def test_check_finds_unknown_references_cycles_and_conflicts() -> None:
    with pytest.raises(DeclarationError, match="Pump.components.motor: refers to unknown asset"):
        TypeRegistry([AssetType(id="Pump", components={"motor": "Motor"})]).check()
    with pytest.raises(DeclarationError, match=r"relationships\[0\].target"):
        TypeRegistry([AssetType.model_validate(
            {"id": "P", "relationships": [{"name": "feeds", "target": "Tank"}]})]).check()
    with pytest.raises(DeclarationError, match="inherits from itself: A -> B -> A"):
        TypeRegistry([AssetType(id="A", extends=["B"]), AssetType(id="B", extends=["A"])]).check()
    with pytest.raises(DeclarationError, match="contains itself"):
        TypeRegistry([AssetType(id="A", components={"b": "B"}),
                       AssetType(id="B", components={"a": "A"})]).check()
    with pytest.raises(DeclarationError, match="channel 'x' redefines"):
        TypeRegistry([
            AssetType.model_validate({"id": "A", "channels": [{"name": "x", "unit": "m"}]}),
            AssetType.model_validate({"id": "B", "extends": ["A"],
                                      "channels": [{"name": "x", "unit": "s"}]}),
        ]).check()
