"""Built-in transform: run a SQL query over temp views and register the result as a new temp view."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow_ppf.components.base import DataFlow
from airflow_ppf.components.spark.arguments import check_text, check_view_name, check_view_names
from airflow_ppf.spark.jvm import session_state

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["SqlTransform", "infer_sql_input_views"]

log = logging.getLogger(__name__)


class SqlTransform(DataFlow):
    """Run ``sql`` and register its result as the temp view ``output_view``.

    HOCON::

        config {
          sql = "SELECT customer, SUM(amount) AS total FROM orders GROUP BY customer"
          output_view = "totals"
          input_views = ["orders"]    # optional: inferred from the SQL when left out
        }

    When ``input_views`` is not given, :attr:`input_views` asks Spark's SQL parser which relations the
    query reads (see :func:`infer_sql_input_views`). That needs a classic SparkSession (the injected one,
    else the active one); without one (no session yet, Spark Connect) or when the SQL does not parse, the
    inputs are unknown (``None``), and a resume then keeps every upstream view available. Declare
    ``input_views`` to be exact.

    Raises:
        ValueError: from the constructor, naming the bad key.
    """

    recomputable = True  # it only registers a view

    def __init__(self, sql: str, output_view: str, input_views: Sequence[str] | None = None) -> None:
        self.sql = check_text("sql", sql)
        self.output_view = check_view_name("output_view", output_view)
        self.declared_input_views = None if input_views is None else check_view_names("input_views", input_views)
        self._inferred_input_views: tuple[str, ...] | None = None

    @property
    def input_views(self) -> Sequence[str] | None:
        """The views the SQL reads: as declared, else inferred from the SQL, else ``None`` (unknown)."""
        if self.declared_input_views is not None:
            return self.declared_input_views
        if self._inferred_input_views is None:
            spark = self._spark or _active_session()
            if spark is None:
                return None
            self._inferred_input_views = infer_sql_input_views(spark, self.sql)
        return self._inferred_input_views

    @property
    def output_views(self) -> Sequence[str]:
        """The view this transform registers."""
        return (self.output_view,)

    def run(self) -> None:
        """Run the SQL and register the view."""
        frame = self.spark.sql(self.sql)
        frame.createOrReplaceTempView(self.output_view)
        inputs = self.input_views
        reads = "unknown" if inputs is None else ", ".join(inputs) or "no views"
        self.logger.info("Registered view '%s' from SQL (reads: %s)", self.output_view, reads)


def infer_sql_input_views(spark: SparkSession, sql: str) -> tuple[str, ...] | None:
    """Return the temp views ``sql`` may read, as found by Spark's SQL parser; ``None`` when it cannot tell.

    The query is parsed, not analyzed, so the views need not exist yet (a resume asks before their
    producers ran). The result lists, in order of first appearance, every single-part relation name the
    query reads (``FROM``, ``JOIN``, subqueries in expressions, CTE bodies), minus the names of the CTEs
    in scope. Multi-part names (``db.table``, ``global_temp.v``, ``parquet.`/path```) are never temp
    views and are left out; a single-part name may still be a catalog table of the current database, so
    callers should match the result against the views they know of.

    ``None`` comes back when the session has no JVM (Spark Connect) or the SQL does not parse.
    """
    state = session_state(spark)
    if state is None:
        return None
    try:
        plan = state.sqlParser().parsePlan(sql)
        return _relations_read(plan)
    except Exception as exc:
        log.debug("Cannot infer the views read by SQL %r: %s", sql, exc)
        return None


def _relations_read(plan: Any) -> tuple[str, ...]:
    found: dict[str, None] = {}
    stack: list[tuple[Any, frozenset[str]]] = [(plan, frozenset())]
    while stack:
        node, hidden = stack.pop()
        kind = node.getClass().getSimpleName()
        if kind == "UnresolvedRelation":
            parts = _scala_seq(node.multipartIdentifier())
            if len(parts) == 1 and str(parts[0]).lower() not in hidden:
                found.setdefault(str(parts[0]), None)
            continue
        pending: list[tuple[Any, frozenset[str]]] = []
        if kind == "UnresolvedWith":
            try:
                recursive = bool(node.allowRecursion())
            except Exception:  # older Spark has no recursive CTEs
                recursive = False
            names = set(hidden)
            for relation in _scala_seq(node.cteRelations()):
                name = str(relation._1()).lower()
                if recursive:
                    names.add(name)
                pending.append((relation._2(), frozenset(names)))
                names.add(name)
            pending.append((node.child(), frozenset(names)))
        else:
            children = _scala_seq(node.children()) + _scala_seq(node.innerChildren())
            pending.extend((child, hidden) for child in children)
        # Depth-first, left to right: names come out in the order they appear in the query.
        stack.extend(reversed(pending))
    return tuple(found)


def _scala_seq(seq: Any) -> list[Any]:
    return [seq.apply(i) for i in range(seq.length())]


def _active_session() -> SparkSession | None:
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        return None
    try:
        return SparkSession.getActiveSession()
    except Exception:
        return None
