"""The twin graph: index upkeep, filters, neighbours, closures, impact, and a 100k-twin fleet."""

from __future__ import annotations

import random
from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from twinloop.core.errors import NotFoundError, ValidationError
from twinloop.twins.graph import Reach, TwinGraph, trace
from twinloop.twins.twin import Relationship, Twin


def rel(source: str, name: str, target: str) -> Relationship:
    return Relationship(source, name, target)


@pytest.fixture
def plant() -> TwinGraph:
    """tank feeds two pumps, pumps feed a line, line feeds a reservoir; mcc powers the pumps."""
    twins = [
        Twin("tank-1", "Tank", {"capacity": 250}),
        Twin("pump-1", "Pump", {"rated_flow": 120, "line": "A", "model": "Etanorm 125-250"},
             reported={"speed": 1450, "bearing": {"temperature": 61.5}}),
        Twin("pump-2", "Pump", {"rated_flow": 150, "line": "B", "tags": ["spare", "vfd"]},
             desired={"speed": 1200}),
        Twin("dose-1", "DosingPump", {"rated_flow": 2, "line": "A"}),
        Twin("line-1", "PumpLine"),
        Twin("reservoir-1", "Tank", {"capacity": 5000}),
        Twin("mcc-1", "PowerSupply", {"rated_voltage": 400}),
        Twin("station-1", "PumpStation"),
    ]
    rels = [
        rel("tank-1", "feeds", "pump-1"), rel("tank-1", "feeds", "pump-2"),
        rel("pump-1", "feeds", "line-1"), rel("pump-2", "feeds", "line-1"),
        rel("line-1", "feeds", "reservoir-1"),
        rel("pump-1", "poweredBy", "mcc-1"), rel("pump-2", "poweredBy", "mcc-1"),
        rel("pump-1", "partOf", "line-1"), rel("pump-2", "partOf", "line-1"),
        rel("line-1", "partOf", "station-1"),
    ]
    return TwinGraph(twins, rels)


def ids(items: list) -> list[str]:
    return [x.id for x in items]


# --- upkeep -------------------------------------------------------------------------------
def test_lookups(plant: TwinGraph) -> None:
    assert len(plant) == 8
    assert "pump-1" in plant and "nope" not in plant and 3 not in plant
    assert plant.get("pump-1").type_id == "Pump"
    with pytest.raises(NotFoundError, match="nope"):
        plant.get("nope")
    assert ids(plant.twins())[:2] == ["tank-1", "pump-1"]


def test_add_twin_replaces_and_keeps_edges(plant: TwinGraph) -> None:
    plant.add_twin(Twin("pump-1", "DosingPump", {"rated_flow": 1}))
    assert len(plant) == 8
    assert plant.get("pump-1").attributes == {"rated_flow": 1}
    assert ids(plant.by_type("Pump")) == ["pump-2"]
    assert ids(plant.by_type("DosingPump")) == ["dose-1", "pump-1"]
    assert ids(plant.neighbours("pump-1", "feeds")) == ["line-1"]


def test_remove_twin_drops_its_edges(plant: TwinGraph) -> None:
    plant.remove_twin("pump-1")
    assert "pump-1" not in plant
    assert all("pump-1" not in (r.source, r.target) for r in plant.relationships())
    assert ids(plant.neighbours("tank-1", "feeds")) == ["pump-2"]
    assert ids(plant.neighbours("mcc-1", "poweredBy", "in")) == ["pump-2"]
    assert ids(plant.by_type("Pump")) == ["pump-2"]
    with pytest.raises(NotFoundError):
        plant.remove_twin("pump-1")


def test_add_relationship_checks_ends(plant: TwinGraph) -> None:
    with pytest.raises(NotFoundError, match="ghost"):
        plant.add_relationship(rel("pump-1", "feeds", "ghost"))
    with pytest.raises(NotFoundError, match="ghost"):
        plant.add_relationship(rel("ghost", "feeds", "pump-1"))
    with pytest.raises(ValidationError, match="itself"):
        plant.add_relationship(rel("pump-1", "feeds", "pump-1"))
    before = len(plant.relationships())
    plant.add_relationship(Relationship("tank-1", "feeds", "pump-1", {"pipe": "DN150"}))
    assert len(plant.relationships()) == before
    assert plant.relationships("tank-1", "feeds", "pump-1")[0].properties == {"pipe": "DN150"}


