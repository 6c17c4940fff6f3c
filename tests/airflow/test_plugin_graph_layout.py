"""The checkpoint view's graph layout: no edge passes under a box, for the example pipeline and large ones."""

from __future__ import annotations

import itertools
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

import pytest

from airflow_ppf.config import PipelineConfig
from airflow_ppf.config.graph import topological_order
from airflow_ppf.plugins.graph_layout import (
    Box,
    EdgeRoute,
    GraphLayout,
    depths,
    layout_graph,
    segments_crossing_boxes,
)

EXAMPLE_CONF = Path(__file__).resolve().parents[2] / "example_dags" / "orders_pipeline.conf"


def orders_graph() -> dict[str, tuple[str, ...]]:
    config = PipelineConfig.from_file(EXAMPLE_CONF, variables={"DATA_DIR": "/d", "OUTPUT_DIR": "/o"})
    return config.dependency_graph()


def generated_graph(components: int, seed: int, most_deps: int = 3) -> dict[str, list[str]]:
    """A random DAG: each component depends on up to ``most_deps`` earlier ones, often far back."""
    rng = random.Random(seed)
    names = [f"component_{i:03d}" for i in range(components)]
    return {
        name: sorted(rng.sample(names[:i], min(i, rng.randint(0, most_deps)))) if i else []
        for i, name in enumerate(names)
    }


def laid_out(graph: Mapping[str, Sequence[str]]) -> GraphLayout:
    return layout_graph(topological_order(graph), graph)


def assert_sound(layout: GraphLayout, graph: Mapping[str, Sequence[str]]) -> None:
    """No edge under a box, no box over another, every edge drawn from its source's right side to its
    target's left side."""
    assert segments_crossing_boxes(layout) == []
    for (a, box_a), (b, box_b) in itertools.combinations(layout.boxes.items(), 2):
        assert not box_a.contains_segment_bounds((box_b.x, box_b.y), (box_b.x + box_b.w, box_b.y + box_b.h)), (a, b)
    edges = {(e.source, e.target): e for e in layout.edges}
    assert set(edges) == {(d, name) for name, deps in graph.items() for d in deps}
    assert layout.omitted == []
    for (source, target), edge in edges.items():
        start, end = edge.points[0], edge.points[-1]
        src, dst = layout.boxes[source], layout.boxes[target]
        assert start[0] == src.x + src.w, (source, target, start)
        assert src.y < start[1] < src.y + src.h, (source, target, start)
        assert end[0] == dst.x, (source, target, end)
        assert dst.y < end[1] < dst.y + dst.h, (source, target, end)
    for box in layout.boxes.values():
        assert box.x >= 0
        assert box.y >= 0
        assert box.x + box.w <= layout.width
        assert box.y + box.h <= layout.height


def test_the_orders_pipeline_draws_no_edge_under_a_box() -> None:
    graph = orders_graph()
    layout = laid_out(graph)
    assert_sound(layout, graph)
    # read_customers -> enrich_orders skips clean_orders' column: it runs through a free slot of that
    # column, clear of clean_orders (the edge used to pass under it and read as clean_orders' input).
    [edge] = [e for e in layout.edges if (e.source, e.target) == ("read_customers", "enrich_orders")]
    clean = layout.boxes["clean_orders"]
    through = [p for p in edge.points if clean.x <= p[0] <= clean.x + clean.w]
    assert len(through) == 2
    assert through[0][1] == through[1][1]
    assert not clean.y - 10 < through[0][1] < clean.y + clean.h + 10
    assert {depths(list(graph), graph)[n] for n in ("read_orders", "read_customers")} == {0}


@pytest.mark.parametrize("seed", range(6))
def test_a_generated_60_component_pipeline_draws_no_edge_under_a_box(seed: int) -> None:
    graph = generated_graph(60, seed)
    layout = laid_out(graph)
    assert_sound(layout, graph)
    long_edges = [e for e in layout.edges if len(e.points) > 2]
    assert long_edges  # the case that matters: edges that skip columns


def test_a_1000_component_pipeline_is_laid_out_with_every_edge() -> None:
    graph = generated_graph(1000, seed=7)
    layout = laid_out(graph)
    assert len(layout.boxes) == 1000
    assert len(layout.edges) == sum(len(d) for d in graph.values())
    # Boxes of one column never overlap (checked column by column: the full check is quadratic).
    columns: dict[float, list[Box]] = {}
    for box in layout.boxes.values():
        columns.setdefault(box.x, []).append(box)
    for boxes in columns.values():
        boxes.sort(key=lambda b: b.y)
        assert all(a.y + a.h < b.y for a, b in itertools.pairwise(boxes))


def test_the_check_finds_an_edge_under_a_box() -> None:
    """The geometry check itself: the old layout's straight edge from column 0 to column 2 passes under a box
    in column 1 at the same height."""
    boxes = {
        "read_customers": Box(16, 64, 180, 34),
        "clean_orders": Box(260, 64, 180, 34),
        "enrich_orders": Box(504, 64, 180, 34),
    }
    straight = EdgeRoute("read_customers", "enrich_orders", [(196, 81), (504, 81)])
    layout = GraphLayout(700, 120, boxes, [straight])
    assert segments_crossing_boxes(layout) == [("read_customers", "enrich_orders", "clean_orders")]


def test_a_cyclic_damaged_graph_is_drawn_without_the_edges_going_back() -> None:
    graph = {"a": ["c"], "b": ["a"], "c": ["b"]}  # a damaged checkpoint: topological order is impossible
    layout = layout_graph(list(graph), graph)
    assert set(layout.boxes) == {"a", "b", "c"}
    assert layout.omitted == [("c", "a")]
    assert segments_crossing_boxes(layout) == []
