"""AssetType declarations and the validate_* checks the runtime calls."""

from __future__ import annotations

import datetime as dt

import pydantic
import pytest

from twinloop.core.errors import NotFoundError, ValidationError
from twinloop.twins.asset_type import AssetType, Channel, default_dtmi

GOOD_ATTRS = {"manufacturer": "KSB", "model": "Etanorm 080-065-200", "serial": "SN-1",
              "rated_flow": 250, "rated_head": 45}


def test_dtmi_defaults_from_id_and_is_kept_when_given() -> None:
    assert AssetType(id="Pump").dtmi == "dtmi:twinloop:Pump;1"
    assert AssetType(id="Pump", dtmi="dtmi:acme:Pump;3").dtmi == "dtmi:acme:Pump;3"
    assert default_dtmi("pump-7") == "dtmi:twinloop:pump_7;1"
    with pytest.raises(pydantic.ValidationError, match="invalid dtmi"):
        AssetType(id="Pump", dtmi="urn:pump")


def test_models_are_frozen_and_forbid_unknown_keys() -> None:
    t = AssetType(id="Tank")
    with pytest.raises(pydantic.ValidationError):
        t.id = "Other"  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError, match="extra"):
        AssetType.model_validate({"id": "Tank", "chanels": []})


@pytest.mark.parametrize(
    ("channel", "match"),
    [
        ({"name": "t", "unit": "frobs"}, "unknown unit 'frobs'"),
        ({"name": "t", "min": 5, "max": 1}, r"min \(5\) must be less than max \(1\)"),
        ({"name": "t", "type": "string"}, "literal_error|Input should be"),
        ({"name": "bad name"}, "invalid name"),
        ({"name": "t", "expected_rate_hz": 1, "expected_period_s": 1}, "not both"),
        ({"name": "t", "expected_rate_hz": 0}, "greater than 0"),
    ],
)
def test_bad_channels_are_rejected(channel: dict, match: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=match):
        Channel.model_validate(channel)


def test_rate_either_way() -> None:
    assert Channel(name="a", expected_period_s=4).rate_hz == 0.25
    assert Channel(name="a", expected_rate_hz=2).rate_hz == 2


def test_member_names_share_one_namespace() -> None:
    with pytest.raises(pydantic.ValidationError, match="duplicate name 'speed'"):
        AssetType.model_validate({"id": "P", "channels": [{"name": "speed"}],
                                  "properties": [{"name": "speed"}]})


def test_enum_needs_values_and_default_must_fit() -> None:
    with pytest.raises(pydantic.ValidationError, match="values"):
        AssetType.model_validate({"id": "P", "attributes": [{"name": "duty", "type": "enum"}]})
    with pytest.raises(pydantic.ValidationError, match="not allowed"):
        AssetType.model_validate({"id": "P", "attributes": [
            {"name": "duty", "type": "enum", "values": ["a", "b"], "default": "c"}]})


def test_channel_lookup(pump: AssetType) -> None:
    assert pump.channel("flow").unit == "m**3/h"
    with pytest.raises(NotFoundError, match="no channel 'flw'") as err:
        pump.channel("flw")
    assert "flow" in (err.value.hint or "")


def test_validate_attributes_fills_defaults_and_normalizes(pump: AssetType) -> None:
    out = pump.validate_attributes({**GOOD_ATTRS, "commissioned": dt.date(2021, 3, 4)})
    assert out["duty"] == "duty"
    assert out["rated_flow"] == 250.0 and isinstance(out["rated_flow"], float)
    assert out["commissioned"] == "2021-03-04"


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"serial": None}, "attribute 'serial' is required"),
        ({"colour": "red"}, "unknown attribute 'colour'"),
        ({"rated_flow": "lots"}, "attribute 'rated_flow': expected a double, got 'lots'"),
        ({"rated_flow": True}, "expected a double, got True"),
        ({"rated_head": -3}, "below the minimum 0 m"),
        ({"duty": "spare"}, r"'spare' is not allowed \(one of 'duty', 'standby', 'assist'\)"),
        ({"commissioned": "yesterday"}, "expected a date"),
    ],
)
def test_validate_attributes_rejects(pump: AssetType, change: dict, match: str) -> None:
    values = {k: v for k, v in {**GOOD_ATTRS, **change}.items() if v is not None}
    with pytest.raises(ValidationError, match=match):
        pump.validate_attributes(values)


