"""Checkpoint stores: file names that cannot escape, durable formats, clear errors on damage, fencing."""

from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import airflow_ppf.checkpoint.stores as stores_module
from airflow_ppf.runner import CheckpointState, CheckpointStore, InMemoryCheckpointStore, LocalCheckpointStore
from airflow_ppf.runner.checkpoint import (
    SCHEMA_VERSION,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointFencedError,
    CheckpointVersionError,
    safe_file_name,
)

PIPELINE = "demo"


def new_state(run_id: str = "run-1", pipeline: str = PIPELINE, attempt: int = 1, writer: str = "w1") -> CheckpointState:
    state = CheckpointState(run_id=run_id, pipeline_name=pipeline, pipeline_fingerprint="f" * 64)
    state.begin_attempt(attempt, writer, pipeline_fingerprint="f" * 64, component_fingerprints={}, field_digests={})
    return state


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


# -- names --------------------------------------------------------------------------------------------------

HOSTILE = [
    "../../etc/passwd",
    "/abs",
    "/etc/passwd",
    "a/b",
    "..",
    ".",
    "...",
    "-rf",
    ".hidden",
    "scheduled__2024-01-01T00:00:00+00:00",
    "manual__2024-06-01T12:30:45.123456+00:00",
    "naïve ünïcödé 名前 🚀",
    "back\\slash",
    "nul\x00byte",
    "new\nline",
    "x" * 1000,
    "é" * 300,
]


@pytest.mark.parametrize("name", HOSTILE, ids=lambda n: repr(n)[:40])
def test_safe_file_name_is_a_plain_bounded_file_name(name: str) -> None:
    safe = safe_file_name(name)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9._-]*-[0-9a-f]{10}", safe), safe
    assert len(safe.encode()) <= 80
    assert safe not in (".", "..")


@pytest.mark.parametrize("name", HOSTILE, ids=lambda n: repr(n)[:40])
def test_hostile_run_ids_and_pipeline_names_stay_inside_base_dir(tmp_path: Path, name: str) -> None:
    base = tmp_path / "store" / "checkpoints"
    store = LocalCheckpointStore(base)
    state = new_state(run_id=name, pipeline=name)
    state.record_completed("a", 5)

    store.save(state)
    state.record_completed("b", 7)
    store.save(state)

    # Nothing was written anywhere but below base_dir.
    assert files_under(tmp_path) == files_under(base)
    assert all(base in p.parents for p in files_under(base))
    loaded = store.load(name, name)
    assert loaded == state
    assert store.load(name) == state
    assert store.exists(name)
    assert [(i.run_id, i.pipeline_name, i.completed) for i in store.list_runs(name)] == [(name, name, 2)]


@pytest.mark.parametrize(
    ("one", "two"),
    [("a:b", "a_b"), ("a/b", "a_b"), ("A", "a"), ("x" * 100 + "1", "x" * 100 + "2"), ("..", "__")],
)
def test_ids_with_the_same_slug_do_not_collide(tmp_path: Path, one: str, two: str) -> None:
    store = LocalCheckpointStore(tmp_path)
    first, second = new_state(run_id=one, pipeline=one), new_state(run_id=two, pipeline=two)
    first.record_completed("from-one", 1)
    second.record_completed("from-two", 1)

    store.save(first)
    store.save(second)

    assert store.load(one) == first
    assert store.load(two) == second
    assert store.load(one, one).completed_components == ["from-one"]  # type: ignore[union-attr]
    assert len(store.list_runs()) == 2


def test_distinct_run_ids_of_one_pipeline_with_the_same_slug(tmp_path: Path) -> None:
    store = LocalCheckpointStore(tmp_path)
    store.save(new_state(run_id="a:b"))
    store.save(new_state(run_id="a_b"))
    assert {i.run_id for i in store.list_runs(PIPELINE)} == {"a:b", "a_b"}


# -- permissions --------------------------------------------------------------------------------------------


@pytest.fixture(params=[0o022, 0o077], ids=["umask-022", "umask-077"])
def umask(request: pytest.FixtureRequest) -> Iterator[int]:
    old = os.umask(request.param)
    try:
        yield request.param
    finally:
        os.umask(old)


def test_files_are_group_readable(tmp_path: Path, umask: int) -> None:
    base = tmp_path / "checkpoints"
    store = LocalCheckpointStore(base)
    state = new_state()
    store.save(state)
    state.record_completed("a", 1)
    store.save(state)  # appended to the journal

    snapshot, journal, lock = store.paths("run-1", PIPELINE)
    for path in (snapshot, journal, lock):
        assert stat.S_IMODE(path.stat().st_mode) == 0o640, path
    for folder in (base, snapshot.parent):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o750, folder