def test_remove_relationship(plant: TwinGraph) -> None:
    plant.remove_relationship("tank-1", "feeds", "pump-1")
    assert ids(plant.neighbours("tank-1", "feeds")) == ["pump-2"]
    assert ids(plant.neighbours("pump-1", "feeds", "in")) == []
    with pytest.raises(NotFoundError):
        plant.remove_relationship("tank-1", "feeds", "pump-1")
    with pytest.raises(NotFoundError):
        plant.remove_relationship("tank-1", "nosuch", "pump-2")


def test_relationships_query(plant: TwinGraph) -> None:
    assert len(plant.relationships()) == 10
    assert len(plant.relationships(name="feeds")) == 5
    assert {r.name for r in plant.relationships(source="pump-1")} == {
        "feeds", "poweredBy", "partOf"}
    assert {r.source for r in plant.relationships(target="line-1", name="feeds")} == {
        "pump-1", "pump-2"}
    assert len(plant.relationships("pump-1", "feeds", "line-1")) == 1
    assert plant.relationships("pump-1", "feeds", "reservoir-1") == []
    assert plant.relationships(source="nobody") == []


def test_by_type_with_subtypes(plant: TwinGraph) -> None:
    assert ids(plant.by_type("Pump")) == ["pump-1", "pump-2"]
    assert ids(plant.by_type("Pump", types={"Pump", "DosingPump"})) == [
        "pump-1", "pump-2", "dose-1"]
    assert plant.by_type("Nothing") == []


# --- filter -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("type_id", "where", "expected"),
    [
        ("Pump", None, ["pump-1", "pump-2"]),
        (None, {"line": "A"}, ["pump-1", "dose-1"]),
        ("Pump", {"line": "A"}, ["pump-1"]),
        (None, {"rated_flow": {"gt": 100}}, ["pump-1", "pump-2"]),
        (None, {"rated_flow": {"ge": 120, "lt": 150}}, ["pump-1"]),
        (None, {"rated_flow": {"le": 2}}, ["dose-1"]),
        (None, {"line": {"ne": "A"}}, ["pump-2"]),  # missing attributes never match ne
        (None, {"line": {"in": ["B", "C"]}}, ["pump-2"]),
        (None, {"model": {"contains": "125"}}, ["pump-1"]),
        (None, {"tags": {"contains": "vfd"}}, ["pump-2"]),
        (None, {"capacity": {"exists": True}}, ["tank-1", "reservoir-1"]),
        ("Pump", {"reported.speed": {"exists": False}}, ["pump-2"]),
        (None, {"reported.speed": {"ge": 1000}}, ["pump-1"]),
        (None, {"reported.bearing.temperature": {"gt": 60}}, ["pump-1"]),
        (None, {"desired.speed": 1200}, ["pump-2"]),
        (None, {"attributes.line": "B"}, ["pump-2"]),
        (None, {"line": {"gt": 5}}, []),  # str vs int: no match, no TypeError
        (None, {"rated_flow": {"gt": 1}, "line": "A"}, ["pump-1", "dose-1"]),
        (None, {"rated_flow": {"eq": {"a": 1}}}, []),
    ],
)
def test_filter(plant: TwinGraph, type_id: str | None, where: dict | None,
                expected: list[str]) -> None:
    assert ids(plant.filter(type_id, where)) == expected


def test_filter_subtypes(plant: TwinGraph) -> None:
    found = plant.filter("Pump", {"line": "A"}, types={"DosingPump"})
    assert ids(found) == ["pump-1", "dose-1"]


@pytest.mark.parametrize(
    "where",
    [{"line": {"like": "A"}}, {"line": {}}, {"line": {"in": "A"}},
     {"line": {"exists": "yes"}}, {"": 1}, {3: 1}],
)
def test_filter_rejects_bad_expressions(plant: TwinGraph, where: dict) -> None:
    with pytest.raises(ValidationError):
        plant.filter(where=where)
    with pytest.raises(ValidationError):  # checked even when nothing would be compared
        TwinGraph().filter(where=where)


