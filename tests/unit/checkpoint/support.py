"""Helpers of the checkpoint tests: pipeline configs of test components and child processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
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
