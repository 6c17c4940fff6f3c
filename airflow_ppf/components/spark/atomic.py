"""Commit directory outputs so that a failed or killed write never leaves something that looks complete.

Spark's own ``mode("overwrite")`` deletes the previous output *before* it writes the new one, so a job that
fails halfway (a bad row, a lost executor, a killed Airflow task) leaves nothing, or a partial directory.
:func:`write_atomically` instead

1. writes the complete new output to a temporary sibling ``<path>.ppf-tmp-<id>``;
2. renames the previous output aside to ``<path>.ppf-old-<id>``;
3. renames the temporary directory to ``<path>``;
4. deletes the old output.

A failure in step 1 deletes the temporary directory and leaves ``<path>`` untouched. A failure in step 3
renames the old output back. A process killed between steps 2 and 3 leaves ``<path>`` missing and the old
output beside it: :func:`recover_output` (run at the start of every write, or by hand) puts it back and
removes leftovers of interrupted writes.

Paths are qualified the way Spark qualifies them and handled through :mod:`airflow_ppf.spark.fs`: local
paths on the local disk (renames fsynced), others through the Hadoop ``FileSystem`` API of the driver
JVM, so ``file://``, ``hdfs://``, ``s3a://``, ``abfs://``... paths all work, with the guarantees of their
``rename``:

* local and HDFS directory renames are atomic, so ``<path>`` is always either the old or the new output;
* object stores (``s3a://``, ``gs://``) rename a directory by copying its files, so step 3 is not atomic
  there: a crash during it can leave a partial ``<path>`` (Spark's ``_SUCCESS`` marker may still be
  missing from it, which readers that check for it detect).

Append mode to an existing ``<path>`` writes straight into it and relies on Spark's job commit (the
``FileOutputCommitter`` moves task files into place only when the job succeeds and removes its
``_temporary`` folder when it fails); a crash during that job commit can leave some of the new files in
place. An append to a missing ``<path>`` creates it like the other modes, atomically.

Without a driver JVM (Spark Connect) the same steps run on this process's local disk when the server
sees it at the output's path (the same machine or a shared mount; a probe file tells, once per folder).
Otherwise the write falls back to a plain Spark write with Spark's weaker guarantee (a failed overwrite
can lose the previous output); a warning says so.

The helpers assume one writer per path at a time: two concurrent writes to the same path may each clean up
the other's temporary directory (one of them then fails, and the output stays consistent), but
overlapping commits are not serialized.
"""

from __future__ import annotations

import contextlib
import enum
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from airflow_ppf.spark.fs import DataFileSystem, LocalFileSystem, filesystem_for, local_path_shared_with
from airflow_ppf.spark.jvm import hadoop_handles, has_driver_jvm

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "OLD_INFIX",
    "TMP_INFIX",
    "AtomicCommitError",
    "CommitAction",
    "CommitResult",
    "OutputExistsError",
    "RecoveryReport",
    "displaced",
    "qualify_path",
    "recover_output",
    "write_atomically",
]

log = logging.getLogger(__name__)

#: Infix of the temporary sibling a new output is written to before it is committed.
TMP_INFIX = ".ppf-tmp-"
#: Infix of the sibling the previous output is moved to while a new one is committed.
OLD_INFIX = ".ppf-old-"


class OutputExistsError(FileExistsError):
    """The output already exists and the save mode is ``error``."""


class AtomicCommitError(RuntimeError):
    """Moving a written output into place failed; the message says where the data is."""


class CommitAction(enum.StrEnum):
    """What a write did to its output path."""

    CREATED = "created"
    REPLACED = "replaced"
    APPENDED = "appended"
    SKIPPED = "skipped"
    WRITTEN = "written"  # plain Spark write (no JVM): Spark does not tell whether it replaced anything


@dataclass(frozen=True)
class CommitResult:
    """The outcome of :func:`write_atomically`: the qualified path, what happened, whether it was atomic."""

    path: str
    action: CommitAction
    atomic: bool


@dataclass(frozen=True)
class RecoveryReport:
    """What :func:`recover_output` did: the old output it restored (if any) and the leftovers it removed."""

    path: str
    restored_from: str | None = None
    removed: tuple[str, ...] = ()

    @property
    def changed(self) -> bool:
        """Whether anything was restored or removed."""
        return self.restored_from is not None or bool(self.removed)


