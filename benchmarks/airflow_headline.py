"""One task vs one task per step: ``python benchmarks/airflow_headline.py [--orders N] [--rounds R] [--quick]``.

The README's promise is "no more choosing between one Airflow task per step (a Spark start-up each) and
rerunning hours of work". This measures the first half under a real scheduler: Airflow's api-server,
scheduler and dag-processor (LocalExecutor, SQLite, all on loopback; ``tests/e2e/harness.py`` starts them),
with the DAGs of ``benchmarks/headline_dags/``. The same six-step Spark pipeline over generated orders
(generate, clean, join with customers, aggregate, rank with a window, write a report; ``headline_steps.py``)
runs as

(a) ``headline_one_task``: one ``PipelineOperator`` task (steps hand data over through temp views; the
    operator checkpoints each step and saves the views a later step reads, for a retry);
(b) ``headline_per_step``: six ``@task.pyspark`` tasks (the Spark provider), one per step, each starting its
    own SparkSession, reading the previous step's parquet and writing its own;

in two scenarios: a clean run, and a run whose last step fails on its first try (after its work) and
succeeds when Airflow retries it (``retries=1``, ``retry_delay=2 s`` in both DAGs). Runs are triggered
through the REST API one at a time, the variants interleaved (a, b, then b, a in the next round), after a
warm-up run on tiny data. ``--with-never`` adds a reference to the clean runs: (a) with
``materialize = never`` (no views saved for a retry), which shows what the insurance costs. Both variants
use the same Spark settings (``local[2]``, 4 shuffle partitions, 2 GB driver; Spark's own JVM defaults) and
Airflow's ``parallelism`` is the same for both (the harness's 2; the per-step DAG is a chain, so one task
runs at a time anyway).

Reported per variant and scenario (medians over the rounds): total time from the trigger (just before the
REST call) to the DAG run's end date; Spark work (each step's compute, measured inside the tasks and logged
as ``PPF-BENCH`` lines; for (a) it includes saving views for a retry, shown separately from the operator's
"Saved view" log lines); orchestration overhead = total − Spark work, split into Spark start-ups, the rest
of the task tries' time (process start, DAG parse, XCom, checkpoint bookkeeping, Spark shutdown) and the time
when no task was running (scheduling, the retry delay). Task try times come from the REST API. Each run's
report is checked to be identical across variants (the comparison is only fair if both compute the same).
The machine's load average is printed: other work on the machine moves every figure. Defaults: 500,000
orders, 3 rounds, ~17 min (``--quick``: 20,000 orders, 1 round, ~5 min).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[1]
DAGS = Path(__file__).resolve().parent / "headline_dags"
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

sys.path.insert(0, str(DAGS))

from headline_steps import run_dir  # noqa: E402 - the DAG folder's module (outputs of a run)

from tests.e2e.harness import AirflowClient, AirflowStack, copy_dags  # noqa: E402 - needs the repository on sys.path

ONE_TASK, PER_STEP, NEVER = "headline_one_task", "headline_per_step", "headline_one_task_never"
LABELS = {
    ONE_TASK: "(a) one PipelineOperator task",
    PER_STEP: "(b) one task per step",
    NEVER: "(a) with materialize = never",
}
SCENARIOS = {"clean": "clean run", "retry": "last step fails once, retried"}
SHORT = {ONE_TASK: "(a)", PER_STEP: "(b)", NEVER: "(a, never)"}
LAST_TASK = {ONE_TASK: "pipeline", NEVER: "pipeline", PER_STEP: "report"}
RUN_TIMEOUT = 1200.0

MARKER = re.compile(r"PPF-BENCH (\{.*\})")
SAVED_VIEW = re.compile(r"Saved view '([^']+)' of (\S+): (\d+) rows, ([\d.]+) MB in ([\d.]+) s")
SESSION_READY = re.compile(r"SparkSession ready in ([\d.]+) s")


@dataclass
class Measured:
    """One DAG run, from the trigger to its success."""

    dag_id: str
    scenario: str
    total: float
    spark_work: float
    saving_views: float
    saved_views: int
    spark_starts: float
    in_tasks: float
    idle: float
    prepare: float
    tries: int
    load: float
    report_rows: int
    work_by_step: dict[str, float] = field(default_factory=dict)

    @property
    def overhead(self) -> float:
        return self.total - self.spark_work

    @property
    def in_tasks_other(self) -> float:
        return self.in_tasks - self.spark_work - self.spark_starts


def _time(value: str) -> float:
    return dt.datetime.fromisoformat(value).timestamp()


def _union(intervals: Iterable[tuple[float, float]]) -> float:
    """Length of the union of ``(start, end)`` intervals."""
    covered, end = 0.0, float("-inf")
    for lo, hi in sorted(intervals):
        if hi <= end:
            continue
        covered += hi - max(lo, end)
        end = hi
    return covered


def _timing_lines(lines: Sequence[str]) -> list[dict[str, Any]]:
    found = []
    for line in lines:
        match = MARKER.search(line)
        if match:
            found.append(json.loads(match.group(1)))
    return found


def _read_report(path: Path) -> Any:
    import pyarrow.parquet as pq

    # Values only: which columns Spark marks nullable depends on the plan (a saved copy is all nullable).
    rows = pq.read_table(path).to_pylist()
    return sorted(rows, key=lambda r: (r["region"], r["month"], r["rank"]))


class Bench:
    """Trigger runs on a started stack and measure them."""

    def __init__(self, stack: AirflowStack, data: Path) -> None:
        self.stack = stack
        self.api: AirflowClient = stack.client
        self.data = data
        self.reference_report: Any = None

    def run(self, dag_id: str, scenario: str, orders: int, *, check_report: bool = True) -> Measured:
        conf = {"base_dir": str(self.data), "orders": orders, "fail_once": scenario == "retry"}
        load = os.getloadavg()[0]
        triggered = time.time()
        run_id = self.api.trigger(dag_id, conf)
        state = self.api.wait_for_run(dag_id, run_id, timeout=RUN_TIMEOUT)
        if state != "success":
            raise SystemExit(f"{dag_id} run {run_id} ended {state}\n{self.api.run_report(dag_id, run_id)}")
        run = self.api.get(f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}")
        total = _time(run["end_date"]) - triggered

        spark_work = saving = starts = in_tasks = prepare = 0.0
        saved = tries_seen = 0
        intervals: list[tuple[float, float]] = []
        by_step: dict[str, float] = {}
        for ti in self.api.task_instances(dag_id, run_id):
            tries = self.api.tries(dag_id, run_id, ti["task_id"])
            retried = scenario == "retry" and ti["task_id"] == LAST_TASK[dag_id]
            states = [t["state"] for t in tries]
            if states[-1:] != ["success"] or len(states) != (2 if retried else 1):
                wanted = "a failed try, then success" if retried else "one successful try"
                raise SystemExit(f"{dag_id} {run_id}: task {ti['task_id']} tries ended {states}, expected {wanted}")
            for attempt in tries:
                tries_seen += 1
                start, end = _time(attempt["start_date"]), _time(attempt["end_date"])
                intervals.append((start, end))
                in_tasks += end - start
                lines = self.api.logs(dag_id, run_id, ti["task_id"], attempt["try_number"])
                records = _timing_lines(lines)
                if len(records) != 1:
                    raise SystemExit(
                        f"{dag_id} {run_id} {ti['task_id']} try {attempt['try_number']}: expected one PPF-BENCH line, "
                        f"found {len(records)}\n" + "\n".join(lines[-40:])
                    )
                record = records[0]
                for step, seconds in record["work"].items():
                    spark_work += seconds
                    by_step[step] = by_step.get(step, 0.0) + seconds
                if record["variant"] == "per_step":
                    starts += float(record["spark_start"] or 0.0)
                else:
                    ready = [float(m.group(1)) for m in map(SESSION_READY.search, lines) if m]
                    session = sum(ready)
                    starts += session
                    # ``prepare`` (up to the first component) contains the session start when a resume
                    # restored saved views.
                    in_prepare = session if record["session_started_in_prepare"] else 0.0
                    prepare += float(record["prepare"] or 0.0) - in_prepare
                    for match in filter(None, map(SAVED_VIEW.search, lines)):
                        saved += 1
                        saving += float(match.group(5))
        rows = 0
        if check_report:
            out = run_dir(conf, "per_step" if dag_id == PER_STEP else "one_task", run_id)
            report = _read_report(out / "report")
            rows = len(report)
            if self.reference_report is None:
                self.reference_report = report
            elif report != self.reference_report:
                raise SystemExit(f"the report of {dag_id} run {run_id} differs from the first run's: unfair comparison")
            shutil.rmtree(out, ignore_errors=True)  # parquet of every step: free the disk
        return Measured(
            dag_id=dag_id,
            scenario=scenario,
            total=total,
            spark_work=spark_work,
            saving_views=saving,
            saved_views=saved,
            spark_starts=starts,
            in_tasks=in_tasks,
            idle=total - _union(intervals),
            prepare=prepare,
            tries=tries_seen,
            load=load,
            report_rows=rows,
            work_by_step=by_step,
        )


def _median(runs: Sequence[Measured], attr: str) -> float:
    return statistics.median(float(getattr(r, attr)) for r in runs)


def print_table(results: Sequence[Measured], orders: int, rounds: int, settings: dict[str, str]) -> None:
    load_now = os.getloadavg()
    loads = [r.load for r in results]
    print(
        f"\nOne task vs one task per step: 6-step Spark pipeline, {orders:,} generated orders, local[2] "
        f"({os.cpu_count()} CPUs); Airflow {settings['executor']}, parallelism {settings['parallelism']}, "
        f"{settings['backend']} metadata DB; {rounds} round(s), medians"
    )
    print(
        f"load average at the triggers: median {statistics.median(loads):.1f}, max {max(loads):.1f}; "
        f"at the end {load_now[0]:.1f} / {load_now[1]:.1f} / {load_now[2]:.1f} (1 / 5 / 15 min)\n"
    )
    columns = ("total", "Spark work", "(saving", "overhead", "Spark", "in tasks,", "no task", "tries")
    second = ("", "", "views)", "", "start-ups", "other", "running", "")
    head = f"{'':32}" + "".join(f"{c:>11}" for c in columns) + f"\n{'':32}" + "".join(f"{c:>11}" for c in second)
    for scenario, title in SCENARIOS.items():
        runs = {d: [r for r in results if r.dag_id == d and r.scenario == scenario] for d in LABELS}
        if not (runs[ONE_TASK] and runs[PER_STEP]):
            continue
        print(f"{title}\n{head}\n{'-' * 120}")
        for dag_id, label in LABELS.items():
            rs = runs[dag_id]
            if not rs:
                continue
            cells = [
                f"{_median(rs, 'total'):.1f} s",
                f"{_median(rs, 'spark_work'):.1f} s",
                f"{_median(rs, 'saving_views'):.1f} s" if dag_id != PER_STEP else "–",
                f"{_median(rs, 'overhead'):.1f} s",
                f"{_median(rs, 'spark_starts'):.1f} s",
                f"{_median(rs, 'in_tasks_other'):.1f} s",
                f"{_median(rs, 'idle'):.1f} s",
                f"{_median(rs, 'tries'):.0f}",
            ]
            print(f"{label:32}" + "".join(f"{c:>11}" for c in cells))
        for base in (ONE_TASK, NEVER):
            if not runs[base]:
                continue
            ratios = [_median(runs[PER_STEP], k) / max(_median(runs[base], k), 1e-9) for k in ("total", "spark_work")]
            over = _median(runs[PER_STEP], "overhead") / max(_median(runs[base], "overhead"), 1e-9)
            cells = [f"{ratios[0]:.2f}×", f"{ratios[1]:.2f}×", "", f"{over:.2f}×"]
            name = "(b) / (a)" if base == ONE_TASK else "(b) / (a) with never"
            print(f"{name:32}" + "".join(f"{c:>11}" for c in cells))
        goal = 5.0 if scenario == "clean" else 4.0
        ratio = _median(runs[PER_STEP], "total") / _median(runs[ONE_TASK], "total")
        print(f"goal: (b) ≥ {goal:.0f}× (a) in total time: {'met' if ratio >= goal else 'missed'} ({ratio:.2f}×)")
        print("samples, total: " + "; ".join(f"{SHORT[d]} {_samples(rs)}" for d, rs in runs.items() if rs) + "\n")

    clean_a = [r for r in results if r.dag_id == ONE_TASK and r.scenario == "clean"]
    retry_a = [r for r in results if r.dag_id == ONE_TASK and r.scenario == "retry"]
    per_step = [r for r in results if r.dag_id == PER_STEP and r.scenario == "clean"]
    if clean_a and per_step:
        steps = list(per_step[0].work_by_step)
        work_a = {s: statistics.median(r.work_by_step.get(s, 0.0) for r in clean_a) for s in steps}
        work_b = {s: statistics.median(r.work_by_step.get(s, 0.0) for r in per_step) for s in steps}
        print("Spark work per step, clean run, (a) / (b): (a) is the component's time (its view is lazy; saving it")
        print("for a retry computes it), (b) reads the previous parquet, computes and writes in a new JVM:")
        print("  " + ", ".join(f"{s} {work_a[s]:.1f} / {work_b[s]:.1f} s" for s in steps))
        saved = statistics.median(r.saved_views for r in clean_a)
        print(
            f"(a) saves {saved:.0f} view{'' if saved == 1 else 's'} on a clean run: "
            f"{_median(clean_a, 'saving_views'):.1f} s of its {_median(clean_a, 'spark_work'):.1f} s Spark work "
            "(the insurance for a retry; (b) writes every step's output as parquet anyway)."
        )
    if retry_a:
        print(
            f"(a) retry: loading the checkpoint, planning and restoring saved views before the first component: "
            f"{_median(retry_a, 'prepare'):.1f} s over both tries (Spark start-up excluded)."
        )
    rows = sorted({r.report_rows for r in results if r.report_rows})
    print(f"The report ({', '.join(map(str, rows))} rows) was identical in every run of every variant.")


def _samples(runs: Sequence[Measured]) -> str:
    return ", ".join(f"{r.total:.1f}" for r in runs)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--orders", type=int, default=None, help="generated orders (default 500,000)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of the four runs (default 3)")
    parser.add_argument("--quick", action="store_true", help="smoke run: 20,000 orders, 1 round, no warm-up")
    parser.add_argument("--no-warmup", action="store_true", help="skip the warm-up run")
    parser.add_argument(
        "--with-never", action="store_true", help="also run (a) with materialize = never on the clean scenario"
    )
    parser.add_argument("--scenarios", default="clean,retry", help="comma-separated: clean, retry")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite", help="metadata DB")
    parser.add_argument("--json", type=Path, help="also write every run's measurements to this file")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder (logs, Airflow home)")
    args = parser.parse_args(argv)
    orders = args.orders or (20_000 if args.quick else 500_000)
    rounds = args.rounds or (1 if args.quick else 3)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(scenarios) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s) {sorted(unknown)}; choose from {', '.join(SCENARIOS)}")

    root = Path(tempfile.mkdtemp(prefix="ppf-headline-"))
    dags = copy_dags(root / "dags", DAGS)
    # Spark's own JVM defaults (the harness's fast-start JVM flags are for tests), the same for both variants.
    stack = AirflowStack(
        root / "airflow",
        backend=args.backend,
        dags_folder=dags,
        extra_env={"PYSPARK_SUBMIT_ARGS": "pyspark-shell"},
        name="airflow-headline",
    )
    env = stack.env()
    settings = {
        "executor": env["AIRFLOW__CORE__EXECUTOR"],
        "parallelism": env["AIRFLOW__CORE__PARALLELISM"],
        "backend": args.backend,
    }
    results: list[Measured] = []
    try:
        print(f"starting Airflow ({args.backend}, {settings['executor']}) in {root} …", flush=True)
        stack.start()
        for dag_id in (ONE_TASK, PER_STEP, NEVER):
            stack.client.wait_for_dag(dag_id)
        print(f"Airflow up in {stack.timings['start']:.0f} s", flush=True)
        bench = Bench(stack, root / "data")
        if not (args.quick or args.no_warmup):
            # Cold caches (Spark's jars, DAG parsing) for whichever run comes first; not measured.
            print("warm-up: headline_one_task on 20,000 orders …", flush=True)
            bench.run(ONE_TASK, "clean", 20_000, check_report=False)
        variants = [ONE_TASK, PER_STEP] + ([NEVER] if args.with_never else [])
        for round_ in range(rounds):
            order = variants if round_ % 2 == 0 else variants[::-1]
            for scenario in scenarios:
                for dag_id in order:
                    if dag_id == NEVER and scenario != "clean":
                        continue  # nothing saved: a retry reruns everything (that is resume_saving.py's subject)
                    print(f"round {round_ + 1}/{rounds}: {dag_id}, {SCENARIOS[scenario]} …", end=" ", flush=True)
                    measured = bench.run(dag_id, scenario, orders)
                    results.append(measured)
                    print(
                        f"{measured.total:.1f} s (Spark work {measured.spark_work:.1f} s, load {measured.load:.1f})",
                        flush=True,
                    )
    finally:
        killed = stack.stop()
        if killed:
            print(f"needed SIGKILL: {killed}", file=sys.stderr)
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=2))
    print_table(results, orders, rounds, settings)
    return 0


if __name__ == "__main__":
    sys.exit(main())
