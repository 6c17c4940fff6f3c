"""What resuming saves: ``python benchmarks/resume_saving.py [--rows N] [--rounds R]`` prints a table.

A six-component Spark pipeline whose early components are expensive (3,000,000 generated orders with a
SHA-256 column, 200,000 customers, a join, two aggregations, one with a window) and whose last component
(``publish``: a reconciliation over ``orders`` plus two small reports written as parquet) fails on the
first attempt after doing its work. Every run is a new ``python`` process, as an Airflow retry is:

(a) from scratch: the whole pipeline again, without checkpointing (what a retry costs without resume);
(b) resume: the attempt after the failed one, with ``--resume`` semantics: it skips the five finished
    components, checks and restores the three saved views ``publish`` reads, and runs ``publish``.

For each: wall time of the process (interpreter start included), SparkSession start, the restore cost
(verifying each saved copy: files, commit marker, schema, the checksum of every file; then registering
it) and the restored bytes, and the time of the components that ran. The goals: (b) takes no longer than
``publish``'s own time + session start + restore cost (interpreter start and imports, ~1 s, are the rest);
the restore takes no longer than 1 s plus the time to read the saved files once (measured after attempt 1
by reading them in the parent process).

The failed first attempt (which saves the views) is shown for reference; what saving costs on a successful
run is ``benchmarks/materialize_overhead.py``. The machine's load average is printed: other work on the
machine moves every figure.

Child mode (used by the parent): ``resume_saving.py --child CONFIG RUN_ID CHECKPOINT_DIR [--resume]
[--no-checkpoint]`` runs one attempt like ``ppf run`` does and prints a JSON report.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

PROCESS_START = time.monotonic()

from airflow_ppf.components import DataFlow  # noqa: E402 - timed from the interpreter's start
from airflow_ppf.config import PipelineConfig  # noqa: E402

FAIL_ENV = "PPF_BENCH_FAIL_PUBLISH"
RUN_ID = "bench-resume"


class Publish(DataFlow):
    """Reconcile ``orders`` with ``daily`` and write two reports; fails after its work when asked to."""

    def __init__(self, path: str) -> None:
        self.path = path

    @property
    def input_views(self) -> Sequence[str]:
        return ("orders", "daily", "top_customers")

    @property
    def output_views(self) -> Sequence[str]:
        return ()

    def run(self) -> None:
        spark = self.spark
        reconciliation = spark.sql(
            """
            SELECT o.status, o.orders, d.orders AS reported
            FROM (SELECT status, COUNT(*) AS orders FROM orders GROUP BY status) o
            LEFT JOIN (SELECT 'paid' AS status, SUM(orders) AS orders FROM daily) d USING (status)
            """
        )
        fail = os.environ.get(FAIL_ENV) == "1"
        target = "noop" if fail else "parquet"
        for name, frame in (
            ("reconciliation", reconciliation),
            ("daily", spark.table("daily")),
            ("top_customers", spark.table("top_customers").where("rank <= 100")),
        ):
            writer = frame.write.mode("overwrite").format(target)
            writer.save() if fail else writer.save(f"{self.path}/{name}")
        if fail:
            raise RuntimeError("publishing failed (injected, after the work was done)")


def pipeline(rows: int, out: Path) -> dict[str, Any]:
    sql = "airflow_ppf.components.spark.SqlTransform"
    return {
        "name": "resume-benchmark",
        "spark": {
            "app_name": "resume-benchmark",
            "master": "local[2]",
            "log_level": "ERROR",
            "spark_conf": {
                "spark.driver.memory": "2g",
                "spark.sql.shuffle.partitions": "4",
                "spark.ui.enabled": "false",
                "spark.ui.showConsoleProgress": "false",
            },
        },
        "components": [
            {
                "name": "orders",
                "class_path": sql,
                # Generated rows count as cheap to recompute under auto; saving this large view anyway
                # makes the restore cost per GB measurable (and publish reads it without recomputing).
                "materialize": "always",
                "config": {
                    "output_view": "orders",
                    "sql": f"""
                        SELECT id AS order_id,
                               pmod(xxhash64(id, 1), 200000) AS customer_id,
                               CAST(pmod(xxhash64(id, 2), 100000) / 100.0 AS DECIMAL(10,2)) AS amount,
                               date_add(DATE'2026-01-01', CAST(pmod(xxhash64(id, 3), 365) AS INT)) AS day,
                               element_at(array('paid', 'paid', 'paid', 'cancelled', 'refunded'),
                                          CAST(pmod(xxhash64(id, 4), 5) AS INT) + 1) AS status,
                               sha2(CAST(id AS STRING), 256) AS token
                        FROM range({rows})
                    """,
                },
            },
            {
                "name": "customers",
                "class_path": sql,
                "config": {
                    "output_view": "customers",
                    "sql": """
                        SELECT id AS customer_id,
                               element_at(array('north', 'south', 'east', 'west'), CAST(id % 4 AS INT) + 1) AS region,
                               IF(pmod(xxhash64(id), 10) < 2, 'business', 'private') AS segment,
                               concat('customer-', CAST(id AS STRING)) AS name
                        FROM range(200000)
                    """,
                },
            },
            {
                "name": "enriched",
                "class_path": sql,
                "depends_on": ["orders", "customers"],
                "config": {
                    "output_view": "enriched",
                    "sql": """
                        SELECT o.order_id, o.day, o.amount, o.customer_id, c.region, c.segment
                        FROM orders o JOIN customers c ON o.customer_id = c.customer_id
                        WHERE o.status = 'paid'
                    """,
                },
            },
            {
                "name": "daily",
                "class_path": sql,
                "depends_on": ["enriched"],
                "config": {
                    "output_view": "daily",
                    "sql": """
                        SELECT day, region, segment, COUNT(*) AS orders, SUM(amount) AS revenue,
                               percentile_approx(amount, 0.5) AS median_amount
                        FROM enriched GROUP BY day, region, segment
                    """,
                },
            },
            {
                "name": "top_customers",
                "class_path": sql,
                "depends_on": ["enriched"],
                "config": {
                    "output_view": "top_customers",
                    "sql": """
                        SELECT customer_id, region, SUM(amount) AS total, COUNT(*) AS orders,
                               RANK() OVER (PARTITION BY region ORDER BY SUM(amount) DESC) AS rank
                        FROM enriched GROUP BY customer_id, region
                    """,
                },
            },
            {
                "name": "publish",
                "class_path": f"{__name__}.Publish",
                "depends_on": ["daily", "top_customers", "orders"],
                "config": {"path": str(out)},
            },
        ],
    }


# -- child: one attempt in this process --------------------------------------------------------------------


def _time_restore_steps() -> dict[str, list[float]]:
    """Time the steps of a restore (benchmark instrumentation): comparing the files' checksums, creating
    each view's DataFrame over its files, registering it."""
    from airflow_ppf.checkpoint.saved_views import SavedViews

    steps: dict[str, list[float]] = {"checksums": [], "dataframe": [], "register": []}
    for name, attr in (("checksums", "_checksums_changed"), ("dataframe", "_read"), ("register", "restore")):
        original = getattr(SavedViews, attr)

        def timed(*args: Any, _original: Any = original, _name: str = name, **kwargs: Any) -> Any:
            started = time.monotonic()
            try:
                return _original(*args, **kwargs)
            finally:
                steps[_name].append(time.monotonic() - started)

        setattr(SavedViews, attr, timed)
    return steps


