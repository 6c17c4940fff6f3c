"""A retry on another worker, with the CeleryExecutor: Redis (Debian's redis-server) as the broker and two
``airflow celery worker`` processes, each with an environment of its own (hostname, ``[ppf] checkpoint_dir``
and ``[ppf] data_location`` in a folder of its own): two "machines" on this host.

The DAG ``ppf_celery_retry`` (``tests/e2e/dags``) fails its pipeline task late on try 1. Two runs are
triggered at once: **A** saves views to a shared folder (``data_location``), **B** to the worker's own
folder (the ``[ppf] data_location`` of the worker that runs the try).

How try 2 is made to run on the other worker, deterministically: only worker 1 runs while both tries 1
are handed to the executor; then the DAG is paused, so the scheduler queues nothing of it (not even a
retry) until it is unpaused. When both tasks wait for their retry, worker 1 is stopped (its machine is
gone: its local folder is moved away, as a second machine would not see it), worker 2 starts, and the
DAG is unpaused: worker 2 is the only consumer of the queue. The tries' hostnames confirm it.

Checked only through what a user sees: the REST API (tries, logs, task state store, XCom) and the data
the pipeline wrote.
"""

from __future__ import annotations

import csv
import random
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal
from importlib.util import find_spec
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.harness import REPO, AirflowClient, AirflowStack, RedisServer, copy_dags
from tests.e2e.worker_hostname import HOSTNAME_VAR
from tests.helpers.system_packages import REDIS, require

DAG_ID = "ppf_celery_retry"
TASK_ID = "orders_totals"
DAGS = Path(__file__).parent / "dags"
COMPONENTS = ["read_orders", "paid_orders", "totals", "flaky_gate", "write_totals"]
EARLY, LATE = COMPONENTS[:3], COMPONENTS[3:]
RUN_TIMEOUT = 420  # seconds for a try on a loaded 2-core machine (a Spark JVM per try)
HANDED_OVER = {"queued", "running", "up_for_retry", "failed", "success"}


def _report(text: str) -> None:
    sys.stderr.write(f"\n[e2e] {text}\n")


@dataclass(frozen=True)
class Run:
    key: str
    run_id: str
    base_dir: Path


@dataclass
class CeleryStack:
    airflow: AirflowStack
    root: Path
    runs: dict[str, Run]

    @property
    def api(self) -> AirflowClient:
        return self.airflow.client

    def worker_root(self, name: str) -> Path:
        return self.root / name

    def worker_env(self, name: str) -> dict[str, str]:
        """A worker's own settings: its name and its local folders."""
        local = self.worker_root(name)
        return {
            HOSTNAME_VAR: name,
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.e2e.worker_hostname.hostname",
            "PYTHONPATH": str(REPO),
            "AIRFLOW__PPF__CHECKPOINT_DIR": str(local / "ppf-checkpoints"),
            "AIRFLOW__PPF__DATA_LOCATION": str(local / "saved-views"),
        }


