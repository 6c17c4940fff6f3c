"""The inspector's view model and edits, on checkpoints built in memory (no database, no HTTP)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_ppf.checkpoint.edits import (
    NothingToRerunError,
    UnknownComponentError,
    rerun_from,
    rerun_targets,
    reset_checkpoint,
)
from airflow_ppf.checkpoint.planner import predict_next_attempt
from airflow_ppf.checkpoint.state import CheckpointStatus
from airflow_ppf.plugins.checkpoint_report import describe_checkpoint, redact, summarize_checkpoint
from airflow_ppf.runner.checkpoint import CheckpointState, compute_field_digests
from tests.helpers.pipelines import component, pipeline

#: extract -> clean -> (load, stats) -> report; audit is disabled and depends on clean.
GRAPH = {
    "extract": [],
    "clean": ["extract"],
    "load": ["clean"],
    "stats": ["clean"],
    "report": ["load", "stats"],
    "audit": ["clean"],
}


def _config() -> Any:
    return pipeline(
        *(component(name, depends_on=deps, enabled=name != "audit") for name, deps in GRAPH.items()),
        name="shop",
    )


def _begin(state: CheckpointState, attempt: int, fingerprint: str = "f" * 64, **resume: Any) -> None:
    config = _config()
    state.begin_attempt(
        attempt,
        f"host:{attempt}:w",
        pipeline_fingerprint=fingerprint,
        component_fingerprints={name: f"{name[:4]:0<4}" * 4 for name in GRAPH},
        field_digests={c.name: compute_field_digests(c) for c in config.components},
        resume=resume or None,
        meta={"try_number": attempt, "max_tries": 1, "hostname": "worker-1"},
        graph=GRAPH,
    )


def failed_then_resumed(*, finish_second: bool = False) -> CheckpointState:
    """Attempt 1 ran extract, clean, stats and failed in load; attempt 2 skipped those three."""
    state = CheckpointState(run_id="dag/run/task", pipeline_name="shop", pipeline_fingerprint="f" * 64)
    _begin(state, 1)
    for name, ms in (("extract", 1200), ("clean", 800), ("stats", 300)):
        state.record_completed(name, ms, fingerprint=f"{name[:4]:0<4}" * 4)
    state.record_failed("load", ConnectionError("db down"), 50)
    state.finish_attempt(CheckpointStatus.FAILED)
    # Attempt 2 records the plan it follows, as the recorder does.
    _begin(state, 2, **predict_next_attempt(state).summary())
    for name in ("extract", "clean", "stats"):
        state.record_skipped(name)
    if finish_second:
        state.record_completed("load", 70)
        state.record_completed("report", 20)
        state.finish_attempt(CheckpointStatus.COMPLETED)
    return state


def node_states(described: dict[str, Any]) -> dict[str, str]:
    return {n["name"]: n["state"] for n in described["graph"]["nodes"]}


def test_failed_attempt_shows_failed_blocked_done_and_disabled() -> None:
    state = CheckpointState(run_id="r", pipeline_name="shop", pipeline_fingerprint="f" * 64)
    _begin(state, 1)
    state.record_completed("extract", 10)
    state.record_completed("clean", 10)
    state.record_completed("stats", 10)
    state.record_failed("load", RuntimeError("boom"))
    state.finish_attempt(CheckpointStatus.FAILED)

    described = describe_checkpoint(state, task_active=False)

    assert node_states(described) == {
        "extract": "done",
        "clean": "done",
        "load": "failed",
        "stats": "done",
        "report": "blocked",
        "audit": "disabled",
    }
    nodes = {n["name"]: n for n in described["graph"]["nodes"]}
    assert nodes["load"]["error"] == {"type": "RuntimeError", "message": "boom"}
    assert {n: d["depth"] for n, d in nodes.items()} == {
        "extract": 0,
        "clean": 1,
        "load": 2,
        "stats": 2,
        "audit": 2,
        "report": 3,
    }
    assert {(e["from"], e["to"]) for e in described["graph"]["edges"]} == {
        (dep, name) for name, deps in GRAPH.items() for dep in deps
    }
    assert described["graph"]["known"] is True
    assert described["graph"]["counts"]["blocked"] == 1


def test_running_attempt_marks_skips_and_the_component_in_progress() -> None:
    state = failed_then_resumed()

    live = describe_checkpoint(state, task_active=True)
    assert node_states(live) == {
        "extract": "skipped",
        "clean": "skipped",
        "load": "running",
        "stats": "skipped",
        "report": "pending",
        "audit": "disabled",
    }
    # The same checkpoint when Airflow says the task is not running: a hard stop, nothing runs.
    dead = describe_checkpoint(state, task_active=False)
    assert node_states(dead)["load"] == "pending"
    assert dead["stale"] is True
    assert live["stale"] is False


def test_attempt_history_resume_plan_and_time_saved() -> None:
    state = failed_then_resumed(finish_second=True)
    described = describe_checkpoint(state, task_active=False)

    first, second = described["attempts"]
    assert first["status"] == "failed"
    assert [r["name"] for r in first["ran"]] == ["extract", "clean", "stats"]
    assert first["ran"][0]["duration_ms"] == 1200
    assert first["failed"] == {
        "name": "load",
        "error_type": "ConnectionError",
        "error_message": "db down",
        "duration_ms": 50,
    }
    assert first["host"] == "worker-1"
    assert second["skipped"] == ["extract", "clean", "stats"]
    assert [r["name"] for r in second["ran"]] == ["load", "report"]
    assert second["failed"] is None
    assert second["duration_ms"] is not None

    assert described["time_saved_ms"] == {"latest": 2300, "total": 2300}
    plan = {e["name"]: (e["action"], e["reason"]) for e in described["resume"]["entries"]}
    assert plan == {
        "extract": ("skip", "completed in attempt 1"),
        "clean": ("skip", "completed in attempt 1"),
        "load": ("run", "failed in attempt 1: ConnectionError: db down"),
        "stats": ("skip", "completed in attempt 1"),
        "report": ("run", "not completed yet"),
        "audit": ("disabled", "disabled"),
    }
    # The page shows the headline the attempt recorded (the task log's), not one of its own.
    assert described["resume"]["headline"] == state.attempts[1].resume["headline"]
    assert "resuming after attempt 1 (failed): skipping 3 of 5 components" in described["resume"]["headline"]
    assert node_states(described)["load"] == "done"
    assert node_states(described)["extract"] == "skipped"

    summary = summarize_checkpoint(state)
    assert summary["counts"]["done"] + summary["counts"]["skipped"] == 5
    assert summary["components"] == 6
    assert summary["time_saved_ms"] == 2300


def test_fingerprint_changes_between_attempts_name_the_changed_components() -> None:
    state = CheckpointState(run_id="r", pipeline_name="shop", pipeline_fingerprint="a" * 64)
    _begin(state, 1, fingerprint="a" * 64)
    state.record_completed("extract", 5)
    state.finish_attempt(CheckpointStatus.FAILED)
    _begin(
        state,
        2,
        fingerprint="b" * 64,
        config_changed=True,
        mode="partial",
        changed={"clean": "config.sql changed", "report": "upstream 'clean' changed"},
        removed=["legacy"],
    )
    described = describe_checkpoint(state)
    assert described["fingerprint"]["current"] == "b" * 64
    assert described["fingerprint"]["changes"] == [
        {
            "attempt": 2,
            "previous": "a" * 64,
            "current": "b" * 64,
            "changed": {"clean": "config.sql changed", "report": "upstream 'clean' changed"},
            "removed": ["legacy"],
            "mode": "partial",
        }
    ]
    assert [a["fingerprint_changed"] for a in described["attempts"]] == [False, True]


def test_checkpoint_without_a_graph_still_describes_its_components() -> None:
    doc = failed_then_resumed().to_dict()
    del doc["graph"]  # written before the graph was recorded
    state = CheckpointState.from_dict(doc)
    assert state.graph == {}

    described = describe_checkpoint(state, task_active=False)
    assert described["graph"]["known"] is False
    assert described["graph"]["edges"] == []
    assert set(node_states(described)) == set(GRAPH)
    # Without dependencies, rerunning a component also reruns everything that completed after it.
    assert rerun_targets(state, "clean") == ["clean", "stats"]


def test_graph_round_trips_and_is_kept_by_later_attempts() -> None:
    state = failed_then_resumed()
    again = CheckpointState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again.graph == GRAPH
    replayed = CheckpointState(run_id="dag/run/task", pipeline_name="shop", pipeline_fingerprint="f" * 64)
    for op in state.pending_ops:
        replayed.apply(op)
    assert replayed.graph == GRAPH
    with pytest.raises(ValueError, match="field 'graph' must map"):
        CheckpointState.from_dict({**state.to_dict(), "graph": ["not", "a", "map"]})


def test_rerun_from_marks_the_component_and_its_descendants_not_done() -> None:
    state = failed_then_resumed(finish_second=True)
    assert rerun_targets(state, "clean") == ["clean", "load", "stats", "report", "audit"]

    invalidated = rerun_from(state, "stats", "alice")

    assert invalidated == ["stats", "report"]
    assert state.completed_components == ["extract", "clean", "load"]
    events = state.attempts[-1].events
    assert events[-2] == {
        "event": "invalidated",
        "names": ["stats", "report"],
        "reason": "rerun from 'stats' requested by alice",
    }
    assert {k: v for k, v in events[-1].items() if k != "at"} == {
        "event": "rerun_from",
        "by": "alice",
        "component": "stats",
        "invalidated": ["stats", "report"],
    }
    assert node_states(describe_checkpoint(state, task_active=False))["report"] == "pending"
    with pytest.raises(NothingToRerunError, match="nothing to rerun"):
        rerun_from(state, "report", "alice")
    with pytest.raises(UnknownComponentError, match="unknown component 'nope'"):
        rerun_from(state, "nope", "alice")


def test_reset_marks_everything_not_done_and_records_who() -> None:
    state = failed_then_resumed(finish_second=True)
    assert reset_checkpoint(state, "bob") == ["extract", "clean", "stats", "load", "report"]
    assert state.completed_components == []
    assert state.attempts[-1].events[-1]["event"] == "reset"
    assert state.attempts[-1].events[-1]["by"] == "bob"
    described = describe_checkpoint(state, task_active=False)
    assert set(node_states(described).values()) == {"pending", "disabled"}
    assert described["edited"]["event"] == "reset"
    assert described["edited"]["by"] == "bob"
    # A new attempt consumes the edit.
    _begin(state, 3)
    assert describe_checkpoint(state)["edited"] is None


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("connect to postgresql://etl:hunter2@db:5432/shop failed", "hunter2"),
        ("bad login password=hunter2; retrying", "hunter2"),
        ('{"api_key": "AKIAEXAMPLEKEY"}', "AKIAEXAMPLEKEY"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("token:abc123def", "abc123def"),
    ],
)
def test_redact_masks_credentials_in_free_text(text: str, secret: str) -> None:
    masked = redact(text)
    assert secret not in masked
    assert "***" in masked


def test_redact_keeps_ordinary_text_and_masks_secret_keys() -> None:
    assert redact("KeyError: 'password' missing in config") == "KeyError: 'password' missing in config"
    assert redact("s3a://bucket/path/part-0001.parquet") == "s3a://bucket/path/part-0001.parquet"
    assert redact({"views": ["a"], "secret_key": "xyz", "n": 3}) == {"views": ["a"], "secret_key": "***", "n": 3}