# -- damaged files ------------------------------------------------------------------------------------------


def saved(tmp_path: Path, completions: int = 0) -> tuple[LocalCheckpointStore, CheckpointState, Path, Path]:
    store = LocalCheckpointStore(tmp_path / "checkpoints")
    state = new_state()
    store.save(state)
    for i in range(completions):
        state.record_completed(f"c{i}", i)
        store.save(state)
    snapshot, journal, _ = store.paths("run-1", PIPELINE)
    return store, state, snapshot, journal


def _valid_doc(**changes: Any) -> bytes:
    doc = new_state().to_dict()
    doc.update(changes)
    return json.dumps(doc).encode()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        pytest.param(b"\x00\xff\xfegarbage", "not UTF-8 text", id="binary-garbage"),
        pytest.param(b"this is not json", "not valid JSON", id="text-garbage"),
        pytest.param(b"", "truncated", id="empty"),
        pytest.param(_valid_doc()[:57], "truncated", id="truncated"),
        pytest.param(b"[1, 2, 3]", "expected a JSON object, got list", id="list"),
        pytest.param(b'"just a string"', "expected a JSON object, got str", id="string"),
        pytest.param(b"null", "expected a JSON object, got NoneType", id="null"),
        pytest.param(_valid_doc(run_id=5), "field 'run_id' must be a str, got int", id="run_id-int"),
        pytest.param(
            _valid_doc(completed_components="a,b"), "field 'completed_components' must be a list", id="completed-str"
        ),
        pytest.param(_valid_doc(components=["a"]), "malformed checkpoint document", id="components-list"),
        pytest.param(
            _valid_doc(attempts=[{"started_at": "x"}]), "malformed checkpoint document", id="attempt-missing-number"
        ),
        pytest.param(_valid_doc(attempts=[{"attempt": "one"}]), "invalid literal", id="attempt-not-int"),
        pytest.param(_valid_doc(status="exploded"), "Invalid status 'exploded'", id="bad-status"),
        pytest.param(_valid_doc(schema_version="1"), "schema_version must be an integer", id="version-str"),
        pytest.param(_valid_doc(journal_seq="x"), "journal_seq must be an integer", id="journal_seq-str"),
        pytest.param(b"[" * 100_000, "nested more than 100 levels deep", id="deep-100000"),
        pytest.param(
            _valid_doc(future={"x": json.loads("[" * 500 + "]" * 500)}),
            "nested more than 100 levels deep",
            id="deep-500-unknown-field",
        ),
    ],
)
def test_corrupt_snapshot_is_reported_with_its_file_name(tmp_path: Path, content: bytes, problem: str) -> None:
    store, _, snapshot, _ = saved(tmp_path)
    snapshot.write_bytes(content)

    with pytest.raises(CheckpointCorruptError, match=re.escape(str(snapshot))) as info:
        store.load("run-1", PIPELINE)

    assert problem in info.value.problem
    assert info.value.path == str(snapshot)
    assert "Move it aside" in str(info.value)
    # Loading by run id alone reports the same file; a new writer refuses to overwrite it.
    with pytest.raises(CheckpointCorruptError, match=re.escape(str(snapshot))):
        store.load("run-1")
    with pytest.raises(CheckpointCorruptError, match=re.escape(str(snapshot))):
        LocalCheckpointStore(tmp_path / "checkpoints").save(new_state(attempt=2, writer="w2"))
    assert snapshot.read_bytes() == content
    assert [i.status for i in store.list_runs()] == ["corrupt"]


def test_snapshot_of_another_run_is_corrupt(tmp_path: Path) -> None:
    store, _, snapshot, _ = saved(tmp_path)
    snapshot.write_bytes(_valid_doc(run_id="someone-else"))

    with pytest.raises(CheckpointCorruptError, match="it holds run 'someone-else'"):
        store.load("run-1", PIPELINE)


def test_torn_last_journal_line_is_ignored(tmp_path: Path) -> None:
    _, _, _, journal = saved(tmp_path, completions=3)
    raw = journal.read_bytes()
    assert raw.count(b"\n") == 3

    journal.write_bytes(raw[:-9])  # the last append was cut short

    loaded = LocalCheckpointStore(tmp_path / "checkpoints").load("run-1", PIPELINE)
    assert loaded is not None
    assert loaded.completed_components == ["c0", "c1"]