def test_validate_attributes_reports_every_problem(pump: AssetType) -> None:
    with pytest.raises(ValidationError) as err:
        pump.validate_attributes({"rated_head": -1})
    msg = str(err.value)
    for name in ("manufacturer", "model", "serial", "rated_flow", "rated_head"):
        assert repr(name) in msg


def test_validate_desired(pump: AssetType) -> None:
    assert pump.validate_desired({"speed_setpoint": 1450}) == {"speed_setpoint": 1450.0}
    assert pump.validate_desired({"control_mode": "remote", "speed_setpoint": None}) == {
        "control_mode": "remote", "speed_setpoint": None}
    with pytest.raises(ValidationError, match=r"above the maximum 3000 rpm \(allowed 0 to 3000"):
        pump.validate_desired({"speed_setpoint": 3200})
    with pytest.raises(ValidationError, match="'running' is reported only") as err:
        pump.validate_desired({"running": True})
    assert "speed_setpoint" in (err.value.hint or "")
    with pytest.raises(ValidationError, match="unknown writable property 'flow'"):
        pump.validate_desired({"flow": 3})


def test_validate_reported(pump: AssetType) -> None:
    assert pump.validate_reported({"running": True, "flow": 120, "speed_setpoint": 1000}) == {
        "running": True, "flow": 120.0, "speed_setpoint": 1000.0}
    with pytest.raises(ValidationError, match="unknown property or channel 'temperature'"):
        pump.validate_reported({"temperature": 40})
    with pytest.raises(ValidationError, match="expected a boolean, got 1"):
        pump.validate_reported({"running": 1})
    with pytest.raises(ValidationError, match="above the maximum 600 m"):
        pump.validate_reported({"flow": 900})


def test_validate_command(pump: AssetType) -> None:
    assert pump.validate_command("setSpeed", {"rpm": 1450}) == {"rpm": 1450.0}
    assert pump.validate_command("start", {}) == {}
    assert pump.validate_command("stop", {}) == {"emergency": False}
    with pytest.raises(ValidationError, match=r"'rpm': 3500 is above the maximum 3000 rpm"):
        pump.validate_command("setSpeed", {"rpm": 3500})
    with pytest.raises(ValidationError, match="below the minimum 0 rpm"):
        pump.validate_command("setSpeed", {"rpm": -1})
    with pytest.raises(ValidationError, match="argument 'rpm' is required"):
        pump.validate_command("setSpeed", {})
    with pytest.raises(ValidationError, match="unknown argument 'speed'"):
        pump.validate_command("setSpeed", {"rpm": 1, "speed": 2})
    with pytest.raises(ValidationError, match="unknown command 'setSped'") as err:
        pump.validate_command("setSped", {})
    assert "setSpeed" in (err.value.hint or "")


def test_validation_of_non_mapping_input(pump: AssetType) -> None:
    with pytest.raises(ValidationError, match="expected a mapping"):
        pump.validate_reported([1, 2])  # type: ignore[arg-type]


def test_integer_array_and_map_values() -> None:
    t = AssetType.model_validate({"id": "X", "properties": [
        {"name": "count", "type": "integer", "min": 0, "writable": True},
        {"name": "tags", "type": "array", "items": "string", "writable": True},
        {"name": "limits", "type": "map", "items": "double", "writable": True},
    ]})
    assert t.validate_desired({"count": 3.0, "tags": ["a"], "limits": {"hi": 2}}) == {
        "count": 3, "tags": ["a"], "limits": {"hi": 2.0}}
    for bad in ({"count": 2.5}, {"tags": "a"}, {"limits": {"hi": "x"}}):
        with pytest.raises(ValidationError):
            t.validate_desired(bad)
