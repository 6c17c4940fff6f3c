"""Trivial components for the checkpoint tests, importable by class path (``tests.unit.checkpoint.components.Step``).

Every component appends its name to a log file when it runs, so a test (or a parent process) can count
exactly which components ran, across processes and kills.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from airflow_ppf.components import Component

__all__ = ["BLOCK_ENV", "BLOCK_INIT_ENV", "Step", "read_log", "wait_for_file"]

#: When this environment variable names a file, a ``Step`` with ``block=True`` creates ``<file>.waiting``
#: and waits until ``<file>`` exists (lets a test hold a process inside a component).
BLOCK_ENV = "PPF_TEST_BLOCK_FILE"
#: The same for a ``Step`` with ``block_init=True``, in its constructor: components are built after an
#: attempt read its checkpoint and before its first write, so this holds a process between the two.
#: It waits only once: when the file exists already, the constructor does not wait.
BLOCK_INIT_ENV = "PPF_TEST_BLOCK_INIT_FILE"


def wait_for_file(path: str | Path, timeout: float = 30) -> None:
    """Create ``<path>.waiting``, then wait until ``path`` exists (at most ``timeout`` seconds)."""
    Path(f"{path}.waiting").touch()
    deadline = time.monotonic() + timeout
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


def read_log(path: str | Path) -> list[str]:
    """Return the names appended to a run log, in order (an absent log is empty)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if line]


class Step(Component):
    """Append the component's name to ``log``, then optionally misbehave.

    Args:
        log: file to append the component's name to (one line per run).
        sleep_ms: sleep this long after logging (gives a killer something to hit).
        fail: always raise ``RuntimeError(fail_message)``.
        fail_until: raise ``RuntimeError(fail_message)`` unless the file ``fail_until`` exists; create it
            first, so the component fails only the first time.
        interrupt_until: like ``fail_until`` but raises ``KeyboardInterrupt``.
        block: see :data:`BLOCK_ENV`.
        block_init: see :data:`BLOCK_INIT_ENV`.
        params: anything else (``sql``...): part of the config and so of the fingerprint, otherwise unused.
    """

    def __init__(
        self,
        log: str,
        *,
        sleep_ms: float = 0,
        fail: bool = False,
        fail_until: str | None = None,
        fail_message: str = "boom",
        interrupt_until: str | None = None,
        block: bool = False,
        block_init: bool = False,
        **params: Any,
    ) -> None:
        init_file = os.environ.get(BLOCK_INIT_ENV)
        if block_init and init_file and not os.path.exists(init_file):
            wait_for_file(init_file)
        self.log = log
        self.sleep_ms = sleep_ms
        self.fail = fail
        self.fail_until = fail_until
        self.fail_message = fail_message
        self.interrupt_until = interrupt_until
        self.block = block
        self.params = params

    def run(self) -> None:
        fd = os.open(self.log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{self.name}\n".encode())
        finally:
            os.close(fd)
        if self.sleep_ms:
            time.sleep(self.sleep_ms / 1000)
        block_file = os.environ.get(BLOCK_ENV)
        if self.block and block_file:
            wait_for_file(block_file)
        if self.fail:
            raise RuntimeError(self.fail_message)
        if self.fail_until is not None and not os.path.exists(self.fail_until):
            Path(self.fail_until).touch()
            raise RuntimeError(self.fail_message)
        if self.interrupt_until is not None and not os.path.exists(self.interrupt_until):
            Path(self.interrupt_until).touch()
            raise KeyboardInterrupt