# --- neighbours and closures --------------------------------------------------------------
def test_neighbours(plant: TwinGraph) -> None:
    assert ids(plant.neighbours("pump-1")) == ["line-1", "mcc-1"]
    assert ids(plant.neighbours("pump-1", "feeds")) == ["line-1"]
    assert ids(plant.neighbours("pump-1", "feeds", "in")) == ["tank-1"]
    assert ids(plant.neighbours("pump-1", "feeds", "both")) == ["line-1", "tank-1"]
    assert ids(plant.neighbours("line-1", {"partOf", "feeds"}, "in")) == ["pump-1", "pump-2"]
    assert ids(plant.neighbours("mcc-1", "poweredBy", "in")) == ["pump-1", "pump-2"]
    with pytest.raises(NotFoundError):
        plant.neighbours("nope")
    with pytest.raises(ValidationError):
        plant.neighbours("pump-1", direction="sideways")  # type: ignore[arg-type]


def test_downstream_depths_and_paths(plant: TwinGraph) -> None:
    reached = plant.downstream("tank-1")
    assert [(r.id, r.depth) for r in reached] == [
        ("pump-1", 1), ("pump-2", 1), ("line-1", 2), ("reservoir-1", 3)]
    assert reached[2].via == rel("pump-1", "feeds", "line-1")
    path = trace(reached, "reservoir-1")
    assert [(e.source, e.target) for e in path] == [
        ("tank-1", "pump-1"), ("pump-1", "line-1"), ("line-1", "reservoir-1")]
    assert trace(reached, "mcc-1") == []
    assert [r.id for r in plant.downstream("tank-1", max_depth=1)] == ["pump-1", "pump-2"]
    assert plant.downstream("tank-1", max_depth=0) == []
    assert plant.downstream("reservoir-1") == []
    assert [r.id for r in plant.downstream("pump-1", {"feeds", "partOf"})] == [
        "line-1", "reservoir-1", "station-1"]


def test_upstream(plant: TwinGraph) -> None:
    reached = plant.upstream("reservoir-1")
    assert [(r.id, r.depth) for r in reached] == [
        ("line-1", 1), ("pump-1", 2), ("pump-2", 2), ("tank-1", 3)]
    assert reached[1].via.source == "pump-1"  # the stored edge, as it points
    assert [e.target for e in trace(reached, "tank-1")] == ["reservoir-1", "line-1", "pump-1"]
    assert [r.id for r in plant.upstream("station-1", "partOf")] == ["line-1", "pump-1", "pump-2"]


def test_closures_survive_cycles() -> None:
    g = TwinGraph([Twin(i, "T") for i in "abcd"],
                  [rel("a", "feeds", "b"), rel("b", "feeds", "c"), rel("c", "feeds", "a"),
                   rel("c", "feeds", "d")])
    assert [(r.id, r.depth) for r in g.downstream("a")] == [("b", 1), ("c", 2), ("d", 3)]
    assert [(r.id, r.depth) for r in g.upstream("a")] == [("c", 1), ("b", 2)]
    with pytest.raises(NotFoundError):
        g.downstream("zzz")


def test_impact(plant: TwinGraph) -> None:
    hit = plant.impact("mcc-1")
    assert [(r.id, r.depth, r.via.name) for r in hit] == [
        ("pump-1", 1, "poweredBy"), ("pump-2", 1, "poweredBy"),
        ("line-1", 2, "feeds"), ("reservoir-1", 3, "feeds")]
    assert [r.id for r in plant.impact("tank-1")] == [
        "pump-1", "pump-2", "line-1", "reservoir-1"]
    assert plant.impact("reservoir-1") == []
    assert [r.id for r in plant.impact("mcc-1", max_depth=1)] == ["pump-1", "pump-2"]


def test_impact_of_a_container_with_its_parts(plant: TwinGraph) -> None:
    assert [r.id for r in plant.impact("station-1")] == []
    hit = plant.impact("station-1", include_parts=True)
    assert [(r.id, r.via.name) for r in hit] == [
        ("line-1", "partOf"), ("reservoir-1", "feeds"), ("pump-1", "partOf"),
        ("pump-2", "partOf")]
    # a failed pump does not take its sibling down through the line it belongs to
    assert [r.id for r in plant.impact("pump-1", include_parts=True)] == [
        "line-1", "reservoir-1"]


