"""Where the checkpoint view draws the component graph: a layered layout whose edges never pass under a box.

Components go into columns by depth (the longest chain of dependencies before them), left to right. An
edge that skips columns gets a *waypoint* in every column it crosses, placed in that column like a small
box, so the edge runs through a free slot of the column instead of under another component (the classic
layered, "Sugiyama", layout with dummy nodes). Rows are ordered by the barycentre of their neighbours to
keep edges short and crossings few, then placed as close to their neighbours as the minimum spacing
allows (an isotonic regression per column).

Every edge is a polyline through its waypoints: between two columns it crosses the empty gap (the page
draws that stretch as a curve inside the gap), inside a column it runs straight through its waypoint's
slot. So by construction no part of an edge lies inside a box; :func:`segments_crossing_boxes` checks it
(the tests run it on real and generated pipelines).

Pure Python over names and dependencies: no Airflow, no I/O.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

__all__ = ["Box", "EdgeRoute", "GraphLayout", "depths", "layout_graph", "segments_crossing_boxes"]

#: Box size and spacing (SVG user units, ~px): the page draws boxes of this size.
NODE_WIDTH = 180.0
NODE_HEIGHT = 34.0
COLUMN_GAP = 64.0
ROW_GAP = 14.0
#: A waypoint's slot: its height and the gap between two adjacent waypoints.
WAYPOINT_HEIGHT = 6.0
WAYPOINT_GAP = 4.0
PADDING = 16.0
#: Ordering and placement sweeps.
SWEEPS = 8
#: Beyond this many waypoints the layout keeps long edges out (it would cost more than the page is worth).
MAX_WAYPOINTS = 20_000

Point = tuple[float, float]


@dataclass(frozen=True)
class Box:
    """A component's box: top-left corner and size."""

    x: float
    y: float
    w: float
    h: float

    def contains_segment_bounds(self, a: Point, b: Point, eps: float = 0.5) -> bool:
        """Whether the bounding box of segment ``a``–``b`` reaches into this box's interior."""
        left, right = min(a[0], b[0]), max(a[0], b[0])
        top, bottom = min(a[1], b[1]), max(a[1], b[1])
        return (
            right > self.x + eps
            and left < self.x + self.w - eps
            and bottom > self.y + eps
            and top < self.y + self.h - eps
        )


@dataclass(frozen=True)
class EdgeRoute:
    """The path of one dependency edge, from the source's right side to the target's left side."""

    source: str
    target: str
    points: list[Point]


@dataclass
class GraphLayout:
    """Boxes and edge routes of a component graph, and the size of the drawing."""

    width: float
    height: float
    boxes: dict[str, Box]
    edges: list[EdgeRoute]
    #: Edges not drawn: ``(source, target)`` of edges going backwards (a damaged, cyclic graph) or, past
    #: :data:`MAX_WAYPOINTS`, edges that skip columns.
    omitted: list[tuple[str, str]] = field(default_factory=list)
    #: Each component's column (:func:`depths`).
    columns: dict[str, int] = field(default_factory=dict)


@dataclass
class _Item:
    """A box or a waypoint in one column."""

    key: str
    column: int
    height: float
    waypoint: bool
    pos: float = 0.0  # order within the column
    y: float = 0.0  # centre
    up: list[_Item] = field(default_factory=list)  # neighbours in the column to the left
    down: list[_Item] = field(default_factory=list)  # neighbours in the column to the right


def depths(order: Sequence[str], graph: Mapping[str, Sequence[str]]) -> dict[str, int]:
    """Each component's column: the length of the longest chain of dependencies before it."""
    column: dict[str, int] = {}
    for name in order:
        known = [column[d] for d in graph.get(name, ()) if d in column]
        column[name] = 1 + max(known) if known else 0
    return column


def _gap(a: _Item, b: _Item) -> float:
    """Least distance between the centres of two neighbours in a column."""
    gap = WAYPOINT_GAP if a.waypoint and b.waypoint else ROW_GAP
    return (a.height + b.height) / 2 + gap