def test_damaged_but_complete_last_journal_line_is_ignored(tmp_path: Path) -> None:
    store, _, _, journal = saved(tmp_path, completions=3)
    lines = journal.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"c2"', b'"cX"')  # the CRC no longer matches
    journal.write_bytes(b"\n".join(lines))

    loaded = store.load("run-1", PIPELINE)
    assert loaded is not None
    assert loaded.completed_components == ["c0", "c1"]


def test_resume_after_a_torn_journal_keeps_appending_correctly(tmp_path: Path) -> None:
    _, _, _, journal = saved(tmp_path, completions=3)
    journal.write_bytes(journal.read_bytes()[:-9])

    store = LocalCheckpointStore(tmp_path / "checkpoints")
    state = store.load("run-1", PIPELINE)
    assert state is not None
    state.begin_attempt(2, "w2", pipeline_fingerprint="f" * 64, component_fingerprints={}, field_digests={})
    store.save(state)
    for name in ("c2", "c3"):
        state.record_completed(name, 1)
        store.save(state)

    reloaded = LocalCheckpointStore(tmp_path / "checkpoints").load("run-1", PIPELINE)
    assert reloaded is not None
    assert reloaded.completed_components == ["c0", "c1", "c2", "c3"]


@pytest.mark.parametrize("line", [0, 1])
def test_damaged_middle_journal_line_is_corrupt(tmp_path: Path, line: int) -> None:
    store, _, _, journal = saved(tmp_path, completions=3)
    lines = journal.read_bytes().split(b"\n")
    lines[line] = lines[line][:20] + b"#" + lines[line][21:]
    journal.write_bytes(b"\n".join(lines))

    with pytest.raises(
        CheckpointCorruptError, match=rf"{re.escape(str(journal))} is corrupt: line {line + 1} is damaged"
    ):
        store.load("run-1", PIPELINE)


def test_deeply_nested_journal_line_is_corrupt_not_a_recursion_error(tmp_path: Path) -> None:
    import zlib

    store, _, _, journal = saved(tmp_path, completions=2)
    lines = journal.read_bytes().split(b"\n")
    entry = json.loads(lines[0].split(b" ", 1)[1])
    entry["op"]["outputs"] = [json.loads("[" * 500 + "]" * 500)]
    body = json.dumps(entry).encode()
    lines[0] = b"%08x %s" % (zlib.crc32(body), body)  # a valid CRC: written that way, not torn
    journal.write_bytes(b"\n".join(lines))

    with pytest.raises(CheckpointCorruptError, match=rf"{re.escape(str(journal))} is corrupt: line 1 is damaged"):
        store.load("run-1", PIPELINE)


def test_missing_journal_line_is_corrupt(tmp_path: Path) -> None:
    store, _, _, journal = saved(tmp_path, completions=3)
    lines = journal.read_bytes().split(b"\n")
    journal.write_bytes(b"\n".join([lines[0], *lines[2:]]))

    with pytest.raises(CheckpointCorruptError, match=r"journal skips from change \d+ to \d+"):
        store.load("run-1", PIPELINE)


def test_journal_with_an_unknown_operation_needs_a_newer_version(tmp_path: Path) -> None:
    store, _, _, journal = saved(tmp_path, completions=1)
    entry = json.loads(journal.read_bytes().split(b" ", 1)[1])
    entry["seq"] += 1
    entry["op"] = {"op": "teleport", "at": "2030-01-01"}
    body = json.dumps(entry).encode()
    import zlib

    with journal.open("ab") as fh:
        fh.write(b"%08x %s\n" % (zlib.crc32(body), body))
        fh.write(b"%08x %s\n" % (zlib.crc32(body), body))  # not the last line either

    with pytest.raises(CheckpointVersionError, match="operation 'teleport' unknown to this version") as info:
        store.load("run-1", PIPELINE)
    # The error names the file (like every other checkpoint error), so it can be inspected or moved aside.
    assert str(info.value).startswith(f"{journal}: checkpoint journal has an operation 'teleport'")
    assert info.value.path == str(journal)


# -- versions and formats ----------------------------------------------------------------------------------


def test_newer_schema_version_is_refused_with_a_clear_message(tmp_path: Path) -> None:
    store, _, snapshot, _ = saved(tmp_path)
    snapshot.write_bytes(_valid_doc(schema_version=SCHEMA_VERSION + 1))

    with pytest.raises(
        CheckpointVersionError,
        match=rf"^{re.escape(str(snapshot))}: checkpoint schema version {SCHEMA_VERSION + 1} was written by a "
        rf"newer airflow-ppf; this version reads up to {SCHEMA_VERSION}\. Upgrade airflow-ppf on this worker",
    ) as info:
        store.load("run-1", PIPELINE)
    assert info.value.path == str(snapshot)


