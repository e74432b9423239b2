"""Plant files: the twins of one site and the relationships between them, declared in YAML.

A plant file names its asset-type folders and lists twins and relationships; ``for_each``
repeats an entry so a fleet of pumps is one entry, not twelve::

    plant: pump-station                 # the plant's name (an id)
    description: Riverside raw water    # optional
    types: [types/]                     # asset-type files or folders, relative to this file
    twins:
      - id: station-1
        type: PumpStation
      - id: pump-{line}{n}
        type: Pump
        for_each: {line: [A, B, C], n: {from: 1, to: 4}}
        attributes: {line: "{line}", serial: "SN-{line}{n:02d}"}   # also: reported, desired
        relationships: {partOf: "line-{line}"}   # edges from this twin: name -> target(s)
    relationships:
      - {source: "tank-{line}", name: feeds, target: "pump-{line}{n}",
         for_each: {line: [A, B, C], n: [1, 2, 3, 4]}, properties: {}}

``for_each`` maps variables to a value, a list, or an inclusive ``{from, to, step}`` range, and
repeats the entry for every combination (the last variable varies fastest). A *list* of such
mappings chains their combinations, which pairs values::

    for_each: [{line: [A, B], mcc: mcc-1}, {line: C, mcc: mcc-2}]

``{name}`` or ``{name:spec}`` (a Python format spec: ``{n:03d}``) may appear in any string value;
``{{`` and ``}}`` are literal braces. A value that is exactly one placeholder keeps the bound
value's type (``rated_flow: "{flow}"`` stays a number); YAML dates become ISO strings.

Attributes are *not* checked against asset types here; the type registry does that when the twins
are created. Every mistake raises `DeclarationError` naming the file, the path
(``twins[3].for_each``) and, from `load_plant`, the line.

>>> plant = parse_plant({"plant": "demo", "twins": [
...     {"id": "pump-{n}", "type": "Pump", "for_each": {"n": {"from": 1, "to": 3}},
...      "relationships": {"feeds": "tank-1"}},
...     {"id": "tank-1", "type": "Tank"}]})
>>> [t.id for t in plant.twins]
['pump-1', 'pump-2', 'pump-3', 'tank-1']
>>> len(plant.graph().upstream("tank-1"))
3
"""

from __future__ import annotations

import datetime as dt
import itertools
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from twinloop.core.errors import DeclarationError, ValidationError
from twinloop.core.ids import validate_id
from twinloop.twins.asset_type import Analytics
from twinloop.twins.graph import TwinGraph
from twinloop.twins.twin import Relationship, Twin

#: The most twins plus relationships one plant file may expand to (guards against typos in ranges).
MAX_EXPANSION = 1_000_000

_TOP_KEYS = {"plant", "description", "types", "twins", "relationships", "analytics"}
_TWIN_KEYS = {"id", "type", "attributes", "reported", "desired", "for_each", "relationships"}
_REL_KEYS = {"source", "name", "target", "properties", "for_each"}
_RANGE_KEYS = {"from", "to", "step"}
_VAR = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_TOKEN = re.compile(r"\{\{|\}\}|\{[^{}]*\}|[{}]")
_PATH_PART = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")
_MAX_NESTING = 32
_MAX_VALUES = 100_000  # per attributes/reported/desired/properties mapping, aliases unrolled
_SCALARS = (str, int, float, bool)
_MAX_FORMAT_WIDTH = 64
_PathLike = str | os.PathLike[str]


@dataclass(frozen=True)
class Plant:
    """One plant file, expanded: its twins and relationships, ready to load into a graph."""

    name: str
    type_paths: list[Path]
    twins: list[Twin]
    relationships: list[Relationship]
    description: str = ""
    #: per asset type, analytics declared by the plant over the type files' own (see `Analytics`)
    analytics: dict[str, Analytics] = field(default_factory=dict)

    def graph(self) -> TwinGraph:
        """A fresh `TwinGraph` holding this plant's twins and relationships."""
        return TwinGraph(self.twins, self.relationships)


