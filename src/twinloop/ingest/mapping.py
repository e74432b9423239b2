"""The mapping file: which topic or node id, and which field of its payload, is which twin channel.

A mapping is data (YAML), compiled once into `Mapping`; topic lookups are cached, so a fleet of
10 k devices costs one regex search per new topic and a dict hit afterwards.

.. code-block:: yaml

    defaults:
      timestamp: device                             # or receive: stamp with the arrival time
      clock: {announced: twinloop/pump-station/clock}   # judge device time by the plant's clock
    rules:
      - name: flat telemetry
        mqtt: twinloop/pump-station/{device}/telemetry   # {name}: one named level; + and # as MQTT
        format: flat                                # flat | sparkplug | json | opcua | records
        twin: "{device}"                            # template over captures (the default)
        channels:                                   # per-channel overrides; keys may be globs
          bearing.temperature: {unit: degF}         # the device speaks degF: converted to the type's unit
          raw_flow: {channel: flow, scale: 0.1, offset: 0, max_rate: 50}
          "debug.*": {ignore: true}
      - opcua: ns=2;s={device}.{channel}            # one value per node
        format: opcua
      - mqtt: spBv1.0/twinloop/+/pump-station/#     # births, deaths: nothing to store
        ignore: true

``clock`` says whose clock judges a device timestamp (see `twinloop.ingest.clock`): ``wall`` (the
default: its arrival time on this machine, as for a real plant), or a mapping with ``announced``
(the topic, or OPC UA object node, on which a simulated or replayed plant announces its clock),
``max_future`` and ``max_age`` (durations such as ``5m``, ``400d``, or ``off``; by default the
runtime's). A rule's ``clock`` replaces the default one.

Rules are tried in file order; the first match wins. A topic no rule matches is rejected as
``unmapped`` (never dropped). ``{name}`` captures at least one character up to the next ``/``,
lazily, so ``{device}.{channel}`` splits ``pump-A1.bearing.temperature`` at the first dot.

>>> m = parse_mapping({"rules": [{"mqtt": "plant/{device}/telemetry", "format": "flat"}]})
>>> rule, caps = m.match("plant/pump-7/telemetry")
>>> rule.name, caps, rule.twin_for(caps, None)
('rules[0]', {'device': 'pump-7'}, 'pump-7')
>>> m.mqtt_filters()
['plant/+/telemetry']
"""

from __future__ import annotations

import fnmatch
import math
import os
import re
import string
from collections.abc import Iterable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from twinloop.core.errors import DeclarationError, UnitError
from twinloop.core.units import parse_unit
from twinloop.ingest.clock import OPCUA_CLOCK_VARIABLES, WALL, ClockPolicy, parse_duration_s

Format = Literal["flat", "sparkplug", "json", "opcua", "records"]
FORMATS: tuple[Format, ...] = ("flat", "sparkplug", "json", "opcua", "records")
Kind = Literal["mqtt", "opcua", "topic"]
TimestampPolicy = Literal["device", "receive"]
Dedupe = Literal["auto", "digest", "none"]

#: Topic of the built-in rule for canonical reading records (HTTP batches, CSV, replays):
#: ``{"readings": [{"twin_id", "channel", "ts", "value", "unit"?, "quality"?}, ...]}``.
RECORDS_TOPIC = "twinloop/ingest/records"

_CAPTURE = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
_CACHE_LIMIT = 200_000


@dataclass(frozen=True)
class ChannelOverride:
    """How one source channel differs from the asset type: name, unit, scale/offset, or ignored."""

    channel: str | None = None
    unit: str | None = None
    scale: float = 1.0
    offset: float = 0.0
    ignore: bool = False
    max_rate: float | None = None


@dataclass(frozen=True)
class JsonPaths:
    """Where a generic JSON payload keeps its fields (dotted paths, ``[n]`` for list items)."""

    ts: tuple[str | int, ...] | None = None
    ts_unit: Literal["ns", "us", "ms", "s", "iso"] = "ns"
    values: tuple[str | int, ...] | None = None
    value: tuple[str | int, ...] | None = None
    device: tuple[str | int, ...] | None = None
    seq: tuple[str | int, ...] | None = None
    quality: tuple[str | int, ...] | None = None