def test_unknown_future_fields_survive_a_round_trip(store: CheckpointStore) -> None:
    state = new_state()
    doc = state.to_dict()
    doc["future_field"] = {"nested": [1, 2, 3]}
    doc["another_one"] = "kept"
    state = CheckpointState.from_dict(doc)
    store.save(state)

    loaded = store.load("run-1", PIPELINE)
    assert loaded is not None
    loaded.record_completed("a", 1)
    store.save(loaded)
    again = store.load("run-1", PIPELINE)

    assert again is not None
    assert again.extra == {"future_field": {"nested": [1, 2, 3]}, "another_one": "kept"}
    assert again.to_dict()["future_field"] == {"nested": [1, 2, 3]}
    assert again.completed_components == ["a"]


def test_unknown_future_fields_are_written_to_disk(tmp_path: Path) -> None:
    _, _, snapshot, _ = saved(tmp_path)
    doc = json.loads(snapshot.read_text())
    doc["future_field"] = 42
    snapshot.write_text(json.dumps(doc))

    fresh = LocalCheckpointStore(tmp_path / "checkpoints")
    state = fresh.load("run-1", PIPELINE)
    assert state is not None
    state.begin_attempt(2, "w2", pipeline_fingerprint="f" * 64, component_fingerprints={}, field_digests={})
    fresh.save(state)  # a full snapshot rewrite

    assert json.loads(snapshot.read_text())["future_field"] == 42


SEED_DOC = {
    "run_id": "run-1",
    "pipeline_name": PIPELINE,
    "pipeline_fingerprint": "0123abcd" * 8,
    "completed_components": ["extract", "transform"],
    "failed_component": "load",
    "status": "failed",
    "created_at": "2024-05-01T10:00:00+00:00",
    "updated_at": "2024-05-01T10:05:00+00:00",
}


def test_seed_format_loads(tmp_path: Path) -> None:
    store = LocalCheckpointStore(tmp_path)
    snapshot = store.paths("run-1", PIPELINE)[0]
    snapshot.parent.mkdir(parents=True)
    snapshot.write_text(json.dumps(SEED_DOC, indent=2))

    state = store.load("run-1")

    assert state is not None
    assert state.completed_components == ["extract", "transform"]
    assert state.failed_component == "load"
    assert state.status == "failed"
    assert state.created_at == "2024-05-01T10:00:00+00:00"
    assert state.pipeline_fingerprint == "seed:" + SEED_DOC["pipeline_fingerprint"]
    assert state.attempts == []


def test_seed_format_with_missing_fields_is_corrupt(tmp_path: Path) -> None:
    store = LocalCheckpointStore(tmp_path)
    snapshot = store.paths("run-1", PIPELINE)[0]
    snapshot.parent.mkdir(parents=True)
    snapshot.write_text(json.dumps({k: v for k, v in SEED_DOC.items() if k != "completed_components"}))

    with pytest.raises(CheckpointCorruptError, match="missing field 'completed_components'"):
        store.load("run-1", PIPELINE)


# -- management ---------------------------------------------------------------------------------------------


def test_quarantine_moves_files_aside_and_deletes_nothing(tmp_path: Path) -> None:
    store, _, snapshot, journal = saved(tmp_path, completions=2)
    before = {p.name: p.read_bytes() for p in (snapshot, journal)}

    moved = store.quarantine("run-1", PIPELINE)

    assert len(moved) == 2
    assert not snapshot.exists()
    assert not journal.exists()
    assert {p.name.split(".corrupt-")[0]: p.read_bytes() for p in moved} == before
    assert all(p.parent == snapshot.parent for p in moved)
    assert store.load("run-1", PIPELINE) is None
    assert store.list_runs() == []

    # Quarantining again right away (within the same second) keeps the earlier files too.
    store.save(new_state(attempt=2, writer="w2"))
    second_snapshot = snapshot.read_bytes()
    moved_again = store.quarantine("run-1", PIPELINE)
    assert len(moved_again) == 1
    assert len(set(moved + moved_again)) == 3
    assert moved_again[0].read_bytes() == second_snapshot
    assert {p.name.split(".corrupt-")[0]: p.read_bytes() for p in moved} == before


