"""Payload decoders: JSON bytes of one message -> a `Decoded` (raw names, raw values, times).

One decoder per mapping format; each does only what has to happen per message (parse, pick the
fields, extend lists). Values stay raw Python objects here: type checks, conversion and
validation run later on numpy arrays of the whole batch. A payload that cannot be read raises
`PayloadError` with a reason code; the normalizer turns it into a `Rejected`, it never escapes.

Payload formats (``ts`` in epoch ns unless said otherwise):

- ``flat`` (the simulator's): ``{"device", "type", "seq", "ts", "values": {channel: value}}``, or
  its multi-sample form ``{"device", "type", "seq", "ts": [t0, t1, …], "values": {channel: [v0, v1, …]}}``
  (several samples of one device in one message; ``null`` is a dropout: no reading)
- ``sparkplug`` (the simulator's JSON Sparkplug-B): ``{"timestamp" (ms), "seq" (0-255), "metrics":
  [{"name", "value", "timestamp" (ms)}], "properties": {"seq": unbounded}}``
- ``opcua`` (what an OPC UA source puts in `RawMessage.payload` for one data change):
  ``{"value": v, "ts": source ns, "server_ts": ns?, "status": "Good"|"Uncertain…"|"Bad…"|code}``
- ``json``: any object; the rule's `JsonPaths` say where ts, values or value, device, seq are
- ``records`` (canonical, for HTTP and files): ``{"readings": [{"twin_id", "channel", "ts" (ns or
  ISO 8601), "value", "unit"?, "quality"?}]}`` or the bare list

>>> d = decode_payload(b'{"device":"p1","seq":3,"ts":5,"values":{"flow":1.5}}', FLAT, {}, "receive")
>>> d.device, d.seq, d.names, d.values
('p1', 3, ('flow',), [1.5])
>>> d = decode_payload(b'{"device":"p1","seq":4,"ts":[5,6],"values":{"flow":[1.5,null],"rpm":[9,8]}}',
...                    FLAT, {}, "device")
>>> d.names, d.repeats, d.values, d.item_ts, d.item_index
(('flow', 'rpm'), [1, 2], [1.5, 9, 8], [5, 5, 6], [0, 0, 1])
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from twinloop.core.errors import ValidationError
from twinloop.core.readings import Quality
from twinloop.ingest.mapping import JsonPaths, Rule, TimestampPolicy

try:  # orjson parses ~3x faster; the stdlib parser is the fallback and reads NaN/Infinity too
    import orjson

    _fast_loads: Callable[[bytes], Any] | None = orjson.loads
except ImportError:  # pragma: no cover - orjson is a declared dependency
    _fast_loads = None


class PayloadError(ValidationError):
    """A payload (or one item of it) cannot be read; ``reason`` is a `Rejected` reason code."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class Decoded:
    """One message's readings before conversion: parallel lists, per-item fields optional."""

    __slots__ = ("device", "item_bad", "item_index", "item_quality", "item_ts", "item_twins",
                 "item_units", "names", "quality", "repeats", "seq", "ts_ns", "values")

    def __init__(self, device: str | None, seq: int | None, ts_ns: int | None,
                 names: tuple[str, ...], values: list[Any], quality: int = 0) -> None:
        self.device = device
        self.seq = seq
        self.ts_ns = ts_ns
        self.names = names
        self.values = values
        self.quality = quality
        self.item_ts: list[int] | None = None
        self.item_quality: list[int] | None = None
        self.item_units: list[str | None] | None = None
        self.item_twins: list[str] | None = None
        self.item_bad: list[tuple[str, str] | None] | None = None
        # multi-sample payloads: ``names`` are distinct and name i holds ``repeats[i]`` values in a
        # row; ``item_index`` is each value's sample index (None: 0, 1, … within its name)
        self.repeats: list[int] | None = None
        self.item_index: list[int] | None = None


def loads(payload: bytes) -> Any:
    """Parse JSON; `PayloadError` ("malformed") when it is not."""
    if _fast_loads is not None:
        try:
            return _fast_loads(payload)
        except ValueError:
            pass  # NaN, Infinity, huge integers: valid for the stdlib parser
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError, RecursionError) as err:
        raise PayloadError("malformed", f"payload is not JSON: {err}") from None


