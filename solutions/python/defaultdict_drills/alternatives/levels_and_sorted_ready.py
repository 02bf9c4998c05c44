"""defaultdict drills: build a graph, BFS distances and paths, topological order, grouping, nested counts."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from typing import TypeVar

from sortedcontainers import SortedSet

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
    # dict[str, None] as the inner value is an insertion-ordered set: O(1) "seen it?" checks
    # where `v not in some_list` would be O(degree).
    adjacency: defaultdict[str, dict[str, None]] = defaultdict(dict)
    for u, v in edges:
        adjacency[u][v] = None
        if directed:
            adjacency[v]  # a read of a missing key creates it: that is how sinks become keys
        else:
            adjacency[v][u] = None
    # A defaultdict handed to callers turns every typo'd lookup into a silent new empty node.
    return {node: list(neighbours) for node, neighbours in adjacency.items()}


def bfs_distances(graph: Graph, start: str) -> dict[str, int]:
    """Fewest edges from `start` to every reachable node (start itself: 0). `graph` may be a
    defaultdict and must not be changed; a start that is not in it reaches only itself.

    >>> bfs_distances({"a": ["b"], "b": ["c"], "c": []}, "a")
    {'a': 0, 'b': 1, 'c': 2}
    """
    # Level by level: the frontier holds every node at distance d, the next one those at d + 1.
    distance = {start: 0}
    frontier = [start]
    level = 0
    while frontier:
        level += 1
        following = []
        for node in frontier:
            for neighbour in graph.get(node, ()):
                if neighbour not in distance:
                    distance[neighbour] = level
                    following.append(neighbour)
        frontier = following
    return distance


def shortest_path(graph: Graph, start: str, goal: str) -> list[str] | None:
    """A path with the fewest edges from `start` to `goal` ([start] if they are equal), or None
    if `goal` can't be reached. Same rules about `graph` as bfs_distances.

    >>> shortest_path({"a": ["b", "c"], "b": ["d"], "c": [], "d": []}, "a", "d")
    ['a', 'b', 'd']
    """
    # Level by level, remembering who reached each node first; then walk back from the goal.
    came_from: dict[str, str] = {}
    seen = {start}
    frontier = [start]
    while frontier and goal not in seen:
        following = []
        for node in frontier:
            for neighbour in graph.get(node, ()):
                if neighbour not in seen:
                    seen.add(neighbour)
                    came_from[neighbour] = node
                    following.append(neighbour)
        frontier = following
    if goal not in seen:
        return None
    path = [goal]
    while path[-1] != start:
        path.append(came_from[path[-1]])
    path.reverse()
    return path


def topological_order(graph: Graph) -> list[str]:
    """Every node (keys and neighbours) once, each before all nodes it points to. Among the nodes
    ready at any step, the alphabetically smallest goes first, so the answer is unique.
    ValueError if the graph has a cycle.

    >>> topological_order({"shirt": ["tie"], "tie": ["jacket"], "pants": ["jacket"]})
    ['pants', 'shirt', 'tie', 'jacket']
    """
    indegree: defaultdict[str, int] = defaultdict(int)
    for node, neighbours in graph.items():
        indegree[node] += 0  # nodes nobody points to need an entry too
        for neighbour in neighbours:
            indegree[neighbour] += 1
    # A heap instead of a FIFO queue: the smallest ready node first makes the order unique.
    ready = SortedSet(node for node, degree in indegree.items() if degree == 0)
    order = []
    while ready:
        node = ready.pop(0)  # the smallest ready node
        order.append(node)
        for neighbour in graph.get(node, ()):
            indegree[neighbour] -= 1
            if indegree[neighbour] == 0:
                ready.add(neighbour)
    # Nodes on a cycle never reach in-degree 0, so they are never emitted.
    if len(order) < len(indegree):
        stuck = sorted(n for n, d in indegree.items() if d > 0)
        raise ValueError(f"the graph has a cycle through some of {stuck}")
    return order


def group_by(items: Iterable[T], key: Callable[[T], K]) -> dict[K, list[T]]:
    """Items grouped by key(item): groups in order of first appearance, items in input order.
    A plain dict.

    >>> group_by(["apple", "avocado", "banana"], lambda w: w[0])
    {'a': ['apple', 'avocado'], 'b': ['banana']}
    """
    groups: defaultdict[K, list[T]] = defaultdict(list)
    for item in items:
        groups[key(item)].append(item)
    return dict(groups)  # plain dict: a missing key is a KeyError, not a new empty group


def nested_counts(pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """For (outer, inner) pairs, how often each inner key occurs under each outer key, e.g.
    (day, path) -> hits per path per day. Plain dicts at both levels, first-appearance order.

    >>> nested_counts([("mon", "/"), ("mon", "/a"), ("mon", "/"), ("tue", "/")])
    {'mon': {'/': 2, '/a': 1}, 'tue': {'/': 1}}
    """
    # The factory must be callable: defaultdict(Counter), not defaultdict(defaultdict(int)),
    # which is a TypeError ("first argument must be callable or None").
    # Count the pairs first (a Counter keeps first-appearance order), then split them by day.
    nested: dict[str, dict[str, int]] = {}
    for (outer, inner), n in Counter(pairs).items():
        nested.setdefault(outer, {})[inner] = n
    return nested