def _filesystem(spark: SparkSession, path: str) -> tuple[DataFileSystem, str] | None:
    """Return the file system of ``path`` and the path fully qualified; ``None`` without a driver JVM.

    The path is qualified the way Spark qualifies it (``out`` -> ``file:/cwd/out``), so the temporary and
    old siblings land next to what Spark writes, and locations compare equal to the catalog's.
    """
    if not has_driver_jvm(spark):
        return _shared_local_path(spark, path)
    jvm, hadoop_conf = hadoop_handles(spark)
    hadoop_path = jvm.org.apache.hadoop.fs.Path(path)
    qualified = str(hadoop_path.getFileSystem(hadoop_conf).makeQualified(hadoop_path).toString())
    return filesystem_for(spark, qualified), qualified


def _shared_local_path(spark: SparkSession, path: str) -> tuple[DataFileSystem, str] | None:
    """Without a driver JVM (Spark Connect): the local file system, if the server sees this process's files
    at ``path`` (the same machine or a shared mount), else ``None``."""
    target = local_path_shared_with(spark, path, probe_infix=TMP_INFIX)
    return None if target is None else (LocalFileSystem(), str(target))


def qualify_path(spark: SparkSession, path: str) -> str:
    """Return ``path`` qualified as Spark would write it (unchanged when the session has no JVM)."""
    found = _filesystem(spark, path)
    return path if found is None else found[1]


def _siblings(fs: DataFileSystem, target: str, infix: str) -> list[str]:
    """Return the entries next to ``target`` named ``<name><infix>*``, sorted by name."""
    parent, _, name = target.rstrip("/").rpartition("/")
    if not parent:
        return []
    if parent.endswith(":") or (parent.count("/") == 2 and "//" in parent):
        parent += "/"  # the root of a file system: "file:" or "hdfs://namenode:8020"
    prefix = f"{name}{infix}"
    return sorted(entry for entry in fs.list_dir(parent) if entry.rstrip("/").rpartition("/")[2].startswith(prefix))


def _token() -> str:
    # Time first, so that sorting names sorts attempts chronologically.
    return f"{time.time_ns():020d}-{uuid.uuid4().hex[:12]}"


def recover_output(spark: SparkSession, path: str) -> RecoveryReport:
    """Repair ``path`` after a write that was killed while committing, and remove leftovers of such writes.

    * ``<path>`` missing but ``<path>.ppf-old-*`` present (killed between the two renames): the old
      output is renamed back (the newest one, should there be several).
    * ``<path>.ppf-old-*`` next to an existing ``<path>`` (killed before deleting the old output): deleted.
    * ``<path>.ppf-tmp-*`` (killed while writing or before committing): deleted. This assumes no other
      writer is busy with the same path right now.

    Without a JVM (Spark Connect) nothing can be checked and an empty report is returned.

    Raises:
        OSError: a rename or delete failed (the message names the path).
    """
    found = _filesystem(spark, path)
    if found is None:
        log.debug("No JVM behind this SparkSession: cannot check %s for interrupted writes", path)
        return RecoveryReport(path)
    return _recover(*found)


def _recover(fs: DataFileSystem, target: str) -> RecoveryReport:
    olds = _siblings(fs, target, OLD_INFIX)
    restored: str | None = None
    if olds and not fs.exists(target):
        restored = olds.pop()
        log.warning(
            "%s is missing but %s holds its previous output (a write was interrupted while committing): restoring it",
            target,
            restored,
        )
        fs.rename(restored, target)
    removed = []
    for leftover in olds + _siblings(fs, target, TMP_INFIX):
        log.warning("Removing %s, left behind by an interrupted write to %s", leftover, target)
        fs.delete(leftover)
        removed.append(leftover)
    return RecoveryReport(target, restored, tuple(removed))


