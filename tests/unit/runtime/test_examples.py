"""The shipped example plants live inside the package, so ``twinloop demo`` works from a wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

import twinloop
from twinloop.core.errors import ConfigError
from twinloop.runtime.wiring import example_plant_path
from twinloop.twins.plant import load_plant
from twinloop.twins.registry import TypeRegistry


@pytest.mark.parametrize("name", ["pump-station", "building"])
def test_examples_are_package_data_and_load(name: str) -> None:
    path = example_plant_path(name)
    package = Path(twinloop.__file__).resolve().parent
    assert package in path.resolve().parents  # shipped in the wheel (package-data), not only in git
    plant = load_plant(path)
    registry = TypeRegistry.from_paths(plant.type_paths)
    assert len(plant.twins) > 10 and all(t.type_id in registry for t in plant.twins)


def test_an_unknown_example_names_the_shipped_ones() -> None:
    with pytest.raises(ConfigError) as err:
        example_plant_path("refinery")
    assert "pump-station" in (err.value.hint or "")
