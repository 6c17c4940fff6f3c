"""PipelineOperator under real Airflow: dag.test() runs with real retries, for each checkpoint store."""

from __future__ import annotations

import datetime as dt
import itertools
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.airflow.components import MODULE
from tests.airflow.conftest import register_test_dag, task_state, xcom
from tests.helpers.components import APPEND_NAME
from tests.helpers.components import trace as lines

_ids = itertools.count()


def _pipeline(log: Path, *, extra: dict[str, Any] | None = None, fail_on: list[int] | None = None) -> dict[str, Any]:
    """read → clean → gate (fails on the given tries) → write, all leaving a trace in ``log``."""
    step = APPEND_NAME
    return {
        "name": "trace",
        "components": [
            {"name": "read", "class_path": step, "config": {"log_file": str(log), **(extra or {})}},
            {"name": "clean", "class_path": step, "depends_on": ["read"], "config": {"log_file": str(log)}},
            {
                "name": "gate",
                "class_path": "airflow_ppf.components.faults.FaultInjection",
                "depends_on": ["clean"],
                "config": {"fail_on_attempts": fail_on if fail_on is not None else [1]},
            },
            {"name": "write", "class_path": step, "depends_on": ["gate"], "config": {"log_file": str(log)}},
        ],
    }


def _dag(retries: int = 1, **operator_kwargs: Any) -> Any:
    from airflow.sdk import DAG

    from airflow_ppf.operators import PipelineOperator

    dag_id = f"ppf_test_{next(_ids)}_{dt.datetime.now().strftime('%H%M%S%f')}"
    register_test_dag(dag_id)
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        default_args={"retries": retries, "retry_delay": dt.timedelta(0)},
    ) as dag:
        PipelineOperator(task_id="pipeline", **operator_kwargs)
    return dag


def _ti(dag_run: Any) -> Any:
    return next(ti for ti in dag_run.get_task_instances() if ti.task_id == "pipeline")


# -- unit-level ------------------------------------------------------------------------------------------


def test_run_id_is_derived_from_the_task_instance() -> None:
    from airflow_ppf.operators import pipeline_run_id

    assert pipeline_run_id("d", "manual__2026-01-01T00:00:00+00:00", "t") == "d/manual__2026-01-01T00:00:00+00:00/t"
    assert pipeline_run_id("d", "r", "t", 3) == "d/r/t[3]"
    assert pipeline_run_id("d", "r", "t", -1) == pipeline_run_id("d", "r", "t", None) == "d/r/t"
    assert len({pipeline_run_id("d", "r", "t", i) for i in range(-1, 5)}) == 6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"on_config_change": "sometimes"}, "on_config_change must be"),
        ({"on_corrupt_checkpoint": "ignore"}, "on_corrupt_checkpoint must be"),
        ({"checkpoint_store": "s3"}, "checkpoint_store must be"),
    ],
)
def test_bad_arguments_fail_at_dag_parse_time(kwargs: dict[str, Any], match: str) -> None:
    from airflow_ppf.operators import PipelineOperator

    with pytest.raises(ValueError, match=match):
        PipelineOperator(task_id="t", pipeline="x.conf", **kwargs)


def test_constructor_does_no_io_and_keeps_template_fields() -> None:
    from airflow_ppf.operators import PipelineOperator

    op = PipelineOperator(task_id="t", pipeline="does/not/exist.conf", spark_conn_id="nope", pipeline_vars={"A": 1})
    assert op.pipeline == "does/not/exist.conf"
    assert set(op.template_fields) == {"pipeline", "pipeline_vars", "spark_conn_id", "spark_conf", "data_location"}
    assert [link.name for link in op.operator_extra_links] == ["Checkpoint"]