def load_plant(path: str | os.PathLike[str]) -> Plant:
    """Read and expand a plant file; asset-type paths resolve against the file's folder."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DeclarationError(
            f"cannot read plant file: {err}", file=str(file), hint="check the path"
        ) from err
    node, data = _read_yaml(text, str(file))
    try:
        return parse_plant(data, file=str(file), base_dir=file.parent)
    except DeclarationError as err:
        line = _line_of(node, err.path)
        if line is None:
            raise
        raise DeclarationError(
            f"{err.reason} (line {line})", file=err.file, path=err.path, hint=err.hint
        ) from err


def parse_plant(
    data: Any, file: str | os.PathLike[str] | None = None, base_dir: _PathLike | None = None
) -> Plant:
    """Expand already-parsed plant data; ``file`` only labels errors, ``base_dir`` anchors types."""
    return _Parser(str(file) if file is not None else None).plant(data, base_dir)


class _Parser:
    """One expansion run; remembers where each twin and edge came from for error messages."""

    def __init__(self, file: str | None) -> None:
        self.file = file
        self.count = 0

    def error(
        self, path: str, message: str, hint: str | None = None, env: Any = None
    ) -> DeclarationError:
        if env:
            message += " (for " + ", ".join(f"{k}={v!r}" for k, v in env.items()) + ")"
        return DeclarationError(message, file=self.file, path=path, hint=hint)

    def plant(self, data: Any, base_dir: _PathLike | None) -> Plant:
        if not isinstance(data, Mapping):
            raise self.error("", f"a plant file must be a mapping, not {_kind(data)}",
                             hint="start with 'plant: <name>'")
        self.keys(data, _TOP_KEYS, "", required=("plant",))
        name = self.ident(data["plant"], "plant", "plant name")
        description = data.get("description", "")
        if not isinstance(description, str):
            raise self.error("description", "must be a string")
        base = Path(base_dir) if base_dir is not None else (
            Path(self.file).parent if self.file is not None else None
        )
        types = data.get("types", [])
        types = [types] if isinstance(types, str) else [] if types is None else types
        if not isinstance(types, list):
            raise self.error("types", "must be a path or a list of paths")
        paths = []
        for i, p in enumerate(types):
            if not isinstance(p, str) or not p.strip() or "\0" in p:
                raise self.error(f"types[{i}]", f"{p!r} is not a path")
            paths.append(base / p if base is not None else Path(p))
        twins: dict[str, tuple[Twin, str]] = {}
        edges: dict[tuple[str, str, str], tuple[Relationship, str, dict[str, Any]]] = {}
        for i, entry in enumerate(self.entries(data, "twins")):
            self.twin_entry(entry, f"twins[{i}]", twins, edges)
        for i, entry in enumerate(self.entries(data, "relationships")):
            self.rel_entry(entry, f"relationships[{i}]", edges)
        for rel, path, env in edges.values():
            for end, label in ((rel.source, "source"), (rel.target, "target")):
                if end not in twins:
                    raise self.error(path, f"{label} {end!r} is not a declared twin",
                                     hint="declare it under 'twins' or fix the id", env=env)
        return Plant(name, paths, [t for t, _ in twins.values()],
                     [rel for rel, _, _ in edges.values()], description, self.analytics(data))

    def analytics(self, data: Mapping[str, Any]) -> dict[str, Analytics]:
        """``analytics: {TypeId: {estimator: …, alerts: …, prognoser: …}}``, checked."""
        raw = data.get("analytics") or {}
        if not isinstance(raw, Mapping):
            raise self.error("analytics", f"must map asset type ids to sections, not {_kind(raw)}",
                             hint="e.g. analytics: {Pump: {alerts: {operating: 'speed > 100 for 10m'}}}")
        out: dict[str, Analytics] = {}
        for type_id, sections in raw.items():
            try:
                out[str(type_id)] = Analytics.model_validate(sections)
            except PydanticValidationError as err:
                problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                                     for e in err.errors())
                raise self.error(f"analytics.{type_id}", problems,
                                 hint="sections: estimator, alerts, prognoser (each a mapping)") from None
        return out

    def entries(self, data: Mapping[str, Any], key: str) -> list[Any]:
        entries = data.get(key)
        if entries is None:
            return []
        if not isinstance(entries, list):
            raise self.error(key, f"must be a list of entries, not {_kind(entries)}")
        return entries

    def twin_entry(self, entry: Any, path: str, twins: dict[str, tuple[Twin, str]],
                   edges: dict[tuple[str, str, str], Any]) -> None:
        self.keys(entry, _TWIN_KEYS, path, required=("id", "type"))
        sections = {s: self.section(entry, s, path) for s in ("attributes", "reported", "desired")}
        links = self.section(entry, "relationships", path)
        for env in self.bindings(entry.get("for_each"), f"{path}.for_each"):
            twin_id = self.ident(self.text(entry["id"], env, f"{path}.id"), f"{path}.id", "twin id",
                                 env)
            type_id = self.text(entry["type"], env, f"{path}.type")
            if not type_id.strip():
                raise self.error(f"{path}.type", "must name an asset type", env=env)
            values = {s: self.value(v, env, f"{path}.{s}") for s, v in sections.items()}
            if twin_id in twins:
                raise self.error(f"{path}.id", f"duplicate twin id {twin_id!r} (first declared at "
                                 f"{twins[twin_id][1]})", env=env)
            self.counted(path)
            twins[twin_id] = (Twin(twin_id, type_id, **values), path)
            for rel_name, targets in links.items():
                at = f"{path}.relationships.{rel_name}"
                many = targets if isinstance(targets, list) else [targets]
                for j, target in enumerate(many):
                    where = f"{at}[{j}]" if isinstance(targets, list) else at
                    self.edge(twin_id, rel_name, self.text(target, env, where), {}, where, env,
                              edges)

    def rel_entry(self, entry: Any, path: str, edges: dict[tuple[str, str, str], Any]) -> None:
        self.keys(entry, _REL_KEYS, path, required=("source", "name", "target"))
        props = self.section(entry, "properties", path)
        for env in self.bindings(entry.get("for_each"), f"{path}.for_each"):
            source = self.text(entry["source"], env, f"{path}.source")
            name = self.text(entry["name"], env, f"{path}.name")
            target = self.text(entry["target"], env, f"{path}.target")
            values = self.value(props, env, f"{path}.properties")
            self.edge(source, name, target, values, path, env, edges)

    def edge(self, source: str, name: str, target: str, props: dict[str, Any], path: str,
             env: dict[str, Any], edges: dict[tuple[str, str, str], Any]) -> None:
        try:
            rel = Relationship(source, name, target, props)
        except ValidationError as err:
            raise self.error(path, err.message, env=env) from err
        if source == target:
            raise self.error(path, f"{source!r} {name} itself", hint="self-loops are not allowed",
                             env=env)
        if rel.key in edges:
            raise self.error(path, f"duplicate relationship {source} --{name}--> {target} (first "
                             f"declared at {edges[rel.key][1]})", env=env)
        self.counted(path)
        edges[rel.key] = (rel, path, env)

    # --- pieces ---------------------------------------------------------------------------
    def keys(self, entry: Any, allowed: set[str], path: str, required: tuple[str, ...]) -> None:
        if not isinstance(entry, Mapping):
            raise self.error(path, f"must be a mapping, not {_kind(entry)}")
        unknown = [k for k in entry if k not in allowed]
        if unknown:
            raise self.error(path, f"unknown key(s) {', '.join(sorted(map(repr, unknown)))}",
                             hint=f"allowed: {', '.join(sorted(allowed))}")
        for key in required:
            if entry.get(key) is None:
                raise self.error(f"{path}.{key}" if path else key, "is required")

    def section(self, entry: Mapping[str, Any], key: str, path: str) -> dict[str, Any]:
        value = entry.get(key)
        if value is None:
            return {}
        if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
            raise self.error(f"{path}.{key}", "must be a mapping with string keys")
        if _size(value, {}) > _MAX_VALUES:
            raise self.error(f"{path}.{key}", f"holds more than {_MAX_VALUES} values",
                             hint="YAML aliases (*name) repeat whole structures; write less")
        return dict(value)

    def ident(self, value: Any, path: str, what: str, env: Any = None) -> str:
        try:
            return validate_id(value, what=what)
        except ValidationError as err:
            raise self.error(path, err.message, env=env) from err

    def counted(self, path: str) -> None:
        self.count += 1
        if self.count > MAX_EXPANSION:
            raise self.error(path, f"the plant expands to more than {MAX_EXPANSION} entries",
                             hint="check the for_each ranges")

    def bindings(self, spec: Any, path: str) -> list[dict[str, Any]]:
        """Every variable binding ``for_each`` asks for; ``[{}]`` when there is none."""
        if spec is None:
            return [{}]
        groups = spec if isinstance(spec, list) else [spec]
        if not groups:
            raise self.error(path, "is an empty list")
        sized = []
        for g, group in enumerate(groups):
            at = f"{path}[{g}]" if isinstance(spec, list) else path
            if not isinstance(group, Mapping) or not group:
                raise self.error(at, "must map variable names to values",
                                 hint="e.g. for_each: {line: [A, B], n: {from: 1, to: 4}}")
            columns = {str(k): self.values(k, v, f"{at}.{k}") for k, v in group.items()}
            total = 1
            for values in columns.values():
                total *= len(values)
            if total > MAX_EXPANSION:
                raise self.error(at, f"expands to {total} entries, more than {MAX_EXPANSION}")
            sized.append(columns)
        return [dict(zip(c, combo, strict=True)) for c in sized
                for combo in itertools.product(*c.values())]

    def values(self, key: Any, spec: Any, path: str) -> list[Any] | range:
        if not isinstance(key, str) or not _VAR.match(key):
            raise self.error(path, f"variable name {key!r} must be letters, digits and _")
        if isinstance(spec, _SCALARS):
            return [spec]
        if isinstance(spec, list) and spec and all(isinstance(v, _SCALARS) for v in spec):
            return spec
        if isinstance(spec, Mapping) and set(spec) <= _RANGE_KEYS and {"from", "to"} <= set(spec):
            lo, hi, step = spec["from"], spec["to"], spec.get("step", 1)
            if all(isinstance(v, int) and not isinstance(v, bool) for v in (lo, hi, step)) and step:
                count = max(0, (hi - lo) // step + 1)
                if count > MAX_EXPANSION:
                    raise self.error(path, f"range of {count} values is more than {MAX_EXPANSION}")
                if count:
                    return range(lo, lo + count * step, step)
        raise self.error(path, "must be a value, a non-empty list of values, or a non-empty "
                         "{from, to, step} range of integers")

    def text(self, template: Any, env: Mapping[str, Any], path: str) -> str:
        if not isinstance(template, str):
            raise self.error(path, f"must be a string, not {_kind(template)}",
                             hint="quote it in YAML")
        out = self.render(template, env, path)
        return out if isinstance(out, str) else str(out)

    def value(self, value: Any, env: Mapping[str, Any], path: str, depth: int = 0) -> Any:
        """``value`` with every string rendered; only JSON-like values pass."""
        if depth > _MAX_NESTING:
            raise self.error(path, f"nested deeper than {_MAX_NESTING} levels")
        if isinstance(value, str):
            return self.render(value, env, path)
        if value is None or isinstance(value, bool | int | float):
            return value
        if isinstance(value, dt.date):
            return value.isoformat()
        if isinstance(value, list):
            return [self.value(v, env, f"{path}[{i}]", depth + 1) for i, v in enumerate(value)]
        if isinstance(value, Mapping):
            if not all(isinstance(k, str) for k in value):
                raise self.error(path, "mapping keys must be strings")
            return {k: self.value(v, env, f"{path}.{k}", depth + 1) for k, v in value.items()}
        raise self.error(path, f"unsupported value of type {_kind(value)}",
                         hint="use strings, numbers, booleans, lists and mappings")

    def render(self, text: str, env: Mapping[str, Any], path: str) -> Any:
        """Fill ``{name}`` / ``{name:spec}`` placeholders from ``env``."""
        if "{" not in text and "}" not in text:
            return text
        out, pos = [], 0
        for m in _TOKEN.finditer(text):
            out.append(text[pos:m.start()])
            pos = m.end()
            token = m.group()
            if token in ("{{", "}}"):
                out.append(token[0])
                continue
            name, _, spec = token[1:-1].partition(":")
            if len(token) == 1 or not _VAR.match(name):
                raise self.error(path, f"malformed placeholder {token!r} in {text!r}",
                                 hint="write {name} or {name:spec}; {{ and }} for literal braces")
            if name not in env:
                known = ", ".join(env) or "none"
                raise self.error(path, f"placeholder {{{name}}} is not defined by for_each "
                                 f"(defined: {known})", hint=f"add {name} to this entry's for_each")
            if m.span() == (0, len(text)) and not spec:
                return env[name]
            if len(spec) > 16 or any(int(w) > _MAX_FORMAT_WIDTH for w in re.findall(r"\d+", spec)):
                raise self.error(path, f"format spec {spec!r} is too wide", env=env)
            try:
                out.append(format(env[name], spec))
            except (ValueError, TypeError) as err:
                raise self.error(path, f"cannot format {name}={env[name]!r} as {spec!r}: {err}",
                                 env=env) from err
        out.append(text[pos:])
        return "".join(out)


def _size(value: Any, memo: dict[int, int], depth: int = 0) -> int:
    """How many values ``value`` unrolls to; shared (aliased) parts are sized once."""
    if not isinstance(value, list | Mapping):
        return 1
    if depth > _MAX_NESTING:
        return 0  # also ends cycles; `_Parser.value` then names the deep spot
    if id(value) not in memo:
        items = value.values() if isinstance(value, Mapping) else value
        memo[id(value)] = 1 + sum(_size(v, memo, depth + 1) for v in items)
    return memo[id(value)]


def _kind(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def _read_yaml(text: str, file: str) -> tuple[yaml.Node | None, Any]:
    """Parse YAML keeping the node tree, whose marks give line numbers for later errors."""
    loader = None
    try:
        loader = yaml.SafeLoader(text)
        node = loader.get_single_node()
        _no_duplicate_keys(node, file)
        return node, (loader.construct_document(node) if node is not None else None)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(err, "problem", None) or str(err)
        raise DeclarationError(f"malformed YAML{where}: {reason}", file=file,
                               hint="check indentation and quoting") from err
    except (ValueError, TypeError, OverflowError) as err:  # e.g. a date like 2024-13-45
        raise DeclarationError(f"malformed YAML value: {err}", file=file,
                               hint="quote values that are not meant as dates or numbers") from err
    except RecursionError as err:
        raise DeclarationError("YAML nested too deeply", file=file) from err
    finally:
        if loader is not None:
            loader.dispose()


def _no_duplicate_keys(root: yaml.Node | None, file: str) -> None:
    """PyYAML keeps the last of two equal keys silently; a plant file author wants to know."""
    todo, seen = [root], set()
    while todo:
        node = todo.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            keys: dict[str, int] = {}
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                    if key.value in keys:
                        raise DeclarationError(
                            f"duplicate key {key.value!r} at line {key.start_mark.line + 1} "
                            f"(first at line {keys[key.value]})", file=file)
                    keys[key.value] = key.start_mark.line + 1
                todo.extend((key, value))
        elif isinstance(node, yaml.SequenceNode):
            todo.extend(node.value)


def _line_of(node: yaml.Node | None, path: str) -> int | None:
    """The line of the deepest node along ``path`` (``twins[3].for_each``), if any."""
    if not path:
        return None
    line = None
    for m in _PATH_PART.finditer(path):
        if node is None:
            break
        line = node.start_mark.line + 1
        index, key = m.groups()
        if index is not None and isinstance(node, yaml.SequenceNode):
            items = node.value
            node = items[int(index)] if int(index) < len(items) else None
        elif key is not None and isinstance(node, yaml.MappingNode):
            node = next((v for k, v in node.value if getattr(k, "value", None) == key), None)
        else:
            node = None
    return node.start_mark.line + 1 if node is not None else line


__all__ = ["MAX_EXPANSION", "Plant", "load_plant", "parse_plant"]
