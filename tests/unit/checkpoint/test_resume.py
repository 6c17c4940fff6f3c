"""Resume decisions when the pipeline changed: restart (with a warning), strict errors, partial reruns."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import pytest

from airflow_ppf.checkpoint.planner import missing_on_this_worker
from airflow_ppf.checkpoint.saved_views import damaged_saved_view, describe_damage
from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import (
    CheckpointHooks,
    CheckpointStore,
    CompositeHooks,
    LoggingHooks,
    PipelineConfigChangedError,
    PipelineResultStatus,
    SimplePipelineRunner,
    load_checkpoint_for_resume,
    plan_resume,
)
from airflow_ppf.runner.checkpoint import (
    CheckpointNotFoundError,
    CheckpointState,
    PlanAction,
    ResumePolicy,
    fresh_start_reason,
)
from airflow_ppf.spark.fs import is_network_path
from tests.unit.checkpoint.components import read_log
from tests.unit.checkpoint.conftest import MakeConfig
from tests.unit.checkpoint.support import Spec

RUN_ID = "run-001"


def specs(tmp_path: Path, clean_sql: str = "select * from raw", **changes: dict[str, object]) -> Sequence[Spec]:
    """``read -> clean -> report -> publish`` plus an independent ``other``; publish fails the first time."""
    base: dict[str, dict[str, object]] = {
        "read": {"sql": "select 1", "sleep_ms": 15},
        "clean": {"sql": clean_sql, "sleep_ms": 15},
        "report": {"sql": "select count(*) from clean"},
        "publish": {"fail_until": str(tmp_path / "publish.once")},
        "other": {"sql": "select 2", "sleep_ms": 15},
    }
    for name, extra in changes.items():
        base[name] = {**base[name], **extra}
    return [
        ("read", [], base["read"]),
        ("clean", ["read"], base["clean"]),
        ("report", ["clean"], base["report"]),
        ("publish", ["report", "other"], base["publish"]),
        ("other", [], base["other"]),
    ]


def run_attempt(store: CheckpointStore, config: PipelineConfig, completed: set[str], **hook_args: object) -> object:
    hooks = CompositeHooks(LoggingHooks(), CheckpointHooks(store, RUN_ID, **hook_args))  # type: ignore[arg-type]
    return SimplePipelineRunner(config, hooks=hooks).run(completed_components=completed)


@pytest.fixture
def failed_once(store: CheckpointStore, make_config: MakeConfig, tmp_path: Path, run_log: Path) -> CheckpointState:
    """Attempt 1 of the original pipeline: everything but ``publish`` finished."""
    run_attempt(store, make_config(specs(tmp_path)), set())
    state = store.load(RUN_ID)
    assert state is not None
    assert set(state.completed_components) == {"read", "clean", "report", "other"}
    run_log.unlink()
    return state


def test_unchanged_pipeline_resumes(
    store: CheckpointStore, make_config: MakeConfig, tmp_path: Path, failed_once: CheckpointState
) -> None:
    config = make_config(specs(tmp_path))

    plan = plan_resume(failed_once, config)

    assert not plan.config_changed
    assert plan.skip == {"read", "clean", "report", "other"}
    assert plan.to_run == ["publish"]
    assert plan.get("publish") is not None
    assert plan.get("publish").reason == "failed in attempt 1: RuntimeError: boom"  # type: ignore[union-attr]
    assert load_checkpoint_for_resume(store, RUN_ID, config) == plan.skip


def test_config_change_starts_over_with_a_warning(
    store: CheckpointStore,
    make_config: MakeConfig,
    tmp_path: Path,
    run_log: Path,
    failed_once: CheckpointState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    changed = make_config(specs(tmp_path, clean_sql="select * from raw where ok"))

    with caplog.at_level(logging.WARNING, logger="airflow_ppf.runner.checkpoint"):
        completed = load_checkpoint_for_resume(store, RUN_ID, changed)

    assert completed == set()
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "clean: config.sql changed" in message
    assert "report: upstream 'clean' changed" in message
    assert "starting from the beginning" in message

    result = run_attempt(store, changed, completed)

    assert result.status is PipelineResultStatus.SUCCESS  # type: ignore[attr-defined]
    assert sorted(read_log(run_log)) == ["clean", "other", "publish", "read", "report"]
    state = store.load(RUN_ID)
    assert state is not None
    assert {n: r.attempt for n, r in state.components.items()} == dict.fromkeys(
        ["read", "clean", "report", "other", "publish"], 2
    )
    invalidated = [e for e in state.attempts[-1].events if e["event"] == "invalidated"]
    assert invalidated[0]["reason"] == "pipeline changed: starting from the beginning"


def test_restart_plan_reruns_every_completed_component(
    make_config: MakeConfig, tmp_path: Path, failed_once: CheckpointState
) -> None:
    plan = plan_resume(failed_once, make_config(specs(tmp_path, clean_sql="select 0")))

    assert plan.config_changed
    assert plan.skip == set()
    assert {e.name: e.action for e in plan.entries} == {
        "read": PlanAction.RERUN,
        "clean": PlanAction.RERUN,
        "report": PlanAction.RERUN,
        "other": PlanAction.RERUN,
        "publish": PlanAction.RUN,
    }
    assert plan.get("read").reason == "pipeline changed: starting from the beginning"  # type: ignore[union-attr]
    # Restart mode says what changed, from the same record the checkpoint view shows.
    assert plan.changed_components == {
        "clean": "config.sql changed",
        "report": "upstream 'clean' changed",
        "publish": "upstream 'report' changed",
    }
    assert plan.get("clean").reason == (  # type: ignore[union-attr]
        "pipeline changed (config.sql changed): starting from the beginning"
    )
    assert plan.time_saved_ms == 0
    assert plan.headline().endswith(
        "starting from the beginning because the pipeline changed (restart): "
        "clean: config.sql changed; report: upstream 'clean' changed; publish: upstream 'report' changed"
    )
    assert plan.summary()["headline"] == plan.headline()


def test_strict_mode_raises_on_a_changed_pipeline(
    store: CheckpointStore, make_config: MakeConfig, tmp_path: Path, failed_once: CheckpointState
) -> None:
    changed = make_config(specs(tmp_path, clean_sql="select 0"))

    with pytest.raises(
        PipelineConfigChangedError,
        match=r"pipeline 'demo' changed since the checkpoint of run 'run-001'.*clean: config\.sql changed",
    ) as info:
        load_checkpoint_for_resume(store, RUN_ID, changed, strict=True)

    assert info.value.changed == ["clean", "report", "publish"]
    assert info.value.reasons["clean"] == "config.sql changed"
    with pytest.raises(PipelineConfigChangedError, match=r"clean: config\.sql changed"):
        plan_resume(failed_once, changed, on_config_change="fail")


def test_strict_mode_without_a_checkpoint_raises(
    store: CheckpointStore, make_config: MakeConfig, tmp_path: Path
) -> None:
    with pytest.raises(CheckpointNotFoundError, match=r"no checkpoint found for run_id='nope' of pipeline 'demo'"):
        load_checkpoint_for_resume(store, "nope", make_config(specs(tmp_path)), strict=True)
    assert load_checkpoint_for_resume(store, "nope", make_config(specs(tmp_path))) == set()


def test_strict_mode_passes_an_unchanged_pipeline(
    store: CheckpointStore, make_config: MakeConfig, tmp_path: Path, failed_once: CheckpointState
) -> None:
    assert load_checkpoint_for_resume(store, RUN_ID, make_config(specs(tmp_path)), strict=True) == {
        "read",
        "clean",
        "report",
        "other",
    }


def test_partial_mode_reruns_exactly_the_changed_component_and_its_descendants(
    store: CheckpointStore,
    make_config: MakeConfig,
    tmp_path: Path,
    run_log: Path,
    failed_once: CheckpointState,
    caplog: pytest.LogCaptureFixture,
) -> None:
    changed = make_config(specs(tmp_path, clean_sql="select * from raw where ok"))

    plan = plan_resume(failed_once, changed, on_config_change="partial")

    assert plan.config_changed
    assert plan.skip == {"read", "other"}
    assert plan.to_run == ["clean", "report", "publish"]
    assert {e.name: (e.action, e.reason) for e in plan.entries} == {
        "read": (PlanAction.SKIP, "completed in attempt 1"),
        "other": (PlanAction.SKIP, "completed in attempt 1"),
        "clean": (PlanAction.RERUN, "config.sql changed"),
        "report": (PlanAction.RERUN, "upstream 'clean' changed"),
        "publish": (PlanAction.RUN, "failed in attempt 1: RuntimeError: boom"),
    }
    assert plan.time_saved_ms == failed_once.recorded_duration_ms({"read", "other"})
    assert (
        plan.time_saved_ms == failed_once.components["read"].duration_ms + failed_once.components["other"].duration_ms
    )
    assert plan.time_saved_ms >= 30  # both slept 15 ms
    table = plan.format_table()
    for text in (
        "resuming after attempt 1 (failed): skipping 2 of 5 components",
        "skip",
        "rerun",
        "run",
        "completed in attempt 1",
        "config.sql changed",
        "upstream 'clean' changed",
        "failed in attempt 1: RuntimeError: boom",
    ):
        assert text in table
    assert plan.summary()["reruns"] == {"clean": "config.sql changed", "report": "upstream 'clean' changed"}

    with caplog.at_level(logging.WARNING, logger="airflow_ppf.runner.checkpoint"):
        completed = load_checkpoint_for_resume(store, RUN_ID, changed, partial=True)
    assert completed == {"read", "other"}
    assert "keeping 2 unchanged completed components" in caplog.text

    result = run_attempt(store, changed, completed, on_config_change="partial", resume_plan=plan)

    assert result.status is PipelineResultStatus.SUCCESS  # type: ignore[attr-defined]
    assert sorted(result.skipped_components) == ["other", "read"]  # type: ignore[attr-defined]
    assert read_log(run_log) == ["clean", "report", "publish"]
    state = store.load(RUN_ID)
    assert state is not None
    assert {n: r.attempt for n, r in state.components.items()} == {
        "read": 1,
        "other": 1,
        "clean": 2,
        "report": 2,
        "publish": 2,
    }
    assert sorted(state.attempts[-1].skipped) == ["other", "read"]
    assert state.attempts[-1].resume["reruns"] == {"clean": "config.sql changed", "report": "upstream 'clean' changed"}
    invalidated = [e for e in state.attempts[-1].events if e["event"] == "invalidated"]
    assert sorted(invalidated[0]["names"]) == ["clean", "report"]


def test_partial_resume_of_a_leaf_change_reruns_only_that_leaf(
    store: CheckpointStore, make_config: MakeConfig, tmp_path: Path, run_log: Path, failed_once: CheckpointState
) -> None:
    changed = make_config(specs(tmp_path, report={"sql": "select 42"}))

    run_attempt(
        store, changed, load_checkpoint_for_resume(store, RUN_ID, changed, partial=True), on_config_change="partial"
    )

    assert read_log(run_log) == ["report", "publish"]
    state = store.load(RUN_ID)
    assert state is not None
    assert state.status == "completed"
    assert {n: r.attempt for n, r in state.components.items()} == {
        "read": 1,
        "clean": 1,
        "other": 1,
        "report": 2,
        "publish": 2,
    }


def test_removed_and_added_components_are_named(
    make_config: MakeConfig, tmp_path: Path, failed_once: CheckpointState
) -> None:
    base = [s for s in specs(tmp_path) if s[0] != "other"]
    publish = ("publish", ["report"], base[-1][2])  # type: ignore[misc]
    config = make_config([*base[:-1], publish, ("audit", ["read"], {})])

    plan = plan_resume(failed_once, config, on_config_change="partial")

    assert plan.removed_components == ["other"]
    assert "removed since the checkpoint: other" in plan.format_table()
    assert plan.get("audit").reason == "new component"  # type: ignore[union-attr]
    assert plan.get("publish").action is PlanAction.RUN  # type: ignore[union-attr]
    assert plan.skip == {"read", "clean", "report"}


def test_a_component_marked_not_done_is_planned_with_the_reason(
    failed_once: CheckpointState, make_config: MakeConfig, tmp_path: Path
) -> None:
    failed_once.invalidate(["clean"], "rerun from 'clean' requested by ada")
    plan = plan_resume(failed_once, make_config(specs(tmp_path)))
    reasons = {e.name: (e.action, e.reason) for e in plan.entries}
    # It finished in attempt 1: running it again is a rerun.
    assert reasons["clean"] == (PlanAction.RERUN, "rerun from 'clean' requested by ada")
    assert reasons["report"] == (PlanAction.SKIP, "completed in attempt 1")


def _with_saved_view(path: str) -> CheckpointState:
    state = CheckpointState(run_id="r", pipeline_name="p", pipeline_fingerprint="f")
    state.begin_attempt(1, "w", pipeline_fingerprint="f", component_fingerprints={}, field_digests={})
    state.record_completed("totals", 10, outputs=[{"view": "totals", "path": path}])
    return state


@pytest.mark.parametrize(
    ("path", "error", "expected"),
    [
        pytest.param(
            "/data/p/r/totals/totals/a1-0c0ffee0",
            RuntimeError(
                "[FAILED_READ_FILE.NO_HINT] Encountered error while reading file "
                "file:///data/p/r/totals/totals/a1-0c0ffee0/part-00000.snappy.parquet. SQLSTATE: KD001"
            ),
            ("totals", "totals"),
            id="local-checksum",
        ),
        pytest.param(
            "hdfs://nn/data/p/r/totals/totals/a1-0c0ffee0",
            RuntimeError("ParquetDecodingException: hdfs://nn:8020/data/p/r/totals/totals/a1-0c0ffee0/part-1"),
            ("totals", "totals"),
            id="other-authority",
        ),
        pytest.param(
            "/data/p/r/totals/totals/a1-0c0ffee0",
            RuntimeError("division by zero in /data/p/r/totals/totals/a1-0c0ffee0/part-0"),
            None,
            id="not-a-read-failure",
        ),
        pytest.param(
            "/data/p/r/totals/totals/a1-0c0ffee0",
            RuntimeError("FAILED_READ_FILE: file:///input/orders.csv"),
            None,
            id="another-file",
        ),
        pytest.param(
            "/data/p/r/totals/totals/a1-0c0ffee0",
            RuntimeError("the component failed"),
            None,
            id="no-details",
        ),
    ],
)
def test_a_failed_read_of_a_saved_copy_names_its_producer(
    path: str, error: BaseException, expected: tuple[str, str] | None
) -> None:
    assert damaged_saved_view(_with_saved_view(path), error) == expected


def test_a_failed_read_is_found_in_the_exception_chain() -> None:
    state = _with_saved_view("/d/a1-0c0ffee0")
    outer = RuntimeError("write_totals failed")
    outer.__cause__ = OSError("ChecksumException: Checksum error: file:/d/a1-0c0ffee0/part-0 at 512")
    assert damaged_saved_view(state, outer) == ("totals", "totals")


def test_cleared_task_starts_over_and_retry_resumes() -> None:
    state = CheckpointState(run_id="r", pipeline_name="p", pipeline_fingerprint="f")
    state.begin_attempt(
        1, "w", pipeline_fingerprint="f", component_fingerprints={}, field_digests={}, meta={"max_tries": 1}
    )
    operator = ResumePolicy()
    assert fresh_start_reason(state, operator, attempt=2, max_tries=1) is None
    assert "cleared" in (fresh_start_reason(state, operator, attempt=3, max_tries=3) or "")
    assert fresh_start_reason(state, operator, attempt=1, max_tries=1) == "first try of this task instance"
    keep = ResumePolicy(keep_state_on_clear=True)
    assert fresh_start_reason(state, keep, attempt=3, max_tries=3) is None
    assert fresh_start_reason(state, ResumePolicy(resume=False), attempt=2, max_tries=1) == "resume=False"
    assert fresh_start_reason(None, operator, attempt=3, max_tries=3) is None
    # "Rerun from X" in the checkpoint view, then a clear to apply it: the clear resumes, honouring the edit.
    state.record_event("rerun_from", by="admin", component="b", invalidated=["b", "c"])
    assert fresh_start_reason(state, operator, attempt=3, max_tries=3) is None


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        pytest.param(
            "[FAILED_READ_FILE.NO_HINT] Encountered error while reading file "
            "file:///d/a2-0c0ffee0/part-00000-1b2c-c000.snappy.parquet. SQLSTATE: KD001\n"
            "Caused by: org.apache.hadoop.fs.ChecksumException: Checksum error: "
            "file:/d/a2-0c0ffee0/part-00000-1b2c-c000.snappy.parquet at 0 exp: 1 got: 2",
            "checksum mismatch in part-00000-1b2c-c000.snappy.parquet",
            id="hadoop-crc",
        ),
        pytest.param(
            "FAILED_READ_FILE: file:/d/a2-0c0ffee0/part-00001.parquet\n"
            "ParquetDecodingException: could not verify page integrity, CRC checksum verification failed",
            "checksum mismatch in part-00001.parquet",
            id="parquet-page-crc",
        ),
        pytest.param(
            "java.io.FileNotFoundException: File file:/d/a2-0c0ffee0/part-00002.parquet does not exist",
            "part-00002.parquet is missing",
            id="gone",
        ),
        pytest.param("ParquetDecodingException: Can not read value at 0", "undecodable data", id="no-file-named"),
    ],
)
def test_the_damage_of_a_saved_copy_is_named_with_its_file(error: str, expected: str) -> None:
    assert describe_damage(RuntimeError(error), "/d/a2-0c0ffee0") == expected


MOUNTS = """\
22 1 0:21 / / rw,relatime - overlay overlay rw
36 22 0:53 / /mnt/shared rw,relatime shared:1 - nfs4 fileserver:/export rw,vers=4.2
37 36 0:54 / /mnt/shared/local rw - tmpfs tmpfs rw
38 22 0:55 / /mnt/my\\040bucket rw - fuse.s3fs s3fs rw
"""


@pytest.mark.parametrize(
    ("uri", "network"),
    [
        ("/mnt/shared/ppf/data", True),
        ("file:///mnt/shared/ppf", True),
        ("/mnt/shared", True),
        ("/mnt/shared/local/ppf", False),  # a local mount inside the shared one
        ("/mnt/sharedx/ppf", False),
        ("/mnt/my bucket/ppf", True),
        ("/var/lib/ppf", False),
        ("s3a://bucket/ppf", False),  # not a local path at all
    ],
)
def test_a_path_on_a_network_mount_is_told_from_a_local_one(uri: str, network: bool) -> None:
    assert is_network_path(uri, mountinfo=MOUNTS) is network


def test_a_saved_copy_missing_on_another_worker_says_where_it_was_saved() -> None:
    state = CheckpointState(run_id="r", pipeline_name="p", pipeline_fingerprint="f")
    state.begin_attempt(
        1, "w", pipeline_fingerprint="f", component_fingerprints={}, field_digests={}, meta={"hostname": "worker-1"}
    )
    record = {"view": "totals", "path": "/data/p/r/totals/totals/a1-0c0ffee0"}
    state.record_completed("totals", 10, outputs=[record])
    state.begin_attempt(
        2, "w2", pipeline_fingerprint="f", component_fingerprints={}, field_digests={}, meta={"hostname": "worker-2"}
    )

    assert missing_on_this_worker(state, "totals", "totals", record, "worker-2") == (
        "saved copy missing on this worker: attempt 1 saved view 'totals' on worker 'worker-1' at "
        "/data/p/r/totals/totals/a1-0c0ffee0, a path on that worker's own disk, which this worker ('worker-2') "
        "does not see"
    )
    assert missing_on_this_worker(state, "totals", "totals", record, "worker-1") is None  # same worker
    assert missing_on_this_worker(state, "totals", "totals", record, None) is None
    remote = {**record, "path": "s3a://bucket/p/r/totals/totals/a1-0c0ffee0"}
    assert missing_on_this_worker(state, "totals", "totals", remote, "worker-2") is None


# -- "Resume" from the checkpoint view after the last retry failed ---------------------------------------


def _exhausted(retries: int = 1) -> tuple[CheckpointState, PipelineConfig]:
    """``a -> b -> c``: every try finished ``a`` (skipping it after the first) and failed in ``b``."""
    from airflow_ppf.checkpoint.fingerprint import compute_pipeline_fingerprint
    from tests.helpers.pipelines import component, pipeline

    config = pipeline(component("a"), component("b", depends_on=["a"]), component("c", depends_on=["b"]))
    fingerprint = compute_pipeline_fingerprint(config)
    state = CheckpointState(run_id="dag/run/task", pipeline_name=config.name, pipeline_fingerprint=fingerprint)
    for attempt in range(1, retries + 2):
        meta = {"try_number": attempt, "max_tries": retries}
        state.begin_attempt(
            attempt,
            f"w{attempt}",
            pipeline_fingerprint=fingerprint,
            component_fingerprints={},
            field_digests={},
            meta=meta,
            graph={"a": [], "b": ["a"], "c": ["b"]},
        )
        if attempt == 1:
            state.record_completed("a", 1500)
        else:
            state.record_skipped("a")
        state.record_failed("b", RuntimeError("db down"), 10)
        state.finish_attempt("failed")
    return state, config


def test_a_resume_from_the_checkpoint_view_resumes_across_exactly_its_clear() -> None:
    from airflow_ppf.checkpoint.edits import resume_checkpoint
    from airflow_ppf.checkpoint.planner import resume_request

    state, config = _exhausted(retries=1)  # tries 1 and 2 failed: max_tries 1, no retry is left
    policy = ResumePolicy()
    # A plain clear raises max_tries (try_number 2 + retries 1 = 3) and starts over.
    assert "cleared" in (fresh_start_reason(state, policy, attempt=3, max_tries=3) or "")

    assert resume_checkpoint(state, "alice", max_tries=3) == ["b", "c"]
    event = state.attempts[-1].events[-1]
    assert {k: v for k, v in event.items() if k != "at"} == {"event": "resume", "by": "alice", "max_tries": 3}
    assert resume_request(state) == event  # what the checkpoint view predicts, before the try starts

    # The try after that clear resumes, and its plan says who resumed it.
    assert fresh_start_reason(state, policy, attempt=3, max_tries=3) is None
    plan = plan_resume(state, config, max_tries=3)
    assert plan.skip == {"a"}
    assert plan.resumed_by == "alice"
    assert "resuming after attempt 2 (failed), resumed by alice from the Checkpoint tab: skipping 1 of 3" in (
        plan.headline()
    )
    assert plan.summary()["resumed_by"] == "alice"
    # Any other clear (say the try after the resume never recorded an attempt, and someone cleared again)
    # starts over like a plain clear.
    assert "cleared" in (fresh_start_reason(state, policy, attempt=4, max_tries=5) or "")
    assert plan_resume(state, config, max_tries=5).resumed_by is None
    # A retry of the resumed try (no clear: max_tries as recorded by the new attempt) is an ordinary retry.
    state.begin_attempt(
        3,
        "w3",
        pipeline_fingerprint=state.pipeline_fingerprint,
        component_fingerprints={},
        field_digests={},
        meta={"try_number": 3, "max_tries": 3},
    )
    assert resume_request(state, 3) is None
    assert plan_resume(state, config, max_tries=3).resumed_by is None


def test_resume_needs_something_to_run_and_rerun_from_the_failed_component_resumes() -> None:
    from airflow_ppf.checkpoint.edits import NothingToRerunError, NothingToResumeError, rerun_from, resume_checkpoint

    state, _ = _exhausted()
    # Rerunning from the component that failed changes nothing in the checkpoint: alone, nothing to do ...
    with pytest.raises(NothingToRerunError, match="nothing to rerun: neither 'b' nor anything downstream"):
        rerun_from(state, "b", "alice")
    # ... but with a resume it is exactly that resume.
    assert rerun_from(state, "b", "alice", resuming=True) == []
    assert rerun_from(state, "a", "alice", resuming=True) == ["a"]
    assert resume_checkpoint(state, "alice", max_tries=3) == ["a", "b", "c"]

    done = CheckpointState(run_id="r", pipeline_name="p", pipeline_fingerprint="f")
    done.begin_attempt(1, "w", pipeline_fingerprint="f", component_fingerprints={}, field_digests={}, graph={"a": []})
    done.record_completed("a", 10)
    done.finish_attempt("completed")
    events = len(done.attempts[-1].events)
    with pytest.raises(NothingToResumeError, match="nothing to resume: all 1 components of attempt 1 are done"):
        resume_checkpoint(done, "alice", max_tries=2)
    assert len(done.attempts[-1].events) == events  # nothing recorded


def test_a_failed_attempt_records_what_its_unfinished_components_read(
    store: CheckpointStore, failed_once: CheckpointState
) -> None:
    """The checkpoint view predicts the next try from the checkpoint alone: it must know what the failed
    component (and any that did not run) reads, or it assumes "every view upstream" and promises reruns the
    try will not do. Plain components read no views."""
    assert failed_once.views["publish"] == {"inputs": [], "outputs": []}
    assert failed_once.views["read"] == {"inputs": [], "outputs": []}  # as its completion recorded it
    reloaded = store.load(RUN_ID)  # and through the store's journal / document
    assert reloaded is not None
    assert reloaded.views["publish"] == {"inputs": [], "outputs": []}
