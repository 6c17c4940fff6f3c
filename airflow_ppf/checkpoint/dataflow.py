"""Who produces and who reads which temp view: the data-flow facts resume needs.

Components hand data over through Spark temp views, which die with the SparkSession. A resume in a new
process may skip a component only if the views it produced, and that a component still to run reads, can
be restored. These functions answer, without touching Spark: which views of a finished component are
still needed downstream, and which (producer, view) pairs a set of components about to run depends on.

A component whose inputs are unknown (a custom component that declares nothing) is assumed to read every
view produced upstream of it: over-saving is safe, under-saving is not.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from airflow_ppf.config.graph import ancestors, descendants, topological_order

__all__ = ["ViewIO", "needed_downstream", "pending_readers", "views_to_restore"]


@dataclass(frozen=True)
class ViewIO:
    """Views a component reads and writes; ``None`` means unknown."""

    inputs: tuple[str, ...] | None
    outputs: tuple[str, ...] | None

    @classmethod
    def of(cls, component: object) -> ViewIO:
        """Read the declared views of a component (``()`` declared means "none")."""
        return cls(_views(component, "input_views"), cls.outputs_of(component))

    @staticmethod
    def outputs_of(component: object) -> tuple[str, ...] | None:
        """Read only the declared output views of a component (cheap: a SQL component's inputs come from
        parsing its SQL, its outputs do not)."""
        return _views(component, "output_views")


def _views(component: object, attr: str) -> tuple[str, ...] | None:
    declared = getattr(component, attr, None)
    return None if declared is None else tuple(declared)


def _same(a: str, b: str) -> bool:
    """Spark resolves temp view names case-insensitively."""
    return a.lower() == b.lower()


def _has(views: Sequence[str], view: str) -> bool:
    return any(_same(v, view) for v in views)


Graph = Mapping[str, Sequence[str]]


def pending_readers(
    graph: Graph,
    producer: str,
    views: Sequence[str],
    io: Mapping[str, ViewIO],
    pending: Collection[str],
) -> dict[str, list[str]] | None:
    """Return ``{view: [pending components downstream of producer that may read it]}`` for ``views``.

    ``None`` when a pending component downstream does not declare what it reads (it may read any of
    them). A reader of a view of the same name produced nearer to it is counted too (over-counting is safe).
    """
    readers = sorted(descendants(graph, [producer]) & set(pending))
    found: dict[str, list[str]] = {v: [] for v in views}
    for reader in readers:
        inputs = io[reader].inputs if reader in io else None
        if inputs is None:
            return None
        for view in views:
            if _has(inputs, view):
                found[view].append(reader)
    return found


def needed_downstream(views: Sequence[str], readers: Mapping[str, Sequence[str]] | None) -> list[str]:
    """Return the ``views`` of a producer that a pending component downstream of it may read, given what
    :func:`pending_readers` answered for them (``None``: any of them)."""
    if readers is None:
        return list(views)
    return [v for v in views if readers[v]]


def views_to_restore(
    graph: Graph,
    to_run: Collection[str],
    skipped: Collection[str],
    io: Mapping[str, ViewIO],
) -> dict[tuple[str, str], list[str]]:
    """Return ``{(producer, view): [readers]}`` for views that skipped components produced and that
    components about to run read.

    ``graph`` maps each component to what it depends on (``PipelineConfig.dependency_graph()``, or the
    graph a checkpoint recorded); ``io`` holds the views of every component: declared, or recorded at
    run time for skipped ones. A view is attributed to the nearest upstream producer of that name; a view
    nobody in the pipeline produces (a table registered outside) is not a restore requirement.
    """
    order = {name: i for i, name in enumerate(topological_order(graph))}
    skipped_set, run_set = set(skipped), set(to_run)
    needs: dict[tuple[str, str], list[str]] = {}
    for reader in sorted(run_set, key=order.__getitem__):
        upstream = sorted(ancestors(graph, [reader]), key=order.__getitem__, reverse=True)
        inputs = io[reader].inputs if reader in io else None
        if inputs is None:
            seen: set[str] = set()
            for producer in upstream:
                outputs = io[producer].outputs if producer in io else None
                for view in outputs or ():
                    if view.lower() in seen:
                        continue  # shadowed by a nearer producer
                    seen.add(view.lower())
                    if producer in skipped_set:
                        needs.setdefault((producer, view), []).append(reader)
            continue
        for view in inputs:
            for producer in upstream:
                outputs = io[producer].outputs if producer in io else None
                if outputs is not None and _has(outputs, view):
                    produced = next(v for v in outputs if _same(v, view))
                    if producer in skipped_set:
                        needs.setdefault((producer, produced), []).append(reader)
                    break
    return needs
