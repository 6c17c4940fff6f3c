"""TaskStateCheckpointStore's key layout, chunking, corruption handling and fencing.

The accessor here is a dict with the interface of Airflow's ``context["task_state_store"]`` (values must
be JSON, as Airflow enforces); the real store is exercised by the operator tests under dag.test() and by
the end-to-end tests.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from airflow_ppf.runner.checkpoint import (
    CheckpointCorruptError,
    CheckpointFencedError,
    CheckpointState,
    CheckpointVersionError,
)
from airflow_ppf.stores.task_state import CHUNK_CHARS, HEAD_KEY, SUMMARY_KEY, TaskStateCheckpointStore


class DictAccessor:
    """Airflow's task state accessor, in memory; rejects non-JSON values and None like Airflow does."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.writes = 0
        self.reads = 0

    def get(self, key: str, default: Any = None) -> Any:
        self.reads += 1
        return json.loads(self.data[key]) if key in self.data else default

    def set(self, key: str, value: Any, **kwargs: Any) -> None:
        if value is None:
            raise ValueError("Cannot set value as None")
        self.writes += 1
        self.data[key] = json.dumps(value, allow_nan=False)

    def delete(self, key: str) -> None:
        self.data.pop(key, None)


def _state(run_id: str = "dag/run/task", components: int = 3, attempt: int = 1, writer: str = "w1") -> CheckpointState:
    state = CheckpointState(run_id=run_id, pipeline_name="p", pipeline_fingerprint="f" * 64)
    names = [f"component_{i:04d}" for i in range(components)]
    state.begin_attempt(
        attempt,
        writer,
        pipeline_fingerprint="f" * 64,
        component_fingerprints={n: f"{i:016x}" for i, n in enumerate(names)},
        field_digests={n: {"class_path": f"{i:08x}", "config.sql": f"{i * 7:08x}"} for i, n in enumerate(names)},
    )
    for name in names:
        state.record_completed(name, 1234, fingerprint="abcdef0123456789")
    return state


def test_small_checkpoints_are_inline_and_readable() -> None:
    accessor = DictAccessor()
    store = TaskStateCheckpointStore(accessor)
    store.save(_state())
    head = json.loads(accessor.data[HEAD_KEY])
    assert head["encoding"] == "json"
    assert head["state"]["completed_components"] == ["component_0000", "component_0001", "component_0002"]
    assert (head["status"], head["done"], head["attempt"]) == ("in_progress", 3, 1)
    summary = json.loads(accessor.data[SUMMARY_KEY])
    assert summary["status"] == "in_progress"
    loaded = store.load("dag/run/task", "p")
    assert loaded is not None
    assert loaded.completed_components == ["component_0000", "component_0001", "component_0002"]
    assert store.load("dag/run/other") is None
    assert store.load("dag/run/task", "another-pipeline") is None
    assert store.exists("dag/run/task")
    assert [i.run_id for i in store.list_runs()] == ["dag/run/task"]


def test_large_checkpoints_are_chunked_well_under_64_kb_and_old_chunks_go() -> None:
    accessor = DictAccessor()
    store = TaskStateCheckpointStore(accessor)
    state = _state(components=1000)
    store.save(state)
    head = json.loads(accessor.data[HEAD_KEY])
    assert head["encoding"] == "zlib+base64"
    assert head["parts"] >= 1
    assert all(len(v) < 64 * 1024 for v in accessor.data.values())
    assert max(len(v) for v in accessor.data.values()) <= CHUNK_CHARS + 100
    first_generation = head["generation"]
    state.record_failed("component_0999", ValueError("late"))
    store.save(state)
    head = json.loads(accessor.data[HEAD_KEY])
    assert head["generation"] == first_generation + 1
    assert not [k for k in accessor.data if k.startswith(f"{HEAD_KEY}.{first_generation}.")]
    loaded = store.load(state.run_id)
    assert loaded is not None
    assert len(loaded.completed_components) == 1000
    assert loaded.failed_component == "component_0999"