@dataclass(frozen=True)
class Rule:
    """One compiled mapping rule; see the module docstring for the fields."""

    index: int
    name: str
    kind: Kind
    pattern: str
    format: Format
    twin: str = "{device}"
    channel: str | None = None
    timestamp: TimestampPolicy = "device"
    dedupe: Dedupe = "auto"
    clock: ClockPolicy = WALL
    ignore: bool = False
    json: JsonPaths | None = None
    overrides: tuple[tuple[str, ChannelOverride], ...] = ()
    captures: tuple[str, ...] = ()
    regex: re.Pattern[str] = field(default=re.compile(""), repr=False, compare=False)

    def override(self, name: str) -> ChannelOverride | None:
        """The override for a source channel: an exact key first, then the first matching glob."""
        for key, ov in self.overrides:
            if key == name:
                return ov
        for key, ov in self.overrides:
            if _is_glob(key) and fnmatch.fnmatchcase(name, key):
                return ov
        return None

    def twin_for(self, captures: MappingABC[str, str], device: str | None) -> str | None:
        """The twin id from the template, or ``None`` when a field it needs is missing."""
        if self.twin == "{device}":
            return captures.get("device", device)
        env = dict(captures)
        if device is not None:
            env.setdefault("device", device)
        try:
            return self.twin.format_map(env)
        except (KeyError, IndexError, ValueError):
            return None


def _is_glob(key: str) -> bool:
    return any(c in key for c in "*?[")


class Mapping:
    """Compiled rules with a cached topic lookup; build one with `load_mapping`/`parse_mapping`."""

    def __init__(self, rules: Iterable[Rule], file: str | None = None) -> None:
        self.rules: tuple[Rule, ...] = tuple(rules)
        self.file = file
        self._cache: dict[str, tuple[Rule, dict[str, str]] | None] = {}

    def __repr__(self) -> str:
        return f"Mapping({len(self.rules)} rules from {self.file or '<data>'})"

    def match(self, topic: str) -> tuple[Rule, dict[str, str]] | None:
        """The first rule matching ``topic`` and its named captures, or ``None``."""
        try:
            return self._cache[topic]
        except KeyError:
            pass
        found = None
        for rule in self.rules:
            m = rule.regex.fullmatch(topic)
            if m is not None:
                found = (rule, m.groupdict())
                break
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()  # a bound, not an LRU: 200 k distinct topics is past any fleet
        self._cache[topic] = found
        return found

    def clocks(self) -> list[tuple[str, str]]:
        """``(kind, announced)`` of every plant clock the rules are judged by, in file order."""
        out = [(r.kind, r.clock.announced) for r in self.rules if r.clock.announced and not r.ignore]
        return list(dict.fromkeys(out))  # type: ignore[arg-type]

    def mqtt_filters(self) -> list[str]:
        """MQTT subscriptions covering every non-ignored ``mqtt`` rule (captures become ``+``).

        Announced clock topics come first: subscribed first, their retained announcement arrives
        before the first reading it judges.
        """
        out = [name for kind, name in self.clocks() if kind == "mqtt"]
        out += [_CAPTURE.sub("+", r.pattern) for r in self.rules if r.kind == "mqtt" and not r.ignore]
        return list(dict.fromkeys(out))

    def opcua_nodes(self, channels: MappingABC[str, Iterable[str]]) -> list[str]:
        """Concrete node ids of the ``opcua`` rules, expanded over ``{twin: channel names}``.

        Only ``{device}``/``{twin}`` and ``{channel}`` captures can be expanded; a node rule with
        other captures is skipped (subscribe to its nodes by hand).
        """
        out = [f"{name}.{v}" for kind, name in self.clocks() if kind == "opcua"
               for v in OPCUA_CLOCK_VARIABLES]
        for rule in self.rules:
            if rule.kind != "opcua" or rule.ignore or set(rule.captures) - {"device", "twin", "channel"}:
                continue
            for twin, names in channels.items():
                for ch in names if "channel" in rule.captures else [rule.channel or ""]:
                    node = rule.pattern.replace("{device}", twin).replace("{twin}", twin)
                    out.append(node.replace("{channel}", ch))
        return list(dict.fromkeys(out))


