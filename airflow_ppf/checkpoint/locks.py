"""File locks of :class:`~airflow_ppf.checkpoint.stores.LocalCheckpointStore`: bounded waits, leases, takeover.

Two locks per run, both ``flock`` locks on files next to the checkpoint:

* ``<run>.lock`` (:func:`exclusive`): held by a writer for the few milliseconds of one ``save`` (and by
  ``delete`` / ``quarantine``). A waiter gives up after a timeout instead of waiting for ever
  (:class:`~airflow_ppf.checkpoint.errors.CheckpointBusyError`). The holder writes who it is into the file
  (pid, host, a token, and its *lease*: half its timeout) and blanks it on release. A **newer attempt**
  of the run whose wait for one holder outlasted both its own timeout and twice that holder's lease
  (so the holder's lease has surely expired) **takes the lock over**: it replaces the lock file by a new
  one it holds. The frozen holder, when it wakes up, finds its lease expired and refuses to write
  (:meth:`HeldLock.check_lease`, called before every irreversible step); a holder that does not declare
  a lease (frozen before it wrote its name, or an older airflow-ppf) is never taken over.
* ``<run>.active`` (:func:`shared`): held shared by every attempt of the run while it runs, so a tool
  (``ppf checkpoints clear``) can tell that the run is running (:func:`exclusive_now`) and refuse.

Every acquisition checks that the file it locked is still the one at the path (a takeover or a
deletion replaces it) and starts again otherwise.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import socket
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from airflow_ppf.checkpoint.errors import CheckpointBusyError, CheckpointLockLostError

__all__ = ["HeldLock", "exclusive", "exclusive_now", "is_temp_file_of", "open_file", "shared", "temp_file_in"]

#: Bytes of a lock file that hold its holder's description (fixed, so it is rewritten in place).
_HOLDER_SIZE = 256
_LEASE = re.compile(r"\blease=([0-9.]+)\b")
_POLL_MAX = 0.05


def open_file(path: Path, flags: int) -> int:
    """Open ``path``, creating it as ``0o640`` (group-readable) whatever the process umask."""
    while True:
        try:
            fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o640)
        except FileExistsError:
            try:
                return os.open(path, flags)
            except FileNotFoundError:
                continue  # removed in between: create it after all
        os.fchmod(fd, 0o640)
        return fd


def temp_file_in(folder: Path, stem: str) -> tuple[int, Path]:
    """Create and open a temp file of the run whose files are named ``stem`` in ``folder``: named
    ``.<stem>.<random>.tmp``, so that :func:`is_temp_file_of` tells it from the run's other files."""
    fd, name = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".tmp")
    return fd, Path(name)


def is_temp_file_of(name: str, stem: str) -> bool:
    """Whether the file name ``name`` is that of a temp file made by :func:`temp_file_in` for ``stem``."""
    prefix = f".{stem}."
    return name.startswith(prefix) and name.endswith(".tmp") and "." not in name[len(prefix) : -len(".tmp")]


@dataclass
class HeldLock:
    """A lock this process holds, with its lease: how long it may act on it before a newer attempt may
    have taken it over."""

    path: Path
    fd: int
    lease: float
    acquired: float
    taken_over: bool = False

    def check_lease(self, action: str) -> None:
        """Refuse ``action`` (raise) when the lock was held past its lease: it may belong to another writer.

        Raises:
            CheckpointLockLostError: the lease expired (this process was frozen or stalled).
        """
        held = time.monotonic() - self.acquired
        if held > self.lease:
            raise CheckpointLockLostError(self.path, held, self.lease, action)


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``fd`` is still the file at ``path`` (not replaced by a takeover, nor deleted)."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _write_holder(fd: int, lease: float) -> None:
    text = f"pid={os.getpid()} host={socket.gethostname()} lease={lease:g} token={uuid.uuid4().hex[:12]}"
    os.pwrite(fd, text.encode("utf-8")[:_HOLDER_SIZE].ljust(_HOLDER_SIZE), 0)


