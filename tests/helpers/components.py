"""Tiny components for unit tests: no Spark, no I/O. Refer to them by class path, e.g. ``STEP``.

Components record what they do in :data:`CALLS` (reset before every unit test by ``tests/unit/conftest.py``)
and advance :data:`CLOCK` instead of sleeping, so durations are exact and tests stay fast.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, ClassVar

from airflow_ppf.components import Component, DataFlow

MODULE = __name__
STEP = f"{MODULE}.Step"
SPARK_STEP = f"{MODULE}.SparkStep"
BLOCKING = f"{MODULE}.Blocking"
FLAKY_ONCE = f"{MODULE}.FlakyOnce"
APPEND_NAME = f"{MODULE}.AppendName"
RECORD_VALUE = f"{MODULE}.RecordValue"

#: Everything the components below did, in order: ``"run:<name>"`` and similar entries.
CALLS: list[str] = []


class FakeClock:
    """A monotonic clock that only moves when told to."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


#: The clock that :class:`Step` advances; tests hand it to the runner as ``clock=CLOCK``.
CLOCK = FakeClock()


class TransientError(ConnectionError):
    """A retryable error defined outside the standard library (dotted-name matching)."""


class PermanentError(Exception):
    """An error no retry policy in the tests names."""


_ERRORS: dict[str, type[BaseException]] = {
    "RuntimeError": RuntimeError,
    "ValueError": ValueError,
    "ConnectionError": ConnectionError,
    "TransientError": TransientError,
    "PermanentError": PermanentError,
    "KeyboardInterrupt": KeyboardInterrupt,
    "SystemExit": SystemExit,
}


class Step(Component):
    """Record a run, advance the fake clock, and optionally fail.

    Args:
        fail_times: fail this many attempts (``-1``: every attempt), then succeed.
        error: the exception class to raise (a key of ``_ERRORS``).
        message: the exception message.
        advance: seconds to advance :data:`CLOCK` per attempt.
    """

    def __init__(
        self, fail_times: int = 0, error: str = "RuntimeError", message: str = "boom", advance: float = 0.0
    ) -> None:
        self.fail_times = fail_times
        self.error = error
        self.message = message
        self.advance = advance
        self.attempts = 0

    def run(self) -> None:
        self.attempts += 1
        CALLS.append(f"run:{self.name}")
        CLOCK.advance(self.advance)
        if self.fail_times < 0 or self.attempts <= self.fail_times:
            raise _ERRORS[self.error](self.message)


class FlakyOnce(Component):
    """Fail the first ``times`` runs of a component of this name in a test, succeed on every later run.

    The count lives in :data:`CALLS`, so it survives the runner building a fresh instance per run.
    """

    def __init__(self, times: int = 1) -> None:
        self.times = times

    def run(self) -> None:
        CALLS.append(f"run:{self.name}")
        if CALLS.count(f"run:{self.name}") <= self.times:
            raise RuntimeError(f"{self.name} fails on its first {self.times} run(s)")


class SparkStep(DataFlow):
    """A DataFlow that only records the session it was given."""

    sessions: ClassVar[list[Any]] = []

    def run(self) -> None:
        CALLS.append(f"spark:{self.name}")
        SparkStep.sessions.append(self.spark)


class Blocking(Component):
    """Block in ``run()`` until :meth:`cancel` (or the safety timeout); signals :attr:`started` on entry."""

    started = threading.Event()
    released = threading.Event()

    def __init__(self, timeout: float = 5.0) -> None:
        self.timeout = timeout

    def run(self) -> None:
        CALLS.append(f"run:{self.name}")
        Blocking.started.set()
        if not Blocking.released.wait(self.timeout):
            raise TimeoutError("Blocking was never cancelled")

    def cancel(self) -> None:
        CALLS.append(f"cancel:{self.name}")
        Blocking.released.set()


class Configurable(Component):
    """A component with a required and an optional argument."""

    def __init__(self, path: str, limit: int = 10) -> None:
        self.path = path
        self.limit = limit

    def run(self) -> None:
        CALLS.append(f"run:{self.name}:{self.path}:{self.limit}")


class KwargsComponent(Component):
    """Accepts any keyword argument."""

    def __init__(self, **options: Any) -> None:
        self.options = options

    def run(self) -> None:
        CALLS.append(f"run:{self.name}")


class FromConfig(Component):
    """Built through :meth:`from_config`, whose arguments differ from ``__init__``'s."""

    def __init__(self, table: str, built_by: str) -> None:
        self.table = table
        self.built_by = built_by

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FromConfig:
        return cls(table=f"db.{config['name']}", built_by="from_config")

    def run(self) -> None:
        CALLS.append(f"run:{self.name}:{self.table}:{self.built_by}")


class BrokenInit(Component):
    """A constructor that raises."""

    def __init__(self, value: int = 0) -> None:
        raise ValueError(f"cannot use value {value}")

    def run(self) -> None:  # pragma: no cover - never built
        pass


class AbstractStep(Component):
    """Forgot to implement ``run()``."""


class NoRun:
    """Not a component: no ``run()``."""


class DuckTyped:
    """Not a Component subclass, but has ``run()``: accepted."""

    def run(self) -> None:
        CALLS.append("run:duck")


def not_a_class() -> None:
    """A function where a class is expected."""


NOT_A_CLASS_EITHER = 42


class AppendName(Component):
    """Append ``<name>@<attempt>`` to ``log_file``: a trace that survives processes and Airflow tries."""

    def __init__(self, log_file: str, value: str = "") -> None:
        self.log_file = Path(log_file)
        self.value = value

    def run(self) -> None:
        with self.log_file.open("a", encoding="utf-8") as fh:
            fh.write(f"{self.name}@{self.context.get('attempt')}\n")


class RecordValue(Component):
    """Append its ``value`` (what a config string became after substitution) to ``log_file``, one per line."""

    def __init__(self, log_file: str, value: str) -> None:
        self.log_file = Path(log_file)
        self.value = value

    def run(self) -> None:
        with self.log_file.open("a", encoding="utf-8") as fh:
            fh.write(self.value + "\n")


def trace(log_file: Path) -> list[str]:
    """What :class:`AppendName` components wrote so far."""
    return log_file.read_text(encoding="utf-8").split() if log_file.exists() else []