# --- parsing -------------------------------------------------------------------------------------
_RULE_KEYS = {"name", "mqtt", "opcua", "topic", "format", "twin", "channel", "timestamp", "dedupe",
              "clock", "ignore", "json", "channels"}
_CLOCK_KEYS = {"announced", "max_future", "max_age"}
_OVERRIDE_KEYS = {"channel", "unit", "scale", "offset", "ignore", "max_rate"}
_JSON_KEYS = {"ts", "ts_unit", "values", "value", "device", "seq", "quality"}


class _Parser:
    def __init__(self, file: str | None) -> None:
        self.file = file

    def error(self, message: str, path: str, hint: str | None = None) -> DeclarationError:
        return DeclarationError(message, file=self.file, path=path, hint=hint)

    def keys(self, data: Any, allowed: set[str], path: str) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise self.error(f"must be a mapping, got {type(data).__name__}", path)
        unknown = sorted(set(map(str, data)) - allowed)
        if unknown:
            raise self.error(f"unknown key {unknown[0]!r}", f"{path}.{unknown[0]}".lstrip("."),
                             hint="allowed: " + ", ".join(sorted(allowed)))
        return data

    def text(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"must be a non-empty string, got {value!r}", path)
        return value

    def number(self, value: Any, path: str) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.error(f"must be a finite number, got {value!r}", path)
        return float(value)

    def choice(self, value: Any, options: tuple[str, ...], path: str) -> Any:
        if value not in options:
            raise self.error(f"must be one of {', '.join(options)}, got {value!r}", path)
        return value

    def mapping(self, data: Any) -> Mapping:
        if data is None:
            data = {}
        data = self.keys(data, {"version", "defaults", "rules"}, "")
        if data.get("version", 1) != 1:
            raise self.error(f"unsupported version {data['version']!r}", "version", hint="use 1")
        defaults = self.keys(data.get("defaults") or {}, {"timestamp", "twin", "dedupe", "clock"},
                             "defaults")
        rules = data.get("rules", [])
        if not isinstance(rules, list):
            raise self.error("must be a list of rules", "rules")
        compiled = [self.rule(i, r, defaults) for i, r in enumerate(rules)]
        compiled.append(_records_rule(len(compiled)))
        return Mapping(compiled, self.file)

    def rule(self, i: int, data: Any, defaults: dict[str, Any]) -> Rule:
        path = f"rules[{i}]"
        data = self.keys(data, _RULE_KEYS, path)
        kinds = [k for k in ("mqtt", "opcua", "topic") if k in data]
        if len(kinds) != 1:
            raise self.error("needs exactly one of 'mqtt', 'opcua' or 'topic'", path)
        kind: Kind = kinds[0]
        pattern = self.text(data[kind], f"{path}.{kind}")
        regex, captures = self.pattern(pattern, kind, f"{path}.{kind}")
        ignore = data.get("ignore", False)
        if not isinstance(ignore, bool):
            raise self.error(f"must be true or false, got {ignore!r}", f"{path}.ignore")
        fmt = self.choice(data.get("format", "opcua" if kind == "opcua" else "flat"), FORMATS,
                          f"{path}.format")
        twin = self.text(data.get("twin", defaults.get("twin", "{device}")), f"{path}.twin")
        self.template(twin, captures, fmt, f"{path}.twin")
        channel = data.get("channel")
        if channel is not None:
            channel = self.text(channel, f"{path}.channel")
        if fmt == "opcua" and not ignore and channel is None and "channel" not in captures:
            raise self.error("an opcua rule needs a {channel} capture or a 'channel'", path)
        json_paths = None
        if fmt == "json":
            json_paths = self.json(data.get("json"), f"{path}.json")
            if (json_paths.value is not None and channel is None and "channel" not in captures
                    and not ignore):
                raise self.error("a single-value json rule needs a {channel} capture or a 'channel'",
                                 path)
        elif "json" in data:
            raise self.error("only a rule with format 'json' takes json paths", f"{path}.json")
        channels = data.get("channels") or {}
        if not isinstance(channels, dict):
            raise self.error("must map source channel names to overrides", f"{path}.channels")
        overrides = tuple(
            (self.text(k, f"{path}.channels"), self.override(v, f"{path}.channels.{k}"))
            for k, v in channels.items()
        )
        return Rule(
            index=i, name=str(data.get("name") or path), kind=kind, pattern=pattern, format=fmt,
            twin=twin, channel=channel,
            timestamp=self.choice(data.get("timestamp", defaults.get("timestamp", "device")),
                                  ("device", "receive"), f"{path}.timestamp"),
            dedupe=self.choice(data.get("dedupe", defaults.get("dedupe", "auto")),
                               ("auto", "digest", "none"), f"{path}.dedupe"),
            clock=self.clock(data["clock"] if "clock" in data else defaults.get("clock"), kind,
                             f"{path}.clock" if "clock" in data else "defaults.clock"),
            ignore=ignore, json=json_paths, overrides=overrides, captures=captures, regex=regex,
        )

    def clock(self, data: Any, kind: Kind, path: str) -> ClockPolicy:
        if data is None or data == "wall":
            return WALL
        if not isinstance(data, dict):
            raise self.error(f"must be 'wall' or a mapping, got {data!r}", path,
                             hint="e.g. {announced: twinloop/<plant>/clock} or {max_future: 400d}")
        data = self.keys(data, _CLOCK_KEYS, path)
        announced = data.get("announced")
        if announced is not None:
            announced = self.text(announced, f"{path}.announced")
            if kind == "mqtt" and ("+" in announced or "#" in announced):
                raise self.error(f"the clock topic {announced!r} must be one topic, not a filter",
                                 f"{path}.announced")
        return ClockPolicy(announced, self.tolerance(data.get("max_future"), f"{path}.max_future"),
                           self.tolerance(data.get("max_age"), f"{path}.max_age"))

    def tolerance(self, value: Any, path: str) -> float | None:
        if value is None:
            return None
        if value is False or (isinstance(value, str) and value.strip().lower() in ("off", "none")):
            return math.inf
        try:
            return parse_duration_s(value)
        except ValueError:
            raise self.error(f"must be a duration or off, got {value!r}", path,
                             hint="write e.g. 300, 5m, 400d or off") from None

    def pattern(self, pattern: str, kind: Kind, path: str) -> tuple[re.Pattern[str], tuple[str, ...]]:
        out, captures, pos = [], [], 0
        for m in _CAPTURE.finditer(pattern):
            out.append(self.literal(pattern[pos:m.start()], kind, path))
            name = m.group(1)
            if name in captures:
                raise self.error(f"capture {{{name}}} appears twice in {pattern!r}", path)
            captures.append(name)
            out.append(f"(?P<{name}>[^/]+?)")
            pos = m.end()
        out.append(self.literal(pattern[pos:], kind, path))
        if any(c in "".join(_CAPTURE.split(pattern)[::2]) for c in "{}"):
            raise self.error(f"bad capture in {pattern!r}", path,
                             hint="captures are {name} with letters, digits and _")
        return re.compile("".join(out)), tuple(captures)

    def literal(self, text: str, kind: Kind, path: str) -> str:
        if kind != "mqtt":
            return re.escape(text)
        parts = []
        levels = text.split("/")
        for j, level in enumerate(levels):
            if level == "+":
                parts.append("[^/]+")
            elif level == "#":
                if j != len(levels) - 1:
                    raise self.error("'#' must be the last level of an MQTT pattern", path)
                parts.append(".*")
            elif "+" in level or "#" in level:
                raise self.error(f"'+' and '#' must fill a whole level, not {level!r}", path)
            else:
                parts.append(re.escape(level))
        if len(parts) > 1 and parts[-1] == ".*":  # 'a/#' matches 'a' too, as in MQTT
            return "/".join(parts[:-1]) + "(?:/.*)?"
        return "/".join(parts)

    def template(self, twin: str, captures: tuple[str, ...], fmt: str, path: str) -> None:
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(twin) if f is not None}
        except ValueError as err:
            raise self.error(f"bad template {twin!r}: {err}", path) from None
        known = set(captures) | {"device"}
        if fields - known:
            raise self.error(f"template {twin!r} uses {sorted(fields - known)[0]!r}, which the pattern "
                             "does not capture", path, hint=f"captures: {', '.join(captures) or 'none'}")
        if "device" in fields and "device" not in captures and fmt in ("opcua",):
            raise self.error(f"template {twin!r} needs a {{device}} capture: {fmt} payloads name no "
                             "device", path)

    def override(self, data: Any, path: str) -> ChannelOverride:
        data = self.keys(data, _OVERRIDE_KEYS, path)
        unit = data.get("unit")
        if unit is not None:
            try:
                parse_unit(self.text(unit, f"{path}.unit"))
            except UnitError as err:
                raise self.error(err.message, f"{path}.unit", hint=err.hint) from None
        max_rate = data.get("max_rate")
        if max_rate is not None and self.number(max_rate, f"{path}.max_rate") <= 0:
            raise self.error("must be positive", f"{path}.max_rate")
        ignore = data.get("ignore", False)
        if not isinstance(ignore, bool):
            raise self.error(f"must be true or false, got {ignore!r}", f"{path}.ignore")
        scale = self.number(data.get("scale", 1.0), f"{path}.scale")
        if scale == 0:
            raise self.error("must not be 0", f"{path}.scale")
        return ChannelOverride(
            channel=None if data.get("channel") is None else self.text(data["channel"], f"{path}.channel"),
            unit=unit, scale=scale, offset=self.number(data.get("offset", 0.0), f"{path}.offset"),
            ignore=ignore, max_rate=None if max_rate is None else float(max_rate),
        )

    def json(self, data: Any, path: str) -> JsonPaths:
        data = self.keys(data or {}, _JSON_KEYS, path)
        if ("values" in data) == ("value" in data):
            raise self.error("needs exactly one of 'values' (an object of channels) or 'value'", path)
        paths = {k: self.json_path(v, f"{path}.{k}") for k, v in data.items() if k != "ts_unit"}
        unit = self.choice(data.get("ts_unit", "ns"), ("ns", "us", "ms", "s", "iso"), f"{path}.ts_unit")
        return JsonPaths(ts_unit=unit, **paths)

    def json_path(self, value: Any, path: str) -> tuple[str | int, ...]:
        text = self.text(value, path).strip()
        text = text[2:] if text.startswith("$.") else text.lstrip("$")
        out: list[str | int] = []
        for part in re.split(r"\.(?![^\[]*\])", text):
            m = re.fullmatch(r"([^\[\]]*)((?:\[\d+\])*)", part)
            if m is None or (not m.group(1) and not m.group(2)):
                raise self.error(f"bad JSON path {value!r}", path, hint="use a.b[0].c")
            if m.group(1):
                out.append(m.group(1))
            out.extend(int(n) for n in re.findall(r"\[(\d+)\]", m.group(2)))
        return tuple(out)


def _records_rule(index: int) -> Rule:
    regex = re.compile(re.escape(RECORDS_TOPIC))
    return Rule(index=index, name="built-in records", kind="topic", pattern=RECORDS_TOPIC,
                format="records", twin="{device}", regex=regex)


def parse_mapping(data: Any, file: str | None = None) -> Mapping:
    """Compile mapping data (as loaded from YAML); errors name ``file`` and the path inside it."""
    return _Parser(file).mapping(data)


def load_mapping(path: str | os.PathLike[str]) -> Mapping:
    """Read and compile a mapping YAML file."""
    file = os.fspath(path)
    try:
        with open(file, encoding="utf-8") as fh:
            data = yaml.safe_load(fh)
    except OSError as err:
        raise DeclarationError(f"cannot read the mapping file: {err.strerror}", file=file) from err
    except yaml.YAMLError as err:
        raise DeclarationError(f"not valid YAML: {err}", file=file) from err
    return parse_mapping(data, file)


__all__ = [
    "FORMATS",
    "RECORDS_TOPIC",
    "ChannelOverride",
    "Format",
    "JsonPaths",
    "Mapping",
    "Rule",
    "load_mapping",
    "parse_mapping",
]