def write_orders(path: Path, rows: int = 600, seed: int = 11) -> Path:
    """A deterministic orders CSV: order_id, customer, amount, status."""
    rng = random.Random(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow(["order_id", "customer", "amount", "status"])
        for order_id in range(1, rows + 1):
            status = rng.choice(["paid", "paid", "paid", "cancelled"])
            out.writerow([order_id, f"cust_{rng.randint(0, 24):02d}", f"{rng.uniform(1, 400):.2f}", status])
    return path


def expected_totals(orders: Path) -> list[tuple[str, Decimal, int]]:
    """What ``totals`` computes, in plain Python: revenue and order count of paid orders per customer."""
    totals: dict[str, tuple[Decimal, int]] = {}
    with open(orders, newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            if row["status"] == "paid":
                revenue, count = totals.get(row["customer"], (Decimal(0), 0))
                totals[row["customer"]] = (revenue + Decimal(row["amount"]), count + 1)
    return sorted((customer, revenue, count) for customer, (revenue, count) in totals.items())


def written_totals(folder: Path) -> list[tuple[str, Decimal, int]]:
    """The rows the pipeline wrote (parquet), sorted."""
    import pyarrow.parquet as pq

    assert (folder / "_SUCCESS").exists(), f"no output at {folder}"
    table = pq.read_table(folder)
    columns = (table[name].to_pylist() for name in ("customer", "revenue", "orders"))
    return sorted(zip(*columns, strict=True))


def _ti(api: AirflowClient, run_id: str) -> dict[str, Any]:
    (ti,) = [t for t in api.task_instances(DAG_ID, run_id) if t["task_id"] == TASK_ID]
    return ti


def _wait_for_states(stack: CeleryStack, states: set[str], what: str, timeout: float = RUN_TIMEOUT) -> None:
    """Wait until every run's task instance is in one of ``states``."""
    deadline = time.monotonic() + timeout
    while True:
        current = {key: _ti(stack.api, run.run_id)["state"] for key, run in stack.runs.items()}
        if all(state in states for state in current.values()):
            return
        stack.airflow.check_running()
        if time.monotonic() > deadline:
            reports = "\n".join(stack.api.run_report(DAG_ID, run.run_id) for run in stack.runs.values())
            raise AssertionError(
                f"{what}: still {current} after {timeout:.0f} s\n{reports}\n{stack.airflow.describe()}"
            )
        time.sleep(0.5)


def _set_paused(api: AirflowClient, paused: bool) -> None:
    api.patch(f"/api/v2/dags/{DAG_ID}", {"is_paused": paused})


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CeleryStack]:
    """Redis, Airflow (SQLite, CeleryExecutor) and worker 1; both runs retried on worker 2 (see the docstring)."""
    require(REDIS)
    if find_spec("airflow.providers.celery") is None:
        pytest.fail("apache-airflow-providers-celery is not installed: pip install -e '.[celery]' (make venv does)")
    root = tmp_path_factory.mktemp("celery")
    began = time.monotonic()
    redis = RedisServer(root / "redis")
    stack = AirflowStack(
        root / "airflow",
        backend="sqlite",
        dags_folder=copy_dags(root / "dags", DAGS),
        name="airflow-celery",
        extra_env={
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CELERY__BROKER_URL": redis.url(0),
            "AIRFLOW__CELERY__RESULT_BACKEND": redis.url(1),
        },
    )
    celery = CeleryStack(stack, root, {})
    try:
        redis.start()
        stack.start()
        stack.start_celery_worker("worker-1", env=celery.worker_env("worker-1"), concurrency=2)
        _report(f"celery stack: redis, airflow and worker-1 up in {time.monotonic() - began:.1f} s")
        api = celery.api
        api.wait_for_dag(DAG_ID)
        shared = root / "shared"
        for key, data_location in (("A", str(shared / "saved-views")), ("B", "")):
            base = shared / key
            write_orders(base / "orders.csv")
            run_id = api.trigger(DAG_ID, {"base_dir": str(base), "data_location": data_location})
            celery.runs[key] = Run(key, run_id, base)
        # Both tries 1 are with worker 1; pausing the DAG holds every retry back until worker 2 is the only one.
        _wait_for_states(celery, HANDED_OVER, "try 1 handed to the executor")
        _set_paused(api, True)
        _wait_for_states(celery, {"up_for_retry"}, "try 1 failed, waiting for its retry")
        stack.stop_celery_worker("worker-1")
        # Worker 1's machine is gone, and its disk with it (on this one host: moved where no worker looks).
        celery.worker_root("worker-1").rename(root / "worker-1-offline")
        stack.start_celery_worker("worker-2", env=celery.worker_env("worker-2"), concurrency=2)
        _set_paused(api, False)
        for run in celery.runs.values():
            api.wait_for_run(DAG_ID, run.run_id, timeout=RUN_TIMEOUT)
        _report(f"celery stack: both runs retried on worker-2, {time.monotonic() - began:.1f} s after start began")
        yield celery
    finally:
        killed = stack.stop() + redis.stop()
        _report(
            f"celery stack: stopped, {time.monotonic() - began:.1f} s after start began"
            + (f"; needed SIGKILL: {killed}" if killed else "")
        )


def _checkpoint(api: AirflowClient, run_id: str) -> dict[str, Any]:
    state: dict[str, Any] = api.state_store(DAG_ID, run_id, TASK_ID, "ppf_checkpoint")["state"]
    return state


def _plan_lines(log: list[str]) -> str:
    starts = [i for i, line in enumerate(log) if line.startswith("::group::Resume plan")]
    assert starts, "no resume plan in the log of try 2:\n" + "\n".join(log[-60:])
    end = next(i for i, line in enumerate(log) if line == "::endgroup::" and i > starts[0])
    return "\n".join(log[starts[0] : end])


def _check_tries(stack: CeleryStack, run: Run) -> dict[str, Any]:
    """Both tries as the REST API shows them: try 1 failed on worker-1, try 2 succeeded on worker-2."""
    api = stack.api
    state = api.run_state(DAG_ID, run.run_id)
    assert state == "success", f"run {run.key} ended {state}\n{api.run_report(DAG_ID, run.run_id)}"
    tries = api.tries(DAG_ID, run.run_id, TASK_ID)
    assert [(t["try_number"], t["state"], t["hostname"]) for t in tries] == [
        (1, "failed", "worker-1"),
        (2, "success", "worker-2"),
    ], tries
    checkpoint = _checkpoint(api, run.run_id)
    assert [(a["attempt"], a["status"], a["meta"]["hostname"]) for a in checkpoint["attempts"]] == [
        (1, "failed", "worker-1"),
        (2, "completed", "worker-2"),
    ], checkpoint["attempts"]
    assert checkpoint["attempts"][0]["ran"] == EARLY
    assert checkpoint["completed_components"] == COMPONENTS, checkpoint["completed_components"]
    assert written_totals(run.base_dir / "totals") == expected_totals(run.base_dir / "orders.csv")
    return checkpoint


def test_a_retry_on_another_worker_resumes_from_the_task_state_store_and_shared_saved_views(
    celery_stack: CeleryStack,
) -> None:
    run = celery_stack.runs["A"]
    api = celery_stack.api
    checkpoint = _check_tries(celery_stack, run)

    second = checkpoint["attempts"][1]
    assert (second["skipped"], second["ran"]) == (EARLY, LATE), second
    restored = [e for e in second.get("events", []) if e["event"] == "restored_views"]
    assert [e["views"] for e in restored] == [["totals"]], second.get("events")
    plan = _plan_lines(api.logs(DAG_ID, run.run_id, TASK_ID, 2))
    assert "resuming after attempt 1 (failed): skipping 3 of 5 components" in plan, plan
    summary = api.xcom(DAG_ID, run.run_id, TASK_ID)
    assert (summary["try_number"], summary["resumed"], summary["skipped"]) == (2, True, EARLY), summary
    # The saved views were on the shared location, and are deleted once the pipeline completed.
    assert not list((celery_stack.root / "shared" / "saved-views").rglob("*.parquet"))


def test_a_worker_local_data_location_warns_on_try_1_and_the_retry_elsewhere_reruns_the_producers_saying_why(
    celery_stack: CeleryStack,
) -> None:
    run = celery_stack.runs["B"]
    api = celery_stack.api
    checkpoint = _check_tries(celery_stack, run)

    # Try 1 warned, once, that its saved views cannot help a retry on another worker.
    log1 = api.logs(DAG_ID, run.run_id, TASK_ID, 1)
    local = celery_stack.worker_root("worker-1") / "saved-views"
    warnings = [line for line in log1 if "a path on this worker's own disk" in line]
    assert len(warnings) == 1, "\n".join(log1[-60:])
    assert f"Saved views go to {local}" in warnings[0], warnings[0]
    assert "CeleryExecutor can run a retry on another worker" in warnings[0], warnings[0]
    # ... and did save them there, on worker 1's own disk (moved away with it).
    offline = celery_stack.root / "worker-1-offline" / "saved-views"
    assert len(list(offline.rglob("_PPF_COMMITTED"))) == 2, sorted(offline.rglob("*"))

    second = checkpoint["attempts"][1]
    assert (second["skipped"], second["ran"]) == ([], COMPONENTS), second
    plan = _plan_lines(api.logs(DAG_ID, run.run_id, TASK_ID, 2))
    assert plan.splitlines()[0].endswith("checkpoint of attempt 1 (failed) found; starting from the beginning"), plan
    reruns = api.xcom(DAG_ID, run.run_id, TASK_ID)["reruns"]
    assert list(reruns) == EARLY, reruns
    for producer, view in (("read_orders", "orders"), ("totals", "totals")):
        why = reruns[producer]
        assert why.startswith(
            f"saved copy missing on this worker: attempt 1 saved view '{view}' on worker 'worker-1' at {local}/"
        ), why
        assert why.endswith("a path on that worker's own disk, which this worker ('worker-2') does not see"), why
        assert why in plan, plan
    assert reruns["paid_orders"].startswith("its view 'paid' (read by totals) was not saved"), reruns