def test_importing_the_operator_does_not_import_pyspark() -> None:
    code = (
        "import sys; from airflow_ppf.operators import PipelineOperator; "
        "assert 'pyspark' not in sys.modules; assert 'airflow_ppf.runner' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# -- dag.test() with real retries ------------------------------------------------------------------------


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("store", ["task_state", "local"])
def test_retry_skips_what_the_first_try_finished(store: str, tmp_path: Path) -> None:
    from airflow_ppf.runner.checkpoint import LocalCheckpointStore

    log = tmp_path / "trace.log"
    dag = _dag(pipeline=_pipeline(log), checkpoint_store=store)
    dag_run = dag.test()
    assert dag_run.state == "success"
    assert _ti(dag_run).try_number == 2
    # read and clean ran once, in try 1; write ran once, in try 2.
    assert lines(log) == ["read@1", "clean@1", "write@2"]

    summary = xcom(dag.dag_id, dag_run.run_id, "pipeline")
    assert summary["status"] == "success"
    assert summary["skipped"] == ["read", "clean"]
    assert [r["name"] for r in summary["ran"]] == ["gate", "write"]
    assert summary["try_number"] == 2
    run_id = f"{dag.dag_id}/{dag_run.run_id}/pipeline"
    assert summary["run_id"] == run_id

    if store == "task_state":
        stored = task_state(dag.dag_id, dag_run.run_id, "pipeline")
        assert stored["ppf_checkpoint"]["run_id"] == run_id
        assert stored["ppf_summary"]["status"] == "completed"
        assert stored["ppf_summary"]["done_components"] == ["read", "clean", "gate", "write"]
    else:
        from airflow.sdk import conf

        state = LocalCheckpointStore(Path(conf.get("ppf", "checkpoint_dir"))).load(run_id, "trace")
        assert state is not None
        assert [a.attempt for a in state.attempts] == [1, 2]
        assert state.attempts[1].skipped == ["read", "clean"]


@pytest.mark.usefixtures("airflow_db")
def test_resume_false_reruns_everything(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    dag_run = _dag(pipeline=_pipeline(log), resume=False).test()
    assert dag_run.state == "success"
    assert lines(log) == ["read@1", "clean@1", "read@2", "clean@2", "write@2"]


@pytest.mark.usefixtures("airflow_db")
def test_config_error_fails_without_retry(tmp_path: Path) -> None:
    bad = {"name": "bad", "components": [{"name": "a", "class_path": "no_such_module.Thing"}]}
    dag_run = _dag(retries=3, pipeline=bad).test()
    assert dag_run.state == "failed"
    ti = _ti(dag_run)
    assert ti.state == "failed"
    assert ti.try_number == 1  # AirflowFailException: no pointless retries


@pytest.mark.usefixtures("airflow_db")
def test_a_pipeline_failing_every_try_keeps_its_progress(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    dag = _dag(retries=2, pipeline=_pipeline(log, fail_on=[1, 2, 3]))
    dag_run = dag.test()
    assert dag_run.state == "failed"
    assert _ti(dag_run).try_number == 3
    assert lines(log) == ["read@1", "clean@1"]
    summary = xcom(dag.dag_id, dag_run.run_id, "pipeline", key="ppf_summary")
    assert summary["status"] == "partial_success"
    assert summary["failed"][0]["name"] == "gate"
    assert "InjectedFailure" in summary["failed"][0]["error"]


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize(
    ("mode", "expected_state", "expected_trace"),
    [
        ("restart", "success", ["read@1", "clean@1", "read@2", "clean@2", "write@2"]),
        ("partial", "success", ["read@1", "clean@1", "read@2", "clean@2", "write@2"]),
        ("fail", "failed", ["read@1", "clean@1"]),
    ],
)
def test_config_change_between_tries(mode: str, expected_state: str, expected_trace: list[str], tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    # The try number is part of read's config: the pipeline changes between tries.
    pipeline = _pipeline(log, extra={"value": "${TRY}"})
    dag = _dag(pipeline=pipeline, pipeline_vars={"TRY": "{{ ti.try_number }}"}, on_config_change=mode)
    dag.tasks[0].pipeline = _as_hocon(pipeline)
    dag_run = dag.test()
    assert dag_run.state == expected_state
    assert lines(log) == expected_trace


@pytest.mark.usefixtures("airflow_db")
def test_partial_mode_keeps_unchanged_branches(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    step = APPEND_NAME
    pipeline = {
        "name": "branches",
        "components": [
            {"name": "stable", "class_path": step, "config": {"log_file": str(log)}},
            {"name": "moving", "class_path": step, "config": {"log_file": str(log), "value": "${TRY}"}},
            {
                "name": "gate",
                "class_path": "airflow_ppf.components.faults.FaultInjection",
                "depends_on": ["stable", "moving"],
                "config": {"fail_on_attempts": [1]},
            },
        ],
    }
    dag = _dag(pipeline=_as_hocon(pipeline), pipeline_vars={"TRY": "{{ ti.try_number }}"}, on_config_change="partial")
    dag_run = dag.test()
    assert dag_run.state == "success"
    assert lines(log) == ["stable@1", "moving@1", "moving@2"]


def _as_hocon(pipeline: dict[str, Any]) -> str:
    """Inline HOCON text (JSON is HOCON), so that ${TRY} is substituted from pipeline_vars."""
    import json

    return json.dumps(pipeline, indent=1).replace('"${TRY}"', "${TRY}")


@pytest.mark.usefixtures("airflow_db")
def test_a_checkpoint_that_cannot_be_written_fails_the_task(tmp_path: Path) -> None:
    from airflow_ppf.runner.checkpoint import InMemoryCheckpointStore

    class BrokenStore(InMemoryCheckpointStore):
        def save(self, state: Any) -> None:
            raise OSError("disk full")

    log = tmp_path / "trace.log"
    dag_run = _dag(retries=0, pipeline=_pipeline(log, fail_on=[]), checkpoint_store=BrokenStore()).test()
    assert dag_run.state == "failed"
    assert lines(log) == []  # the first checkpoint write (before any component) failed


@pytest.mark.usefixtures("airflow_db")
def test_on_kill_cancels_the_run_and_marks_the_checkpoint_interrupted(tmp_path: Path) -> None:
    from airflow_ppf.operators import PipelineOperator
    from airflow_ppf.runner.checkpoint import InMemoryCheckpointStore
    from tests.airflow import components

    store = InMemoryCheckpointStore()
    pipeline = {
        "name": "slow",
        "components": [
            {"name": "first", "class_path": APPEND_NAME, "config": {"log_file": str(tmp_path / "t")}},
            {"name": "wait", "class_path": f"{MODULE}.WaitForRelease", "depends_on": ["first"]},
            {
                "name": "never",
                "class_path": APPEND_NAME,
                "depends_on": ["wait"],
                "config": {"log_file": str(tmp_path / "t")},
            },
        ],
    }
    op = PipelineOperator(task_id="pipeline", pipeline=pipeline, checkpoint_store=store)
    components.RELEASE.clear()
    components.STARTED.clear()
    context = _FakeContext(dag_id="d", run_id="r", task_id="pipeline")
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(context)  # type: ignore[arg-type]
        except BaseException as exc:
            errors.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert components.STARTED.wait(20)
    op.on_kill()
    worker.join(20)
    assert not worker.is_alive()
    assert errors, "a killed run must not report success"
    state = store.load("d/r/pipeline", "slow")
    assert state is not None
    assert state.status == "interrupted"
    assert state.completed_components == ["first"]
    assert lines(tmp_path / "t") == ["first@1"]


class _FakeTI:
    def __init__(self, dag_id: str, run_id: str, task_id: str) -> None:
        self.dag_id, self.run_id, self.task_id = dag_id, run_id, task_id
        self.map_index, self.try_number, self.max_tries, self.hostname = -1, 1, 0, "test"
        self.xcoms: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.xcoms[key] = value


class _FakeContext(dict[str, Any]):
    """The few context entries execute() reads (on_kill needs a thread, which dag.test cannot give)."""

    def __init__(self, dag_id: str, run_id: str, task_id: str) -> None:
        super().__init__(ti=_FakeTI(dag_id, run_id, task_id), params={})


@pytest.mark.usefixtures("airflow_db")
def test_an_unknown_variable_in_a_string_fails_the_task_once_naming_it(tmp_path: Path) -> None:
    """``${REGION}`` inside a quoted SQL string with no such pipeline variable: a config error, no retries."""
    from airflow.sdk.exceptions import AirflowFailException

    from airflow_ppf.operators import PipelineOperator

    pipeline = {
        "name": "regions",
        "components": [
            {
                "name": "pick",
                "class_path": APPEND_NAME,
                "config": {"log_file": str(tmp_path / "t"), "value": "WHERE region = '${REGION}'"},
            }
        ],
    }
    op = PipelineOperator(task_id="pipeline", pipeline=pipeline, pipeline_vars={"DAY": "d"})
    with pytest.raises(
        AirflowFailException, match=r"(?s)no retry.*components\[0\]\.config\.value: unknown variable 'REGION'"
    ):
        op.execute(_FakeContext(dag_id="d", run_id="r", task_id="pipeline"))  # type: ignore[arg-type]

    dag_run = _dag(retries=2, pipeline=pipeline, pipeline_vars={"DAY": "d"}).test()
    assert dag_run.state == "failed"
    assert _ti(dag_run).try_number == 1
    assert lines(tmp_path / "t") == []


@pytest.mark.usefixtures("airflow_db")
def test_an_unusable_local_checkpoint_dir_fails_without_retry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "trace.log"
    not_a_folder = tmp_path / "afile"
    not_a_folder.write_text("x", encoding="utf-8")
    monkeypatch.setenv("AIRFLOW__PPF__CHECKPOINT_DIR", str(not_a_folder))

    dag_run = _dag(retries=3, pipeline=_pipeline(log, fail_on=[]), checkpoint_store="local").test()

    assert dag_run.state == "failed"
    ti = _ti(dag_run)
    assert ti.state == "failed"
    assert ti.try_number == 1  # AirflowFailException: bad input, no pointless retries
    assert not log.exists(), "nothing ran"


@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("keep_state_on_clear", [False, True])
def test_the_last_failure_says_how_to_resume(
    keep_state_on_clear: bool, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """A retry resumes by itself; after the last one the message names the way to resume (the checkpoint
    view's Resume action, or a clear when keep_state_on_clear=True)."""
    dag = _dag(
        retries=1, pipeline=_pipeline(tmp_path / "trace.log", fail_on=[1, 2]), keep_state_on_clear=keep_state_on_clear
    )
    dag_run = dag.test()
    assert dag_run.state == "failed"
    out = capfd.readouterr()
    failures = [line for line in (out.out + out.err).splitlines() if "AirflowException: Pipeline 'trace'" in line]
    assert len(failures) == 2, failures
    first, last = failures
    assert first.endswith("2 of 4 components are done and checkpointed; the retry (try 2 of 2) resumes from there.")
    assert "retry resumes" not in last
    assert "2 of 4 components are done and checkpointed. No retry is left: once the cause is fixed" in last
    if keep_state_on_clear:
        assert last.endswith("clear the task; it resumes from there.")
    else:
        view = f"/ppf/checkpoint?dag_id={dag.dag_id}&run_id="
        assert f"press Resume in the task's Checkpoint tab ({view}" in last
        assert "&task_id=pipeline&map_index=-1): it keeps what is done and clears the task" in last
        assert last.endswith("A plain Clear starts from the beginning (unless keep_state_on_clear=True).")
