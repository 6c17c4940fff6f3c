"""Two attempts of one run at once (a zombie and its retry), as real processes: the newer attempt wins."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from airflow_ppf.runner import LocalCheckpointStore
from airflow_ppf.runner.checkpoint import CheckpointStatus
from tests.unit.checkpoint.components import BLOCK_ENV, read_log
from tests.unit.checkpoint.support import (
    REPO_ROOT,
    SAVER,
    chain,
    child_command,
    child_env,
    resume_and_collect,
    run_child,
    start_frozen_writer,
    write_config,
)

pytestmark = pytest.mark.slow

RUN_ID = "run-001"


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"process ended early ({proc.returncode}): {proc.communicate()}")
        if time.monotonic() > deadline:
            pytest.fail(f"{path} did not appear within {timeout} s")
        time.sleep(0.01)


@pytest.fixture
def zombie_and_retry(tmp_path: Path) -> tuple[Path, Path, Path, str, str]:
    """Attempt 1 (process A) is stuck in ``c`` after finishing a and b; attempt 2 (process B) takes over and
    finishes the run; then A wakes up. Returns (config, store dir, log, A's stderr, B's writer)."""
    log = tmp_path / "ran.log"
    config = write_config(tmp_path / "pipeline.json", log, chain("a", "b", "c", "d", c={"block": True}))
    store_dir = tmp_path / "checkpoints"
    go = tmp_path / "go"

    zombie = subprocess.Popen(
        child_command("run", str(config), str(store_dir), RUN_ID),
        cwd=REPO_ROOT,
        env=child_env(**{BLOCK_ENV: str(go)}),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(Path(f"{go}.waiting"), zombie)
        progress = LocalCheckpointStore(store_dir).load(RUN_ID)
        assert progress is not None
        assert (progress.attempt, progress.completed_components) == (1, ["a", "b"])

        retry = run_child("run", str(config), str(store_dir), RUN_ID)  # attempt 2, numbered automatically
        assert retry.returncode == 0, retry.stderr
        assert json.loads(retry.stdout.splitlines()[-1]) == {
            "status": "success",
            "skipped": ["a", "b"],
            "completed": ["c", "d"],
        }
        taken_over = LocalCheckpointStore(store_dir).load(RUN_ID)
        assert taken_over is not None

        go.touch()
        _, zombie_err = zombie.communicate(timeout=30)
    finally:
        if zombie.poll() is None:
            zombie.kill()
            zombie.wait()
    assert zombie.returncode == 3, zombie_err
    return config, store_dir, log, zombie_err, taken_over.writer


def test_zombie_attempt_is_fenced_and_the_retry_keeps_its_progress(
    zombie_and_retry: tuple[Path, Path, Path, str, str],
) -> None:
    _, store_dir, log, zombie_err, retry_writer = zombie_and_retry

    assert "CRITICAL CheckpointFencedError: checkpoint of run 'run-001' belongs to attempt 2" in zombie_err
    assert f"(writer {retry_writer}); refusing a write from attempt 1" in zombie_err
    assert "Another attempt of this run took over: stop this one" in zombie_err

    state = LocalCheckpointStore(store_dir).load(RUN_ID)
    assert state is not None
    assert state.status == CheckpointStatus.COMPLETED
    assert state.completed_components == ["a", "b", "c", "d"]
    assert [a.attempt for a in state.attempts] == [1, 2]
    assert state.writer == retry_writer
    assert {n: r.attempt for n, r in state.components.items()} == {"a": 1, "b": 1, "c": 2, "d": 2}
    # The zombie's own finish never landed: attempt 1 still looks unfinished in the history.
    assert state.attempts[0].status == CheckpointStatus.IN_PROGRESS
    assert read_log(log) == ["a", "b", "c", "c", "d"]


@pytest.mark.parametrize("attempt", [2, 1])
def test_a_process_claiming_the_current_or_an_older_attempt_is_refused(
    zombie_and_retry: tuple[Path, Path, Path, str, str], attempt: int
) -> None:
    config, store_dir, log, _, retry_writer = zombie_and_retry
    stored = {p: p.read_bytes() for p in store_dir.rglob("*") if p.is_file() and p.suffix != ".lock"}
    ran_before = read_log(log)

    intruder = run_child("run", str(config), str(store_dir), RUN_ID, "--attempt", str(attempt))

    assert intruder.returncode == 3, intruder.stderr
    assert (
        f"CRITICAL CheckpointFencedError: checkpoint of run 'run-001' belongs to attempt 2 (writer {retry_writer}); "
        f"refusing a write from attempt {attempt} (writer " in intruder.stderr
    )
    assert {p: p.read_bytes() for p in store_dir.rglob("*") if p.is_file() and p.suffix != ".lock"} == stored
    assert read_log(log) == ran_before


# -- a zombie frozen while it holds the run's lock (SIGSTOP) -------------------------------------------------


@pytest.mark.parametrize("at", ["before-append", "after-tmp-written", "before-rename"])
def test_a_retry_takes_over_from_a_frozen_zombie_that_stays_fenced(tmp_path: Path, at: str) -> None:
    store_dir = tmp_path / "checkpoints"
    zombie = start_frozen_writer(store_dir, RUN_ID, at, lock_timeout=2)  # its lease: 1 s
    try:
        # Before: the retry's first write waited for the frozen zombie for as long as it stayed frozen.
        retry = run_child("take-over", str(store_dir), RUN_ID, "--attempt", "2", "--lock-timeout", "2", timeout=60)
        assert retry.returncode == 0, retry.stdout + retry.stderr
        assert "Took over the checkpoint lock" in retry.stderr
        taken = LocalCheckpointStore(store_dir).load(RUN_ID, SAVER)
        assert taken is not None
        assert (taken.attempt, taken.writer, taken.status) == (2, "retry", CheckpointStatus.COMPLETED)
        assert taken.completed_components == ["c0", "r0", "r1", "r2"]

        # The zombie wakes up in the middle of its write: the write must not land.
        code, output = resume_and_collect(zombie)
    finally:
        if zombie.poll() is None:
            zombie.kill()
            zombie.wait()
    assert code == 3, output
    expected = "FileNotFoundError" if at == "before-rename" else "CheckpointLockLostError"
    assert f"REFUSED {expected}" in output
    final = LocalCheckpointStore(store_dir).load(RUN_ID, SAVER)
    assert final is not None
    assert final.to_dict() == taken.to_dict()
    assert not list(store_dir.rglob("*.tmp"))


def test_a_holder_that_never_said_who_it_is_is_not_taken_over(tmp_path: Path) -> None:
    """Frozen right after taking the lock (or an older airflow-ppf): no lease is known, so the retry gives up
    after its timeout with a clear error instead of waiting for ever, and takes nothing over."""
    store_dir = tmp_path / "checkpoints"
    zombie = start_frozen_writer(store_dir, RUN_ID, "before-holder-written", lock_timeout=60)
    try:
        retry = run_child("take-over", str(store_dir), RUN_ID, "--attempt", "2", "--lock-timeout", "1", timeout=60)
        assert retry.returncode == 4, retry.stdout + retry.stderr
        assert "BUSY checkpoint lock" in retry.stdout
        assert "is held by another process that did not say who it is for more than 1 s" in retry.stdout
        stored = LocalCheckpointStore(store_dir).load(RUN_ID, SAVER)
        assert stored is not None
        assert (stored.attempt, stored.completed_components) == (1, ["c0"])
        code, output = resume_and_collect(zombie)
    finally:
        if zombie.poll() is None:
            zombie.kill()
            zombie.wait()
    assert (code, output.strip()) == (0, "SAVED")  # its lease (30 s) never expired: its write is good


def test_tools_and_same_attempt_writers_give_up_on_a_frozen_holder(tmp_path: Path) -> None:
    from airflow_ppf.checkpoint import CheckpointBusyError

    store_dir = tmp_path / "checkpoints"
    zombie = start_frozen_writer(store_dir, RUN_ID, "before-append", lock_timeout=60)
    try:
        impatient = LocalCheckpointStore(store_dir, lock_timeout=1)
        holder = rf"held by another process \(pid={zombie.pid} host=\S+ lease=30 token=\w+\) for more than 1 s"
        with pytest.raises(CheckpointBusyError, match=rf"{holder}; deleting the checkpoint gives up waiting"):
            impatient.delete(RUN_ID, SAVER)
        edited = impatient.load(RUN_ID, SAVER)
        assert edited is not None
        edited.record_event("note", by="a tool")  # same attempt: it may never take over
        with pytest.raises(CheckpointBusyError, match=rf"{holder}; this write gives up waiting"):
            impatient.save(edited)
        code, output = resume_and_collect(zombie)
    finally:
        if zombie.poll() is None:
            zombie.kill()
            zombie.wait()
    assert (code, output.strip()) == (0, "SAVED")
    stored = LocalCheckpointStore(store_dir).load(RUN_ID, SAVER)
    assert stored is not None
    assert stored.completed_components == ["c0", "c1"]