def child(config_path: str, run_id: str, checkpoints: str, *, resume: bool, checkpoint: bool) -> int:
    from airflow_ppf.runner import CheckpointHooks, CompositeHooks, LocalCheckpointStore, SimplePipelineRunner
    from airflow_ppf.runner.checkpoint import plan_resume

    steps = _time_restore_steps()

    config = PipelineConfig.from_file(config_path)
    hooks: list[object] = []
    plan = None
    attempt = 1
    store = LocalCheckpointStore(checkpoints)
    if checkpoint:
        state = store.load(run_id, config.name)
        attempt = (state.attempt if state else 0) + 1
        plan = plan_resume(state, config, run_id=run_id) if resume else None
        hooks.append(CheckpointHooks(store, run_id, attempt=attempt, resume_plan=plan))
    runner = SimplePipelineRunner(config, hooks=CompositeHooks(*hooks), context={"run_id": run_id, "attempt": attempt})
    started = time.monotonic()
    result = runner.run(plan=plan)
    ended = time.monotonic()
    startup = runner.spark_manager.startup_seconds or 0.0
    runner.close()
    report: dict[str, Any] = {
        "status": result.status.value,
        "wall": time.monotonic() - PROCESS_START,
        "before_run": started - PROCESS_START,
        "run": ended - started,
        "close": time.monotonic() - ended,
        "session_start": startup,
        "components": {r.component_name: [r.status.value, r.duration_ms / 1000] for r in result.component_results},
        "restore_seconds": 0.0,
        "restore_steps": steps,
        "restored_bytes": 0,
        "restored_views": [],
        "saved_bytes": 0,
    }
    if checkpoint:
        state = store.load(run_id, config.name)
        assert state is not None
        current = state.attempts[-1]
        for event in current.events:
            if event["event"] == "restored_views":
                report.update(
                    restore_seconds=event["seconds"], restored_bytes=event["bytes"], restored_views=event["views"]
                )
        report["saved_bytes"] = sum(
            int(o.get("bytes") or 0) for r in state.components.values() for o in r.outputs if o.get("path")
        )
    print("PPF-BENCH " + json.dumps(report), flush=True)
    return 0