def test_quarantine_of_a_missing_run_moves_nothing(tmp_path: Path) -> None:
    assert LocalCheckpointStore(tmp_path).quarantine("nope", PIPELINE) == []


def test_exists_list_runs_and_delete(store: CheckpointStore) -> None:
    assert store.list_runs() == []
    assert not store.exists("run-1")
    assert store.delete("run-1") is False

    one = new_state("run-1", "p1")
    one.record_completed("a", 1)
    store.save(one)
    store.save(new_state("run-2", "p1"))
    store.save(new_state("run-3", "p2"))

    assert store.exists("run-1")
    assert store.exists("run-1", "p1")
    assert not store.exists("run-1", "p2")
    assert sorted((i.run_id, i.pipeline_name) for i in store.list_runs()) == [
        ("run-1", "p1"),
        ("run-2", "p1"),
        ("run-3", "p2"),
    ]
    assert sorted(i.run_id for i in store.list_runs("p1")) == ["run-1", "run-2"]
    info = next(i for i in store.list_runs("p1") if i.run_id == "run-1")
    assert (info.status, info.attempt, info.completed) == ("in_progress", 1, 1)

    assert store.delete("run-1") is True
    assert not store.exists("run-1")
    assert store.load("run-1") is None
    assert store.delete("run-1") is False
    assert store.delete("run-3", "p2") is True
    assert [i.run_id for i in store.list_runs()] == ["run-2"]


def test_delete_then_save_starts_a_new_checkpoint(store: CheckpointStore) -> None:
    store.save(new_state(attempt=3, writer="old"))
    store.delete("run-1")
    store.save(new_state(attempt=1, writer="new"))
    loaded = store.load("run-1")
    assert loaded is not None
    assert (loaded.attempt, loaded.writer) == (1, "new")


def test_load_by_run_id_alone_is_ambiguous_across_pipelines(store: CheckpointStore) -> None:
    store.save(new_state("shared", "p1"))
    store.save(new_state("shared", "p2"))

    with pytest.raises(
        CheckpointError, match=r"run id 'shared' has checkpoints for several pipelines.*pass pipeline_name"
    ):
        store.load("shared")
    loaded = store.load("shared", "p2")
    assert loaded is not None
    assert loaded.pipeline_name == "p2"


def test_load_of_an_unknown_run_is_none(store: CheckpointStore, tmp_path: Path) -> None:
    assert store.load("nope") is None
    assert store.load("nope", PIPELINE) is None
    assert LocalCheckpointStore(tmp_path / "does" / "not" / "exist").load("nope") is None


def test_saved_state_round_trips_everything(store: CheckpointStore) -> None:
    state = new_state()
    state.record_completed("a", 12, fingerprint="abcd", outputs=[{"view": "a", "path": "/data/a"}])
    state.record_skipped("z")
    state.record_event("cleanup", removed=["x"])
    state.record_failed("b", ValueError("bad value\nmore detail"), duration_ms=3)
    state.finish_attempt("failed")
    store.save(state)

    loaded = store.load("run-1", PIPELINE)

    assert loaded == state
    assert loaded is not None
    assert loaded.to_dict() == state.to_dict()
    assert loaded.components["a"].outputs == [{"view": "a", "path": "/data/a"}]
    assert loaded.attempts[0].error_message == "bad value"
    assert loaded.pending_ops == []


def test_compaction_folds_the_journal_into_the_snapshot(tmp_path: Path) -> None:
    store = LocalCheckpointStore(tmp_path, compact_every=4)
    state = new_state()
    store.save(state)
    snapshot, journal, _ = store.paths("run-1", PIPELINE)
    longest = 0
    for i in range(40):
        state.record_completed(f"c{i}", i)
        store.save(state)
        lines = len(journal.read_bytes().splitlines() if journal.exists() else [])
        # At most compact_every changes, or as many as the snapshot holds components once it holds more.
        assert lines <= max(4, len(state.components)), i
        longest = max(longest, lines)
        assert LocalCheckpointStore(tmp_path).load("run-1") == state

    assert json.loads(snapshot.read_text())["journal_seq"] >= 20
    assert longest > 4  # the limit grew with the checkpoint


