"""Asset types read from DTDL v2/v3 interfaces, with errors that name the file and JSON path.

Everything is checked before it is used, so malformed input of any shape raises
`DeclarationError` (``file:contents[3].schema: ...``) and never another exception.

>>> [t.id for t in from_dtdl({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:acme:Fan;1",
...                           "@type": "Interface", "contents": []})]
['Fan']
>>> from_dtdl({"@context": "dtmi:dtdl:context;3", "@id": "dtmi:acme:Fan;1", "@type": "Interface",
...            "contents": [{"@type": "Telemetry", "name": "rpm", "schema": "doubel"}]})
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
twinloop.core.errors.DeclarationError: contents[0].schema: unknown schema 'doubel' (use a DTDL primitive ...)
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any, NoReturn

import pydantic

from twinloop.core.errors import DeclarationError
from twinloop.twins.asset_type import (
    DTMI_PATTERN,
    Arg,
    AssetType,
    Attribute,
    Channel,
    Command,
    Property,
    Relationship,
    Response,
)
from twinloop.twins.dtdl_export import COMMENT_PREFIX, UNITS, id_from_dtmi
from twinloop.twins.loader import declaration_error, problems_of

CONTEXTS = {"dtmi:dtdl:context;2", "dtmi:dtdl:context;3", "dtmi:dtdl:context;4"}
KINDS = ("Telemetry", "Property", "Command", "Relationship", "Component")
# DTDL primitive schemas → ours; v3's extra integer and text types map to the nearest one.
PRIMITIVES = {
    **{p: p for p in ("boolean", "date", "dateTime", "double", "duration", "float", "integer",
                      "long", "string", "time")},
    "byte": "integer", "short": "integer", "unsignedByte": "integer", "unsignedShort": "integer",
    "unsignedInteger": "long", "unsignedLong": "long", "decimal": "double", "uuid": "string",
    "bytes": "string",
}
_PINT_OF = {dtdl: pint for pint, (_, dtdl) in UNITS.items()}
_VALUE_META = {"unit", "min", "max"}
_SCHEMA_HINT = "use a DTDL primitive such as 'double', 'integer', 'boolean', 'string', or Enum/Array/Map"

Entry = tuple[str | None, str, dict[str, Any]]  # (file, JSON path of the interface, interface)


def from_dtdl(doc: Any, file: str | None = None) -> list[AssetType]:
    """Asset types from one DTDL interface or an array of them (already parsed JSON)."""
    return _convert(_interfaces(doc, file))


def load_dtdl(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[AssetType]:
    """Asset types from DTDL ``*.json`` files and directories; references may cross files."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    entries: list[Entry] = []
    for p in map(Path, paths):
        if p.is_dir():
            files = sorted(f for f in p.iterdir() if f.suffix == ".json")
        elif p.is_file():
            files = [p]
        else:
            raise DeclarationError("no such file or directory", file=str(p))
        for f in files:
            entries.extend(_interfaces(_read_json(f), str(f)))
    return _convert(entries)


def _read_json(file: Path) -> Any:
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise DeclarationError(
            f"malformed JSON at line {err.lineno}, column {err.colno}: {err.msg}", file=str(file)
        ) from None
    except (OSError, UnicodeDecodeError, RecursionError) as err:
        raise DeclarationError(f"cannot read the file: {err}", file=str(file)) from None


def _fail(file: str | None, path: str, msg: str, hint: str | None = None) -> NoReturn:
    raise DeclarationError(msg, file=file, path=path, hint=hint)


