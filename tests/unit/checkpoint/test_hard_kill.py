"""SIGKILL at random instants: the checkpoint always loads, and a resume never reruns a recorded component."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import LocalCheckpointStore, load_checkpoint_for_resume
from airflow_ppf.runner.checkpoint import CheckpointStatus
from tests.unit.checkpoint.components import read_log
from tests.unit.checkpoint.support import SAVER, chain, run_child, start_child, start_frozen_writer, write_config

pytestmark = pytest.mark.slow

NAMES = [f"c{i:02d}" for i in range(15)]
RUN_ID = "run-001"


def kill(proc: subprocess.Popen[str], delay: float) -> str:
    """SIGKILL ``proc`` after ``delay`` seconds (unless it ended); return what it printed."""
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate(timeout=30)
    return out


def test_sigkill_during_a_run_leaves_a_resumable_checkpoint(tmp_path: Path) -> None:
    rng = random.Random(20240601)
    store_dir = tmp_path / "checkpoints"
    kills = 0
    for run in range(8):
        run_id = f"scheduled__2024-01-0{run + 1}T00:00:00+00:00"
        log = tmp_path / f"run{run}.log"
        config_path = write_config(
            tmp_path / f"run{run}.json", log, chain(*NAMES, **{name: {"sleep_ms": 8} for name in NAMES})
        )
        config = PipelineConfig.from_file(config_path)
        boundaries: list[tuple[int, set[str]]] = []
        for _ in range(4):
            proc = start_child("run", str(config_path), str(store_dir), run_id)
            kill(proc, rng.uniform(0.0, 0.06))
            kills += proc.returncode == -signal.SIGKILL

            store = LocalCheckpointStore(store_dir)  # a new process's view of the files
            state = store.load(run_id, config.name)
            completed = load_checkpoint_for_resume(store, run_id, config)
            recorded = set(state.completed_components) if state else set()
            assert completed == recorded
            ran = read_log(log)
            # Recorded done means it ran (the record is written after the work), in order (a chain).
            assert recorded <= set(ran)
            assert (state.completed_components if state else []) == NAMES[: len(recorded)]
            boundaries.append((len(ran), recorded))

        finished = run_child("run", str(config_path), str(store_dir), run_id)
        assert finished.returncode == 0, finished.stderr
        summary = json.loads(finished.stdout.splitlines()[-1])
        assert summary["status"] == "success"
        assert set(summary["skipped"]) == boundaries[-1][1]

        ran = read_log(log)
        for mark, recorded in boundaries:
            rerun = recorded & set(ran[mark:])
            assert not rerun, f"{run_id}: {sorted(rerun)} recorded done but ran again"
        state = LocalCheckpointStore(store_dir).load(run_id)
        assert state is not None
        assert state.status == CheckpointStatus.COMPLETED
        assert state.completed_components == NAMES
        assert set(ran) == set(NAMES)
    assert kills >= 16  # most children were really killed mid-way, not finished first


def test_sigkill_inside_save_never_corrupts_the_checkpoint(tmp_path: Path) -> None:
    rng = random.Random(7)
    store_dir = tmp_path / "checkpoints"
    run_id = "saver-run"
    durable = -1
    for child in range(1, 16):
        proc = start_child("save-loop", str(store_dir), run_id, "--compact-every", "8")
        out = kill(proc, rng.uniform(0.0, 0.15))
        assert proc.returncode == -signal.SIGKILL
        printed = [int(line) for line in out.split()]
        durable = max([durable, *printed])

        state = LocalCheckpointStore(store_dir).load(run_id)  # never raises

        assert state is not None
        count = len(state.completed_components)
        assert state.completed_components == [f"c{i}" for i in range(count)]
        # Every save that returned before the kill is in the checkpoint.
        assert count - 1 >= durable
        durable = count - 1
        # This child's first save (its new attempt) returned before it printed "ready".
        assert state.attempt == child
    assert durable > 50


def test_a_writer_killed_inside_a_snapshot_write_leaves_no_temp_file_for_long(tmp_path: Path) -> None:
    """A kill between writing a new snapshot's temp file and renaming it used to leave the temp file (a
    full copy of the checkpoint) for ever. The next writer of the run removes it; a live writer's is safe."""
    from airflow_ppf.checkpoint import CheckpointBusyError, CheckpointState

    store_dir = tmp_path / "checkpoints"
    writer = start_frozen_writer(store_dir, RUN_ID, "before-rename", lock_timeout=60)  # live, holding the lock
    try:
        (temp,) = store_dir.rglob(".*.tmp")
        # While its writer lives, nobody touches it: readers take no lock, other writers wait for it.
        state = LocalCheckpointStore(store_dir).load(RUN_ID, SAVER)
        assert state is not None
        assert state.completed_components == ["c0"]
        assert [i.run_id for i in LocalCheckpointStore(store_dir).list_runs()] == [RUN_ID]
        with pytest.raises(CheckpointBusyError):
            LocalCheckpointStore(store_dir, lock_timeout=0.5).delete(RUN_ID, SAVER)
        assert temp.exists()
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert temp.exists()  # what the killed writer left behind

    store = LocalCheckpointStore(store_dir)
    resumed = store.load(RUN_ID, SAVER)
    assert isinstance(resumed, CheckpointState)
    resumed.begin_attempt(2, "retry", pipeline_fingerprint="f" * 64, component_fingerprints={}, field_digests={})
    store.save(resumed)

    assert not temp.exists()
    assert not list(store_dir.rglob("*.tmp"))
    reloaded = LocalCheckpointStore(store_dir).load(RUN_ID, SAVER)
    assert reloaded is not None
    assert (reloaded.attempt, reloaded.completed_components) == (2, ["c0"])


def test_delete_and_quarantine_remove_temp_files_of_killed_writers(tmp_path: Path) -> None:

    for remove in ("delete", "quarantine"):
        store_dir = tmp_path / remove
        writer = start_frozen_writer(store_dir, RUN_ID, "before-rename", lock_timeout=60)
        writer.send_signal(signal.SIGKILL)
        writer.wait()
        assert len(list(store_dir.rglob(".*.tmp"))) == 1
        getattr(LocalCheckpointStore(store_dir), remove)(RUN_ID, SAVER)
        assert not list(store_dir.rglob("*.tmp")), remove