def test_a_snapshot_is_rewritten_a_bounded_number_of_times(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snapshot grows with the checkpoint; rewriting it every few changes would make a run's
    bookkeeping quadratic in its number of components. It is rewritten O(log n) times."""
    store = LocalCheckpointStore(tmp_path, compact_every=8)
    written: list[int] = []
    real = stores_module._dump
    monkeypatch.setattr(
        stores_module, "_dump", lambda state, seq: (written.append(len(state.components)), real(state, seq))[1]
    )
    state = new_state()
    store.save(state)
    for i in range(2000):
        state.record_completed(f"c{i}", i)
        store.save(state)

    assert sum(written) <= 2 * 2000 + 8  # every component serialised about twice in all, not 2000 / 8 times
    assert len(written) <= 12
    assert LocalCheckpointStore(tmp_path).load("run-1") == state


def test_short_writes_still_append_whole_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = LocalCheckpointStore(tmp_path)
    state = new_state()
    store.save(state)
    real_write = os.write
    monkeypatch.setattr(os, "write", lambda fd, data: real_write(fd, bytes(data[:7])))
    for i in range(3):
        state.record_completed(f"c{i}", i)
        store.save(state)
    monkeypatch.undo()

    loaded = LocalCheckpointStore(tmp_path).load("run-1")
    assert loaded is not None
    assert loaded.completed_components == ["c0", "c1", "c2"]


@pytest.mark.parametrize("written", [0, 10], ids=["nothing-written", "part-written"])
def test_a_failed_append_can_be_retried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, written: int) -> None:
    """A transient disk error (ENOSPC) must not leave a gap in the journal for the next save."""
    store = LocalCheckpointStore(tmp_path)
    state = new_state()
    store.save(state)
    state.record_completed("a", 1)
    store.save(state)
    real_write = os.write

    def full_disk(fd: int, data: bytes) -> int:
        if written:
            real_write(fd, bytes(data[:written]))
        raise OSError(28, "No space left on device")

    state.record_completed("b", 1)
    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        store.save(state)
    monkeypatch.undo()
    state.record_completed("c", 1)
    store.save(state)  # the retry carries b's change too

    loaded = LocalCheckpointStore(tmp_path).load("run-1")
    assert loaded is not None
    assert loaded.completed_components == ["a", "b", "c"]
    assert loaded == state


# -- fencing ------------------------------------------------------------------------------------------------


def test_older_attempt_cannot_overwrite_a_newer_one(store: CheckpointStore) -> None:
    zombie = new_state(attempt=1, writer="zombie")
    store.save(zombie)
    retry = store.load("run-1")
    assert retry is not None
    retry.begin_attempt(2, "retry", pipeline_fingerprint="f" * 64, component_fingerprints={}, field_digests={})
    retry.record_completed("a", 1)
    store.save(retry)

    zombie.record_completed("b", 1)
    with pytest.raises(
        CheckpointFencedError,
        match=r"checkpoint of run 'run-1' belongs to attempt 2 \(writer retry\); refusing a write from attempt 1 "
        r"\(writer zombie\)\. Another attempt of this run took over: stop this one",
    ):
        store.save(zombie)

    loaded = store.load("run-1")
    assert loaded is not None
    assert loaded.completed_components == ["a"]
    assert (loaded.attempt, loaded.writer) == (2, "retry")


def test_same_attempt_from_another_writer_is_refused(store: CheckpointStore) -> None:
    store.save(new_state(attempt=2, writer="first"))

    with pytest.raises(
        CheckpointFencedError,
        match=r"belongs to attempt 2 \(writer first\); refusing a write from attempt 2 \(writer second\)",
    ):
        store.save(new_state(attempt=2, writer="second"))


def test_new_state_objects_are_fenced_even_when_python_reuses_an_id(store: CheckpointStore) -> None:
    """CPython reuses the id() of freed objects: each new writer must still be checked against the stored one."""
    accepted = []
    for i in range(20):
        state = new_state(attempt=1, writer=f"w{i}")
        try:
            store.save(state)
            accepted.append(state.writer)
        except CheckpointFencedError:
            pass
        del state  # frees the object: the next one is likely to get the same id

    assert accepted == ["w0"]
    loaded = store.load("run-1")
    assert loaded is not None
    assert [a.writer for a in loaded.attempts] == ["w0"]


def test_tools_may_rewrite_a_loaded_checkpoint(store: CheckpointStore) -> None:
    store.save(new_state(attempt=2, writer="task"))
    loaded = store.load("run-1")
    assert loaded is not None
    loaded.record_event("inspected")

    store.save(loaded)  # same attempt, same writer

    assert store.load("run-1") == loaded


def test_in_memory_store_keeps_no_references(memory_store: InMemoryCheckpointStore) -> None:
    state = new_state()
    memory_store.save(state)
    state.record_completed("a", 1)
    loaded = memory_store.load("run-1")
    assert loaded is not None
    assert loaded.completed_components == []


# -- damaged checkpoints: listed by their run id, moved aside without reading them -----------------------------


def _damaged(tmp_path: Path, run_id: str, damage: str, *, name_tag: bool = True) -> tuple[LocalCheckpointStore, Path]:
    """A checkpoint of ``run_id`` damaged in one of three ways; with ``name_tag``, written by a running
    attempt (which leaves the run's name tag next to it)."""
    store = LocalCheckpointStore(tmp_path / "checkpoints")
    state = new_state(run_id)
    if name_tag:
        with store.running(run_id, PIPELINE):
            store.save(state)
    else:
        store.save(state)
    state.record_completed("a", 1)
    state.record_completed("b", 1)
    store.save(state)
    snapshot, journal, _ = store.paths(run_id, PIPELINE)
    if damage == "not-json":
        snapshot.write_bytes(b"{ not json")
    elif damage == "truncated":
        snapshot.write_bytes(snapshot.read_bytes()[:90])
    elif damage == "journal":
        lines = journal.read_bytes().split(b"\n")
        lines[0] = lines[0][:20] + b"#" + lines[0][21:]
        journal.write_bytes(b"\n".join(lines))
    else:
        doc = json.loads(snapshot.read_bytes())
        doc["schema_version"] = SCHEMA_VERSION + 1
        snapshot.write_bytes(json.dumps(doc).encode())
    return store, snapshot


@pytest.mark.parametrize(
    ("run_id", "damage", "name_tag", "problem"),
    [
        ("nightly:2026-11-27+00", "not-json", True, "not valid JSON (line 1, column 3)"),
        ("nightly:2026-11-27+00", "truncated", False, "not valid JSON (line 1, column 77)"),
        ("nightly-2026-11-27", "not-json", False, "not valid JSON (line 1, column 3)"),
        ("nightly:2026-11-27+00", "journal", False, "line 1 is damaged"),
        ("nightly:2026-11-27+00", "future", False, f"checkpoint schema version {SCHEMA_VERSION + 1} was written"),
    ],
)
def test_a_damaged_checkpoint_is_listed_with_its_run_id_and_problem(
    tmp_path: Path, run_id: str, damage: str, name_tag: bool, problem: str
) -> None:
    store, snapshot = _damaged(tmp_path, run_id, damage, name_tag=name_tag)

    (info,) = store.list_runs()

    # Read back from the document, its text, the run's name tag or the file name: never "?".
    assert (info.run_id, info.pipeline_name, info.status) == (run_id, PIPELINE, "corrupt")
    assert info.problem.startswith(problem)
    assert info.location == str(snapshot)


def test_a_damaged_checkpoint_whose_run_id_is_lost_is_listed_by_file_name(tmp_path: Path) -> None:
    store, snapshot = _damaged(tmp_path, "nightly:2026-11-27+00", "not-json", name_tag=False)

    (info,) = store.list_runs()

    assert info.run_id == snapshot.stem  # "nightly_2026-11-27_00-<hash>": what to pass to quarantine
    moved = LocalCheckpointStore(store.base_dir).quarantine(info.run_id)
    assert [p.name.split(".corrupt-")[0] for p in moved] == [snapshot.name, f"{snapshot.stem}.journal"]
    assert store.list_runs() == []


@pytest.mark.parametrize("damage", ["not-json", "journal", "future"])
def test_quarantine_by_run_id_alone_moves_any_damage_aside(tmp_path: Path, damage: str) -> None:
    store, snapshot = _damaged(tmp_path, "nightly:2026-11-27+00", damage)
    with pytest.raises(CheckpointError, match=re.escape(str(snapshot.parent))):
        store.load("nightly:2026-11-27+00")  # names the damaged file (snapshot or journal)

    moved = store.quarantine("nightly:2026-11-27+00")

    assert {p.name.split(".corrupt-")[0] for p in moved} == {snapshot.name, f"{snapshot.stem}.journal"}
    assert store.load("nightly:2026-11-27+00") is None
    store.save(new_state("nightly:2026-11-27+00", attempt=2, writer="w2"))  # a fresh start
    reloaded = store.load("nightly:2026-11-27+00")
    assert reloaded is not None
    assert reloaded.attempt == 2


# -- one read: a state's first save refuses a checkpoint that changed since it was loaded ----------------------


def test_a_loaded_state_does_not_overwrite_progress_it_never_saw(store: CheckpointStore) -> None:
    from airflow_ppf.checkpoint import CheckpointChangedError

    older = new_state(attempt=1, writer="w1")
    store.save(older)
    retry = store.load("run-1", PIPELINE)  # a retry reads and plans...
    assert retry is not None
    older.record_completed("a", 1)  # ...while the older attempt, still running, finishes a component
    store.save(older)
    retry.begin_attempt(2, "w2", pipeline_fingerprint="f" * 64, component_fingerprints={}, field_digests={})

    with pytest.raises(CheckpointChangedError, match=r"changed since this attempt read it .*1 components done"):
        store.save(retry)

    kept = store.load("run-1", PIPELINE)
    assert kept is not None
    assert (kept.attempt, kept.completed_components) == (1, ["a"])
    fresh = store.load("run-1", PIPELINE)  # read again: the new plan sees "a" done, and its write lands
    assert fresh is not None
    fresh.begin_attempt(2, "w2", pipeline_fingerprint="f" * 64, component_fingerprints={}, field_digests={})
    store.save(fresh)
    fresh.record_completed("b", 1)
    store.save(fresh)  # later saves of the same state are not conditional on anything
    final = store.load("run-1", PIPELINE)
    assert final is not None
    assert (final.attempt, final.completed_components) == (2, ["a", "b"])


def test_a_loaded_state_does_not_recreate_a_deleted_checkpoint(store: CheckpointStore) -> None:
    from airflow_ppf.checkpoint import CheckpointChangedError

    store.save(new_state())
    loaded = store.load("run-1", PIPELINE)
    assert loaded is not None
    store.delete("run-1", PIPELINE)  # cleared meanwhile
    loaded.record_event("note")
    with pytest.raises(CheckpointChangedError, match="it now holds nothing: it was deleted"):
        store.save(loaded)
    assert store.load("run-1", PIPELINE) is None


# -- a run that is running cannot be cleared -----------------------------------------------------------------


def test_a_running_run_is_not_held_exclusively_by_a_tool(tmp_path: Path) -> None:
    from airflow_ppf.checkpoint import CheckpointBusyError

    store = LocalCheckpointStore(tmp_path / "checkpoints")
    with store.running("run-1", PIPELINE):
        store.save(new_state())
        tool = LocalCheckpointStore(tmp_path / "checkpoints")
        busy = r"run 'run-1' is running \(an attempt of it holds .*\.active\)"
        with pytest.raises(CheckpointBusyError, match=busy), tool.exclusive_use("run-1"):
            pass
    with tool.exclusive_use("run-1"):
        assert tool.delete("run-1", PIPELINE)
    assert files_under(tmp_path / "checkpoints") == []  # the run's marker went with it


# -- a folder that cannot hold checkpoints is named, with the reason, before anything runs ------------------


@pytest.mark.parametrize(
    ("layout", "reason"),
    [
        ("file", "it is a file, not a folder"),
        ("parent-file", "{tmp}/afile is a file, not a folder"),
        ("dangling-link", "it is a symbolic link to {tmp}/gone, which does not exist"),
        ("proc", "cannot create /proc/ppf-no-such-folder: No such file or directory"),
        ("lock-folder", "{lock} is a folder where airflow-ppf keeps a file"),
    ],
)
def test_an_unusable_folder_is_refused_with_its_reason(tmp_path: Path, layout: str, reason: str) -> None:
    from airflow_ppf.checkpoint import CheckpointLocationError

    (tmp_path / "afile").write_text("x")
    base = {
        "file": tmp_path / "afile",
        "parent-file": tmp_path / "afile" / "checkpoints",
        "dangling-link": tmp_path / "link",
        "proc": Path("/proc/ppf-no-such-folder"),
        "lock-folder": tmp_path / "checkpoints",
    }[layout]
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    store = LocalCheckpointStore(base)
    lock = store.paths("run-1", PIPELINE)[2]
    if layout == "lock-folder":
        lock.mkdir(parents=True)

    with pytest.raises(CheckpointLocationError) as info:
        store.ensure_writable("run-1", PIPELINE)

    assert str(info.value) == f"checkpoint folder {base} cannot be used: " + reason.format(tmp=tmp_path, lock=lock)
    assert not (tmp_path / "gone").exists()


def test_a_usable_folder_is_left_as_a_save_would_leave_it(tmp_path: Path) -> None:
    store = LocalCheckpointStore(tmp_path / "checkpoints")
    store.ensure_writable("run-1", PIPELINE)
    snapshot, _, lock = store.paths("run-1", PIPELINE)
    assert sorted(p.name for p in snapshot.parent.iterdir()) == sorted([lock.name, f"{snapshot.stem}.active"])
