"""The demo behind ``make demo``: a Spark pipeline fails late, then resumes from its checkpoint.

Act 1, in Airflow: a real Airflow (SQLite metadata DB, api-server, scheduler and dag-processor on
127.0.0.1, a throwaway AIRFLOW_HOME under demo-output/) runs the example DAG ``ppf_orders_resume``,
triggered through the REST API. Its pipeline task fails late on try 1 (``publish_check``, a deliberate
first-try fault); Airflow retries it and try 2 skips the five finished components. The demo shows, from
the REST API, the task logs of both tries (try 2's resume plan: skipped components, restored views, time
saved), the rows the report wrote, and where the Checkpoint tab was; then it stops every service it
started, by PID.

Act 2, on the command line: the same pipeline with ``ppf run`` (fails), then ``ppf run --resume`` in a new
process, the checkpoint's history and the report.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from local_airflow import (
    OUT,
    ROOT,
    AirflowClient,
    AirflowStack,
    HarnessError,
    checkpoint_tab_url,
    example_airflow,
    stop_on_signals,
)

EXAMPLES = ROOT / "example_dags"  # the same pipeline file the example DAG runs
RUN_ID = "demo"
DAG_ID = "ppf_orders_resume"
TASK_ID = "orders_daily_revenue"
RUN_TIMEOUT = 600  # seconds; about a minute on an idle 2-core machine
ORDERS = 20_000

#: Task log lines worth showing: component progress, restored views and the pipeline's outcome.
PROGRESS = re.compile(r"^(\[\d+/\d+\] .*(✓|✗|skipped)|Restored view |Pipeline '.*' (SUCCESS|PARTIAL_SUCCESS|FAILURE))")


class DemoError(Exception):
    """Something the demo shows did not happen as it should (the message says what)."""


def banner(text: str) -> None:
    print(f"\n{'=' * 100}\n{text}\n{'=' * 100}", flush=True)


def section(text: str) -> None:
    print(f"\n--- {text}", flush=True)


def shorten(line: str, root: Path) -> str:
    """Task log lines name long folders under the demo's root: show them relative to it."""
    return line.replace(f"file:{root}/", "…/").replace(f"{root}/", "…/")


def print_report(path: Path) -> int:
    """Print the row count and the first rows of the daily revenue report at ``path``; return the row count."""
    import pyarrow.dataset as ds

    table = ds.dataset(path, format="parquet", partitioning="hive").to_table()
    rows = sorted(table.to_pylist(), key=lambda r: (str(r["order_date"]), r["region"]))
    print(f"{table.num_rows} rows in {path}; the first ones:")
    for row in rows[:4]:
        print(f"  {row['order_date']}  {row['region']:<6} {row['orders']:>5} orders  revenue {row['revenue']:>10}")
    if table.num_rows == 0:
        raise DemoError(f"the report at {path} has no rows")
    return int(table.num_rows)


# -- act 1: Airflow ------------------------------------------------------------------------------------


def watch_run(stack: AirflowStack, run_id: str, timeout: float = RUN_TIMEOUT) -> str:
    """Print every change of a task instance's state (and try) until the run ends; return its state."""
    api = stack.client
    started, seen = time.monotonic(), {}
    deadline = started + timeout
    while True:
        for ti in api.task_instances(DAG_ID, run_id):
            now = (ti["state"], ti["try_number"])
            if ti["state"] is not None and seen.get(ti["task_id"]) != now:
                seen[ti["task_id"]] = now
                note = {"up_for_retry": ": try failed, Airflow retries it", "failed": ": try failed"}.get(now[0], "")
                print(f"  {time.monotonic() - started:6.1f} s  {ti['task_id']:<22} try {now[1]}  {now[0]}{note}")
        state = api.run_state(DAG_ID, run_id)
        if state in ("success", "failed"):
            return state
        stack.check_running()
        if time.monotonic() > deadline:
            raise DemoError(f"run {run_id} still {state} after {timeout:.0f} s\n{api.run_report(DAG_ID, run_id)}")
        time.sleep(1)


def resume_plan(log: list[str]) -> list[str]:
    """The headline and body of the collapsible "Resume plan" group of a task log (empty when there is none)."""
    starts = [i for i, line in enumerate(log) if line.startswith("::group::Resume plan")]
    if not starts:
        return []
    # The group's title carries the plan's headline ("Run ...: resuming after attempt 1 ..."); the table follows.
    body = [log[starts[0]].removeprefix("::group::Resume plan").lstrip(": ")]
    for line in log[starts[0] + 1 :]:
        if line == "::endgroup::":
            break
        body.append(line)
    return body


