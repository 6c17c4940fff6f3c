"""SimplePipelineRunner: order, resume skips, failure handling, statuses, interruption, Spark laziness, cancel."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from airflow_ppf.config import ConfigError, PipelineConfig
from airflow_ppf.runner import (
    ComponentResult,
    ComponentStatus,
    PipelineResult,
    PipelineResultStatus,
    SimplePipelineRunner,
)
from airflow_ppf.spark.session import SparkSessionManager
from tests.helpers.components import BLOCKING, FLAKY_ONCE, MODULE, SPARK_STEP, Blocking, FakeClock, SparkStep
from tests.helpers.hooks import RecordingHooks
from tests.helpers.pipelines import component, no_wait_retry, pipeline

ROOT = Path(__file__).resolve().parents[2]


def statuses(result: PipelineResult) -> dict[str, ComponentStatus]:
    return {r.component_name: r.status for r in result.component_results}


def reasons(result: PipelineResult) -> dict[str, str | None]:
    return {r.component_name: r.reason for r in result.component_results}


# --------------------------------------------------------------------------------------------------
# order and success
# --------------------------------------------------------------------------------------------------


def test_two_step_pipeline_runs_in_order(two_step_pipeline: PipelineConfig, calls: list[str]) -> None:
    result = SimplePipelineRunner(two_step_pipeline).run()

    assert calls == ["run:read", "run:write"]
    assert result.status is PipelineResultStatus.SUCCESS
    assert result.success
    assert result.pipeline_name == "two-step"
    assert result.completed_components == ["read", "write"]
    assert result.skipped_components == []
    assert result.failed_components == []


def test_order_is_deterministic_and_follows_dependencies(calls: list[str]) -> None:
    config = pipeline(
        component("write", depends_on=["join"]),
        component("orders"),
        component("join", depends_on=["customers", "orders"]),
        component("customers"),
        component("audit"),
    )

    runner = SimplePipelineRunner(config)
    first = runner.run()
    order = list(calls)
    calls.clear()
    runner.run()

    assert order == ["run:orders", "run:customers", "run:join", "run:write", "run:audit"]
    assert calls == order
    assert [r.component_name for r in first.component_results] == ["orders", "customers", "join", "write", "audit"]
    assert [c.name for c in runner.execution_order()] == ["orders", "customers", "join", "write", "audit"]


def test_hook_event_sequence_of_a_two_step_run(two_step_pipeline: PipelineConfig, hooks: RecordingHooks) -> None:
    SimplePipelineRunner(two_step_pipeline, hooks=hooks).run()

    assert [e[:4] for e in hooks.events] == [
        ("before_pipeline", "two-step"),
        ("before_component", "read", 0, 2),
        ("after_component", "read", 0, 2),
        ("before_component", "write", 1, 2),
        ("after_component", "write", 1, 2),
        ("after_pipeline", "two-step", PipelineResultStatus.SUCCESS),
    ]


def test_from_file_builds_a_runner(tmp_path: Path, calls: list[str]) -> None:
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"name": "file", "components": [component("only")]}))

    result = SimplePipelineRunner.from_file(path).run()

    assert result.pipeline_name == "file"
    assert calls == ["run:only"]


# --------------------------------------------------------------------------------------------------
# resume: completed components are skipped
# --------------------------------------------------------------------------------------------------


def test_completed_components_are_skipped_and_reported(
    diamond_pipeline: PipelineConfig, calls: list[str], hooks: RecordingHooks
) -> None:
    result = SimplePipelineRunner(diamond_pipeline, hooks=hooks).run(completed_components=["a", "c"])

    assert calls == ["run:b", "run:d"]
    assert statuses(result) == {
        "a": ComponentStatus.SKIPPED,
        "b": ComponentStatus.SUCCESS,
        "c": ComponentStatus.SKIPPED,
        "d": ComponentStatus.SUCCESS,
    }
    assert result.status is PipelineResultStatus.SUCCESS
    assert result.skipped_components == ["a", "c"]
    assert result.completed_components == ["b", "d"]
    assert result.done_components == ["a", "b", "c", "d"]
    assert result.get("a") == ComponentResult("a", ComponentStatus.SKIPPED, reason="done in an earlier attempt")
    assert [e for e in hooks.events if e[0] == "on_component_skipped"] == [
        ("on_component_skipped", "a", 0, 4, "done in an earlier attempt"),
        ("on_component_skipped", "c", 2, 4, "done in an earlier attempt"),
    ]
    assert hooks.names("before_component") == ["b", "d"]


def test_skip_reasons_are_passed_to_hooks_and_results(two_step_pipeline: PipelineConfig, hooks: RecordingHooks) -> None:
    result = SimplePipelineRunner(two_step_pipeline, hooks=hooks).run(
        completed_components={"read"}, skip_reasons={"read": "done in try 1"}
    )

    assert reasons(result)["read"] == "done in try 1"
    assert ("on_component_skipped", "read", 0, 2, "done in try 1") in hooks.events


def test_everything_completed_is_a_success_that_runs_nothing(
    two_step_pipeline: PipelineConfig, calls: list[str]
) -> None:
    result = SimplePipelineRunner(two_step_pipeline).run(completed_components=["read", "write"])

    assert calls == []
    assert result.status is PipelineResultStatus.SUCCESS
    assert result.skipped_components == ["read", "write"]


@pytest.mark.parametrize(
    ("completed", "error", "match"),
    [
        pytest.param("rw", TypeError, r"not a string \('rw'\): pass a list or set of names", id="str"),
        pytest.param(b"read", TypeError, r"not a bytes \(b'read'\)", id="bytes"),
        pytest.param(42, TypeError, r"must be a collection of component names, not int", id="int"),
        pytest.param({"read": True}, TypeError, r"not a dict", id="dict"),
        pytest.param(["read", 7], TypeError, r"must hold component names \(strings\), got 7 \(int\)", id="int-item"),
        pytest.param(
            ["read", "renamed_step", "other"],
            ValueError,
            r"completed_components names components that are not in pipeline 'two-step': 'renamed_step', 'other' "
            r"\(its components: read, write\)",
            id="unknown",
        ),
    ],
)
def test_completed_components_must_be_a_collection_of_known_names(
    two_step_pipeline: PipelineConfig, calls: list[str], completed: Any, error: type[Exception], match: str
) -> None:
    # A plain string used to be iterated: "rw" silently skipped nothing, "read" would skip r, e, a, d.
    with pytest.raises(error, match=match):
        SimplePipelineRunner(two_step_pipeline).run(completed_components=completed)

    assert calls == []


def test_completed_components_accepts_any_collection_of_names(
    two_step_pipeline: PipelineConfig, calls: list[str]
) -> None:
    for completed in (["read"], ("read",), {"read"}, frozenset({"read"}), iter(["read"])):
        calls.clear()
        result = SimplePipelineRunner(two_step_pipeline).run(completed_components=completed)
        assert result.skipped_components == ["read"]
        assert calls == ["run:write"]


def test_a_failed_run_resumes_where_it_stopped(calls: list[str], caplog: pytest.LogCaptureFixture) -> None:
    config = pipeline(
        component("extract"), component("load", depends_on=["extract"], class_path=FLAKY_ONCE), component("report")
    )
    runner = SimplePipelineRunner(config)

    with caplog.at_level(logging.INFO, logger="airflow_ppf.runner.simple_runner"):
        first = runner.run()
    second = runner.run(completed_components=first.done_components)

    assert first.status is PipelineResultStatus.PARTIAL_SUCCESS
    assert first.done_components == ["extract"]
    assert "Run it again with completed_components=['extract']" in caplog.text
    assert second.status is PipelineResultStatus.SUCCESS
    assert second.skipped_components == ["extract"]
    assert second.completed_components == ["load", "report"]
    assert calls == ["run:extract", "run:load", "run:load", "run:report"]


# --------------------------------------------------------------------------------------------------
# failures: fail fast, independent branches, blocked components
# --------------------------------------------------------------------------------------------------


def test_fail_fast_is_the_default_and_stops_everything_after_a_failure(calls: list[str], hooks: RecordingHooks) -> None:
    config = pipeline(
        component("a"),
        component("b", depends_on=["a"], fail_times=-1, message="bad rows"),
        component("independent"),
        component("c", depends_on=["b"]),
    )

    result = SimplePipelineRunner(config, hooks=hooks).run()

    assert calls == ["run:a", "run:b"]
    assert statuses(result) == {
        "a": ComponentStatus.SUCCESS,
        "b": ComponentStatus.FAILED,
        "independent": ComponentStatus.NOT_RUN,
        "c": ComponentStatus.NOT_RUN,
    }
    assert reasons(result)["independent"] == "pipeline stopped after 'b' failed"
    assert result.status is PipelineResultStatus.PARTIAL_SUCCESS
    ((name, error),) = result.failed_components
    assert name == "b"
    assert isinstance(error, RuntimeError)
    assert str(error) == "bad rows"
    assert [e[:3] for e in hooks.events if e[0] == "on_component_failure"] == [("on_component_failure", "b", 1)]
    assert hooks.names("on_component_skipped") == []  # not-run components are not "skipped"


def test_without_fail_fast_independent_branches_run_and_downstream_is_blocked(
    calls: list[str], hooks: RecordingHooks
) -> None:
    config = pipeline(
        component("a"),
        component("b", depends_on=["a"], fail_times=-1),
        component("c", depends_on=["b"]),
        component("e", depends_on=["a"]),
        component("d", depends_on=["c", "e"]),
        component("f", depends_on=["e"]),
    )

    result = SimplePipelineRunner(config, hooks=hooks, fail_fast=False).run()

    assert calls == ["run:a", "run:b", "run:e", "run:f"]
    assert statuses(result) == {
        "a": ComponentStatus.SUCCESS,
        "b": ComponentStatus.FAILED,
        "c": ComponentStatus.BLOCKED,
        "e": ComponentStatus.SUCCESS,
        "d": ComponentStatus.BLOCKED,
        "f": ComponentStatus.SUCCESS,
    }
    assert reasons(result)["c"] == "blocked: upstream 'b' did not finish"
    assert reasons(result)["d"] == "blocked: upstream 'c' did not finish"
    assert result.blocked_components == ["c", "d"]
    assert result.status is PipelineResultStatus.PARTIAL_SUCCESS
    assert [e[1] for e in hooks.events if e[0] == "on_component_skipped"] == ["c", "d"]
    assert hooks.names("before_component") == ["a", "b", "e", "f"]


def test_without_fail_fast_a_skipped_upstream_does_not_block(calls: list[str]) -> None:
    config = pipeline(component("a", fail_times=-1), component("b"), component("c", depends_on=["b"]))

    result = SimplePipelineRunner(config, fail_fast=False).run(completed_components=["b"])

    assert statuses(result)["c"] is ComponentStatus.SUCCESS
    assert calls == ["run:a", "run:c"]


def test_first_component_failing_is_a_failure(two_step_pipeline: PipelineConfig) -> None:
    config = pipeline(component("read", fail_times=-1), component("write", depends_on=["read"]))

    result = SimplePipelineRunner(config).run()

    assert result.status is PipelineResultStatus.FAILURE
    assert not result.success
    assert result.done_components == []


def test_a_failure_after_a_skip_is_a_partial_success() -> None:
    config = pipeline(component("read"), component("write", depends_on=["read"], fail_times=-1))

    result = SimplePipelineRunner(config).run(completed_components=["read"])

    assert result.status is PipelineResultStatus.PARTIAL_SUCCESS


# --------------------------------------------------------------------------------------------------
# disabled components
# --------------------------------------------------------------------------------------------------


def test_disabled_components_are_not_run_and_dependents_still_run(calls: list[str], hooks: RecordingHooks) -> None:
    config = pipeline(
        component("a"),
        component("b", depends_on=["a"], enabled=False),
        component("c", depends_on=["b"]),
    )

    result = SimplePipelineRunner(config, hooks=hooks).run()

    assert calls == ["run:a", "run:c"]
    assert statuses(result) == {
        "a": ComponentStatus.SUCCESS,
        "b": ComponentStatus.DISABLED,
        "c": ComponentStatus.SUCCESS,
    }
    assert reasons(result)["b"] == "disabled"
    assert result.status is PipelineResultStatus.SUCCESS
    assert hooks.names("on_component_skipped") == []  # disabled components are not part of the run
    # index/total count enabled components only
    assert [e[1:4] for e in hooks.events if e[0] == "before_component"] == [("a", 0, 2), ("c", 1, 2)]


def test_a_disabled_component_with_a_bad_class_path_is_never_imported(calls: list[str]) -> None:
    config = pipeline(component("a"), component("gone", class_path=f"{MODULE}.Removed", enabled=False))

    result = SimplePipelineRunner(config).run()

    assert result.status is PipelineResultStatus.SUCCESS
    assert calls == ["run:a"]


# --------------------------------------------------------------------------------------------------
# per-component results
# --------------------------------------------------------------------------------------------------


def test_durations_attempts_and_errors_are_reported(clock: FakeClock) -> None:
    config = pipeline(
        component("slow", advance=2.5),
        component("flaky", depends_on=["slow"], fail_times=2, advance=0.25, retry=no_wait_retry(3)),
        component("broken", depends_on=["flaky"], fail_times=-1, error="ValueError", message="no such column\nmore"),
    )

    result = SimplePipelineRunner(config, clock=clock, sleep=lambda _: None).run()

    slow, flaky, broken = result.component_results
    assert (slow.status, slow.duration_ms, slow.attempts, slow.error) == (ComponentStatus.SUCCESS, 2500, 1, None)
    assert (flaky.status, flaky.duration_ms, flaky.attempts, flaky.retries) == (ComponentStatus.SUCCESS, 750, 3, 2)
    assert broken.status is ComponentStatus.FAILED
    assert broken.attempts == 1
    assert isinstance(broken.error, ValueError)
    assert broken.error_type == "ValueError"
    assert broken.error_message == "no such column"
    assert result.total_duration_ms == 3250
    assert result.total_duration_seconds == 3.25
    assert slow.duration_seconds == 2.5
    assert result.to_dict() == {
        "pipeline": "test-pipeline",
        "status": "partial_success",
        "duration_ms": 3250,
        "components": [
            {"name": "slow", "status": "success", "duration_ms": 2500, "attempts": 1},
            {"name": "flaky", "status": "success", "duration_ms": 750, "attempts": 3},
            {
                "name": "broken",
                "status": "failed",
                "duration_ms": 0,
                "attempts": 1,
                "error_type": "ValueError",
                "error_message": "no such column",
            },
        ],
    }


def test_not_run_components_report_zero_attempts() -> None:
    config = pipeline(component("a", fail_times=-1), component("b"))

    result = SimplePipelineRunner(config).run()

    assert result.get("b") == ComponentResult("b", ComponentStatus.NOT_RUN, reason="pipeline stopped after 'a' failed")
    assert result.get("nope") is None


@pytest.mark.parametrize(
    ("component_statuses", "interrupted", "expected"),
    [
        ([ComponentStatus.SUCCESS, ComponentStatus.SKIPPED, ComponentStatus.DISABLED], False, "success"),
        ([ComponentStatus.DISABLED], False, "success"),
        ([ComponentStatus.SUCCESS, ComponentStatus.FAILED], False, "partial_success"),
        ([ComponentStatus.SKIPPED, ComponentStatus.BLOCKED], False, "partial_success"),
        ([ComponentStatus.SKIPPED, ComponentStatus.NOT_RUN], False, "partial_success"),
        ([ComponentStatus.FAILED, ComponentStatus.NOT_RUN], False, "failure"),
        ([ComponentStatus.FAILED, ComponentStatus.DISABLED], False, "failure"),
        ([ComponentStatus.SUCCESS], True, "interrupted"),
    ],
)
def test_decide_status(component_statuses: list[ComponentStatus], interrupted: bool, expected: str) -> None:
    results = [ComponentResult(f"c{i}", s) for i, s in enumerate(component_statuses)]

    assert PipelineResult.decide_status(results, interrupted=interrupted) == PipelineResultStatus(expected)


# --------------------------------------------------------------------------------------------------
# config errors fail before anything runs
# --------------------------------------------------------------------------------------------------


def test_bad_class_paths_fail_the_run_before_any_component_runs(calls: list[str], hooks: RecordingHooks) -> None:
    config = pipeline(
        component("first"),
        component("second", depends_on=["first"], class_path=f"{MODULE}.Stpe"),
        component("third", depends_on=["second"], class_path=f"{MODULE}.Configurable", pth="/x"),
    )

    with pytest.raises(ConfigError) as info:
        SimplePipelineRunner(config, hooks=hooks).run()

    assert calls == []
    assert hooks.events == []
    error = info.value
    assert error.source == "pipeline 'test-pipeline'"
    assert [p.location for p in error.problems] == ["components[1]", "components[2]"]
    assert error.problems[0].message == (
        f"'second': module '{MODULE}' has no class 'Stpe'; did you mean '{MODULE}.Step'?"
    )
    assert "unknown config key 'pth' (did you mean 'path'?)" in error.problems[1].message


def test_a_constructor_error_fails_the_run_up_front(calls: list[str]) -> None:
    config = pipeline(component("a"), component("b", class_path=f"{MODULE}.BrokenInit", value=3))

    with pytest.raises(
        ConfigError, match=r"components\[1\]: 'b': building .*BrokenInit failed: ValueError: cannot use"
    ):
        SimplePipelineRunner(config).run()

    assert calls == []


def test_every_enabled_component_is_built_up_front_even_when_skipped(calls: list[str]) -> None:
    # Skipped components are built too (resume restores what they produced), so their errors show first.
    config = pipeline(component("old", class_path=f"{MODULE}.Removed"), component("new", depends_on=["old"]))

    with pytest.raises(ConfigError, match=r"components\[0\]: 'old': module .* has no class 'Removed'"):
        SimplePipelineRunner(config).run(completed_components=["old"])

    assert calls == []


# --------------------------------------------------------------------------------------------------
# interruption: KeyboardInterrupt / SystemExit
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("error", ["KeyboardInterrupt", "SystemExit"])
def test_hard_interruption_reaches_after_pipeline_and_propagates(
    error: str, calls: list[str], hooks: RecordingHooks
) -> None:
    config = pipeline(
        component("a"),
        component("b", depends_on=["a"], fail_times=-1, error=error, message="stop", retry=no_wait_retry(3)),
        component("c", depends_on=["b"]),
    )

    with pytest.raises((KeyboardInterrupt, SystemExit)) as info:
        SimplePipelineRunner(config, hooks=hooks).run()

    assert type(info.value).__name__ == error
    assert calls == ["run:a", "run:b"]  # never retried
    (result,) = hooks.results
    assert result.status is PipelineResultStatus.INTERRUPTED
    assert result.interrupted_by is info.value
    assert statuses(result) == {
        "a": ComponentStatus.SUCCESS,
        "b": ComponentStatus.INTERRUPTED,
        "c": ComponentStatus.NOT_RUN,
    }
    assert reasons(result)["c"] == "pipeline interrupted"
    assert hooks.events[-1] == ("after_pipeline", "test-pipeline", PipelineResultStatus.INTERRUPTED)
    assert hooks.names("on_component_failure") == []


# --------------------------------------------------------------------------------------------------
# no Spark unless needed
# --------------------------------------------------------------------------------------------------


def test_a_pure_python_pipeline_never_imports_pyspark_or_starts_java(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import json, os, sys

        from airflow_ppf.runner import LoggingHooks, SimplePipelineRunner
        from tests.helpers.pipelines import component, pipeline

        config = pipeline(component("a"), component("b", depends_on=["a"]))
        with SimplePipelineRunner(config, hooks=LoggingHooks()) as runner:
            result = runner.run()

        me = os.getpid()
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as f:
                        ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                    with open(f"/proc/{entry}/comm") as f:
                        name = f.read().strip()
                except OSError:
                    continue
                if ppid == me:
                    children.append(name)
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j", "airflow"))
        print(json.dumps({"status": result.status.value, "heavy": heavy, "children": children}))
        """
    )
    if not Path("/proc/self/stat").exists():
        pytest.skip("needs /proc to list child processes")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}

    done = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"status": "success", "heavy": [], "children": []}