def test_impact_directions_can_be_overridden(plant: TwinGraph) -> None:
    hit = plant.impact("pump-1", names=("poweredBy",), directions={"poweredBy": "out"})
    assert [r.id for r in hit] == ["mcc-1"]
    with pytest.raises(ValidationError):
        plant.impact("pump-1", directions={"feeds": "up"})  # type: ignore[dict-item]


# --- whole-graph operations ---------------------------------------------------------------
def test_subgraph(plant: TwinGraph) -> None:
    sub = plant.subgraph(["tank-1", "pump-1", "line-1"])
    assert ids(sub.twins()) == ["tank-1", "pump-1", "line-1"]
    assert {r.key for r in sub.relationships()} == {
        ("tank-1", "feeds", "pump-1"), ("pump-1", "feeds", "line-1"),
        ("pump-1", "partOf", "line-1")}
    with pytest.raises(NotFoundError):
        plant.subgraph(["ghost"])


def test_round_trip(plant: TwinGraph) -> None:
    again = TwinGraph.from_dict(plant.to_dict())
    assert again.to_dict() == plant.to_dict()
    assert [r.id for r in again.impact("mcc-1")] == [r.id for r in plant.impact("mcc-1")]
    with pytest.raises(ValidationError):
        TwinGraph.from_dict({"twins": [{"type_id": "T"}]})


# --- properties and scale -----------------------------------------------------------------
def reference_bfs(edges: set[tuple[int, int]], start: int) -> dict[int, int]:
    """Shortest hop counts from ``start``, computed the plain way."""
    adj: dict[int, list[int]] = {}
    for s, t in edges:
        adj.setdefault(s, []).append(t)
    depth = {start: 0}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for t in adj.get(node, ()):
            if t not in depth:
                depth[t] = depth[node] + 1
                queue.append(t)
    del depth[start]
    return depth


@settings(max_examples=60, deadline=None)
@given(st.sets(st.tuples(st.integers(0, 11), st.integers(0, 11)).filter(lambda e: e[0] != e[1]),
               max_size=40), st.integers(0, 11))
def test_downstream_is_breadth_first_reachability(edges: set[tuple[int, int]], start: int) -> None:
    g = TwinGraph([Twin(f"n{i}", "T") for i in range(12)],
                  [rel(f"n{s}", "feeds", f"n{t}") for s, t in sorted(edges)])
    reached = g.downstream(f"n{start}")
    assert {r.id: r.depth for r in reached} == {
        f"n{k}": d for k, d in reference_bfs(edges, start).items()}
    assert [r.depth for r in reached] == sorted(r.depth for r in reached)
    for r in reached:
        assert len(trace(reached, r.id)) == r.depth
        assert isinstance(r, Reach)


def test_fleet_of_100k_twins_and_300k_edges() -> None:
    n = 100_000
    rng = random.Random(7)
    g = TwinGraph(Twin(f"t{i}", "Pump" if i % 2 else "Tank", {"n": i}) for i in range(n))
    edges: set[tuple[int, int]] = set()
    while len(edges) < 3 * n:
        s = rng.randrange(n)
        t = min(n - 1, s + rng.randrange(1, 50))  # forward only, so depths are easy to bound
        if s != t:
            edges.add((s, t))
    for s, t in edges:
        g.add_relationship(rel(f"t{s}", "feeds", f"t{t}"))
    assert len(g) == n and len(g.relationships(name="feeds")) == 3 * n
    assert len(g.by_type("Pump")) == n // 2

    start = 99_000
    local = {(s, t) for s, t in edges if s >= start}
    expected = reference_bfs(local, start)
    reached = g.downstream(f"t{start}")
    assert {r.id: r.depth for r in reached} == {f"t{k}": d for k, d in expected.items()}
    assert len(g.downstream("t0", max_depth=2)) > 0
    assert len(g.upstream(f"t{n - 1}", max_depth=1)) == len(
        g.neighbours(f"t{n - 1}", "feeds", "in"))
