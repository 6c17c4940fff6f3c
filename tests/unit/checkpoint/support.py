"""Helpers of the checkpoint tests: pipeline configs of test components and child processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

STEP = "tests.unit.checkpoint.components.Step"
REPO_ROOT = Path(__file__).resolve().parents[3]

#: ``(name, depends_on)`` or ``(name, depends_on, extra config)``.
Spec = tuple[str, Sequence[str]] | tuple[str, Sequence[str], dict[str, Any]]


def pipeline_dict(log: Path, specs: Sequence[Spec], name: str = "demo") -> dict[str, Any]:
    """Return a pipeline config dict of :class:`Step` components that all append to ``log``."""
    components = []
    for spec in specs:
        comp_name, deps = spec[0], spec[1]
        extra = dict(spec[2]) if len(spec) > 2 else {}  # type: ignore[misc]
        components.append(
            {
                "name": comp_name,
                "class_path": STEP,
                "config": {"log": str(log), **extra},
                "depends_on": list(deps),
            }
        )
    return {"name": name, "components": components}


def chain(*names: str, **extra: dict[str, Any]) -> list[Spec]:
    """``a -> b -> c``; ``extra[name]`` adds config to one component."""
    out: list[Spec] = []
    for i, name in enumerate(names):
        out.append((name, [names[i - 1]] if i else [], extra.get(name, {})))
    return out


def child_env(**extra: str) -> dict[str, str]:
    """Environment of a child Python process that can import the package and the test components."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env.update(extra)
    return env


def child_command(*args: str) -> list[str]:
    """Command line of ``tests/unit/checkpoint/child_process.py`` with ``args``."""
    return [sys.executable, "-m", "tests.unit.checkpoint.child_process", *args]


def run_child(*args: str, timeout: float = 60, **env: str) -> subprocess.CompletedProcess[str]:
    """Run the child script to completion and return its output."""
    return subprocess.run(
        child_command(*args),
        cwd=REPO_ROOT,
        env=child_env(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def write_config(path: Path, log: Path, specs: Sequence[Spec], name: str = "demo") -> Path:
    """Write a pipeline config as JSON for a child process."""
    path.write_text(json.dumps(pipeline_dict(log, specs, name)), encoding="utf-8")
    return path


#: The pipeline name of the ``freeze-in-save`` and ``take-over`` children.
SAVER = "saver"


def _stopped(pid: int) -> bool:
    """Whether the process is stopped (SIGSTOP), from its state in /proc."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rindex(")") + 2] in "Tt"


def start_child(*args: str, first_line: str = "ready") -> subprocess.Popen[str]:
    """Start the child script in the background; return once it printed ``first_line``."""
    proc = subprocess.Popen(
        child_command(*args),
        cwd=REPO_ROOT,
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()  # everything is imported; the interesting part starts now
    assert line.strip() == first_line, (line, proc.stderr.read() if proc.stderr else "")
    return proc


def start_frozen_writer(store_dir: Path, run_id: str, at: str, lock_timeout: float) -> subprocess.Popen[str]:
    """Attempt 1 of the ``saver`` pipeline's ``run_id``, stopped (SIGSTOP) at ``at`` inside a save, holding
    the run's lock (see ``freeze-in-save`` in ``child_process.py``)."""
    args = ("freeze-in-save", str(store_dir), run_id, "--at", at, "--lock-timeout", str(lock_timeout))
    proc = start_child(*args, first_line="frozen")
    deadline = time.monotonic() + 10
    while not _stopped(proc.pid):
        assert time.monotonic() < deadline, "the writer did not stop"
        time.sleep(0.01)
    return proc


def resume_and_collect(proc: subprocess.Popen[str]) -> tuple[int, str]:
    """SIGCONT a stopped child; return its exit code and output."""
    os.kill(proc.pid, signal.SIGCONT)
    out, err = proc.communicate(timeout=30)
    return proc.returncode, out + err
