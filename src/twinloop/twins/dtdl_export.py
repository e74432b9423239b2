"""Asset types written as DTDL v3 interfaces, without losing anything twinloop declares.

Units DTDL knows are written as DTDL units with their semantic type (QuantitativeTypes extension);
everything DTDL has no place for — our unit where DTDL lacks it, valid ranges, expected rates,
attributes vs. reported properties, required flags and defaults — goes into the element's
standard ``comment`` as ``twinloop:{json}`` (every DTDL parser accepts a comment; it is ≤ 512
characters). See `twinloop.twins.dtdl` for the full mapping.

>>> from twinloop.twins.asset_type import AssetType
>>> doc = to_dtdl(AssetType(id="Tank", channels=[{"name": "level", "unit": "m", "min": 0}]))
>>> doc["@id"], doc["contents"][0]["unit"], doc["contents"][0]["comment"]
('dtmi:twinloop:Tank;1', 'metre', 'twinloop:{"min":0.0}')
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

from twinloop.core.units import canonical_unit, is_valid_unit
from twinloop.twins.asset_type import (
    NAME_PATTERN,
    NUMERIC_TYPES,
    Arg,
    AssetType,
    Attribute,
    Channel,
    Command,
    Property,
    Relationship,
    Response,
    default_dtmi,
)

CONTEXT_V3 = "dtmi:dtdl:context;3"
QUANTITATIVE_TYPES = "dtmi:dtdl:extension:quantitativeTypes;1"
COMMENT_PREFIX = "twinloop:"

# pint spelling → (DTDL semantic type, DTDL unit). The pint spelling is what import gives back.
UNITS: dict[str, tuple[str, str]] = {
    "degC": ("Temperature", "degreeCelsius"), "degF": ("Temperature", "degreeFahrenheit"),
    "K": ("Temperature", "kelvin"),
    "bar": ("Pressure", "bar"), "mbar": ("Pressure", "millibar"), "Pa": ("Pressure", "pascal"),
    "hPa": ("Pressure", "hectopascal"), "kPa": ("Pressure", "kilopascal"),
    "psi": ("Pressure", "poundPerSquareInch"),
    "rpm": ("AngularVelocity", "revolutionPerMinute"),
    "rad/s": ("AngularVelocity", "radianPerSecond"),
    "m**3/h": ("VolumeFlowRate", "cubicMetrePerHour"),
    "m**3/min": ("VolumeFlowRate", "cubicMetrePerMinute"),
    "m**3/s": ("VolumeFlowRate", "cubicMetrePerSecond"),
    "L/s": ("VolumeFlowRate", "litrePerSecond"), "L/min": ("VolumeFlowRate", "litrePerMinute"),
    "L/h": ("VolumeFlowRate", "litrePerHour"),
    "kg/s": ("MassFlowRate", "kilogramPerSecond"), "kg/h": ("MassFlowRate", "kilogramPerHour"),
    "W": ("Power", "watt"), "kW": ("Power", "kilowatt"), "MW": ("Power", "megawatt"),
    "VA": ("ApparentPower", "voltAmpere"), "kVA": ("ApparentPower", "kilovoltAmpere"),
    "Wh": ("Energy", "wattHour"), "kWh": ("Energy", "kilowattHour"),
    "MWh": ("Energy", "megawattHour"), "J": ("Energy", "joule"), "kJ": ("Energy", "kilojoule"),
    "A": ("Current", "ampere"), "mA": ("Current", "milliampere"), "kA": ("Current", "kiloampere"),
    "V": ("Voltage", "volt"), "mV": ("Voltage", "millivolt"), "kV": ("Voltage", "kilovolt"),
    "ohm": ("Resistance", "ohm"),
    "Hz": ("Frequency", "hertz"), "kHz": ("Frequency", "kilohertz"),
    "m": ("Length", "metre"), "cm": ("Length", "centimetre"), "mm": ("Length", "millimetre"),
    "km": ("Length", "kilometre"),
    "m**2": ("Area", "squareMetre"),
    "m**3": ("Volume", "cubicMetre"), "L": ("Volume", "litre"),
    "s": ("TimeSpan", "second"), "ms": ("TimeSpan", "millisecond"),
    "min": ("TimeSpan", "minute"), "h": ("TimeSpan", "hour"),
    "m/s": ("Velocity", "metrePerSecond"), "km/h": ("Velocity", "kilometrePerHour"),
    "m/s**2": ("Acceleration", "metrePerSecondSquared"),
    "N": ("Force", "newton"), "N*m": ("Torque", "newtonMetre"),
    "kg": ("Mass", "kilogram"), "g": ("Mass", "gram"), "t": ("Mass", "tonne"),
    "kg/m**3": ("Density", "kilogramPerCubicMetre"),
    "degree": ("Angle", "degreeOfArc"), "rad": ("Angle", "radian"),
}
# The elements DTDL v3 lets a semantic type co-type.
_SEMANTIC_KINDS = {"Telemetry", "Property", "Field", "CommandRequest", "CommandResponse"}


@lru_cache(maxsize=1)
def _by_canonical() -> dict[str, str]:
    return {canonical_unit(k): k for k in UNITS}


def dtdl_unit(unit: str) -> tuple[str, str, str] | None:
    """``(pint spelling, semantic type, DTDL unit)`` for a unit DTDL has, else None.

    >>> dtdl_unit("degree_Celsius")
    ('degC', 'Temperature', 'degreeCelsius')
    """
    key = unit if unit in UNITS else (
        _by_canonical().get(canonical_unit(unit)) if is_valid_unit(unit) else None
    )
    return (key, *UNITS[key]) if key else None


def id_from_dtmi(dtmi: str) -> str:
    """The type id a dtmi stands for: what follows ``dtmi:twinloop:``, else its last segment.

    >>> id_from_dtmi("dtmi:twinloop:Pump;1"), id_from_dtmi("dtmi:com:acme:Pump;2")
    ('Pump', 'Pump')
    """
    body = dtmi.removeprefix("dtmi:").split(";", 1)[0]
    if body.startswith("twinloop:"):
        return body.removeprefix("twinloop:")
    return body.rsplit(":", 1)[-1]


def encode_comment(meta: Mapping[str, Any]) -> str:
    """Our extra facts in a DTDL ``comment``: ``twinloop:`` + compact, sorted JSON."""
    return COMMENT_PREFIX + json.dumps(dict(meta), separators=(",", ":"), sort_keys=True)


def to_dtdl(asset_type: AssetType, *, dtmis: Mapping[str, str] | None = None) -> dict[str, Any]:
    """One DTDL v3 interface for ``asset_type``; ``dtmis`` maps referenced type ids to dtmis
    (types not in it get `default_dtmi`)."""
    ref = _Refs(dtmis or {})
    doc: dict[str, Any] = {
        "@context": [CONTEXT_V3, QUANTITATIVE_TYPES],
        "@id": asset_type.dtmi,
        "@type": "Interface",
    }
    _texts(doc, asset_type.display_name, asset_type.description)
    if id_from_dtmi(asset_type.dtmi) != asset_type.id:
        doc["comment"] = encode_comment({"id": asset_type.id})
    if asset_type.extends:
        doc["extends"] = [ref(t) for t in asset_type.extends]
    contents: list[dict[str, Any]] = []
    contents += [_channel(c) for c in asset_type.channels]
    contents += [_attribute(a) for a in asset_type.attributes]
    contents += [_property(p) for p in asset_type.properties]
    contents += [_command(c) for c in asset_type.commands]
    contents += [_relationship(r, ref) for r in asset_type.relationships]
    contents += [
        {"@type": "Component", "name": name, "schema": ref(t)}
        for name, t in asset_type.components.items()
    ]
    doc["contents"] = contents
    return doc


def export_dtdl(types: Iterable[AssetType]) -> list[dict[str, Any]]:
    """Interfaces for a set of types, references resolved to the types' own dtmis — the array
    form Azure Digital Twins accepts in one upload."""
    types = list(types)
    dtmis = {t.id: t.dtmi for t in types}
    return [to_dtdl(t, dtmis=dtmis) for t in types]


class _Refs:
    def __init__(self, dtmis: Mapping[str, str]) -> None:
        self._dtmis = dtmis

    def __call__(self, type_id: str) -> str:
        return self._dtmis.get(type_id) or default_dtmi(type_id)


def _texts(el: dict[str, Any], display_name: str | None, description: str | None) -> None:
    if display_name is not None:
        el["displayName"] = display_name
    if description is not None:
        el["description"] = description


def _schema(v: Channel | Attribute | Property | Arg | Response) -> Any:
    if v.type == "enum":
        values = list(v.values or ())
        names = [str(x) for x in values]
        if not all(isinstance(x, str) and NAME_PATTERN.match(x) and len(x) <= 64 for x in values):
            names = [f"v{i}" for i in range(len(values))]
        return {
            "@type": "Enum",
            "valueSchema": "string" if isinstance(values[0], str) else "integer",
            "enumValues": [{"name": n, "enumValue": x} for n, x in zip(names, values, strict=True)],
        }
    if v.type == "array":
        return {"@type": "Array", "elementSchema": v.items}
    if v.type == "map":
        return {
            "@type": "Map",
            "mapKey": {"name": "key", "schema": "string"},
            "mapValue": {"name": "value", "schema": v.items},
        }
    return v.type


def _element(
    kind: str, v: Channel | Attribute | Property | Arg | Response, meta: dict[str, Any]
) -> dict[str, Any]:
    """A Telemetry/Property/Field/CommandRequest/CommandResponse for one typed value."""
    el: dict[str, Any] = {"@type": kind, "name": v.name, "schema": _schema(v)}
    known = dtdl_unit(v.unit) if v.unit and v.type in NUMERIC_TYPES else None
    if known and kind in _SEMANTIC_KINDS:
        spelling, semantic, unit = known
        el["@type"] = [kind, semantic]
        el["unit"] = unit
        if spelling != v.unit:
            meta["unit"] = v.unit
    elif v.unit:
        meta["unit"] = v.unit
    for key in ("min", "max"):
        if getattr(v, key) is not None:
            meta[key] = getattr(v, key)
    _texts(el, v.display_name, v.description)
    if meta:
        el["comment"] = encode_comment(meta)
    return el


def _channel(c: Channel) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if c.expected_rate_hz is not None:
        meta["expected_rate_hz"] = c.expected_rate_hz
    if c.expected_period_s is not None:
        meta["expected_period_s"] = c.expected_period_s
    return _element("Telemetry", c, meta)


def _attribute(a: Attribute) -> dict[str, Any]:
    meta: dict[str, Any] = {"attribute": True}
    if a.required:
        meta["required"] = True
    if a.default is not None:
        meta["default"] = a.default
    return {**_element("Property", a, meta), "writable": False}


def _property(p: Property) -> dict[str, Any]:
    return {**_element("Property", p, {}), "writable": p.writable}


def _arg_meta(a: Arg) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if not a.required:
        meta["required"] = False
    if a.default is not None:
        meta["default"] = a.default
    return meta


def _command(c: Command) -> dict[str, Any]:
    el: dict[str, Any] = {"@type": "Command", "name": c.name}
    _texts(el, c.display_name, c.description)
    if len(c.args) == 1:
        el["request"] = _element("CommandRequest", c.args[0], _arg_meta(c.args[0]))
    elif c.args:
        # Several arguments travel as one Object; each Field keeps its own unit and limits.
        fields = [_element("Field", a, _arg_meta(a)) for a in c.args]
        el["request"] = {
            "@type": "CommandRequest", "name": "args",
            "schema": {"@type": "Object", "fields": fields},
        }
    if c.response is not None:
        el["response"] = _element("CommandResponse", c.response, {})
    return el


def _relationship(r: Relationship, ref: _Refs) -> dict[str, Any]:
    el: dict[str, Any] = {"@type": "Relationship", "name": r.name}
    if r.target is not None:
        el["target"] = ref(r.target)
    if r.max_multiplicity is not None:
        el["maxMultiplicity"] = r.max_multiplicity
    if r.properties:
        el["properties"] = [_property(p) for p in r.properties]
    _texts(el, r.display_name, r.description)
    return el


__all__ = [
    "COMMENT_PREFIX",
    "CONTEXT_V3",
    "QUANTITATIVE_TYPES",
    "UNITS",
    "dtdl_unit",
    "encode_comment",
    "export_dtdl",
    "id_from_dtmi",
    "to_dtdl",
]
