"""Readers (a retry's resume plan, the CLI, the UI) load a checkpoint while another process writes it."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from airflow_ppf.runner import LocalCheckpointStore
from tests.unit.checkpoint.support import REPO_ROOT, child_command, child_env

pytestmark = pytest.mark.slow


def test_loading_while_another_process_saves_and_compacts(tmp_path: Path) -> None:
    store_dir = tmp_path / "checkpoints"
    # Compacting every 2 changes makes the writer replace the snapshot all the time.
    writer = subprocess.Popen(
        child_command("save-loop", str(store_dir), "busy-run", "--compact-every", "2"),
        cwd=REPO_ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "ready"
        seen: list[int] = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            state = LocalCheckpointStore(store_dir).load("busy-run", "saver")  # never a false "corrupt"
            assert state is not None
            count = len(state.completed_components)
            assert state.completed_components == [f"c{i}" for i in range(count)]
            seen.append(count)
    finally:
        writer.kill()
        writer.communicate(timeout=30)

    assert seen == sorted(seen)  # never goes back in time
    assert seen[-1] > seen[0]
    assert len(seen) > 50