class StubSparkContext:
    def __init__(self) -> None:
        self.cancelled = 0

    def cancelAllJobs(self) -> None:
        self.cancelled += 1


class StubSession:
    """Stands in for a SparkSession: counts stop() and job cancellation."""

    def __init__(self) -> None:
        self.stopped = 0
        self.sparkContext = StubSparkContext()

    def stop(self) -> None:
        self.stopped += 1


class RecordingSessionManager(SparkSessionManager):
    """A session manager whose sessions are stubs; records when one is created."""

    def __init__(self, calls: list[str], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.calls = calls
        self.created: list[StubSession] = []

    def _create(self) -> tuple[Any, bool]:
        self.calls.append("create-session")
        session = StubSession()
        self.created.append(session)
        return session, True  # created here: owned


def test_no_session_is_created_for_plain_components(two_step_pipeline: PipelineConfig, calls: list[str]) -> None:
    manager = RecordingSessionManager(calls)

    with SimplePipelineRunner(two_step_pipeline, spark_manager=manager) as runner:
        runner.run()

    assert manager.created == []
    assert not manager.started
    assert "create-session" not in calls


def test_the_session_is_created_just_before_the_first_dataflow_and_shared(calls: list[str]) -> None:
    config = pipeline(
        component("plain"),
        component("flow1", depends_on=["plain"], class_path=SPARK_STEP),
        component("flow2", depends_on=["flow1"], class_path=SPARK_STEP),
    )
    manager = RecordingSessionManager(calls)
    runner = SimplePipelineRunner(config, spark_manager=manager)

    runner.run()
    runner.run()  # the session (and its temp views) survives between runs

    assert calls == [
        "run:plain",
        "create-session",
        "spark:flow1",
        "spark:flow2",
        "run:plain",
        "spark:flow1",
        "spark:flow2",
    ]
    (session,) = manager.created
    assert SparkStep.sessions == [session] * 4
    assert manager.owns_session
    assert session.stopped == 0

    runner.close()

    assert session.stopped == 1
    assert not manager.started


def test_disabled_or_skipped_dataflows_create_no_session(calls: list[str]) -> None:
    config = pipeline(
        component("plain"),
        component("off", class_path=SPARK_STEP, enabled=False),
        component("done", class_path=SPARK_STEP),
    )
    manager = RecordingSessionManager(calls)

    SimplePipelineRunner(config, spark_manager=manager).run(completed_components=["done"])

    assert manager.created == []


def test_a_session_passed_in_is_used_and_never_stopped(calls: list[str]) -> None:
    config = pipeline(component("flow", class_path=SPARK_STEP))
    session = StubSession()

    with SimplePipelineRunner(config, spark=session) as runner:  # type: ignore[arg-type]
        runner.run()
        runner.cancel()
    runner.close()

    assert SparkStep.sessions == [session]
    assert session.stopped == 0
    assert session.sparkContext.cancelled == 1
    assert not runner.spark_manager.owns_session


def test_a_session_the_runner_created_is_stopped_by_the_context_manager(calls: list[str]) -> None:
    config = pipeline(component("flow", class_path=SPARK_STEP))
    manager = RecordingSessionManager(calls)

    with SimplePipelineRunner(config, spark_manager=manager) as runner:
        runner.run()

    assert [s.stopped for s in manager.created] == [1]


# --------------------------------------------------------------------------------------------------
# cancel() from another thread
# --------------------------------------------------------------------------------------------------


def test_cancel_from_another_thread_stops_further_components(calls: list[str], hooks: RecordingHooks) -> None:
    config = pipeline(component("block", class_path=BLOCKING), component("after", depends_on=["block"]), component("x"))
    runner = SimplePipelineRunner(config, hooks=hooks)

    def cancel_when_running() -> None:
        assert Blocking.started.wait(5)
        runner.cancel()

    canceller = threading.Thread(target=cancel_when_running)
    canceller.start()
    result = runner.run()
    canceller.join(5)

    assert calls == ["run:block", "cancel:block"]
    assert statuses(result) == {
        "block": ComponentStatus.SUCCESS,
        "after": ComponentStatus.NOT_RUN,
        "x": ComponentStatus.NOT_RUN,
    }
    assert reasons(result)["after"] == "run cancelled"
    assert result.status is PipelineResultStatus.INTERRUPTED
    assert hooks.events[-1] == ("after_pipeline", "test-pipeline", PipelineResultStatus.INTERRUPTED)


def test_cancel_during_a_retry_wait_stops_retrying(calls: list[str]) -> None:
    config = pipeline(
        component(
            "flaky",
            fail_times=-1,
            retry={"max_attempts": 5, "initial_delay_seconds": 30, "max_delay_seconds": 30, "jitter": 0},
        ),
        component("next"),
    )
    waiting = threading.Event()

    class CancelOnRetry:
        def on_retry_attempt(self, *args: Any) -> None:
            waiting.set()

    runner = SimplePipelineRunner(config, hooks=CancelOnRetry())

    def cancel_when_waiting() -> None:
        assert waiting.wait(5)
        runner.cancel()

    canceller = threading.Thread(target=cancel_when_waiting)
    canceller.start()
    started = time.monotonic()
    result = runner.run()
    canceller.join(5)

    assert time.monotonic() - started < 10
    assert calls == ["run:flaky"]  # no further attempt after the cancel
    assert result.get("flaky").attempts == 1  # type: ignore[union-attr]
    assert statuses(result)["next"] is ComponentStatus.NOT_RUN
    assert result.status is PipelineResultStatus.INTERRUPTED


def test_a_runner_can_run_again_after_a_cancel(two_step_pipeline: PipelineConfig, calls: list[str]) -> None:
    runner = SimplePipelineRunner(two_step_pipeline)
    runner.cancel()  # before run(): a new run starts fresh

    result = runner.run()

    assert result.status is PipelineResultStatus.SUCCESS
    assert calls == ["run:read", "run:write"]
