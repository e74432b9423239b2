"""The twin graph: every twin and the typed, directed relationships between them, in memory.

Edges read the way they point; the three names the platform relies on:

* ``A feeds B`` -- material or energy flows from A to B, so a failure of A starves B (downstream).
* ``A partOf B`` -- A sits inside B (pump partOf line, line partOf station).
* ``A poweredBy B`` -- A draws power from B, so a failure of B stops A: B's impact lies *upstream*
  along ``poweredBy``.

Built for fleets of ~100k twins: adjacency dicts keyed by relationship name answer neighbour and
closure queries in time proportional to what they reach; only `TwinGraph.filter` without a type
walks the whole fleet.

>>> g = TwinGraph(
...     [Twin("tank-1", "Tank"), Twin("pump-1", "Pump"), Twin("line-1", "PumpLine"),
...      Twin("mcc-1", "PowerSupply")],
...     [Relationship("tank-1", "feeds", "pump-1"), Relationship("pump-1", "feeds", "line-1"),
...      Relationship("pump-1", "poweredBy", "mcc-1")],
... )
>>> [(r.id, r.depth) for r in g.downstream("tank-1")]
[('pump-1', 1), ('line-1', 2)]
>>> [(r.id, r.via.name) for r in g.impact("mcc-1")]
[('pump-1', 'poweredBy'), ('line-1', 'feeds')]
"""

from __future__ import annotations

import operator
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from twinloop.core.errors import NotFoundError, ValidationError
from twinloop.twins.twin import Relationship, Twin

Direction = Literal["out", "in", "both"]
Names = str | Iterable[str]

#: How a failure travels along each relationship name in `TwinGraph.impact`: ``"out"`` from
#: source to target, ``"in"`` from target to source. Names not listed travel ``"out"``.
IMPACT_DIRECTIONS: Mapping[str, Direction] = {"feeds": "out", "poweredBy": "in", "partOf": "in"}

#: Operators of the `TwinGraph.filter` expression language.
FILTER_OPERATORS = frozenset({"eq", "ne", "lt", "le", "gt", "ge", "in", "exists", "contains"})

_SECTIONS = ("attributes", "reported", "desired")
_ORDER = {"lt": operator.lt, "le": operator.le, "gt": operator.gt, "ge": operator.ge}
_Adjacency = dict[str, dict[str, dict[str, Relationship]]]  # name -> twin id -> other id -> edge


@dataclass(frozen=True, slots=True)
class Reach:
    """A twin reached by a traversal, how many hops from the start, and the edge that got there.

    ``via`` is the stored edge as it points; walking upstream, ``via.source`` is the reached twin.
    """

    id: str
    depth: int
    via: Relationship


def trace(reaches: Iterable[Reach], id: str) -> list[Relationship]:
    """The chain of edges from a traversal's start to ``id`` -- the answer to "why is it affected".

    Empty if ``id`` was not reached.

    >>> g = TwinGraph([Twin("a", "T"), Twin("b", "T"), Twin("c", "T")],
    ...               [Relationship("a", "feeds", "b"), Relationship("b", "feeds", "c")])
    >>> [(e.source, e.target) for e in trace(g.downstream("a"), "c")]
    [('a', 'b'), ('b', 'c')]
    """
    by_id = {r.id: r for r in reaches}
    path: list[Relationship] = []
    step = by_id.get(id)
    while step is not None and len(path) <= len(by_id):
        path.append(step.via)
        step = by_id.get(step.via.source if step.via.target == step.id else step.via.target)
    return path[::-1]


