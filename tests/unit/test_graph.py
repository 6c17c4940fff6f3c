"""Dependency-graph helpers: deterministic order, cycles, reachability, and no recursion limits."""

from __future__ import annotations

import random
import sys
from collections.abc import Iterator

import pytest

from airflow_ppf.config import PipelineConfig
from airflow_ppf.config.graph import ancestors, descendants, find_cycle, topological_order
from tests.helpers.components import STEP

Graph = dict[str, tuple[str, ...]]


def assert_respects_dependencies(graph: Graph, order: list[str]) -> None:
    position = {name: i for i, name in enumerate(order)}
    assert sorted(order) == sorted(graph)
    for name, deps in graph.items():
        for dep in deps:
            assert position[dep] < position[name], f"{dep} must come before {name}"


# --------------------------------------------------------------------------------------------------
# topological_order
# --------------------------------------------------------------------------------------------------


def test_a_valid_declaration_order_is_kept() -> None:
    graph: Graph = {"read": (), "clean": ("read",), "enrich": ("read",), "write": ("clean", "enrich")}

    assert topological_order(graph) == ["read", "clean", "enrich", "write"]


def test_independent_components_keep_declaration_order_not_alphabetical() -> None:
    graph: Graph = {"zeta": (), "alpha": (), "mid": ()}

    assert topological_order(graph) == ["zeta", "alpha", "mid"]


def test_dependencies_declared_later_are_moved_up() -> None:
    graph: Graph = {"write": ("clean",), "clean": ("read",), "read": ()}

    assert topological_order(graph) == ["read", "clean", "write"]


def test_ready_components_are_taken_in_declaration_order() -> None:
    # "x" is declared first but must wait for "z"; among the ready ones the earlier declared goes first.
    graph: Graph = {"x": ("z",), "y": (), "z": (), "w": ("y",)}

    assert topological_order(graph) == ["y", "z", "x", "w"]


def test_order_is_the_same_on_every_call_and_respects_dependencies() -> None:
    rng = random.Random(7)
    names = [f"n{i}" for i in range(60)]
    graph: Graph = {}
    for i, name in enumerate(names):
        graph[name] = tuple(rng.sample(names[:i], k=min(i, rng.randint(0, 3))))
    shuffled = dict(sorted(graph.items(), key=lambda _: rng.random()))

    first = topological_order(shuffled)

    assert all(topological_order(shuffled) == first for _ in range(5))
    assert_respects_dependencies(shuffled, first)


def test_unknown_dependencies_are_ignored_by_ordering() -> None:
    assert topological_order({"a": ("ghost",), "b": ("a",)}) == ["a", "b"]


def test_cycle_raises_with_its_path() -> None:
    with pytest.raises(ValueError, match=r"dependency cycle: a -> b -> a"):
        topological_order({"a": ("b",), "b": ("a",), "c": ()})


# --------------------------------------------------------------------------------------------------
# find_cycle
# --------------------------------------------------------------------------------------------------


def test_no_cycle() -> None:
    assert find_cycle({"a": (), "b": ("a",), "c": ("a", "b")}) is None
    assert find_cycle({}) is None


def test_self_loop() -> None:
    assert find_cycle({"a": ("a",)}) == ["a", "a"]


def test_cycle_path_follows_dependencies_from_the_first_declared_member() -> None:
    assert find_cycle({"a": ("c",), "b": ("a",), "c": ("b",)}) == ["a", "c", "b", "a"]


def test_cycle_reached_through_a_tail_omits_the_tail() -> None:
    graph: Graph = {"entry": ("x",), "x": ("y",), "y": ("z",), "z": ("x",)}

    assert find_cycle(graph) == ["x", "y", "z", "x"]


def test_cycle_in_a_later_component_is_found() -> None:
    graph: Graph = {"a": (), "b": ("a",), "c": ("d",), "d": ("c",)}

    assert find_cycle(graph) == ["c", "d", "c"]


def test_edges_to_unknown_names_are_not_cycles() -> None:
    assert find_cycle({"a": ("ghost",), "b": ("a", "ghost")}) is None


# --------------------------------------------------------------------------------------------------
# descendants / ancestors
# --------------------------------------------------------------------------------------------------

DIAMOND: Graph = {"a": (), "b": ("a",), "c": ("a",), "d": ("b", "c"), "lonely": ()}


@pytest.mark.parametrize(
    ("roots", "expected"),
    [(["a"], {"b", "c", "d"}), (["b"], {"d"}), (["d"], set()), (["b", "c"], {"d"}), (["ghost"], set()), ([], set())],
)
def test_descendants(roots: list[str], expected: set[str]) -> None:
    assert descendants(DIAMOND, roots) == expected


@pytest.mark.parametrize(
    ("roots", "expected"),
    [(["d"], {"a", "b", "c"}), (["b"], {"a"}), (["a"], set()), (["lonely"], set()), (["ghost"], set())],
)
def test_ancestors(roots: list[str], expected: set[str]) -> None:
    assert ancestors(DIAMOND, roots) == expected


def test_ancestors_ignore_unknown_dependencies() -> None:
    assert ancestors({"a": ("ghost",), "b": ("a",)}, ["b"]) == {"a"}


# --------------------------------------------------------------------------------------------------
# deep graphs: nothing recursive
# --------------------------------------------------------------------------------------------------

DEPTH = 2_000


@pytest.fixture
def low_recursion_limit() -> Iterator[None]:
    """Make any recursion deeper than a few hundred frames fail, whatever the default limit is."""
    old = sys.getrecursionlimit()
    sys.setrecursionlimit(500)
    yield
    sys.setrecursionlimit(old)


def chain(depth: int, *, reverse_declaration: bool) -> Graph:
    graph: Graph = {f"c{i}": ((f"c{i - 1}",) if i else ()) for i in range(depth)}
    return dict(reversed(graph.items())) if reverse_declaration else graph


@pytest.mark.usefixtures("low_recursion_limit")
def test_a_long_chain_does_not_hit_the_recursion_limit() -> None:
    graph = chain(DEPTH, reverse_declaration=True)
    expected = [f"c{i}" for i in range(DEPTH)]

    assert topological_order(graph) == expected
    assert find_cycle(graph) is None
    assert descendants(graph, ["c0"]) == set(expected[1:])
    assert ancestors(graph, [f"c{DEPTH - 1}"]) == set(expected[:-1])


@pytest.mark.usefixtures("low_recursion_limit")
def test_a_long_cycle_is_found_without_recursion() -> None:
    graph = chain(DEPTH, reverse_declaration=False)
    graph["c0"] = (f"c{DEPTH - 1}",)

    cycle = find_cycle(graph)

    assert cycle is not None
    assert len(cycle) == DEPTH + 1
    assert cycle[0] == cycle[-1] == "c0"


@pytest.mark.usefixtures("low_recursion_limit")
def test_a_long_pipeline_config_validates_and_orders() -> None:
    components = [
        {"name": f"c{i}", "class_path": STEP, "depends_on": [f"c{i - 1}"] if i else []} for i in reversed(range(DEPTH))
    ]

    config = PipelineConfig.from_dict({"name": "deep", "components": components})

    order = config.get_execution_order()
    assert order[0] == "c0"
    assert order[-1] == f"c{DEPTH - 1}"
    assert config.downstream_of(["c1990"]) == {f"c{i}" for i in range(1991, DEPTH)}