def _obj(obj: Any, what: str) -> dict[str, Any]:
    if type(obj) is not dict:
        raise PayloadError("malformed", f"{what} payload must be a JSON object, got {type(obj).__name__}")
    return obj


def _int(value: Any, what: str, reason: str = "malformed") -> int:
    if type(value) is int:
        return value
    if type(value) is float and math.isfinite(value) and abs(value) < 9.2e18:
        return int(value)
    raise PayloadError(reason, f"{what} must be an integer, got {value!r:.60}")


def _seq(value: Any) -> int | None:
    if value is None:
        return None
    seq = _int(value, '"seq"')
    if seq < 0:
        raise PayloadError("malformed", f'"seq" must not be negative, got {seq}')
    return seq


def _device(value: Any) -> str | None:
    if value is None or type(value) is str:
        return value
    raise PayloadError("malformed", f'"device" must be a string, got {value!r:.60}')


_SCALE = {"ns": 1, "us": 1_000, "ms": 1_000_000, "s": 1_000_000_000}


def parse_ts(value: Any, unit: str = "ns") -> int:
    """Epoch ns from a number in ``unit`` or an ISO 8601 string (naive = UTC); else "ts_invalid"."""
    if type(value) is str:
        text = value.strip()
        if re.fullmatch(r"-?\d+", text) and unit != "iso":
            return _int(int(text), '"ts"', "ts_invalid") * _SCALE[unit]
        try:
            when = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise PayloadError("ts_invalid", f"timestamp {value!r:.60} is not ISO 8601") from None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        delta = when - datetime(1970, 1, 1, tzinfo=UTC)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1_000
    if unit == "iso":
        raise PayloadError("ts_invalid", f"timestamp must be an ISO 8601 string, got {value!r:.60}")
    if type(value) is float and math.isfinite(value) and abs(value * _SCALE[unit]) < 9.2e18:
        return int(round(value * _SCALE[unit]))
    ts = _int(value, "timestamp", "ts_invalid") * _SCALE[unit]
    if abs(ts) >= 2**63:
        raise PayloadError("ts_invalid", f"timestamp {value!r:.60} is out of range")
    return ts


def _quality(value: Any) -> int:
    if value is None:
        return int(Quality.GOOD)
    if type(value) is int and 0 <= value <= max(Quality):
        return value
    if type(value) is str and value.upper() in Quality.__members__:
        return int(Quality[value.upper()])
    raise PayloadError("malformed",
                       f"quality must be 0-3 or GOOD/UNCERTAIN/BAD/SUBSTITUTED, got {value!r:.60}")


def _opc_status(value: Any) -> int:
    """OPC UA status (a code or its name) -> Quality: the top two bits say good/uncertain/bad."""
    if value is None:
        return int(Quality.GOOD)
    if type(value) is int:
        top = (value >> 30) & 0b11
        return int(Quality.GOOD if top == 0 else Quality.UNCERTAIN if top == 1 else Quality.BAD)
    if type(value) is str:
        text = value.lower()
        return int(Quality.BAD if text.startswith("bad") else
                   Quality.UNCERTAIN if text.startswith("uncertain") else Quality.GOOD)
    raise PayloadError("malformed", f'"status" must be an OPC UA status code or name, got {value!r:.60}')


# --- decoders --------------------------------------------------------------------------------------
def _flat(obj: Any, rule: Rule, caps: dict[str, str], ts_policy: TimestampPolicy) -> Decoded:
    obj = _obj(obj, "flat")
    values = obj.get("values")
    if type(values) is not dict:
        raise PayloadError("malformed", 'flat payload needs "values": an object of channel -> value')
    raw_ts = obj.get("ts")
    if type(raw_ts) is list:
        return _flat_samples(obj, raw_ts, values, ts_policy)
    ts = parse_ts(raw_ts) if ts_policy == "device" and "ts" in obj else None
    if ts is None and ts_policy == "device":
        raise PayloadError("ts_invalid", 'flat payload has no "ts" (and the rule takes device time)')
    return Decoded(_device(obj.get("device")), _seq(obj.get("seq")), ts, tuple(values),
                   list(values.values()))