def write_atomically(
    spark: SparkSession,
    path: str,
    mode: str,
    write: Callable[[str, str], None],
) -> CommitResult:
    """Write a directory output with ``write(location, spark_mode)`` and commit it atomically (see the module).

    Args:
        spark: the session (its JVM reaches the Hadoop file system).
        path: the output directory.
        mode: ``overwrite``, ``append``, ``error`` (``errorifexists``) or ``ignore``.
        write: performs the Spark write of the complete output to ``location`` with the Spark save mode
            ``spark_mode``.

    Raises:
        OutputExistsError: mode ``error`` and ``path`` exists.
        AtomicCommitError: the new output was written but could not be moved into place.
        Exception: whatever ``write`` raised (the temporary directory is removed first).
    """
    if mode == "errorifexists":
        mode = "error"
    found = _filesystem(spark, path)
    if found is None:
        log.warning(
            "No JVM behind this SparkSession (Spark Connect?): writing %s with a plain Spark write (mode %s); "
            "a failed overwrite may lose the previous output",
            path,
            mode,
        )
        write(path, mode)
        return CommitResult(path, CommitAction.WRITTEN, atomic=False)

    fs, target = found
    _recover(fs, target)
    exists = fs.exists(target)
    if mode == "append" and exists:
        write(target, "append")
        return CommitResult(target, CommitAction.APPENDED, atomic=False)
    if exists and mode == "error":
        raise OutputExistsError(f"{target} already exists (mode 'error'); use mode 'overwrite' to replace it")
    if exists and mode == "ignore":
        log.info("%s already exists (mode 'ignore'): not written", target)
        return CommitResult(target, CommitAction.SKIPPED, atomic=True)

    token = _token()
    temporary = f"{target}{TMP_INFIX}{token}"
    try:
        write(temporary, "error")
    except BaseException:
        _delete_quietly(fs, temporary)
        raise
    if exists:
        _swap(fs, target, temporary, f"{target}{OLD_INFIX}{token}")
        return CommitResult(target, CommitAction.REPLACED, atomic=True)
    try:
        fs.rename(temporary, target)
    except BaseException as exc:
        _delete_quietly(fs, temporary)
        raise AtomicCommitError(f"could not move the new output of {target} into place: {exc}") from exc
    return CommitResult(target, CommitAction.CREATED, atomic=True)


def _swap(fs: DataFileSystem, target: str, temporary: str, old: str) -> None:
    try:
        fs.rename(target, old)
    except BaseException as exc:
        _delete_quietly(fs, temporary)
        raise AtomicCommitError(
            f"could not move the previous output of {target} aside ({exc}); it is unchanged"
        ) from exc
    try:
        fs.rename(temporary, target)
    except BaseException as exc:
        try:
            fs.rename(old, target)
        except BaseException as undo:
            raise AtomicCommitError(
                f"could not move the new output into {target} ({exc}) nor the previous output back ({undo}); "
                f"the previous output is in {old} and the next write restores it (or call recover_output)"
            ) from exc
        _delete_quietly(fs, temporary)
        raise AtomicCommitError(
            f"could not move the new output into {target} ({exc}); the previous output is back in place"
        ) from exc
    try:
        fs.delete(old)
    except Exception as exc:  # the new output is committed; the next write removes the leftover
        log.warning("Committed %s but could not delete its previous output %s: %s", target, old, exc)


@contextlib.contextmanager
def displaced(spark: SparkSession, path: str) -> Iterator[str | None]:
    """Move ``path`` aside while the body writes a new output in its place; put it back if the body fails.

    Yields where the old output was moved (``None`` when ``path`` did not exist or there is no JVM). On
    success the old output is deleted; on failure whatever the body wrote at ``path`` is deleted and the
    old output renamed back. Unlike :func:`write_atomically` the new output is written in place, so a
    process killed during the body leaves a partial ``path`` with the old output beside it.
    """
    found = _filesystem(spark, path)
    if found is None or not found[0].exists(found[1]):
        yield None
        return
    fs, target = found
    old = f"{target}{OLD_INFIX}{_token()}"
    fs.rename(target, old)
    try:
        yield old
    except BaseException:
        try:
            fs.delete(target)
            fs.rename(old, target)
        except Exception as undo:
            log.error("Could not put the previous output of %s back from %s: %s", target, old, undo)
        raise
    try:
        fs.delete(old)
    except Exception as exc:
        log.warning("Could not delete the previous output %s of %s: %s", old, target, exc)


def _delete_quietly(fs: DataFileSystem, path: str) -> None:
    try:
        fs.delete(path)
    except Exception as exc:  # cleaning up must not hide the error that got us here
        log.warning("Could not remove the temporary output %s: %s (the next write to it removes it)", path, exc)
