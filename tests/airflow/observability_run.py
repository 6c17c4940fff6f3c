"""Run a DAG file's ``dag`` with ``dag.test()`` as a worker would trace it; write what happened as JSON.

Usage: ``python -m tests.airflow.observability_run DAG_FILE OUT_JSON`` (Airflow's settings come from the
environment: ``[traces] otel_on``, ``[metrics] statsd_*``, ``[openlineage] transport``).

Airflow's own tracer provider (made by ``[traces] otel_on``) gets an in-memory exporter as well; the
task runs inside the span Airflow's worker opens for a task (``task_runner._make_task_span``), which
``dag.test()`` does not open by itself.
"""

from __future__ import annotations

import json
import runpy
import sys
from types import SimpleNamespace
from typing import Any


def main() -> None:
    dag_file, out = sys.argv[1], sys.argv[2]
    import airflow.settings  # noqa: F401 - configures Airflow's OpenTelemetry tracing
    from opentelemetry import trace
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider: Any = trace.get_tracer_provider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # fails (as it should) when tracing is off

    from airflow.sdk.execution_time.task_runner import _make_task_span

    dag = runpy.run_path(dag_file)["dag"]
    ti = SimpleNamespace(
        context_carrier=None, task_id="pipeline", map_index=-1, dag_id=dag.dag_id, run_id="dag-test", try_number=1
    )
    with _make_task_span(SimpleNamespace(ti=ti)) as task_span:
        dag_run = dag.test()
    spans = [
        {
            "name": s.name,
            "span_id": format(s.context.span_id, "016x"),
            "parent_id": format(s.parent.span_id, "016x") if s.parent is not None else None,
            "trace_id": format(s.context.trace_id, "032x"),
            "attributes": dict(s.attributes or {}),
            "status": s.status.status_code.name,
            "duration_ns": (s.end_time or 0) - (s.start_time or 0),
        }
        for s in exporter.get_finished_spans()
    ]
    result = {
        "state": str(dag_run.state),
        "run_id": dag_run.run_id,
        "task_span_id": format(task_span.get_span_context().span_id, "016x"),
        "spans": spans,
    }
    with open(out, "w", encoding="utf-8") as fh:
        json.dump(result, fh, default=str)


if __name__ == "__main__":
    main()