def test_summary_is_rewritten_only_when_the_status_changes() -> None:
    accessor = DictAccessor()
    store = TaskStateCheckpointStore(accessor)
    state = _state(components=1)
    store.save(state)
    writes = accessor.writes
    state.record_completed("more", 10)
    store.save(state)
    assert accessor.writes == writes + 1  # the head only
    state.finish_attempt("completed")
    store.save(state)
    assert accessor.writes == writes + 3  # head and summary
    assert json.loads(accessor.data[SUMMARY_KEY])["status"] == "completed"


def test_a_zombie_attempt_cannot_overwrite_the_retry() -> None:
    accessor = DictAccessor()
    zombie_store, retry_store = TaskStateCheckpointStore(accessor), TaskStateCheckpointStore(accessor)
    zombie = _state(attempt=1, writer="zombie")
    zombie_store.save(zombie)
    retry = _state(attempt=2, writer="retry")
    retry_store.save(retry)
    zombie.record_completed("late", 5)
    with pytest.raises(CheckpointFencedError, match="belongs to attempt 2"):
        zombie_store.save(zombie)
    loaded = retry_store.load(retry.run_id)
    assert loaded is not None
    assert loaded.writer == "retry"


@pytest.mark.parametrize(
    ("damage", "error", "match"),
    [
        (lambda d: d.__setitem__(HEAD_KEY, json.dumps([1, 2])), CheckpointCorruptError, "expected an object"),
        (lambda d: d.__setitem__(HEAD_KEY, json.dumps({"format": 99})), CheckpointVersionError, "format 99"),
        (lambda d: d.__setitem__(HEAD_KEY, json.dumps({"format": "x"})), CheckpointCorruptError, "unknown format"),
    ],
)
def test_damaged_heads_raise_clear_errors(damage: Any, error: type[Exception], match: str) -> None:
    accessor = DictAccessor()
    store = TaskStateCheckpointStore(accessor, location="d/r/t")
    store.save(_state())
    damage(accessor.data)
    with pytest.raises(error, match=match):
        store.load("dag/run/task")


def test_missing_or_altered_chunks_are_corruption_naming_the_key() -> None:
    accessor = DictAccessor()
    store = TaskStateCheckpointStore(accessor, location="d/r/t")
    store.save(_state(components=1000))
    chunk = next(k for k in accessor.data if k.startswith(f"{HEAD_KEY}."))
    original = accessor.data[chunk]
    accessor.data[chunk] = json.dumps(json.loads(original)[:-4] + "AAAA")
    with pytest.raises(CheckpointCorruptError, match="do not match the recorded hash"):
        store.load("dag/run/task")
    del accessor.data[chunk]
    with pytest.raises(CheckpointCorruptError, match=f"d/r/t key '{chunk}'.*missing"):
        store.load("dag/run/task")


def test_quarantine_keeps_the_damaged_value_and_delete_removes_everything() -> None:
    accessor = DictAccessor()
    store = TaskStateCheckpointStore(accessor)
    store.save(_state(components=1000))
    moved = store.quarantine("dag/run/task", "p")
    assert len(moved) == 1
    assert moved[0].startswith(f"{HEAD_KEY}.corrupt.")
    assert HEAD_KEY not in accessor.data
    store.save(_state(components=1000))
    assert store.delete("dag/run/task")
    assert [k for k in accessor.data if not k.startswith(f"{HEAD_KEY}.corrupt.") and k.startswith(HEAD_KEY)] == []
    assert SUMMARY_KEY not in accessor.data


def test_a_newer_schema_version_names_the_key() -> None:
    accessor = DictAccessor()
    store = TaskStateCheckpointStore(accessor, location="d/r/t")
    store.save(_state())
    head = json.loads(accessor.data[HEAD_KEY])
    head["state"]["schema_version"] = 99
    accessor.data[HEAD_KEY] = json.dumps(head)
    with pytest.raises(CheckpointVersionError, match=r"^d/r/t key '.*': checkpoint schema version 99 was written"):
        store.load("dag/run/task")
