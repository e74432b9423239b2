"""Shared by the ingest tests: two pumps with a bearing component, a mapping, payload helpers."""

from __future__ import annotations

from typing import Any

import orjson

from twinloop.core.protocols import RawMessage
from twinloop.ingest.mapping import Mapping, parse_mapping
from twinloop.twins.asset_type import AssetType

S = 1_000_000_000
T0 = 1_700_000_000 * S

TYPES = [
    AssetType(id="Bearing", channels=[{"name": "temperature", "unit": "degC", "min": -20, "max": 150}]),
    AssetType(id="Pump", components={"bearing": "Bearing"}, channels=[
        {"name": "flow", "unit": "m**3/h", "min": 0, "max": 600},
        {"name": "speed", "unit": "rpm", "min": 0, "max": 3600},
        {"name": "running", "type": "boolean"},
        {"name": "power_factor"},
    ]),
]
TWINS = {"p1": "Pump", "p2": "Pump"}
RULES: list[dict[str, Any]] = [
    {"name": "flat", "mqtt": "plant/{device}/telemetry", "format": "flat",
     "channels": {"bearing.temp_f": {"channel": "bearing.temperature", "unit": "degF"},
                  "flow_lps": {"channel": "flow", "unit": "L/s"},
                  "flow_raw": {"channel": "flow", "scale": 0.1, "offset": 1},
                  "debug.*": {"ignore": True}}},
    {"name": "sparkplug", "mqtt": "spBv1.0/g/DDATA/plant/{device}", "format": "sparkplug"},
    {"mqtt": "spBv1.0/g/+/plant/#", "ignore": True},
    {"name": "opc", "opcua": "ns=2;s={device}.{channel}", "format": "opcua"},
    {"name": "generic", "mqtt": "gen/{device}/{channel}", "format": "json",
     "json": {"ts": "t", "ts_unit": "ms", "value": "data.v"}},
    {"name": "receive-time", "mqtt": "rx/{device}", "format": "flat", "timestamp": "receive"},
]


def make_mapping(rules: list[dict[str, Any]] | None = None) -> Mapping:
    return parse_mapping({"rules": RULES if rules is None else rules})


def flat(device: str, seq: int | None, values: dict[str, Any], ts: int = T0, *, topic: str | None = None,
         received: int = T0, source: str = "mqtt") -> RawMessage:
    body: dict[str, Any] = {"device": device, "ts": ts, "values": values}
    if seq is not None:
        body["seq"] = seq
    return RawMessage(source, topic or f"plant/{device}/telemetry", orjson.dumps(body), received)
