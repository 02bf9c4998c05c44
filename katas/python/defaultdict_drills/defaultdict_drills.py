"""defaultdict drills: build a graph, BFS distances and paths, topological order, grouping, nested counts."""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

T = TypeVar("T")
K = TypeVar("K", bound=Hashable)

Graph = Mapping[str, Sequence[str]]  # node -> neighbours


def build_graph(edges: Iterable[tuple[str, str]], directed: bool = False) -> dict[str, list[str]]:
    """Adjacency lists from (u, v) edges. Every node named in an edge is a key, sinks included;
    neighbours are in order of first appearance, without repeats. Undirected: v->u as well.
    Returns a plain dict: a missing node is a KeyError for the caller, not a new empty node.

    >>> build_graph([("a", "b"), ("a", "c")], directed=True)
    {'a': ['b', 'c'], 'b': [], 'c': []}
    """
    # TODO: collect with a defaultdict, remember to create sinks, hand back a plain dict.
    raise NotImplementedError("build_graph")


def bfs_distances(graph: Graph, start: str) -> dict[str, int]:
    """Fewest edges from `start` to every reachable node (start itself: 0). `graph` may be a
    defaultdict and must not be changed; a start that is not in it reaches only itself.

    >>> bfs_distances({"a": ["b"], "b": ["c"], "c": []}, "a")
    {'a': 0, 'b': 1, 'c': 2}
    """
    # TODO: breadth-first with a deque; mark nodes when you enqueue them.
    raise NotImplementedError("bfs_distances")


def shortest_path(graph: Graph, start: str, goal: str) -> list[str] | None:
    """A path with the fewest edges from `start` to `goal` ([start] if they are equal), or None
    if `goal` can't be reached. Same rules about `graph` as bfs_distances.

    >>> shortest_path({"a": ["b", "c"], "b": ["d"], "c": [], "d": []}, "a", "d")
    ['a', 'b', 'd']
    """
    # TODO: BFS that records each node's parent, then walk back from goal.
    raise NotImplementedError("shortest_path")


def topological_order(graph: Graph) -> list[str]:
    """Every node (keys and neighbours) once, each before all nodes it points to. Among the nodes
    ready at any step, the alphabetically smallest goes first, so the answer is unique.
    ValueError if the graph has a cycle.

    >>> topological_order({"shirt": ["tie"], "tie": ["jacket"], "pants": ["jacket"]})
    ['pants', 'shirt', 'tie', 'jacket']
    """
    # TODO: Kahn's algorithm: in-degrees in a defaultdict(int), ready nodes in a heap.
    raise NotImplementedError("topological_order")


def group_by(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """Items grouped by key(item): groups in order of first appearance, items in input order.
    A plain dict.

    >>> group_by(["apple", "avocado", "banana"], lambda w: w[0])
    {'a': ['apple', 'avocado'], 'b': ['banana']}
    """
    # TODO: defaultdict(list).
    raise NotImplementedError("group_by")


def nested_counts(pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """For (outer, inner) pairs, how often each inner key occurs under each outer key, e.g.
    (day, path) -> hits per path per day. Plain dicts at both levels, first-appearance order.

    >>> nested_counts([("mon", "/"), ("mon", "/a"), ("mon", "/"), ("tue", "/")])
    {'mon': {'/': 2, '/a': 1}, 'tue': {'/': 1}}
    """
    # TODO: a defaultdict whose factory makes the inner counter.
    raise NotImplementedError("nested_counts")

