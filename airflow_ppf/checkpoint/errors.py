"""Errors of the checkpoint subsystem. All of them are raised, never logged and swallowed."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "CheckpointBusyError",
    "CheckpointChangedError",
    "CheckpointCorruptError",
    "CheckpointError",
    "CheckpointFencedError",
    "CheckpointLocationError",
    "CheckpointLockLostError",
    "CheckpointNotFoundError",
    "CheckpointVersionError",
    "PipelineConfigChangedError",
]


class CheckpointError(Exception):
    """Base class of checkpoint errors."""


class CheckpointCorruptError(CheckpointError):
    """A stored checkpoint cannot be read back (damaged, truncated, or not a checkpoint).

    ``path`` names the file (or store key) so it can be inspected or moved aside; nothing is deleted.
    """

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(
            f"checkpoint {self.path} is corrupt: {problem}. Move it aside (ppf checkpoints clear, or "
            "on_corrupt_checkpoint='restart' in the operator) to start this run from the beginning"
        )


class CheckpointVersionError(CheckpointError):
    """A checkpoint was written with a schema this version of airflow-ppf cannot read.

    ``path`` names the file (or store key) once the store knows it (:meth:`at`).
    """

    def __init__(self, problem: str, path: str | Path | None = None) -> None:
        self.problem = problem
        self.path = None if path is None else str(path)
        super().__init__(problem if self.path is None else f"{self.path}: {problem}")

    def at(self, path: str | Path) -> CheckpointVersionError:
        """The same error, naming the file (or store key) it was found in."""
        return CheckpointVersionError(self.problem, path)


class CheckpointNotFoundError(CheckpointError, LookupError):
    """No checkpoint exists for the run (raised only in strict mode)."""

    def __init__(self, run_id: str, pipeline_name: str | None = None) -> None:
        self.run_id = run_id
        self.pipeline_name = pipeline_name
        where = f" of pipeline {pipeline_name!r}" if pipeline_name else ""
        super().__init__(f"no checkpoint found for run_id={run_id!r}{where}")


class CheckpointFencedError(CheckpointError):
    """A writer from an older (or another) attempt tried to overwrite a newer attempt's checkpoint.

    This happens when a zombie attempt keeps running after Airflow started its retry: the retry owns
    the checkpoint and the zombie's writes are refused so they cannot undo newer progress.
    """

    def __init__(self, run_id: str, stored_attempt: int, stored_writer: str, attempt: int, writer: str) -> None:
        self.run_id = run_id
        self.stored_attempt = stored_attempt
        self.attempt = attempt
        super().__init__(
            f"checkpoint of run {run_id!r} belongs to attempt {stored_attempt} (writer {stored_writer}); "
            f"refusing a write from attempt {attempt} (writer {writer}). Another attempt of this run took "
            "over: stop this one"
        )


class PipelineConfigChangedError(CheckpointError):
    """The pipeline changed since its checkpoint was written (strict resume only).

    ``changed`` lists components whose fingerprint changed, ``reasons`` says how (``config.sql changed``).
    """

    def __init__(
        self,
        run_id: str,
        pipeline_name: str,
        changed: Sequence[str] = (),
        reasons: dict[str, str] | None = None,
    ) -> None:
        self.run_id = run_id
        self.pipeline_name = pipeline_name
        self.changed = list(changed)
        self.reasons = dict(reasons or {})
        detail = "; ".join(f"{name}: {self.reasons.get(name, 'changed')}" for name in self.changed)
        super().__init__(
            f"pipeline {pipeline_name!r} changed since the checkpoint of run {run_id!r} was saved"
            + (f" ({detail})" if detail else "")
        )


class CheckpointLocationError(CheckpointError):
    """The checkpoint folder cannot be used (a file, a missing target, read-only...): bad input, found
    before anything runs."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"checkpoint folder {self.path} cannot be used: {reason}")


class CheckpointBusyError(CheckpointError):
    """Another process holds the checkpoint: its lock stayed taken past the timeout, or the run is running."""


class CheckpointLockLostError(CheckpointError):
    """This process held the checkpoint lock past its lease (it was frozen or stalled): a newer attempt
    may have taken the lock over, so it refuses to write."""

    def __init__(self, path: str | Path, held: float, lease: float, action: str) -> None:
        self.path = str(path)
        super().__init__(
            f"this process held the checkpoint lock {self.path} for {held:.1f} s, past its {lease:g} s lease "
            f"(it was frozen or stalled), so a newer attempt may have taken it over: refusing to {action}. "
            "Another attempt of this run took over: stop this one"
        )


class CheckpointChangedError(CheckpointError):
    """The stored checkpoint changed since this state was read from it: writing it would undo progress it
    never saw (another attempt recorded more meanwhile). Read it again and plan again."""

    def __init__(self, run_id: str, path: str, now: str) -> None:
        self.run_id = run_id
        self.path = path
        super().__init__(
            f"checkpoint of run {run_id!r} ({path}) changed since this attempt read it (it now holds {now}): "
            "another attempt of the run recorded progress meanwhile; read it again and plan again"
        )
