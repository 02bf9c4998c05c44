"""Tests for the defaultdict drills: graphs, BFS, topological order, grouping, against slow oracles."""

from __future__ import annotations

import itertools
import random
import sys
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .defaultdict_drills import (
    bfs_distances,
    build_graph,
    group_by,
    nested_counts,
    shortest_path,
    topological_order,
)

PROPERTY = settings(
    max_examples=120, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

NODES = "abcdef"
edge_lists = st.lists(st.tuples(st.sampled_from(NODES), st.sampled_from(NODES)), max_size=12)


# --- oracles --------------------------------------------------------------------------------


def oracle_distances(edges: list[tuple[str, str]], start: str) -> dict[str, int]:
    """Relax every edge n times (Bellman-Ford with unit weights): slow and obviously right."""
    dist = {start: 0}
    for _ in range(len(NODES)):
        for u, v in edges:
            if u in dist and dist[u] + 1 < dist.get(v, len(NODES) + 1):
                dist[v] = dist[u] + 1
    return dist


def oracle_topological(edges: list[tuple[str, str]], nodes: set[str]) -> list[str] | None:
    """The alphabetically smallest valid order among all permutations, or None on a cycle."""
    valid = [
        list(p) for p in itertools.permutations(sorted(nodes))
        if all(p.index(u) < p.index(v) for u, v in edges)
    ]
    return min(valid) if valid else None


# --- build_graph ----------------------------------------------------------------------------


@pytest.mark.stage(1, "building and grouping")
def test_a_directed_graph_has_every_node_as_a_key_sinks_included() -> None:
    graph = build_graph([("a", "b"), ("a", "c"), ("c", "b"), ("a", "b")], directed=True)
    assert graph == {"a": ["b", "c"], "b": [], "c": ["b"]}, (
        f"got {graph}: b is a sink (no edges out) and still a node; with a defaultdict, touch "
        "graph[v] so it exists. Repeated edges appear once"
    )


@pytest.mark.stage(1, "building and grouping")
def test_an_undirected_graph_has_both_directions() -> None:
    graph = build_graph([("a", "b"), ("b", "c"), ("b", "a")])
    assert graph == {"a": ["b"], "b": ["a", "c"], "c": ["b"]}, (
        f"got {graph}: undirected, each edge goes both ways, and b-a repeats a-b (listed once)"
    )
    loop = build_graph([("a", "a")])
    assert loop == {"a": ["a"]}, f"a self-loop a-a is one neighbour, not two: got {loop}"


@pytest.mark.stage(1, "building and grouping")
def test_the_graph_handed_back_does_not_invent_nodes() -> None:
    graph = build_graph([("a", "b")], directed=True)
    try:
        neighbours = graph["typo"]
    except KeyError:
        pass
    else:
        pytest.fail(
            f"graph['typo'] returned {neighbours!r} and created a node: a defaultdict handed to "
            "callers turns every mistaken lookup into a new empty node. Return dict(...)"
        )
    assert set(graph) == {"a", "b"}, f"the graph's nodes became {sorted(graph)} after a lookup"
    assert type(graph) is dict, f"build_graph returned a {type(graph).__name__}: hand out a plain dict"


@pytest.mark.stage(4, "against the oracles")
@PROPERTY
@given(edge_lists, st.booleans())
def test_graph_matches_the_edges(edges: list[tuple[str, str]], directed: bool) -> None:
    graph = build_graph(iter(edges), directed=directed)
    want_arcs = set(edges) if directed else set(edges) | {(v, u) for u, v in edges}
    got_arcs = {(u, v) for u, vs in graph.items() for v in vs}
    assert got_arcs == want_arcs, f"edges {edges} (directed={directed}) gave {graph}"
    assert all(len(vs) == len(set(vs)) for vs in graph.values()), f"repeated neighbours: {graph}"
    assert set(graph) == {n for e in edges for n in e}, f"nodes of {edges} vs keys of {graph}"


# --- BFS -------------------------------------------------------------------------------------


@pytest.mark.stage(2, "shortest paths")
def test_bfs_counts_fewest_edges_not_first_found() -> None:
    # a stack (depth-first) follows a->c->e->d and reports d at 3; breadth-first finds a->b->d
    graph = {"a": ["b", "c"], "b": ["d"], "c": ["e"], "e": ["d"], "d": []}
    got = bfs_distances(graph, "a")
    assert got == {"a": 0, "b": 1, "c": 1, "d": 2, "e": 2}, (
        f"got {got}: distances are the fewest edges; explore breadth-first (a FIFO deque, "
        "popleft), not depth-first (a stack)"
    )


@pytest.mark.stage(2, "shortest paths")
def test_bfs_terminates_on_cycles() -> None:
    graph = {"a": ["b"], "b": ["a", "c"], "c": ["c"]}
    got = bfs_distances(graph, "a")
    assert got == {"a": 0, "b": 1, "c": 2}, (
        f"got {got} on a graph with cycles: a node seen once is never queued again (mark it "
        "when you enqueue it)"
    )


@pytest.mark.stage(2, "shortest paths")
def test_bfs_and_paths_do_not_change_a_defaultdict_graph() -> None:
    graph: defaultdict[str, list[str]] = defaultdict(list, {"a": ["b"], "b": []})
    assert bfs_distances(graph, "nowhere") == {"nowhere": 0}, "a start outside the graph reaches itself"
    assert shortest_path(graph, "nowhere", "a") is None, "nothing is reachable from outside the graph"
    assert shortest_path(graph, "a", "b") == ["a", "b"], "a -> b is one edge"
    assert set(graph) == {"a", "b"}, (
        f"the graph now has keys {sorted(graph)}: reading graph[node] on a defaultdict inserted "
        "them. Read with graph.get(node, ())"
    )


@pytest.mark.stage(2, "shortest paths")
def test_the_path_from_a_node_to_itself_is_that_node() -> None:
    graph = {"a": ["b"], "b": ["a"]}
    for start in ("a", "zzz"):
        got = shortest_path(graph, start, start)
        assert got == [start], (
            f"shortest_path(graph, {start!r}, {start!r}) is {got}: start == goal is a path of no "
            "edges, [start], even for a node the graph doesn't have"
        )
    assert shortest_path(graph, "b", "a") == ["b", "a"], "b -> a is one edge"
    assert shortest_path(graph, "a", "zzz") is None, "a node that isn't in the graph is unreachable"


@pytest.mark.stage(4, "against the oracles")
@PROPERTY
@given(edge_lists, st.sampled_from(NODES))
def test_bfs_matches_the_oracle(edges: list[tuple[str, str]], start: str) -> None:
    graph = build_graph(edges, directed=True)
    want = oracle_distances(edges, start)
    got = bfs_distances(graph, start)
    assert got == want, f"distances from {start} in {graph}: expected {want}, got {got}"


@pytest.mark.stage(4, "against the oracles")
@PROPERTY
@given(edge_lists, st.sampled_from(NODES), st.sampled_from(NODES))
def test_shortest_path_is_a_real_path_of_the_fewest_edges(
    edges: list[tuple[str, str]], start: str, goal: str
) -> None:
    graph = build_graph(edges, directed=True)
    want = oracle_distances(edges, start).get(goal)
    path = shortest_path(graph, start, goal)
    if want is None:
        assert path is None, f"{goal} is unreachable from {start} in {graph}, got path {path}"
        return
    assert path is not None, f"{goal} is reachable from {start} in {graph}, got None"
    assert path[0] == start and path[-1] == goal, f"path {path} must run from {start} to {goal}"
    assert all((u, v) in set(edges) for u, v in itertools.pairwise(path)), (
        f"path {path} uses an edge that isn't in {graph}"
    )
    assert len(path) - 1 == want, f"path {path} has {len(path) - 1} edges, the fewest is {want}"


# --- topological order -----------------------------------------------------------------------


@pytest.mark.stage(3, "topological order")
def test_topological_order_takes_the_smallest_ready_node_first() -> None:
    graph = {"shirt": ["tie", "belt"], "tie": ["jacket"], "pants": ["belt", "shoes"],
             "belt": ["jacket"], "socks": ["shoes"]}
    got = topological_order(graph)
    want = ["pants", "shirt", "belt", "socks", "shoes", "tie", "jacket"]
    assert got == want, (
        f"got {got}: when several nodes are ready, take the alphabetically smallest one (a heap "
        "of ready nodes, not a FIFO queue), so the order is unique"
    )


@pytest.mark.stage(3, "topological order")
@pytest.mark.parametrize("graph", [
    {"a": ["b"], "b": ["c"], "c": ["a"], "start": ["a"]},
    {"a": ["a"], "b": []},  # a node that points at itself is a cycle too
])
def test_a_cycle_is_an_error_not_a_partial_order(graph: dict[str, list[str]]) -> None:
    assert topological_order({"x": ["y"]}) == ["x", "y"], "x -> y: x first"
    try:
        got = topological_order(graph)
    except ValueError:
        return
    pytest.fail(
        f"returned {got} for {graph}, which has a cycle: nodes on a cycle never reach "
        "in-degree 0, so compare the output's length with the number of nodes"
    )


@pytest.mark.stage(4, "against the oracles")
@PROPERTY
@given(edge_lists.filter(lambda es: all(u != v for u, v in es)))
def test_topological_order_matches_the_oracle(edges: list[tuple[str, str]]) -> None:
    graph = build_graph(edges, directed=True)
    want = oracle_topological(edges, set(graph))
    if want is None:
        with pytest.raises(ValueError):
            topological_order(graph)
        return
    got = topological_order(graph)
    assert got == want, (
        f"graph {graph}: expected {want} (the smallest ready node first), got {got}; "
        "a cycle must be reported with ValueError"
    )


# --- grouping and nested counts ---------------------------------------------------------------


@pytest.mark.stage(1, "building and grouping")
def test_group_by_keeps_order_and_returns_a_plain_dict() -> None:
    words = ["apple", "banana", "avocado", "blueberry", "cherry", "apricot"]
    got = group_by(words, lambda w: w[0])
    assert got == {"a": ["apple", "avocado", "apricot"], "b": ["banana", "blueberry"],
                   "c": ["cherry"]}, f"got {got}: each item under key(item), in input order"
    assert list(got) == ["a", "b", "c"], "groups in order of first appearance"
    assert type(got) is dict, (
        f"group_by returned a {type(got).__name__}: a defaultdict handed to callers would answer "
        "[] for got['z'] and grow a group; return dict(groups)"
    )
    assert group_by([], len) == {}, "no items, no groups"


@pytest.mark.stage(4, "against the oracles")
@PROPERTY
@given(st.lists(st.integers(-20, 20), max_size=30))
def test_group_by_matches_the_oracle(numbers: list[int]) -> None:
    got = group_by(iter(numbers), lambda n: n % 3)
    want = {k: [n for n in numbers if n % 3 == k] for k in dict.fromkeys(n % 3 for n in numbers)}
    assert got == want and list(got) == list(want), f"group_by({numbers}, n % 3): expected {want}"


@pytest.mark.stage(1, "building and grouping")
def test_nested_counts_are_plain_dicts_at_both_levels() -> None:
    pairs = [("mon", "/"), ("mon", "/a"), ("tue", "/"), ("mon", "/"), ("tue", "/b")]
    got = nested_counts(iter(pairs))
    assert got == {"mon": {"/": 2, "/a": 1}, "tue": {"/": 1, "/b": 1}}, (
        f"got {got}: for each day, how often each path came up that day"
    )
    assert list(got) == ["mon", "tue"] and list(got["mon"]) == ["/", "/a"], (
        "both levels in order of first appearance"
    )
    for outer in got.values():
        try:
            hits = outer["/never"]
        except KeyError:
            continue
        pytest.fail(
            f"an inner dict answered {hits!r} for a path it never saw: a Counter or defaultdict "
            "answers 0 for anything, so convert the inner level too: {k: dict(c) for ...}"
        )
    assert type(got) is dict, (
        f"nested_counts returned a {type(got).__name__}: got['sun'] must be a KeyError, not a new "
        "empty day; return plain dicts at both levels"
    )


@pytest.mark.stage(4, "against the oracles")
@PROPERTY
@given(st.lists(st.tuples(st.sampled_from("xy"), st.sampled_from("pqr")), max_size=20))
def test_nested_counts_match_the_oracle(pairs: list[tuple[str, str]]) -> None:
    want = {o: {i: pairs.count((o, i)) for i in dict.fromkeys(i for oo, i in pairs if oo == o)}
            for o in dict.fromkeys(o for o, _ in pairs)}
    assert nested_counts(pairs) == want, f"nested_counts({pairs}): expected {want}"


# --- work counted at two sizes: O(V + E), not O(V * E) -----------------------------------------


class Counted:
    """Work done by the code under test: lines run in its module, and node hashes/comparisons."""

    lines = 0
    node_ops = 0


class Node(str):
    """A node name that counts hashing and comparisons: a dict or set lookup costs one or two,
    `in` a list one per item, a heap a few per push or pop."""

    __slots__ = ()

    def __hash__(self) -> int:
        Counted.node_ops += 1
        return str.__hash__(self)

    def __eq__(self, other: object) -> bool:
        Counted.node_ops += 1
        return str.__eq__(self, other)

    def __lt__(self, other: str) -> bool:
        Counted.node_ops += 1
        return str.__lt__(self, other)


@contextmanager
def counting_work(code_file: str) -> Iterator[None]:
    """Count the lines run in `code_file` (sys.settrace, that file only) and Node operations."""

    def line_counter(frame: FrameType, event: str, arg: object) -> Any:
        if event == "line":
            Counted.lines += 1
        return line_counter

    def on_call(frame: FrameType, event: str, arg: object) -> Any:
        return line_counter if frame.f_code.co_filename == code_file else None

    Counted.lines = Counted.node_ops = 0
    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)


