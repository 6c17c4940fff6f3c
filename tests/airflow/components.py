"""Pure-Python components for operator tests: they leave a trace on disk, so runs can be counted across tries."""

from __future__ import annotations

import threading
from pathlib import Path

from airflow_ppf.components import Component

MODULE = __name__


class AppendName(Component):
    """Append this component's name and the run's attempt to ``log_file``."""

    def __init__(self, log_file: str, value: str = "") -> None:
        self.log_file = Path(log_file)
        self.value = value

    def run(self) -> None:
        with self.log_file.open("a", encoding="utf-8") as fh:
            fh.write(f"{self.name}@{self.context.get('attempt')}\n")


#: Set by a test to release :class:`WaitForRelease`.
RELEASE = threading.Event()
#: Set by :class:`WaitForRelease` once it is running.
STARTED = threading.Event()


class WaitForRelease(Component):
    """Block until released or cancelled (to test on_kill)."""

    def run(self) -> None:
        STARTED.set()
        if not RELEASE.wait(30):
            raise TimeoutError("never released")
        raise RuntimeError("cancelled while running")

    def cancel(self) -> None:
        RELEASE.set()


def lines(log_file: Path) -> list[str]:
    """The trace written so far."""
    return log_file.read_text(encoding="utf-8").split() if log_file.exists() else []