def _flat_samples(obj: dict[str, Any], raw_ts: list[Any], values: dict[str, Any],
                  ts_policy: TimestampPolicy) -> Decoded:
    """The multi-sample flat form: per sample a time, per channel a list as long as ``ts``.

    Work per message is per channel (list extends), never per value; ``null`` values (dropouts)
    take a slower path that drops them.
    """
    k = len(raw_ts)
    if k == 0:
        raise PayloadError("malformed", 'multi-sample flat payload has an empty "ts" list')
    names = tuple(values)
    flat: list[Any] = []
    repeats: list[int] = []
    index: list[int] | None = None
    for name in names:
        column = values[name]
        if type(column) is not list or len(column) != k:
            got = f"a list of {len(column)}" if type(column) is list else type(column).__name__
            raise PayloadError("malformed", f'"values.{name}" must be a list of {k} values, one per '
                               f'"ts", got {got}')
        if None in column:  # dropouts: keep the sample index of what is left
            if index is None:
                index = [i for r in repeats for i in range(r)]
            kept = [i for i, v in enumerate(column) if v is not None]
            flat.extend(column[i] for i in kept)
            index.extend(kept)
            repeats.append(len(kept))
        else:
            flat.extend(column)
            repeats.append(k)
            if index is not None:
                index.extend(range(k))
    d = Decoded(_device(obj.get("device")), _seq(obj.get("seq")), None, names, flat)
    d.repeats = repeats
    d.item_index = index
    if ts_policy == "device":
        ts = [parse_ts(t) for t in raw_ts]
        d.ts_ns = max(ts)
        d.item_ts = ts * len(names) if index is None else [ts[i] for i in index]
    return d


def _sparkplug(obj: Any, rule: Rule, caps: dict[str, str], ts_policy: TimestampPolicy) -> Decoded:
    obj = _obj(obj, "sparkplug")
    metrics = obj.get("metrics", [])
    if type(metrics) is not list:
        raise PayloadError("malformed", 'sparkplug "metrics" must be a list')
    props = obj.get("properties")
    seq = _seq(props.get("seq")) if type(props) is dict else None  # 0-255 wraps: not a key
    ts = None
    if ts_policy == "device":
        if "timestamp" not in obj:
            raise PayloadError("ts_invalid", 'sparkplug payload has no "timestamp"')
        ts = parse_ts(obj["timestamp"], "ms")
    names, values, item_ts, bad = [], [], [], []
    for i, m in enumerate(metrics):
        if type(m) is not dict or type(m.get("name")) is not str:
            names.append(f"metrics[{i}]")
            values.append(None)
            item_ts.append(ts or 0)
            bad.append(("malformed", f'metrics[{i}] needs a string "name"'))
            continue
        names.append(m["name"])
        values.append(m.get("value"))
        problem = None
        t = ts
        if ts is not None and m.get("timestamp") is not None:
            try:
                t = parse_ts(m["timestamp"], "ms")
            except PayloadError as err:
                problem = (err.reason, f"metric {m['name']!r}: {err.message}")
        item_ts.append(t or 0)
        bad.append(problem)
    d = Decoded(caps.get("device"), seq, ts, tuple(names), values)
    if ts is not None:
        d.item_ts = item_ts
    if any(b is not None for b in bad):
        d.item_bad = bad
    return d


def _opcua(obj: Any, rule: Rule, caps: dict[str, str], ts_policy: TimestampPolicy) -> Decoded:
    obj = _obj(obj, "opcua")
    if "value" not in obj:
        raise PayloadError("malformed", 'opcua payload needs "value"')
    ts = None
    if ts_policy == "device":
        raw = obj.get("ts") if obj.get("ts") is not None else obj.get("server_ts")
        if raw is None:
            raise PayloadError("ts_invalid", 'opcua payload has neither "ts" nor "server_ts"')
        ts = parse_ts(raw)
    channel = caps.get("channel", rule.channel or "")
    return Decoded(caps.get("device"), None, ts, (channel,), [obj["value"]], _opc_status(obj.get("status")))


