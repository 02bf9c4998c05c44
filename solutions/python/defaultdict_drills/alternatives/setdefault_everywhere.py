"""defaultdict drills: build a graph, BFS distances and paths, topological order, grouping, nested counts."""

from __future__ import annotations

import heapq
from collections import deque
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
    # dict[str, None] as the inner value is an insertion-ordered set: O(1) "seen it?" checks
    # where `v not in some_list` would be O(degree).
    # No defaultdict: setdefault creates a node on purpose, and nothing else ever does.
    adjacency: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()
    for u, v in edges:
        arcs = [(u, v)] if directed else [(u, v), (v, u)]
        adjacency.setdefault(u, [])
        adjacency.setdefault(v, [])
        for a, b in arcs:
            if (a, b) not in seen:
                seen.add((a, b))
                adjacency[a].append(b)
    return adjacency


def bfs_distances(graph: Graph, start: str) -> dict[str, int]:
    """Fewest edges from `start` to every reachable node (start itself: 0). `graph` may be a
    defaultdict and must not be changed; a start that is not in it reaches only itself.

    >>> bfs_distances({"a": ["b"], "b": ["c"], "c": []}, "a")
    {'a': 0, 'b': 1, 'c': 2}
    """
    distance = {start: 0}
    queue = deque([start])  # list.pop(0) would make each dequeue O(n)
    while queue:
        node = queue.popleft()
        # .get, not graph[node]: on a defaultdict a plain read inserts the missing key.
        for neighbour in graph.get(node, ()):
            if neighbour not in distance:  # marked when enqueued, so each node is queued once
                distance[neighbour] = distance[node] + 1
                queue.append(neighbour)
    return distance


def shortest_path(graph: Graph, start: str, goal: str) -> list[str] | None:
    """A path with the fewest edges from `start` to `goal` ([start] if they are equal), or None
    if `goal` can't be reached. Same rules about `graph` as bfs_distances.

    >>> shortest_path({"a": ["b", "c"], "b": ["d"], "c": [], "d": []}, "a", "d")
    ['a', 'b', 'd']
    """
    parent: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue and goal not in parent:
        node = queue.popleft()
        for neighbour in graph.get(node, ()):
            if neighbour not in parent:
                parent[neighbour] = node
                queue.append(neighbour)
    if goal not in parent:
        return None
    # Walk the parent links back from the goal: BFS reached each node first by a shortest path.
    path: list[str] = []
    node: str | None = goal
    while node is not None:
        path.append(node)
        node = parent[node]
    return path[::-1]


def topological_order(graph: Graph) -> list[str]:
    """Every node (keys and neighbours) once, each before all nodes it points to. Among the nodes
    ready at any step, the alphabetically smallest goes first, so the answer is unique.
    ValueError if the graph has a cycle.

    >>> topological_order({"shirt": ["tie"], "tie": ["jacket"], "pants": ["jacket"]})
    ['pants', 'shirt', 'tie', 'jacket']
    """
    indegree: dict[str, int] = {}
    for node, neighbours in graph.items():
        indegree.setdefault(node, 0)
        for neighbour in neighbours:
            indegree[neighbour] = indegree.get(neighbour, 0) + 1
    # A heap instead of a FIFO queue: the smallest ready node first makes the order unique.
    ready = [node for node, degree in indegree.items() if degree == 0]
    heapq.heapify(ready)
    order = []
    while ready:
        node = heapq.heappop(ready)
        order.append(node)
        for neighbour in graph.get(node, ()):
            indegree[neighbour] -= 1
            if indegree[neighbour] == 0:
                heapq.heappush(ready, neighbour)
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
    groups: dict[K, list[T]] = {}
    for item in items:
        groups.setdefault(key(item), []).append(item)
    return groups


def nested_counts(pairs: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """For (outer, inner) pairs, how often each inner key occurs under each outer key, e.g.
    (day, path) -> hits per path per day. Plain dicts at both levels, first-appearance order.

    >>> nested_counts([("mon", "/"), ("mon", "/a"), ("mon", "/"), ("tue", "/")])
    {'mon': {'/': 2, '/a': 1}, 'tue': {'/': 1}}
    """
    # The factory must be callable: defaultdict(Counter), not defaultdict(defaultdict(int)),
    # which is a TypeError ("first argument must be callable or None").
    counts: dict[str, dict[str, int]] = {}
    for outer, inner in pairs:
        row = counts.setdefault(outer, {})
        row[inner] = row.get(inner, 0) + 1
    return counts