def _place(items: list[_Item], wanted: list[float]) -> None:
    """Set each item's ``y`` as near ``wanted`` as the spacing allows (least squares, order kept)."""
    offsets = [0.0]
    for a, b in itertools.pairwise(items):
        offsets.append(offsets[-1] + _gap(a, b))
    # Pool adjacent violators on z = y - offset, which must not decrease.
    blocks: list[list[float]] = []  # [sum, count]
    for target in (w - o for w, o in zip(wanted, offsets, strict=True)):
        blocks.append([target, 1.0])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    values = [total / count for total, count in blocks for _ in range(int(count))]
    for item, z, offset in zip(items, values, offsets, strict=True):
        item.y = z + offset


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def layout_graph(order: Sequence[str], graph: Mapping[str, Sequence[str]]) -> GraphLayout:
    """Lay out components ``order`` (topological) with dependencies ``graph`` (name -> upstream names)."""
    column = depths(order, graph)
    layers: list[list[_Item]] = [[] for _ in range(max(column.values(), default=-1) + 1)]
    boxes: dict[str, _Item] = {}
    for name in order:
        item = _Item(name, column[name], NODE_HEIGHT, waypoint=False)
        boxes[name] = item
        layers[item.column].append(item)

    edges = [(d, name) for name in order for d in graph.get(name, ()) if d in boxes]
    waypoints = sum(max(0, column[t] - column[s] - 1) for s, t in edges if column[t] > column[s])
    chains: list[tuple[str, str, list[_Item]]] = []
    omitted: list[tuple[str, str]] = []
    for source, target in edges:
        span = column[target] - column[source]
        if span < 1 or (span > 1 and waypoints > MAX_WAYPOINTS):
            omitted.append((source, target))
            continue
        chain = [boxes[source]]
        for col in range(column[source] + 1, column[target]):
            point = _Item(f"{source}->{target}@{col}", col, WAYPOINT_HEIGHT, waypoint=True)
            layers[col].append(point)
            chain.append(point)
        chain.append(boxes[target])
        for a, b in itertools.pairwise(chain):
            a.down.append(b)
            b.up.append(a)
        chains.append((source, target, chain))

    for layer in layers:
        for i, item in enumerate(layer):
            item.pos = float(i)
    # Order rows: barycentre of the neighbours, sweeping right then left.
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        for layer in layers[1:] if forward else reversed(layers[:-1]):
            for item in layer:
                item.pos = _mean([n.pos for n in (item.up if forward else item.down)], item.pos)
            layer.sort(key=lambda it: it.pos)
            for i, item in enumerate(layer):
                item.pos = float(i)
    # Place rows: start stacked, then pull each item towards its neighbours.
    for layer in layers:
        _place(layer, [0.0] * len(layer))
    for sweep in range(SWEEPS):
        forward = sweep % 2 == 0
        for layer in layers[1:] if forward else reversed(layers[:-1]):
            _place(layer, [_mean([n.y for n in (it.up if forward else it.down)], it.y) for it in layer])
    for layer in layers:  # finally balance each column between both sides
        _place(layer, [_mean([n.y for n in it.up + it.down], it.y) for it in layer])

    items = [it for layer in layers for it in layer]
    top = min((it.y - it.height / 2 for it in items), default=0.0)
    shift = PADDING - top

    def x_of(col: int) -> float:
        return PADDING + col * (NODE_WIDTH + COLUMN_GAP)

    placed = {
        name: Box(x_of(it.column), it.y - it.height / 2 + shift, NODE_WIDTH, NODE_HEIGHT) for name, it in boxes.items()
    }
    routes = _routes(chains, placed, shift, x_of)
    bottom = max((it.y + it.height / 2 + shift for it in items), default=0.0)
    width = PADDING * 2 + max(1, len(layers)) * NODE_WIDTH + max(0, len(layers) - 1) * COLUMN_GAP
    return GraphLayout(round(width, 1), round(bottom + PADDING, 1), placed, routes, omitted, column)


def _routes(
    chains: list[tuple[str, str, list[_Item]]],
    boxes: Mapping[str, Box],
    shift: float,
    x_of: Callable[[int], float],
) -> list[EdgeRoute]:
    """Polylines through the waypoints; several edges at one box side get ports spread along it."""
    # Which edges leave/enter each box, ordered by where their other end is (fewer crossings at the box).
    outs: dict[str, list[tuple[float, int]]] = {}
    ins: dict[str, list[tuple[float, int]]] = {}
    for i, (source, target, chain) in enumerate(chains):
        outs.setdefault(source, []).append((chain[1].y, i))
        ins.setdefault(target, []).append((chain[-2].y, i))

    def ports(sides: dict[str, list[tuple[float, int]]]) -> dict[int, float]:
        port: dict[int, float] = {}
        for name, ends in sides.items():
            box = boxes[name]
            for rank, (_, edge) in enumerate(sorted(ends)):
                port[edge] = box.y + box.h * (rank + 1) / (len(ends) + 1)
        return port

    out_port, in_port = ports(outs), ports(ins)
    routes: list[EdgeRoute] = []
    for i, (source, target, chain) in enumerate(chains):
        start = boxes[source]
        points: list[Point] = [(start.x + start.w, out_port[i])]
        for point in chain[1:-1]:
            y = point.y + shift
            x = x_of(point.column)
            points.extend([(x, y), (x + NODE_WIDTH, y)])
        points.append((boxes[target].x, in_port[i]))
        routes.append(EdgeRoute(source, target, [(round(x, 1), round(y, 1)) for x, y in points]))
    return routes


def segments_crossing_boxes(layout: GraphLayout) -> list[tuple[str, str, str]]:
    """Every ``(source, target, box)`` where a stretch of an edge reaches into a box's interior.

    A stretch is checked by its bounding box, which contains the curve the page draws between two points.
    """
    hits: list[tuple[str, str, str]] = []
    for edge in layout.edges:
        for a, b in itertools.pairwise(edge.points):
            hits.extend(
                (edge.source, edge.target, name)
                for name, box in layout.boxes.items()
                if box.contains_segment_bounds(a, b)
            )
    return hits
