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
from airflow_ppf.stores.task_state import (
    BLOCK_OPS,
    CHUNK_CHARS,
    HEAD_KEY,
    MAX_BLOCKS,
    SUMMARY_KEY,
    TaskStateCheckpointStore,
)


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
    store.save(state)  # a journal block: the chunks stay
    assert json.loads(accessor.data[HEAD_KEY])["generation"] == first_generation
    state.finish_attempt("failed")
    store.save(state)  # the end of the attempt: a new head
    head = json.loads(accessor.data[HEAD_KEY])
    assert head["generation"] == first_generation + 1
    assert not [k for k in accessor.data if k.startswith(f"{HEAD_KEY}.{first_generation}.")]
    assert not [k for k in accessor.data if k.startswith(f"{HEAD_KEY}.j.")]
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


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_zombie_attempt_cannot_overwrite_the_retry() -> None:
    accessor = DictAccessor()
    zombie_store = TaskStateCheckpointStore(accessor, fence_interval=0)
    retry_store = TaskStateCheckpointStore(accessor, fence_interval=0)
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


def test_a_zombie_appending_within_the_fence_interval_never_changes_what_the_retry_wrote() -> None:
    """Between two checks of the stored head a zombie's completions go to its own journal, which no reader
    follows; the zombie is refused once the interval has passed, and at its next head write at the latest."""
    accessor, clock = DictAccessor(), FakeClock()
    zombie_store = TaskStateCheckpointStore(accessor, fence_interval=1.0, clock=clock)
    zombie = _state(attempt=1, writer="zombie")
    zombie_store.save(zombie)
    zombie.record_completed("before_the_retry", 5)
    zombie_store.save(zombie)
    retry = TaskStateCheckpointStore(accessor).load(zombie.run_id)
    assert retry is not None
    retry.begin_attempt(2, "retry", pipeline_fingerprint="f" * 64, component_fingerprints={}, field_digests={})
    retry.record_completed("by_the_retry", 7)
    TaskStateCheckpointStore(accessor).save(retry)
    clock.now += 0.5

    zombie.record_completed("late", 5)
    zombie_store.save(zombie)  # within the interval: appended, unchecked

    seen = TaskStateCheckpointStore(accessor).load(zombie.run_id)
    assert seen is not None
    assert (seen.writer, seen.attempt) == ("retry", 2)
    assert "late" not in seen.completed_components
    assert seen.completed_components[-2:] == ["before_the_retry", "by_the_retry"]
    clock.now += 0.5
    zombie.record_completed("later", 5)
    with pytest.raises(CheckpointFencedError, match="belongs to attempt 2"):
        zombie_store.save(zombie)
    zombie.finish_attempt("failed")
    with pytest.raises(CheckpointFencedError, match="belongs to attempt 2"):
        TaskStateCheckpointStore(accessor, clock=clock).save(zombie)  # a head write always reads first


def test_a_completion_is_one_write_and_the_end_of_the_attempt_writes_the_whole_state_inline() -> None:
    accessor, clock = DictAccessor(), FakeClock()
    store = TaskStateCheckpointStore(accessor, clock=clock)
    assert store.load("dag/run/task") is None
    state = _state(components=0)
    store.save(state)
    reads, writes = accessor.reads, accessor.writes
    for i in range(40):
        state.record_completed(f"c{i:02d}", 10 + i)
        store.save(state)
        clock.now += 0.01
    assert (accessor.reads - reads, accessor.writes - writes) == (0, 40)
    blocks = sorted(k for k in accessor.data if k.startswith(f"{HEAD_KEY}.j."))
    assert len(blocks) == 3  # 16 + 16 + 8 changes
    head = json.loads(accessor.data[HEAD_KEY])
    assert head["done"] == 0  # as of the head; the journal holds the rest
    loaded = TaskStateCheckpointStore(accessor).load("dag/run/task", "p")
    assert loaded is not None
    assert loaded.completed_components == [f"c{i:02d}" for i in range(40)]
    assert loaded.components["c39"].duration_ms == 49

    state.finish_attempt("completed")
    store.save(state)
    head = json.loads(accessor.data[HEAD_KEY])
    assert (head["format"], head["done"], head["status"]) == (2, 40, "completed")
    assert head["state"]["completed_components"] == [f"c{i:02d}" for i in range(40)]
    assert not [k for k in accessor.data if k.startswith(f"{HEAD_KEY}.j.")]