# -- parent ------------------------------------------------------------------------------------------------


def attempt(
    config: Path, run_id: str, checkpoints: Path, *, resume: bool, checkpoint: bool, fail: bool
) -> dict[str, Any]:
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": os.environ.get("SPARK_LOCAL_IP", "127.0.0.1"),
        "PYSPARK_PYTHON": sys.executable,
    }
    env.pop(FAIL_ENV, None)
    if fail:
        env[FAIL_ENV] = "1"
    args = [sys.executable, __file__, "--child", str(config), run_id, str(checkpoints)]
    args += ["--resume"] if resume else []
    args += [] if checkpoint else ["--no-checkpoint"]
    started = time.monotonic()
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    wall = time.monotonic() - started
    line = next((x for x in done.stdout.splitlines() if x.startswith("PPF-BENCH ")), None)
    if line is None:
        raise SystemExit(f"child failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr[-4000:]}")
    report: dict[str, Any] = json.loads(line[len("PPF-BENCH ") :])
    report["process_wall"] = wall
    return report


def read_saved_views(data: Path) -> tuple[float, int]:
    """Read every file of the saved views once (what verifying their checksums has to read); return the time
    and the bytes: the "read time at disk bandwidth" of the restore goal, on this machine's disk and cache."""
    started, total = time.monotonic(), 0
    for path in sorted(p for p in data.rglob("*") if p.is_file()):
        with open(path, "rb", buffering=0) as fh:
            while chunk := fh.read(4 * 1024 * 1024):
                total += len(chunk)
    return time.monotonic() - started, total


