"""Shared fixtures: the pump-station example types, loaded once per test."""

from __future__ import annotations

from pathlib import Path

import pytest

from twinloop.twins.asset_type import AssetType
from twinloop.twins.loader import load_asset_types

ROOT = Path(__file__).resolve().parents[3]
EXAMPLE_TYPES = ROOT / "examples" / "pump-station" / "types"
DTDL_DIR = Path(__file__).parent / "dtdl"


@pytest.fixture
def example_types() -> list[AssetType]:
    return load_asset_types([EXAMPLE_TYPES])


@pytest.fixture
def pump(example_types: list[AssetType]) -> AssetType:
    return next(t for t in example_types if t.id == "Pump")
