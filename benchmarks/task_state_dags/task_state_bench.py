"""The DAG of ``benchmarks/task_state_overhead.py``: one pipeline of trivial components, three stores.

Each task runs the same pipeline (``COMPONENTS`` components that do nothing) through ``PipelineOperator``
and differs only in where the checkpoint goes:

* ``in_memory``: an :class:`~airflow_ppf.checkpoint.stores.InMemoryCheckpointStore` (no round trip to
  Airflow: the baseline);
* ``task_state``: Airflow's task state store, as the operator uses it by default (format 2);
* ``task_state_format1``: the task state store written the way format 1 did (every save reads the head
  for fencing and rewrites the whole checkpoint): the cost before issue 13.

Each task returns (XCom) how long the store's ``save`` calls took in all, how many there were, and how many
round trips to Airflow's API they made.
"""

from __future__ import annotations

import json
import time
from typing import Any

from airflow.sdk import DAG, chain

from airflow_ppf.checkpoint import InMemoryCheckpointStore
from airflow_ppf.operators import PipelineOperator
from airflow_ppf.stores.task_state import TaskStateCheckpointStore

DAG_ID = "ppf_task_state_bench"
COMPONENTS = 40
VARIANTS = ("in_memory", "task_state", "task_state_format1")

PIPELINE = json.dumps(
    {
        "name": "task-state-bench",
        "materialize": "never",
        "components": [
            {
                "name": f"c{i:03d}",
                "class_path": "airflow_ppf.components.faults.FaultInjection",
                "depends_on": [f"c{i - 1:03d}"] if i else [],
                # A variable nobody sets: the component never fails and does nothing.
                "config": {"fail_if_env": "PPF_BENCH_NEVER_SET", "message": f"component {i}"},
            }
            for i in range(COMPONENTS)
        ],
    }
)


class _TimedStore:
    """Forward to a store; add up the time spent in ``save`` and count the calls."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.saves = 0

    def save(self, state: Any) -> None:
        started = time.perf_counter()
        try:
            self.inner.save(state)
        finally:
            self.seconds += time.perf_counter() - started
            self.saves += 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class BenchPipelineOperator(PipelineOperator):
    """PipelineOperator whose checkpoint store is timed; returns the timings with its summary."""

    def __init__(self, *, variant: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.variant = variant
        self._timed: _TimedStore | None = None

    def make_store(self, context: Any, location: str) -> tuple[Any, str]:
        accessor = context["task_state_store"]
        if self.variant == "in_memory":
            inner: Any = InMemoryCheckpointStore()
        elif self.variant == "task_state":
            inner = TaskStateCheckpointStore(accessor, location)
        else:
            inner = _Format1Store(accessor, location)
        self._timed = _TimedStore(inner)
        return self._timed, self.variant

    def execute(self, context: Any) -> dict[str, Any]:
        started = time.perf_counter()
        summary = super().execute(context)
        timed = self._timed
        assert timed is not None
        summary["bench"] = {
            "variant": self.variant,
            "components": COMPONENTS,
            "execute_s": time.perf_counter() - started,
            "save_s": timed.seconds,
            "saves": timed.saves,
            "round_trips": getattr(timed.inner, "round_trips", 0),
        }
        return summary


class _Format1Store(TaskStateCheckpointStore):
    """Every save as format 1 did it: read the head (fencing), then write the whole checkpoint."""

    def save(self, state: Any) -> None:
        self._journal = None
        self._head_seen = None
        super().save(state)

    def _delete_replaced(self, old: Any) -> None:
        # Format 1 had no journal: only the chunks of a replaced head were deleted.
        if old.encoding == "zlib+base64":
            self._delete_chunks(old.generation, old.parts)


with DAG(DAG_ID, schedule=None, catchup=False, tags=["ppf-benchmark"]) as dag:
    tasks = [
        BenchPipelineOperator(task_id=variant, variant=variant, pipeline=PIPELINE, checkpoint_store="task_state")
        for variant in VARIANTS
    ]
    chain(*tasks)