def _join(path: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


def _interfaces(doc: Any, file: str | None) -> list[Entry]:
    items = [("", doc)] if isinstance(doc, dict) else (
        [(f"[{i}]", d) for i, d in enumerate(doc)] if isinstance(doc, list) else None
    )
    if items is None:
        _fail(file, "", f"expected a DTDL interface or an array of them, got {type(doc).__name__}")
    out: list[Entry] = []
    for path, iface in items:
        if not isinstance(iface, dict):
            _fail(file, path, f"expected a DTDL interface (an object), got {type(iface).__name__}")
        ctx = iface.get("@context")
        ctxs = ctx if isinstance(ctx, list) else [ctx]
        if not any(isinstance(c, str) and c in CONTEXTS for c in ctxs):
            _fail(file, _join(path, "@context"), f"missing or unknown DTDL context {ctx!r}",
                  hint="use \"@context\": \"dtmi:dtdl:context;3\"")
        if "Interface" not in _types(iface, file, path):
            _fail(file, _join(path, "@type"), "the top-level element must be an Interface")
        _dtmi(iface.get("@id"), file, _join(path, "@id"))
        out.append((file, path, iface))
    return out


def _types(el: dict[str, Any], file: str | None, path: str) -> list[str]:
    t = el.get("@type")
    types = [t] if isinstance(t, str) else t
    if not isinstance(types, list) or not types or not all(isinstance(x, str) for x in types):
        _fail(file, _join(path, "@type"), f"missing or malformed @type {t!r}")
    return types


def _dtmi(value: Any, file: str | None, path: str) -> str:
    if not isinstance(value, str) or not DTMI_PATTERN.match(value):
        _fail(file, path, f"missing or invalid dtmi {value!r}",
              hint="use 'dtmi:<segment>(:<segment>)*;<version>', e.g. 'dtmi:acme:Pump;1'")
    return value


def _comment(el: dict[str, Any], file: str | None, path: str, allowed: set[str]) -> dict[str, Any]:
    """Our facts from a ``twinloop:{json}`` comment; any other comment is the author's own."""
    c = el.get("comment")
    if not isinstance(c, str) or not c.startswith(COMMENT_PREFIX):
        return {}
    try:
        meta = json.loads(c.removeprefix(COMMENT_PREFIX))
    except (ValueError, RecursionError):
        meta = None
    if not isinstance(meta, dict):
        _fail(file, _join(path, "comment"), "malformed twinloop comment: expected a JSON object")
    if unknown := set(meta) - allowed:
        _fail(file, _join(path, "comment"), f"unknown twinloop keys {sorted(unknown)}",
              hint="allowed: " + ", ".join(sorted(allowed)))
    return meta


def _text(el: dict[str, Any], key: str, file: str | None, path: str) -> str | None:
    v = el.get(key)
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, dict) and v and all(isinstance(x, str) for x in v.values()):
        return next((v[k] for k in ("en", "en-US", "en-GB") if k in v), next(iter(v.values())))
    _fail(file, _join(path, key), f"expected a string or a language map, got {v!r}")


