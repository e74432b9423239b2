"""Analytics declared with the asset type, overridden per plant, switched off where declared so."""

from __future__ import annotations

import pytest

from twinloop.core.errors import DeclarationError
from twinloop.twins.asset_type import AssetType
from twinloop.twins.plant import parse_plant
from twinloop.twins.registry import TypeRegistry


def _registry() -> TypeRegistry:
    return TypeRegistry([
        AssetType(id="Pump", analytics={"alerts": {"operating": "speed > 100 for 10m"},
                                        "prognoser": {"model": "pump-bearing-physics"}}),
        AssetType(id="BoosterPump", extends=["Pump"]),
        AssetType(id="Tank"),
    ])


def test_a_subtype_inherits_the_nearest_declaration_and_an_undeclared_type_has_none() -> None:
    reg = _registry()
    assert reg.analytics("BoosterPump", "prognoser") == ("Pump", {"model": "pump-bearing-physics"})
    assert reg.analytics("Tank", "alerts") is None
    with pytest.raises(KeyError):
        reg.analytics("Pump", "forecast")


def test_the_plant_file_goes_over_the_type_file_section_by_section() -> None:
    plant = parse_plant({"plant": "p", "analytics": {"Pump": {"alerts": {"operating": "speed > 500"}},
                                                    "BoosterPump": {"prognoser": {"enabled": False}}}})
    reg = _registry()
    for type_id, declared in plant.analytics.items():
        reg.declare_analytics(type_id, declared)
    assert reg.analytics("Pump", "alerts") == ("Pump", {"operating": "speed > 500"})
    assert reg.analytics("Pump", "prognoser") == ("Pump", {"model": "pump-bearing-physics"})  # kept
    assert reg.analytics("BoosterPump", "prognoser") is None  # switched off for the subtype only
    assert reg.analytics("BoosterPump", "alerts") == ("Pump", {"operating": "speed > 500"})


def test_a_malformed_plant_declaration_names_where_it_is_wrong() -> None:
    with pytest.raises(DeclarationError) as err:
        parse_plant({"plant": "p", "analytics": {"Pump": {"alarms": {}}}})
    assert "analytics.Pump" in str(err.value)
    with pytest.raises(DeclarationError):
        parse_plant({"plant": "p", "analytics": ["Pump"]})
