"""Dependency-graph helpers shared by validation, the runner and resume planning.

A graph is a mapping ``name -> upstream names`` whose iteration order is the declaration order; every
function here is deterministic (ties are broken by declaration order, never by hashing).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Mapping, Sequence


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """Return one dependency cycle as a path ``[a, b, ..., a]``, or ``None`` when the graph is acyclic.

    Edges to names that are not in ``graph`` are ignored (they are reported separately as unknown).
    """
    white, grey, black = 0, 1, 2
    color = dict.fromkeys(graph, white)
    for start in graph:
        if color[start] != white:
            continue
        # Iterative DFS so that deep pipelines (thousands of components) cannot hit the recursion limit.
        stack: list[tuple[str, int]] = [(start, 0)]
        path: list[str] = [start]
        color[start] = grey
        while stack:
            node, i = stack[-1]
            deps = [d for d in graph[node] if d in graph]
            if i < len(deps):
                stack[-1] = (node, i + 1)
                nxt = deps[i]
                if color[nxt] == grey:
                    return [*path[path.index(nxt) :], nxt]
                if color[nxt] == white:
                    color[nxt] = grey
                    stack.append((nxt, 0))
                    path.append(nxt)
            else:
                color[node] = black
                stack.pop()
                path.pop()
    return None


def topological_order(graph: Mapping[str, Sequence[str]]) -> list[str]:
    """Order names so that every name comes after its upstream names.

    Among the names that are ready at the same time, the one declared first runs first, so the order is
    the declaration order whenever the declaration order is already valid.

    Raises:
        ValueError: the graph has a cycle.
    """
    position = {name: i for i, name in enumerate(graph)}
    downstream: dict[str, list[str]] = {name: [] for name in graph}
    pending = {}
    for name, deps in graph.items():
        known = {d for d in deps if d in graph}
        pending[name] = len(known)
        for dep in known:
            downstream[dep].append(name)
    ready = [(position[n], n) for n, count in pending.items() if count == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, name = heapq.heappop(ready)
        order.append(name)
        for child in downstream[name]:
            pending[child] -= 1
            if pending[child] == 0:
                heapq.heappush(ready, (position[child], child))
    if len(order) != len(graph):
        cycle = find_cycle(graph)
        raise ValueError(f"dependency cycle: {' -> '.join(cycle or [])}")
    return order


def descendants(graph: Mapping[str, Sequence[str]], roots: Iterable[str]) -> set[str]:
    """Return every name downstream of ``roots`` (transitively), not including the roots themselves."""
    downstream: dict[str, list[str]] = {name: [] for name in graph}
    for name, deps in graph.items():
        for dep in deps:
            if dep in downstream:
                downstream[dep].append(name)
    seen: set[str] = set()
    todo = [child for root in roots for child in downstream.get(root, [])]
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo.extend(downstream[name])
    return seen


def ancestors(graph: Mapping[str, Sequence[str]], roots: Iterable[str]) -> set[str]:
    """Return every name upstream of ``roots`` (transitively), not including the roots themselves."""
    seen: set[str] = set()
    todo = [dep for root in roots for dep in graph.get(root, ())]
    while todo:
        name = todo.pop()
        if name not in seen and name in graph:
            seen.add(name)
            todo.extend(graph[name])
    return seen