class _Interface:
    """Converts one interface; knows the file, the reusable schemas and every dtmi → id."""

    def __init__(self, file: str | None, path: str, ids: dict[str, str]) -> None:
        self.file, self.path, self.ids = file, path, ids
        self.schemas: dict[str, Any] = {}

    def ref(self, value: Any, path: str) -> str:
        dtmi = _dtmi(value, self.file, path)
        return self.ids.get(dtmi) or id_from_dtmi(dtmi)

    def model(self, cls: type[pydantic.BaseModel], data: dict[str, Any], path: str) -> Any:
        try:
            return cls.model_validate(data)
        except pydantic.ValidationError as err:
            raise declaration_error(problems_of(err, data, cls), file=self.file, prefix=path) from None

    def convert(self, iface: dict[str, Any]) -> AssetType:
        p, f = self.path, self.file
        for i, s in enumerate(_list(iface, "schemas", f, p)):
            sp = _join(_join(p, "schemas"), i)
            if not isinstance(s, dict):
                _fail(f, sp, "expected a schema object")
            self.schemas[_dtmi(s.get("@id"), f, _join(sp, "@id"))] = s
        meta = _comment(iface, f, p, {"id"})
        data: dict[str, Any] = {
            "id": meta.get("id") or id_from_dtmi(iface["@id"]), "dtmi": iface["@id"],
            "display_name": _text(iface, "displayName", f, p),
            "description": _text(iface, "description", f, p),
        }
        ext = iface.get("extends", [])
        ext = [ext] if isinstance(ext, str) else ext
        if not isinstance(ext, list):
            _fail(f, _join(p, "extends"), "expected a dtmi or a list of dtmis")
        data["extends"] = [self.ref(e, _join(_join(p, "extends"), i)) for i, e in enumerate(ext)]
        groups: dict[str, list[Any]] = {k: [] for k in (
            "channels", "attributes", "properties", "commands", "relationships")}
        components: dict[str, str] = {}
        for i, el in enumerate(_list(iface, "contents", f, p)):
            ep = _join(_join(p, "contents"), i)
            if not isinstance(el, dict):
                _fail(f, ep, f"expected a content element (an object), got {type(el).__name__}")
            kinds = [k for k in _types(el, f, ep) if k in KINDS]
            if len(kinds) != 1:
                _fail(f, _join(ep, "@type"), f"unknown element kind {el.get('@type')!r}",
                      hint="use one of " + ", ".join(KINDS))
            if kinds[0] == "Component":
                name = el.get("name")
                if not isinstance(name, str) or name in components:
                    _fail(f, _join(ep, "name"), f"missing or duplicate component name {name!r}")
                components[name] = self.ref(el.get("schema"), _join(ep, "schema"))
                continue
            group, item = getattr(self, "_" + kinds[0].lower())(el, ep)
            groups[group].append(item)
        data = {**data, **groups, "components": components}
        data = {k: v for k, v in data.items() if v is not None}
        return self.model(AssetType, data, p)

    def value(self, el: dict[str, Any], path: str, meta_keys: set[str]) -> dict[str, Any]:
        """Name, schema, unit, texts and our comment facts of a typed element."""
        f = self.file
        meta = _comment(el, f, path, meta_keys | _VALUE_META)
        out: dict[str, Any] = {"name": el.get("name"), **self.schema(el.get("schema"),
                                                                     _join(path, "schema"))}
        unit = el.get("unit")
        if unit is not None:
            if not isinstance(unit, str) or unit not in _PINT_OF:
                _fail(f, _join(path, "unit"), f"unknown DTDL unit {unit!r}",
                      hint="use a QuantitativeTypes unit such as 'degreeCelsius', 'bar', 'kilowatt'")
            out["unit"] = _PINT_OF[unit]
        out.update(meta)
        for key, dkey in (("display_name", "displayName"), ("description", "description")):
            if (text := _text(el, dkey, f, path)) is not None:
                out[key] = text
        return out

    def schema(self, node: Any, path: str) -> dict[str, Any]:
        f = self.file
        if isinstance(node, str) and node in self.schemas:
            node = self.schemas[node]
        if isinstance(node, str):
            if node not in PRIMITIVES:
                _fail(f, path, f"unknown schema {node!r}", hint=_SCHEMA_HINT)
            return {"type": PRIMITIVES[node]}
        if not isinstance(node, dict):
            _fail(f, path, f"expected a schema, got {node!r}", hint=_SCHEMA_HINT)
        kind = _types(node, f, path)[0]
        if kind == "Enum":
            vs = node.get("valueSchema")
            want = {"string": str, "integer": int}.get(vs) if isinstance(vs, str) else None
            if want is None:
                _fail(f, _join(path, "valueSchema"), f"Enum valueSchema must be 'string' or "
                      f"'integer', got {vs!r}")
            values = []
            for i, ev in enumerate(_list(node, "enumValues", f, path)):
                v = ev.get("enumValue") if isinstance(ev, dict) else None
                if not isinstance(v, want) or isinstance(v, bool):
                    _fail(f, _join(_join(_join(path, "enumValues"), i), "enumValue"),
                          f"expected a {vs} enumValue, got {v!r}")
                values.append(v)
            return {"type": "enum", "values": values}
        if kind in ("Array", "Map"):
            key, sub = ("elementSchema", node.get("elementSchema")) if kind == "Array" else (
                "mapValue", node.get("mapValue"))
            if kind == "Map":
                sub = sub.get("schema") if isinstance(sub, dict) else None
                key = "mapValue.schema"
            if not isinstance(sub, str) or sub not in PRIMITIVES:
                _fail(f, _join(path, key), f"{kind} items must be a primitive schema, got {sub!r}",
                      hint="nested Objects, Arrays and Maps are not supported")
            return {"type": kind.lower(), "items": PRIMITIVES[sub]}
        _fail(f, path, f"unsupported schema {kind!r} here", hint=_SCHEMA_HINT)

    def _telemetry(self, el: dict[str, Any], path: str) -> tuple[str, Any]:
        data = self.value(el, path, {"expected_rate_hz", "expected_period_s"})
        if data["type"] not in ("double", "float", "integer", "long", "boolean"):
            _fail(self.file, _join(path, "schema"), f"telemetry of schema {data['type']!r} is not "
                  "supported: twinloop channels are numeric or boolean")
        return "channels", self.model(Channel, data, path)

    def _property(self, el: dict[str, Any], path: str) -> tuple[str, Any]:
        data = self.value(el, path, {"attribute", "required", "default"})
        writable = el.get("writable", False)
        if not isinstance(writable, bool):
            _fail(self.file, _join(path, "writable"), f"expected true or false, got {writable!r}")
        if data.pop("attribute", False) is True:
            if writable:
                _fail(self.file, _join(path, "writable"), "an attribute cannot be writable")
            return "attributes", self.model(Attribute, data, path)
        return "properties", self.model(Property, {**data, "writable": writable}, path)

    def _command(self, el: dict[str, Any], path: str) -> tuple[str, Any]:
        data: dict[str, Any] = {"name": el.get("name")}
        for key, dkey in (("display_name", "displayName"), ("description", "description")):
            if (text := _text(el, dkey, self.file, path)) is not None:
                data[key] = text
        req, rp = el.get("request"), _join(path, "request")
        if req is not None:
            if not isinstance(req, dict):
                _fail(self.file, rp, "expected a CommandRequest object")
            schema = req.get("schema")
            if isinstance(schema, str) and schema in self.schemas:
                schema = self.schemas[schema]
            if isinstance(schema, dict) and schema.get("@type") == "Object":
                fp = _join(_join(rp, "schema"), "fields")
                fields = _list(schema, "fields", self.file, _join(rp, "schema"))
                args = []
                for i, fd in enumerate(fields):
                    if not isinstance(fd, dict):
                        _fail(self.file, _join(fp, i), "expected a Field object")
                    args.append(self._arg(fd, _join(fp, i)))
                data["args"] = args
            else:
                data["args"] = [self._arg(req, rp)]
        resp, sp = el.get("response"), _join(path, "response")
        if resp is not None:
            if not isinstance(resp, dict):
                _fail(self.file, sp, "expected a CommandResponse object")
            data["response"] = self.model(Response, self.value(resp, sp, set()), sp)
        return "commands", self.model(Command, data, path)

    def _arg(self, el: dict[str, Any], path: str) -> Arg:
        data = self.value(el, path, {"required", "default"})
        if "required" not in data and el.get("nullable") is True:
            data["required"] = False
        return self.model(Arg, data, path)

    def _relationship(self, el: dict[str, Any], path: str) -> tuple[str, Any]:
        f = self.file
        data: dict[str, Any] = {"name": el.get("name")}
        if el.get("target") is not None:
            data["target"] = self.ref(el["target"], _join(path, "target"))
        mm = el.get("maxMultiplicity")
        if mm is not None:
            if not isinstance(mm, int) or isinstance(mm, bool) or mm < 1:
                _fail(f, _join(path, "maxMultiplicity"), f"expected an integer >= 1, got {mm!r}")
            data["max_multiplicity"] = mm
        props = []
        for i, pr in enumerate(_list(el, "properties", f, path)):
            pp = _join(_join(path, "properties"), i)
            if not isinstance(pr, dict) or "Property" not in _types(pr, f, pp):
                _fail(f, pp, "expected a Property object")
            group, prop = self._property(pr, pp)
            if group != "properties":
                _fail(f, pp, "relationship properties cannot be attributes")
            props.append(prop)
        data["properties"] = props
        for key, dkey in (("display_name", "displayName"), ("description", "description")):
            if (text := _text(el, dkey, f, path)) is not None:
                data[key] = text
        return "relationships", self.model(Relationship, data, path)


