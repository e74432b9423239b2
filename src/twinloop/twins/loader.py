"""Reading asset types from YAML files, with errors that point at the file, line and path.

A file holds one type (a mapping), several (a list), or several under ``types:``. Every problem
in a declaration is reported at once, one line each, as ``path: what is wrong (what to do)`` —
never as a traceback or a raw pydantic dump.

>>> t = parse_asset_type({"id": "Tank", "channels": [{"name": "level", "unit": "m"}]})
>>> t.channel("level").unit
'm'
>>> parse_asset_type({"id": "Tank", "channels": [{"name": "level", "unit": "frobs"}]},
...                  file="tank.yaml")  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
twinloop.core.errors.DeclarationError: tank.yaml:channels[0].unit: channel 'level': unknown unit 'frobs' (...)
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pydantic
import yaml

from twinloop.core.errors import DeclarationError
from twinloop.twins.asset_type import (
    Arg,
    AssetType,
    Attribute,
    Channel,
    Command,
    Property,
    Relationship,
    Response,
)

Problem = tuple[str, str]  # (path, message)

# The model that owns the keys found under each section name, to list allowed keys in hints.
_SECTION_MODELS: dict[str, type[pydantic.BaseModel]] = {
    "channels": Channel,
    "attributes": Attribute,
    "properties": Property,
    "commands": Command,
    "relationships": Relationship,
    "args": Arg,
    "response": Response,
}
_SECTION_WORD = {
    "channels": "channel", "attributes": "attribute", "properties": "property",
    "commands": "command", "relationships": "relationship", "args": "argument",
}


def format_path(loc: Sequence[int | str]) -> str:
    """A pydantic location as people write it: ``('channels', 2, 'unit')`` → ``channels[2].unit``.

    >>> format_path(("commands", 0, "args", 1, "max"))
    'commands[0].args[1].max'
    """
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def problems_of(
    err: pydantic.ValidationError, data: Any, model: type[pydantic.BaseModel] = AssetType
) -> list[Problem]:
    """One readable ``(path, message)`` per pydantic error, naming entities where it can."""
    problems: list[Problem] = []
    for e in err.errors(include_url=False):
        loc, msg = _message(e, tuple(e["loc"]), model)
        who = _entity(data, loc)
        problems.append((format_path(loc), f"{who}: {msg}" if who else msg))
    return problems


def _owner(loc: tuple[int | str, ...], model: type[pydantic.BaseModel]) -> type[pydantic.BaseModel]:
    section = next((p for p in reversed(loc) if isinstance(p, str)), None)
    return _SECTION_MODELS.get(section or "", model)


def _message(
    e: Any, loc: tuple[int | str, ...], model: type[pydantic.BaseModel]
) -> tuple[tuple[int | str, ...], str]:
    kind, msg = e["type"], str(e["msg"])
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
        # Model-level checks name their key first ("max: ..."); make it part of the path.
        key, sep, rest = msg.partition(": ")
        if sep and key in _owner(loc, model).model_fields:
            return (*loc, key), rest
        return loc, msg
    if kind == "missing":
        return loc, "missing required key"
    if kind == "extra_forbidden":
        allowed = ", ".join(_owner(loc[:-1], model).model_fields)
        return loc, f"unknown key (allowed: {allowed})"
    if kind == "literal_error":
        return loc, f"{msg.replace('Input should be', 'must be')}, got {e.get('input')!r}"
    return loc, f"{msg}, got {e.get('input')!r}" if "input" in e else msg


def _entity(data: Any, loc: tuple[int | str, ...]) -> str:
    """``channel 'flow'`` for a location inside ``channels[i]``, so people need not count."""
    node, label = data, ""
    for i, part in enumerate(loc):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(part, int) and i > 0 and isinstance(node, dict) and i < len(loc) - 1:
            word = _SECTION_WORD.get(str(loc[i - 1]))
            if word and isinstance(node.get("name"), str):
                label = f"{word} {node['name']!r}"
    return label


def declaration_error(
    problems: list[Problem], *, file: str | None, prefix: str = "", lines: dict[str, int] | None = None
) -> DeclarationError:
    """One `DeclarationError` holding every problem, one per line, paths joined to ``prefix``."""
    lines = lines or {}

    def full(path: str) -> str:
        if not prefix:
            return path
        return f"{prefix}{path}" if not path or path.startswith("[") else f"{prefix}.{path}"

    def at(path: str) -> str:
        return f" (line {lines[path]})" if path and path in lines else ""

    if len(problems) == 1:
        path, msg = problems[0]
        err = DeclarationError(msg + at(full(path)), file=file, path=full(path))
    else:
        body = "\n".join(f"  {full(p) or '<top>'}{at(full(p))}: {m}" for p, m in problems)
        err = DeclarationError(f"{len(problems)} problems:\n{body}", file=file, path="")
    err.problems = [(full(p), m) for p, m in problems]  # type: ignore[attr-defined]
    return err


def parse_asset_type(
    data: Any, *, file: str | None = None, path: str = "", lines: dict[str, int] | None = None
) -> AssetType:
    """An `AssetType` from plain data (parsed YAML/JSON), or a `DeclarationError` naming every problem.

    ``path`` is where ``data`` sits inside ``file`` (``types[1]``); ``lines`` maps full paths
    to line numbers so messages can say where to look.
    """
    if not isinstance(data, dict):
        raise DeclarationError(
            f"an asset type must be a mapping with at least 'id', got {type(data).__name__}",
            file=file, path=path,
        )
    try:
        return AssetType.model_validate(data)
    except pydantic.ValidationError as err:
        raise declaration_error(problems_of(err, data), file=file, prefix=path, lines=lines) from None


def load_asset_types(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[AssetType]:
    """All asset types in the given files and directories (``*.yaml``/``*.yml``, sorted).

    A type id declared twice is an error naming both files.
    """
    out: list[AssetType] = []
    where: dict[str, str] = {}
    for file in _yaml_files(paths):
        for t in _load_file(file):
            if t.id in where:
                raise DeclarationError(
                    f"asset type {t.id!r} is declared twice (also in {where[t.id]})",
                    file=str(file), hint="rename one of them or remove the duplicate",
                )
            where[t.id] = str(file)
            out.append(t)
    return out


def _yaml_files(paths: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Path]:
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(f for f in p.iterdir() if f.suffix in (".yaml", ".yml")))
        elif p.is_file():
            files.append(p)
        else:
            raise DeclarationError("no such file or directory", file=str(p))
    return files


def _load_file(file: Path) -> list[AssetType]:
    name = str(file)
    try:
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise DeclarationError(f"cannot read the file: {err}", file=name) from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise DeclarationError(
            f"malformed YAML at {where}{problem}", file=name,
            hint="check indentation and quoting; a ':' inside a value needs quotes",
        ) from None
    if data is None:
        return []
    if isinstance(data, dict) and "types" in data and "id" not in data:
        extra = sorted(set(data) - {"types"})
        if extra or not isinstance(data["types"], list):
            raise DeclarationError(
                "a file with 'types:' must hold only a list under 'types'", file=name, path="types"
            )
        items, prefix = data["types"], "types"
    elif isinstance(data, list):
        items, prefix = data, ""
    else:
        return [_parse_lazy_lines(data, text, name, "")]
    return [_parse_lazy_lines(d, text, name, f"{prefix}[{i}]") for i, d in enumerate(items)]


def _parse_lazy_lines(data: Any, text: str, file: str, path: str) -> AssetType:
    try:
        return parse_asset_type(data, file=file, path=path)
    except DeclarationError as err:
        problems = getattr(err, "problems", None)
        if not problems:
            raise
        # Only on failure: compose the YAML again to find the line of each problem.
        lines = _line_numbers(text)
        rel = [(_relative(p, path), m) for p, m in problems]
        raise declaration_error(rel, file=file, prefix=path, lines=lines) from None


def _relative(full: str, prefix: str) -> str:
    if not prefix:
        return full
    rest = full[len(prefix):]
    return rest[1:] if rest.startswith(".") else rest


def _line_numbers(text: str) -> dict[str, int]:
    """Every path in a YAML document mapped to its 1-based line number."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, path: str) -> None:
        lines.setdefault(path, node.start_mark.line + 1)
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                k = str(key.value)
                sub = f"{path}.{k}" if path else k
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, f"{path}[{i}]")

    if root is not None:
        walk(root, "")
    return lines


__all__ = [
    "declaration_error",
    "format_path",
    "load_asset_types",
    "parse_asset_type",
    "problems_of",
]