def layered_dag(n: int) -> dict[str, list[str]]:
    """n nodes, each pointing at up to 3 later ones: acyclic, about 3n edges, one component."""
    rng = random.Random(1944)
    nodes = [Node(f"n{i:05d}") for i in range(n)]
    return {node: sorted({nodes[min(i + rng.randrange(1, 20), n - 1)] for _ in range(3)} - {node})
            for i, node in enumerate(nodes)}


def work_of(function: Callable[..., Any], n: int) -> int:
    graph = layered_dag(n)
    first, last = sorted(graph)[0], sorted(graph)[-1]
    args = {bfs_distances: (graph, first), shortest_path: (graph, first, last),
            topological_order: (graph,)}[function]
    with counting_work(function.__code__.co_filename):
        got = function(*args)
    work = Counted.lines + Counted.node_ops
    assert got is not None and len(got) > 1, f"{function.__name__} on a {n}-node chain gave {got!r}"
    return work


@pytest.mark.stage(5, "linear work")
@pytest.mark.parametrize("function", [bfs_distances, shortest_path, topological_order],
                         ids=lambda f: f.__name__)
def test_the_work_is_linear_in_the_size_of_the_graph(function: Callable[..., Any]) -> None:
    small, large = work_of(function, 150), work_of(function, 1_200)
    ratio = large / max(small, 1)
    assert ratio < 20, (
        f"{function.__name__} did {small} units of work (lines run in your module, hashes and "
        f"comparisons of node names) on a graph of 150 nodes and {large} on one of 1200: "
        f"{ratio:.0f} times as much for 8 times the graph, where O(V + E) does about 8 times (and "
        "a heap of ready nodes about 10). Something is O(V) per node: a list of seen nodes "
        "(`in` a list scans it; use a set or dict), or a scan of every node or edge to find "
        "the next one (keep in-degrees and a heap of the ready nodes)"
    )