def _blank_holder(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.pwrite(fd, b" " * _HOLDER_SIZE, 0)


def _read_holder(fd: int) -> str:
    try:
        return os.pread(fd, _HOLDER_SIZE, 0).decode("utf-8", "replace").strip(" \0\n")
    except OSError:
        return ""


def _declared_lease(holder: str) -> float | None:
    match = _LEASE.search(holder)
    return float(match.group(1)) if match else None


def _acquire(path: Path, timeout: float, may_take_over: Callable[[], bool] | None, what: str) -> tuple[int, bool]:
    """Lock ``path`` exclusively; return the locked descriptor and whether it was taken over."""
    holder, since, delay = None, time.monotonic(), 0.001
    newer: bool | None = None  # may this process take over from the current holder (asked once per holder)
    while True:
        fd = open_file(path, os.O_RDWR)
        locked = False
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                locked = _same_file(fd, path)  # else: replaced or deleted while we waited, lock the new one
            except BlockingIOError:
                now = time.monotonic()
                seen = _read_holder(fd)
                if seen != holder:  # another holder (or the same one again): its time starts now
                    holder, since, newer = seen, now, None
                waited = now - since
                if waited >= timeout:
                    lease = _declared_lease(seen)
                    if newer is None:
                        newer = lease is not None and may_take_over is not None and may_take_over()
                    if not newer or lease is None:
                        raise CheckpointBusyError(_busy_message(path, seen, timeout, what)) from None
                    if waited >= 2 * lease:
                        taken = _take_over(path, fd)
                        if taken is not None:
                            return taken, True
                        # Another taker is at it (or the file was just replaced: its holder shows next time).
                        if waited >= 2 * max(timeout, 2 * lease):
                            busy = _busy_message(path, seen, timeout, what) + "; taking it over failed"
                            raise CheckpointBusyError(busy) from None
                time.sleep(delay)
                delay = min(delay * 2, _POLL_MAX)
            if locked:
                return fd, False
        finally:
            if not locked:
                os.close(fd)


def _busy_message(path: Path, holder: str, timeout: float, what: str) -> str:
    who = f"another process ({holder})" if holder else "another process that did not say who it is"
    return (
        f"checkpoint lock {path} is held by {who} for more than {timeout:g} s; {what} gives up waiting. "
        "Only a newer attempt of the run takes over a lock, and only from a holder whose lease expired"
    )


def _take_over(path: Path, stale_fd: int) -> int | None:
    """Replace the lock file held by a frozen holder by a new one this process holds; ``None`` when
    another process took it over first (or the lock file changed meanwhile)."""
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        try:
            fcntl.flock(folder, fcntl.LOCK_EX | fcntl.LOCK_NB)  # one taker at a time
        except OSError:  # another taker holds it, or this file system cannot lock folders
            return None
        if not _same_file(stale_fd, path):
            return None
        # Named like a snapshot temp file of the run: a taker that dies here leaves nothing behind for long.
        fd, tmp = temp_file_in(path.parent, path.stem)
        try:
            os.fchmod(fd, 0o640)
            fcntl.flock(fd, fcntl.LOCK_EX)
            os.replace(tmp, path)
        except BaseException:
            os.close(fd)
            tmp.unlink(missing_ok=True)
            raise
        return fd
    finally:
        os.close(folder)


@contextlib.contextmanager
def exclusive(
    path: Path, *, timeout: float, may_take_over: Callable[[], bool] | None = None, what: str = "this write"
) -> Iterator[HeldLock]:
    """Hold ``path`` exclusively, waiting at most ``timeout`` seconds for another holder.

    Args:
        path: the lock file (created when missing).
        timeout: how long to wait for one holder; the lease of this holder is half of it.
        may_take_over: asked once the wait outlasted the timeout and the holder's lease: whether this
            process is a newer attempt that may take the lock over from a frozen holder.
        what: what waits, for the error message.

    Raises:
        CheckpointBusyError: the lock stayed held past the timeout and may not be taken over.
    """
    fd, taken_over = _acquire(path, timeout, may_take_over, what)
    lease = timeout / 2
    try:
        _write_holder(fd, lease)
        yield HeldLock(path, fd, lease, time.monotonic(), taken_over)
    finally:
        _blank_holder(fd)
        os.close(fd)


def _lock_now(path: Path, mode: int) -> int | None:
    """Lock ``path`` (``LOCK_SH`` or ``LOCK_EX``) if nobody stops it right now; the descriptor, else None."""
    while True:
        fd = open_file(path, os.O_RDWR)
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        except BaseException:
            os.close(fd)
            raise
        if _same_file(fd, path):
            return fd
        os.close(fd)


@contextlib.contextmanager
def shared(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold ``path`` shared (a run is running) while the block runs; wait at most ``timeout`` for a tool
    that holds it exclusively (a clear in progress).

    Raises:
        CheckpointBusyError: still held exclusively after ``timeout`` seconds.
    """
    deadline, delay = time.monotonic() + timeout, 0.001
    while (fd := _lock_now(path, fcntl.LOCK_SH)) is None:
        if time.monotonic() >= deadline:
            raise CheckpointBusyError(
                f"{what}: {path} is held by another process (a clear?) for more than {timeout:g} s"
            )
        time.sleep(delay)
        delay = min(delay * 2, _POLL_MAX)
    try:
        yield
    finally:
        os.close(fd)


@contextlib.contextmanager
def exclusive_now(path: Path, busy: str) -> Iterator[None]:
    """Hold ``path`` exclusively while the block runs, or raise at once if anyone holds it.

    Raises:
        CheckpointBusyError: ``busy`` (someone holds it: the run is running).
    """
    fd = _lock_now(path, fcntl.LOCK_EX)
    if fd is None:
        raise CheckpointBusyError(busy)
    try:
        yield
    finally:
        os.close(fd)