class TwinGraph:
    """An index of twins and relationships; changes are the caller's (the twin service's) job."""

    def __init__(
        self, twins: Iterable[Twin] = (), relationships: Iterable[Relationship] = ()
    ) -> None:
        self._twins: dict[str, Twin] = {}
        self._by_type: dict[str, dict[str, None]] = {}  # ordered sets of ids
        self._out: _Adjacency = {}  # name -> source -> target -> edge
        self._in: _Adjacency = {}  # name -> target -> source -> edge
        for twin in twins:
            self.add_twin(twin)
        for rel in relationships:
            self.add_relationship(rel)

    # --- changes --------------------------------------------------------------------------
    def add_twin(self, twin: Twin) -> None:
        """Add ``twin``, or replace the twin with its id (its relationships stay)."""
        old = self._twins.get(twin.id)
        if old is not None and old.type_id != twin.type_id:
            self._forget_type(old)
        self._twins[twin.id] = twin
        self._by_type.setdefault(twin.type_id, {})[twin.id] = None

    def remove_twin(self, id: str) -> None:
        """Remove a twin and every relationship that starts or ends at it."""
        twin = self.get(id)
        for name, by_source in self._out.items():
            for target in by_source.pop(id, {}):
                _unlink(self._in[name], target, id)
        for name, by_target in self._in.items():
            for source in by_target.pop(id, {}):
                _unlink(self._out[name], source, id)
        del self._twins[id]
        self._forget_type(twin)

    def add_relationship(self, rel: Relationship) -> None:
        """Add an edge between two present twins (replacing one with the same key)."""
        if rel.source == rel.target:
            raise ValidationError(
                f"relationship {_show(rel)} points at itself", hint="self-loops are not allowed"
            )
        for end in (rel.source, rel.target):
            if end not in self._twins:
                raise NotFoundError(
                    f"relationship {_show(rel)}: no twin {end!r}", hint="add the twin first"
                )
        self._out.setdefault(rel.name, {}).setdefault(rel.source, {})[rel.target] = rel
        self._in.setdefault(rel.name, {}).setdefault(rel.target, {})[rel.source] = rel

    def remove_relationship(self, source: str, name: str, target: str) -> None:
        """Remove the edge ``source --name--> target``."""
        if target not in self._out.get(name, {}).get(source, {}):
            raise NotFoundError(f"no relationship {source} --{name}--> {target}")
        _unlink(self._out[name], source, target)
        _unlink(self._in[name], target, source)

    # --- lookups --------------------------------------------------------------------------
    def get(self, id: str) -> Twin:
        """The twin with ``id``; `NotFoundError` if there is none."""
        try:
            return self._twins[id]
        except (KeyError, TypeError):
            raise NotFoundError(f"no twin {id!r}") from None

    def __contains__(self, id: object) -> bool:
        return isinstance(id, str) and id in self._twins

    def __len__(self) -> int:
        return len(self._twins)

    def twins(self) -> list[Twin]:
        """Every twin, in the order they were first added."""
        return list(self._twins.values())

    def relationships(
        self, source: str | None = None, name: str | None = None, target: str | None = None
    ) -> list[Relationship]:
        """Edges matching every given end and name (an index lookup when an end is given)."""
        found: list[Relationship] = []
        for n in [name] if name is not None else list(self._out):
            if source is not None:
                edges = self._out.get(n, {}).get(source, {})
                if target is None:
                    found.extend(edges.values())
                elif target in edges:
                    found.append(edges[target])
            elif target is not None:
                found.extend(self._in.get(n, {}).get(target, {}).values())
            else:
                for edges in self._out.get(n, {}).values():
                    found.extend(edges.values())
        return found

    def by_type(self, type_id: str, types: Iterable[str] | None = None) -> list[Twin]:
        """Twins of ``type_id``, plus of every id in ``types`` (pass a type's subtypes there).

        >>> g = TwinGraph([Twin("p", "Pump"), Twin("t", "Tank"), Twin("q", "DosingPump")])
        >>> [t.id for t in g.by_type("Pump", types={"Pump", "DosingPump"})]
        ['p', 'q']
        """
        return self._of_types([type_id], types)

    def filter(
        self,
        type_id: str | None = None,
        where: Mapping[str, Any] | None = None,
        *,
        types: Iterable[str] | None = None,
    ) -> list[Twin]:
        """Twins (of ``type_id``/``types`` if given) whose properties match every ``where`` clause.

        Keys name an attribute (``"rated_flow"``), or a section and a name (``"reported.speed"``,
        ``"desired.speed"``, ``"attributes.line"``); a dotted rest also reaches into nested
        dicts (``"reported.bearing.temperature"``). A plain value means equality; a dict holds
        operators that must all hold: ``eq``, ``ne``, ``lt``, ``le``, ``gt``, ``ge``, ``in``
        (a list), ``exists`` (true/false), ``contains`` (substring, or member of a list).
        A missing property matches only ``{"exists": False}``; values that cannot be
        compared (``"a" < 1``) do not match.

        >>> g = TwinGraph([Twin("p1", "Pump", {"rated_power": 30, "line": "A"}),
        ...                Twin("p2", "Pump", {"rated_power": 75, "line": "B"},
        ...                     reported={"speed": 1450})])
        >>> [t.id for t in g.filter("Pump", {"rated_power": {"gt": 50}})]
        ['p2']
        >>> [t.id for t in g.filter(where={"line": {"in": ["A", "C"]}})]
        ['p1']
        >>> [t.id for t in g.filter(where={"reported.speed": {"exists": False}})]
        ['p1']
        """
        clauses = _compile(where or {})
        pool: Iterable[Twin] = self._twins.values()
        if type_id is not None or types is not None:
            pool = self._of_types([type_id] if type_id is not None else [], types)
        return [t for t in pool if all(_matches(t, key, ops) for key, ops in clauses)]

    # --- traversal ------------------------------------------------------------------------
    def neighbours(
        self, id: str, name: Names | None = None, direction: Direction = "out"
    ) -> list[Twin]:
        """Twins one edge away: ``out`` = targets of ``id``'s edges, ``in`` = sources, or ``both``.

        >>> g = TwinGraph([Twin("a", "T"), Twin("b", "T"), Twin("c", "T")],
        ...               [Relationship("a", "feeds", "b"), Relationship("c", "feeds", "a")])
        >>> [t.id for t in g.neighbours("a", direction="both")]
        ['b', 'c']
        """
        self.get(id)
        names = self._names(name)
        seen = dict.fromkeys(other for other, _ in self._step(id, names, _directions(direction)))
        return [self._twins[i] for i in seen]

    def downstream(
        self, id: str, name: Names = "feeds", max_depth: int | None = None
    ) -> list[Reach]:
        """Everything reachable from ``id`` along ``name`` edges (a name or several), breadth-first.

        Each twin appears once, at its smallest depth; cycles are safe; ``id`` itself is left out.
        """
        names = self._names(name)
        return self._walk(id, lambda n: self._step(n, names, ("out",)), max_depth)

    def upstream(self, id: str, name: Names = "feeds", max_depth: int | None = None) -> list[Reach]:
        """Everything that reaches ``id`` along ``name`` edges: `downstream` against the arrows."""
        names = self._names(name)
        return self._walk(id, lambda n: self._step(n, names, ("in",)), max_depth)

    def impact(
        self,
        id: str,
        names: Names = ("feeds", "poweredBy"),
        *,
        include_parts: bool = False,
        max_depth: int | None = None,
        directions: Mapping[str, Direction] | None = None,
    ) -> list[Reach]:
        """What is affected if ``id`` fails, breadth-first, each with the edge that carried it.

        A failure travels along each name in ``names`` the way `IMPACT_DIRECTIONS` (overridden by
        ``directions``) says: down ``feeds``, and from a supplier to whatever is ``poweredBy`` it.
        Affected twins pass the effect on. With ``include_parts`` the parts of ``id`` (its
        ``partOf`` sources, transitively) fail with it and pass it on too.
        """
        rules = {**IMPACT_DIRECTIONS, **(directions or {})}
        plan = [(n, _directions(rules.get(n, "out"))) for n in self._names(names)]
        failed = {id} | {r.id for r in self.upstream(id, "partOf")} if include_parts else set()

        def step(node: str) -> Iterator[tuple[str, Relationship]]:
            for n, dirs in plan:
                yield from self._step(node, (n,), dirs)
            if node in failed:
                yield from self._step(node, ("partOf",), ("in",))

        return self._walk(id, step, max_depth)

    def subgraph(self, ids: Iterable[str]) -> TwinGraph:
        """A new graph of the twins ``ids`` and the edges among them."""
        keep = {i: self.get(i) for i in ids}
        sub = TwinGraph(keep.values())
        for by_source in self._out.values():
            for source in keep:
                for target, rel in by_source.get(source, {}).items():
                    if target in keep:
                        sub.add_relationship(rel)
        return sub

    # --- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"twins": [...], "relationships": [...]}``."""
        return {
            "twins": [t.to_dict() for t in self._twins.values()],
            "relationships": [r.to_dict() for r in self.relationships()],
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TwinGraph:
        """Rebuild a graph from `to_dict` output.

        >>> g = TwinGraph([Twin("a", "T"), Twin("b", "T")], [Relationship("a", "feeds", "b")])
        >>> TwinGraph.from_dict(g.to_dict()).to_dict() == g.to_dict()
        True
        """
        try:
            twins = [Twin.from_dict(t) for t in d.get("twins", ())]
            rels = [Relationship.from_dict(r) for r in d.get("relationships", ())]
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValidationError(f"not a serialised twin graph: {err!r}") from err
        return cls(twins, rels)

    # --- internals ------------------------------------------------------------------------
    def _names(self, name: Names | None) -> tuple[str, ...]:
        if name is None:
            return tuple(self._out)
        if isinstance(name, str):
            return (name,)
        if isinstance(name, set | frozenset):
            return tuple(sorted(name))  # sets have no stable order; results should
        return tuple(dict.fromkeys(name))

    def _step(
        self, node: str, names: tuple[str, ...], dirs: tuple[str, ...]
    ) -> Iterator[tuple[str, Relationship]]:
        for n in names:
            for d in dirs:
                index = self._out if d == "out" else self._in
                yield from index.get(n, {}).get(node, {}).items()

    def _walk(
        self,
        start: str,
        step: Callable[[str], Iterable[tuple[str, Relationship]]],
        max_depth: int | None,
    ) -> list[Reach]:
        self.get(start)
        seen = {start}
        found: list[Reach] = []
        queue: deque[tuple[str, int]] = deque([(start, 0)])
        while queue:
            node, depth = queue.popleft()
            if max_depth is not None and depth >= max_depth:
                continue
            for other, rel in step(node):
                if other not in seen:
                    seen.add(other)
                    found.append(Reach(other, depth + 1, rel))
                    queue.append((other, depth + 1))
        return found

    def _of_types(self, first: list[str], more: Iterable[str] | None) -> list[Twin]:
        wanted = [*first, *sorted(set(more or ()) - set(first))]
        return [self._twins[i] for t in wanted for i in self._by_type.get(t, {})]

    def _forget_type(self, twin: Twin) -> None:
        ids = self._by_type.get(twin.type_id, {})
        ids.pop(twin.id, None)
        if not ids:
            self._by_type.pop(twin.type_id, None)


def _unlink(index: dict[str, dict[str, Relationship]], a: str, b: str) -> None:
    edges = index.get(a, {})
    edges.pop(b, None)
    if not edges:
        index.pop(a, None)


def _show(rel: Relationship) -> str:
    return f"{rel.source} --{rel.name}--> {rel.target}"


def _directions(direction: str) -> tuple[str, ...]:
    if direction not in ("out", "in", "both"):
        raise ValidationError(f"direction {direction!r} is not one of 'out', 'in', 'both'")
    return ("out", "in") if direction == "both" else (direction,)


def _compile(where: Mapping[str, Any]) -> list[tuple[str, list[tuple[str, Any]]]]:
    """Check a ``where`` mapping once, before any twin is looked at."""
    if not isinstance(where, Mapping):
        raise ValidationError(f"'where' must be a mapping, not {type(where).__name__}")
    clauses = []
    for key, cond in where.items():
        if not isinstance(key, str) or not key:
            raise ValidationError(f"filter key {key!r} must be a non-empty string")
        if not isinstance(cond, Mapping):
            clauses.append((key, [("eq", cond)]))
            continue
        unknown = set(cond) - FILTER_OPERATORS
        if unknown or not cond:
            raise ValidationError(
                f"filter on {key!r}: unknown operator(s) {sorted(map(str, unknown))}",
                hint=f"use {', '.join(sorted(FILTER_OPERATORS))}; to compare with a dict use 'eq'",
            )
        if "in" in cond and not isinstance(cond["in"], list | tuple | set | frozenset):
            raise ValidationError(f"filter on {key!r}: 'in' needs a list")
        if "exists" in cond and not isinstance(cond["exists"], bool):
            raise ValidationError(f"filter on {key!r}: 'exists' needs true or false")
        clauses.append((key, list(cond.items())))
    return clauses


def _lookup(twin: Twin, key: str) -> tuple[bool, Any]:
    head, _, rest = key.partition(".")
    section, name = (getattr(twin, head), rest) if rest and head in _SECTIONS else (
        twin.attributes, key
    )
    if name in section:
        return True, section[name]
    value: Any = section
    for part in name.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return False, None
        value = value[part]
    return True, value


def _matches(twin: Twin, key: str, ops: list[tuple[str, Any]]) -> bool:
    present, have = _lookup(twin, key)
    for op, want in ops:
        if op == "exists":
            if present != want:
                return False
        elif not present or not _compare(op, have, want):
            return False
    return True


def _compare(op: str, have: Any, want: Any) -> bool:
    try:
        if op == "eq":
            return bool(have == want)
        if op == "ne":
            return bool(have != want)
        if op == "in":
            return any(have == w for w in want)
        if op == "contains":
            if isinstance(have, str):
                return isinstance(want, str) and want in have
            return isinstance(have, list | tuple | set | frozenset) and want in have
        return bool(_ORDER[op](have, want))
    except TypeError:
        return False


__all__ = ["FILTER_OPERATORS", "IMPACT_DIRECTIONS", "Direction", "Reach", "TwinGraph", "trace"]
