"""Components for operator tests that need threads (on_kill); trace components live in tests.helpers."""

from __future__ import annotations

import threading

from airflow_ppf.components import Component

MODULE = __name__


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