def show_airflow_run(api: AirflowClient, stack: AirflowStack, run_id: str, base_dir: Path) -> dict[str, Any]:
    """Print what Airflow recorded of the run (tries, task logs, XCom), the report, the Checkpoint tab.

    Returns the XCom summary of the last try. Raises :class:`DemoError` unless try 1 failed and try 2
    resumed (skipping components) and succeeded.
    """
    tries = api.tries(DAG_ID, run_id, TASK_ID)
    if [(t["try_number"], t["state"]) for t in tries] != [(1, "failed"), (2, "success")]:
        raise DemoError(f"expected try 1 failed, try 2 success; got {tries}\n{api.run_report(DAG_ID, run_id)}")
    # A log event can span several lines (the resume plan's table is one event).
    logs = [
        [line for event in api.logs(DAG_ID, run_id, TASK_ID, t["try_number"]) for line in event.split("\n")]
        for t in tries
    ]

    section(f"Try 1 of {TASK_ID} (its task log, from the REST API): failed late, {tries[0]['duration']:.1f} s")
    for line in logs[0]:
        if PROGRESS.match(line):
            print("  " + shorten(line, stack.root))

    plan = resume_plan(logs[1])
    section(f"Try 2 (its task log): the resume plan, then the rest of the pipeline, {tries[1]['duration']:.1f} s")
    if not plan:
        raise DemoError("try 2's log has no resume plan:\n" + "\n".join(logs[1][-40:]))
    for line in plan:
        print("  " + line)
    for line in logs[1]:
        if PROGRESS.match(line):
            print("  " + shorten(line, stack.root))

    summary: dict[str, Any] = api.xcom(DAG_ID, run_id, TASK_ID)
    if not (summary.get("resumed") and summary.get("skipped")):
        raise DemoError(f"try 2 did not resume: {summary}")
    section("Try 2's summary (its XCom return value)")
    print(
        f"  resumed: {summary['resumed']}, skipped {len(summary['skipped'])}: {', '.join(summary['skipped'])}\n"
        f"  ran: {', '.join(r['name'] for r in summary['ran'])}; time saved: about {summary['time_saved_s']:.1f} s"
    )

    section("What the pipeline wrote")
    print_report(base_dir / "report" / run_id.replace(":", "_") / "daily_revenue")

    section("The Checkpoint tab")
    print(
        f"  {checkpoint_tab_url(stack, DAG_ID, run_id, TASK_ID)}\n"
        f'  (the task instance\'s "Checkpoint" button: {api.links(DAG_ID, run_id, TASK_ID).get("Checkpoint")})\n'
        "  This Airflow stops with the demo: `make airflow` starts the same one to explore, until Ctrl-C.",
        flush=True,
    )
    return summary


def act_airflow() -> dict[str, Any]:
    banner(f"Act 1: the example DAG {DAG_ID} in a real Airflow: try 1 fails late, the retry resumes")
    with example_airflow(OUT / "airflow-demo") as stack:
        api = stack.client
        api.wait_for_dag(DAG_ID)
        base_dir = stack.root / "example-data"
        run_id = api.trigger(DAG_ID, {"base_dir": str(base_dir), "orders": ORDERS})
        print(f"Triggered {DAG_ID} through the REST API (run {run_id}, {ORDERS:,} orders); task states:", flush=True)
        state = watch_run(stack, run_id)
        if state != "success":
            raise DemoError(f"run {run_id} ended {state}\n{api.run_report(DAG_ID, run_id)}")
        return show_airflow_run(api, stack, run_id, base_dir)


# -- act 2: the command line ---------------------------------------------------------------------------


def ppf(*args: str) -> tuple[int, float]:
    """Run ``ppf`` in a new process (as a user would); return its exit code and wall time."""
    env = {
        **os.environ,
        "DATA_DIR": str(OUT / "data"),
        "OUTPUT_DIR": str(OUT / "report"),
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
    }
    started = time.monotonic()
    code = subprocess.call([sys.executable, "-m", "airflow_ppf", *args], env=env)
    return code, time.monotonic() - started


def act_cli() -> tuple[float, float]:
    banner("Act 2: the same pipeline from the command line (ppf run, then ppf run --resume in a new process)")
    sys.path.insert(0, str(EXAMPLES))
    from orders_data import generate

    if not (OUT / "data" / "orders.csv").exists():
        print("Generating input data (200,000 orders, 5,000 customers)…", flush=True)
        generate(OUT / "data")
    config = str(EXAMPLES / "orders_pipeline.conf")
    checkpoints = ["--checkpoint-dir", str(OUT / "checkpoints")]
    ppf("checkpoints", *checkpoints, "clear", RUN_ID)

    section("First attempt: the pipeline fails late, at publish_check")
    code1, took1 = ppf("run", config, "--run-id", RUN_ID, *checkpoints)
    if code1 != 1:
        raise DemoError(f"expected the first attempt to fail with exit code 1, got {code1}")

    section("Second attempt, in a new process: resume from the checkpoint")
    code2, took2 = ppf("run", config, "--run-id", RUN_ID, "--resume", *checkpoints)
    if code2 != 0:
        raise DemoError(f"the resumed attempt failed with exit code {code2}")

    section("The checkpoint's history")
    ppf("checkpoints", *checkpoints, "show", RUN_ID)

    section("What the pipeline wrote")
    print_report(OUT / "report" / "daily_revenue")
    return took1, took2


def main() -> int:
    began = time.monotonic()
    stop_on_signals()
    try:
        summary = act_airflow()
        took1, took2 = act_cli()
    except (DemoError, HarnessError) as exc:
        print(f"\nThe demo failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nInterrupted.", file=sys.stderr)
        return 130
    banner("Summary")
    print(
        f"Airflow: try 2 skipped {len(summary['skipped'])} of {len(summary['skipped']) + len(summary['ran'])} "
        f"components and saved about {summary['time_saved_s']:.1f} s of work.\n"
        f"Command line: the first attempt failed after {took1:.1f} s; the resumed one took {took2:.1f} s "
        "(both include Spark start-up).\n"
        f"Demo finished in {time.monotonic() - began:.0f} s; every service it started is stopped.",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