def test_the_journal_is_folded_into_a_new_head_when_full_and_loads_at_every_length() -> None:
    accessor = DictAccessor()
    store = TaskStateCheckpointStore(accessor, clock=FakeClock())
    state = _state(components=0)
    store.save(state)
    first_tag = json.loads(accessor.data[HEAD_KEY])["journal"]["tag"]
    for i in range(BLOCK_OPS * MAX_BLOCKS + 3):
        state.record_completed(f"c{i:03d}", i)
        store.save(state)
        loaded = TaskStateCheckpointStore(accessor).load("dag/run/task")
        assert loaded is not None
        assert loaded == state, i
    head = json.loads(accessor.data[HEAD_KEY])
    assert head["journal"]["tag"] != first_tag
    assert head["done"] == BLOCK_OPS * MAX_BLOCKS + 1  # folded in at the change that did not fit
    assert not [k for k in accessor.data if k.startswith(f"{HEAD_KEY}.j.{first_tag}.")]


def test_a_damaged_journal_block_is_corruption_naming_the_key() -> None:
    accessor = DictAccessor()
    store = TaskStateCheckpointStore(accessor, location="d/r/t", clock=FakeClock())
    state = _state(components=0)
    store.save(state)
    state.record_completed("a", 1)
    store.save(state)
    (block,) = [k for k in accessor.data if k.startswith(f"{HEAD_KEY}.j.")]
    accessor.data[block] = json.dumps({"seq": 16, "ops": []})
    with pytest.raises(CheckpointCorruptError, match=f"d/r/t key '{block}'.*not a journal block"):
        TaskStateCheckpointStore(accessor, location="d/r/t").load("dag/run/task")
    accessor.data[block] = json.dumps({"seq": 0, "ops": [{"op": "complete"}]})
    with pytest.raises(CheckpointCorruptError, match=f"d/r/t key '{block}'.*cannot be applied"):
        TaskStateCheckpointStore(accessor, location="d/r/t").load("dag/run/task")


@pytest.mark.parametrize("components", [3, 1000], ids=["inline", "chunked"])
def test_checkpoints_written_by_format_1_still_load_and_are_replaced_by_format_2(components: int) -> None:
    import base64
    import hashlib
    import zlib

    accessor = DictAccessor()
    state = _state(components=components)
    text = json.dumps(state.to_dict(), separators=(",", ":"))
    head: dict[str, Any] = {
        "format": 1,
        "run_id": state.run_id,
        "pipeline_name": "p",
        "attempt": 1,
        "writer": "w1",
        "status": "in_progress",
        "done": components,
        "updated_at": state.updated_at,
    }
    if components < 10:
        head.update(encoding="json", state=json.loads(text))
    else:
        blob = base64.b64encode(zlib.compress(text.encode("utf-8"))).decode("ascii")
        accessor.set(f"{HEAD_KEY}.1.0", blob)
        head.update(encoding="zlib+base64", generation=1, parts=1, sha256=hashlib.sha256(blob.encode()).hexdigest())
    accessor.set(HEAD_KEY, head)
    store = TaskStateCheckpointStore(accessor)

    loaded = store.load(state.run_id, "p")

    assert loaded == state
    assert loaded is not None
    loaded.begin_attempt(2, "w2", pipeline_fingerprint="f" * 64, component_fingerprints={}, field_digests={})
    store.save(loaded)
    assert json.loads(accessor.data[HEAD_KEY])["format"] == 2
    assert f"{HEAD_KEY}.1.0" not in accessor.data
    again = TaskStateCheckpointStore(accessor).load(state.run_id)
    assert again is not None
    assert again.attempt == 2
    assert len(again.completed_components) == components


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