def ran_seconds(report: dict[str, Any]) -> float:
    return sum(float(sec) for status, sec in report["components"].values() if status in ("success", "failed"))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000, help="generated orders (default 3,000,000)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds of (scratch, attempt 1, resume); medians")
    parser.add_argument("--child", nargs=3, metavar=("CONFIG", "RUN_ID", "CHECKPOINTS"), help=argparse.SUPPRESS)
    parser.add_argument("--resume", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-checkpoint", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(*args.child, resume=args.resume, checkpoint=not args.no_checkpoint)

    rows: dict[str, list[dict[str, Any]]] = {"scratch": [], "first": [], "resume": []}
    with tempfile.TemporaryDirectory(prefix="ppf-resume-bench-") as tmp:
        base = Path(tmp)
        for round_ in range(args.rounds):
            folder = base / f"round-{round_}"
            folder.mkdir()
            config = folder / "pipeline.json"
            config.write_text(json.dumps(pipeline(args.rows, folder / "out")), encoding="utf-8")
            checkpoints = folder / "checkpoints"
            print(f"round {round_ + 1}/{args.rounds}: from scratch…", flush=True)
            scratch = attempt(config, "scratch", checkpoints, resume=False, checkpoint=False, fail=False)
            print(f"round {round_ + 1}/{args.rounds}: attempt 1 (fails in publish)…", flush=True)
            first = attempt(config, RUN_ID, checkpoints, resume=False, checkpoint=True, fail=True)
            first["read_seconds"], first["read_bytes"] = read_saved_views(checkpoints / "_data")
            print(f"round {round_ + 1}/{args.rounds}: resume in a new process…", flush=True)
            resumed = attempt(config, RUN_ID, checkpoints, resume=True, checkpoint=True, fail=False)
            assert scratch["status"] == "success", scratch
            assert first["status"] != "success", first
            assert resumed["status"] == "success", resumed
            ran = [n for n, (s, _) in resumed["components"].items() if s == "success"]
            # publish, plus producers of views auto judged cheap to recompute (narrow queries over generated
            # data) rather than saving them.
            assert ran[-1] == "publish", resumed
            for key, report in (("scratch", scratch), ("first", first), ("resume", resumed)):
                rows[key].append(report)

    def med(key: str, field: str) -> float:
        return statistics.median(float(r[field]) for r in rows[key])

    def med_of(key: str, fn: Callable[[dict[str, Any]], float]) -> float:
        return statistics.median(fn(r) for r in rows[key])

    def publish(r: dict[str, Any]) -> float:
        return float(r["components"]["publish"][1])

    def recomputed(r: dict[str, Any]) -> float:  # cheap views rebuilt instead of restored
        return sum(float(t) for n, (s, t) in r["components"].items() if s == "success" and n != "publish")

    def bookkeeping(r: dict[str, Any]) -> float:  # in run(), outside Spark start, restore and components
        return float(r["run"]) - float(r["session_start"]) - float(r["restore_seconds"]) - ran_seconds(r)

    def first_of(values: list[float]) -> float:
        return values[0] if values else 0.0

    def total_of(values: list[float]) -> float:
        return sum(values)

    def restore_step(step: str, pick: Callable[[list[float]], float]) -> str:
        return f"{statistics.median(pick(r['restore_steps'][step]) for r in rows['resume']):.2f}"

    def interpreter(r: dict[str, Any]) -> float:  # process start, imports, exit
        return float(r["process_wall"]) - float(r["run"]) - float(r["close"])

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\nResume vs rerun: 6-component Spark pipeline, {args.rows:,} orders, local[2], "
        f"{args.rounds} round(s), medians; load average {load:.1f} on {os.cpu_count()} CPUs\n"
    )
    header = (
        f"{'':33}{'process':>9}{'session':>9}{'restore':>9}{'components':>12}{'checkpoint':>12}{'Spark':>7}"
        f"{'python':>8}\n{'':33}{'wall':>9}{'start':>9}{'':>9}{'run':>12}{'I/O etc.':>12}{'stop':>7}{'':>8}"
    )
    print(header)
    print("-" * 99)
    for key, label in (
        ("scratch", "(a) from scratch, no checkpoint"),
        ("resume", "(b) resume (publish + cheap views)"),
        ("first", "attempt 1, saving (reference)"),
    ):
        print(
            f"{label:33}{med(key, 'process_wall'):>8.1f}s{med(key, 'session_start'):>8.1f}s"
            f"{med(key, 'restore_seconds'):>8.2f}s{med_of(key, ran_seconds):>11.1f}s{med_of(key, bookkeeping):>11.1f}s"
            f"{med(key, 'close'):>6.1f}s{med_of(key, interpreter):>7.1f}s"
        )
    restored_bytes = med("resume", "restored_bytes")
    restore = med("resume", "restore_seconds")
    views = rows["resume"][0]["restored_views"]
    scratch_wall, b_wall = med("scratch", "process_wall"), med("resume", "process_wall")
    last, start = med_of("resume", publish), med("resume", "session_start")
    rebuilt = med_of("resume", recomputed)
    rebuilt_names = [n for n, (st, _) in rows["resume"][0]["components"].items() if st == "success" and n != "publish"]
    goal = last + start + restore + rebuilt
    print(
        f"\n(a) runs every component, but its views are lazy: publish's jobs compute the whole lineage "
        f"({med_of('scratch', publish):.1f} s of its components' time)."
        f"\npublish's own time: {last:.1f} s when resumed, {med_of('first', publish):.1f} s in attempt 1."
        f"\nrestored {len(views)} views ({', '.join(views)}): {restored_bytes / 1e6:.1f} MB in {restore:.2f} s "
        f"(verify + register). Verifying reads the files and compares their checksums: no Spark job."
        f"\nrestore steps: checksums {restore_step('checksums', total_of)} s; a DataFrame over each view's files "
        f"{restore_step('dataframe', total_of)} s, of which the first {restore_step('dataframe', first_of)} s; "
        f"registering the views {restore_step('register', total_of)} s, of which the first "
        f"{restore_step('register', first_of)} s (the first of each in a new JVM loads and compiles Spark's "
        f"parquet reader and analyser: a cost the first query of the resumed component pays otherwise)"
        f"\nreading every saved file once takes {med('first', 'read_seconds'):.2f} s "
        f"({med('first', 'read_bytes') / 1e6:.1f} MB, "
        f"{med('first', 'read_bytes') / 1e6 / max(med('first', 'read_seconds'), 1e-9):.0f} MB/s on this machine): "
        f"goal restore <= 1 s + that = {1 + med('first', 'read_seconds'):.2f} s: "
        f"{'met' if restore <= 1 + med('first', 'read_seconds') else 'missed'}"
        f"\nrecomputed instead of restored (cheap views, materialize = auto): {', '.join(rebuilt_names) or 'none'}"
        f" in {rebuilt:.2f} s"
        f"\nsaved by attempt 1: {med('first', 'saved_bytes') / 1e6:.1f} MB"
        f"\nresume saved {scratch_wall - b_wall:.1f} s of {scratch_wall:.1f} s ({1 - b_wall / scratch_wall:.0%})"
        f"\ngoal (b) <= publish + session start + restore (+ cheap views rebuilt): {b_wall:.1f} s vs {last:.1f} + "
        f"{start:.1f} + {restore:.2f} + {rebuilt:.2f} = {goal:.1f} s: {'met' if b_wall <= goal else 'missed'} by "
        f"{abs(goal - b_wall):.1f} s "
        f"(checkpoint I/O etc. {med_of('resume', bookkeeping):.1f} s, Spark stop {med('resume', 'close'):.1f} s, "
        f"python start/exit {med_of('resume', interpreter):.1f} s are outside the goal's terms)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