def _list(el: dict[str, Any], key: str, file: str | None, path: str) -> list[Any]:
    v = el.get(key, [])
    if not isinstance(v, list):
        _fail(file, _join(path, key), f"expected a list, got {type(v).__name__}")
    return v


def _convert(entries: list[Entry]) -> list[AssetType]:
    ids: dict[str, str] = {}  # dtmi → type id
    where: dict[str, str] = {}  # type id → where it was declared
    for file, path, iface in entries:
        meta = _comment(iface, file, path, {"id"})
        type_id = meta.get("id") if isinstance(meta.get("id"), str) else id_from_dtmi(iface["@id"])
        here = f"{file or '<doc>'}:{path or '<top>'}"
        if iface["@id"] in ids:
            _fail(file, _join(path, "@id"), f"dtmi {iface['@id']!r} is declared twice "
                  f"(also at {where[ids[iface['@id']]]})")
        if type_id in where:
            _fail(file, _join(path, "@id"), f"two interfaces map to asset type id {type_id!r} "
                  f"(also at {where[type_id]})", hint="give their dtmis different last segments")
        ids[iface["@id"]] = type_id
        where[type_id] = here
    return [_Interface(file, path, ids).convert(iface) for file, path, iface in entries]


__all__ = ["from_dtdl", "load_dtdl"]