def _get(obj: Any, path: tuple[str | int, ...], what: str) -> Any:
    for key in path:
        try:
            obj = obj[key]
        except (KeyError, IndexError, TypeError):
            raise PayloadError("malformed", f"payload has no {what} at {_show(path)}") from None
    return obj


def _show(path: tuple[str | int, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def _json(obj: Any, rule: Rule, caps: dict[str, str], ts_policy: TimestampPolicy) -> Decoded:
    paths = rule.json or JsonPaths()
    ts = None
    if ts_policy == "device":
        if paths.ts is None:
            raise PayloadError("ts_invalid", "the rule takes device time but names no ts path")
        ts = parse_ts(_get(obj, paths.ts, "timestamp"), paths.ts_unit)
    device = caps.get("device") or (_device(_get(obj, paths.device, "device")) if paths.device else None)
    seq = _seq(_get(obj, paths.seq, "seq")) if paths.seq else None
    quality = _quality(_get(obj, paths.quality, "quality")) if paths.quality else 0
    if paths.values is not None:
        values = _get(obj, paths.values, "values")
        if type(values) is not dict:
            raise PayloadError("malformed", f"{_show(paths.values)} must be an object of channel -> value")
        return Decoded(device, seq, ts, tuple(values), list(values.values()), quality)
    value = _get(obj, paths.value or (), "value")
    return Decoded(device, seq, ts, (caps.get("channel", rule.channel or ""),), [value], quality)


def _records(obj: Any, rule: Rule, caps: dict[str, str], ts_policy: TimestampPolicy) -> Decoded:
    rows = obj.get("readings") if type(obj) is dict else obj
    if type(rows) is not list:
        raise PayloadError("malformed", 'records payload must be {"readings": [...]} or a list of readings')
    names, values, twins, units, ts, quality, bad = [], [], [], [], [], [], []
    for i, row in enumerate(rows):
        problem = None
        twin, channel, t, unit, q = "", f"readings[{i}]", 0, None, 0
        try:
            if type(row) is not dict:
                raise PayloadError("malformed", f"readings[{i}] must be an object")
            twin, channel = row.get("twin_id"), row.get("channel")
            if type(twin) is not str or type(channel) is not str or not twin or not channel:
                raise PayloadError("malformed", f'readings[{i}] needs string "twin_id" and "channel"')
            unit = row.get("unit")
            if unit is not None and type(unit) is not str:
                raise PayloadError("malformed", f'readings[{i}]: "unit" must be a string')
            q = _quality(row.get("quality"))
            if "value" not in row:
                raise PayloadError("malformed", f'readings[{i}] has no "value"')
            if ts_policy == "device":
                if row.get("ts") is None:
                    raise PayloadError("ts_invalid", f'readings[{i}] has no "ts"')
                t = parse_ts(row["ts"])
        except PayloadError as err:
            problem = (err.reason, err.message)
            twin = twin if type(twin) is str else ""
            channel = channel if type(channel) is str and channel else f"readings[{i}]"
        names.append(channel)
        values.append(row.get("value") if type(row) is dict else None)
        twins.append(twin)
        units.append(unit)
        ts.append(t)
        quality.append(q)
        bad.append(problem)
    d = Decoded(None, None, None, tuple(names), values)
    d.item_twins, d.item_units, d.item_quality = twins, units, quality
    if ts_policy == "device":
        d.item_ts = ts
    if any(b is not None for b in bad):
        d.item_bad = bad
    return d


DECODERS: dict[str, Callable[[Any, Rule, dict[str, str], TimestampPolicy], Decoded]] = {
    "flat": _flat, "sparkplug": _sparkplug, "opcua": _opcua, "json": _json, "records": _records,
}


def decode_payload(payload: bytes, rule: Rule, caps: dict[str, str], ts_policy: TimestampPolicy) -> Decoded:
    """Parse and decode one payload with its rule's format; `PayloadError` when it cannot be read."""
    return DECODERS[rule.format](loads(payload), rule, caps, ts_policy)


FLAT = Rule(index=0, name="flat", kind="mqtt", pattern="", format="flat")

__all__ = ["DECODERS", "Decoded", "PayloadError", "decode_payload", "loads", "parse_ts"]
