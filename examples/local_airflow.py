"""A real Airflow on this machine with the example DAGs: ``make airflow`` (to explore) and ``make demo`` (act 1).

Airflow's api-server (with the UI), scheduler and dag-processor run on 127.0.0.1 with LocalExecutor and a
SQLite metadata DB, in a throwaway AIRFLOW_HOME under ``demo-output/``. They are the services the
end-to-end tests start (``tests/e2e/harness.py``: one launcher for tests, demo and benchmarks), started as
separate processes and stopped by their PIDs, whatever happens.

Usage: python examples/local_airflow.py [--port PORT]   (Ctrl-C stops everything)
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from types import FrameType
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # the launcher lives with the end-to-end tests

from tests.e2e.harness import (  # noqa: E402
    AirflowClient,
    AirflowStack,
    HarnessError,
    copy_dags,
    kill_survivors,
    surviving_processes,
)

__all__ = [
    "OUT",
    "ROOT",
    "AirflowClient",
    "AirflowStack",
    "HarnessError",
    "checkpoint_tab_url",
    "example_airflow",
    "stop_on_signals",
]

OUT = ROOT / "demo-output"
USER = "admin"
#: A local master for the ``ppf_spark`` connection of the ``ppf_spark_connection`` example DAG.
LOCAL_SPARK_CONNECTION = {"conn_type": "spark", "host": "local[2]"}


def checkpoint_tab_url(stack: AirflowStack, dag_id: str, run_id: str, task_id: str) -> str:
    """The task instance's Checkpoint tab in Airflow's UI (airflow-ppf's plugin)."""
    return f"{stack.base_url}/dags/{dag_id}/runs/{quote(run_id, safe='')}/tasks/{task_id}/plugin/ppf-checkpoint"


def stop_on_signals() -> None:
    """Turn SIGINT, SIGTERM and SIGHUP into KeyboardInterrupt, so that ``finally`` stops the services.

    SIGINT too: a process started in the background by a shell inherits SIGINT ignored.
    """

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGHUP, interrupt)


@contextmanager
def example_airflow(root: Path, *, port: int | None = None) -> Iterator[AirflowStack]:
    """Start Airflow on a copy of ``example_dags/`` under ``root`` (emptied first); stop it on the way out.

    Raises:
        HarnessError: a service did not start (the message has the tails of their logs).
    """
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    stack = AirflowStack(
        root,
        dags_folder=copy_dags(root / "dags"),
        extra_env={"AIRFLOW_CONN_PPF_SPARK": json.dumps(LOCAL_SPARK_CONNECTION)},
        name="airflow",
        port=port,
    )
    print(
        f"Starting Airflow {version('apache-airflow')} on {stack.base_url}: SQLite metadata DB, api-server, "
        f"scheduler, dag-processor (LocalExecutor)\n  AIRFLOW_HOME={stack.home}\n  service logs: {stack.log_dir}",
        flush=True,
    )
    try:
        stack.start()
        print(f"Airflow is up in {stack.timings['start']:.1f} s.", flush=True)
        yield stack
    finally:
        killed = stack.stop()
        left = surviving_processes()
        if left:  # should never happen: the stack stops its own processes
            kill_survivors()
        pids = ", ".join(f"{s.name} {s.pid}" for s in stack.services.values())
        print(
            f"Stopped Airflow's services by PID ({pids}) in {stack.timings.get('stop', 0):.1f} s"
            + (f"; needed SIGKILL: {killed}" if killed else "")
            + (f"; killed leftovers: {left}" if left else ""),
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=None, help="the UI's port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args()
    stop_on_signals()
    try:
        with example_airflow(OUT / "airflow-ui", port=args.port) as stack:
            api = stack.client
            api.wait_for_dag("ppf_orders_resume")
            run_id = api.trigger("ppf_orders_resume", {"base_dir": str(stack.root / "example-data")})
            print(
                f"\n  Airflow UI:  {stack.base_url}/\n"
                f"  Login:       {USER} / {AirflowStack.PASSWORDS[USER]}   (read-only: viewer / "
                f"{AirflowStack.PASSWORDS['viewer']})\n"
                f"  DAGs:        {', '.join(sorted(p.stem for p in stack.dags_folder.glob('ppf_*.py')))}\n\n"
                f"  A run of ppf_orders_resume was triggered ({run_id}): its task orders_daily_revenue fails\n"
                "  try 1 late and resumes in try 2 (about a minute). Then open its Checkpoint tab:\n"
                f"  {checkpoint_tab_url(stack, 'ppf_orders_resume', run_id, 'orders_daily_revenue')}\n\n"
                "Press Ctrl-C to stop Airflow.",
                flush=True,
            )
            while True:
                stack.check_running()
                time.sleep(2)
    except KeyboardInterrupt:
        return 0
    except HarnessError as exc:
        print(f"\nAirflow failed: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
