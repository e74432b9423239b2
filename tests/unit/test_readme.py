"""The README's examples are what a new user copies first: they must work as written."""

import re
from pathlib import Path

import yaml

from twinloop.twins.asset_type import AssetType
from twinloop.twins.loader import parse_asset_type
from twinloop.twins.registry import TypeRegistry

README = Path(__file__).resolve().parents[2] / "README.md"


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def test_first_screen_has_exactly_two_setup_commands():
    first = blocks("bash")[0].strip().splitlines()
    assert [line.split("#")[0].strip() for line in first] == ["make demo", "make test"]


def test_asset_type_example_is_valid():
    example, _ = blocks("yaml")
    t = parse_asset_type(yaml.safe_load(example), file="README.md")
    assert isinstance(t, AssetType) and t.id == "Pump"


def test_analytics_example_is_a_valid_declaration():
    _, example = blocks("yaml")
    t = parse_asset_type({"id": "Pump", **yaml.safe_load(example)}, file="README.md")
    assert TypeRegistry([t]).analytics("Pump", "prognoser") == (
        "Pump", {"model": "pump-bearing-physics", "second_opinion": "pump-bearing-gbm"})


def test_python_example_runs(monkeypatch):
    monkeypatch.chdir(README.parent)
    (code,) = blocks("python")
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert len(namespace["pumps"]) == 4
    assert {"pump-C1", "pump-C4"} <= {r.id for r in namespace["hit"]}
