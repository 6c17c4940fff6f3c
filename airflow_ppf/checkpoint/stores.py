"""Where checkpoints live: the :class:`CheckpointStore` protocol, a durable local store, an in-memory store.

:class:`LocalCheckpointStore` keeps, per run, a JSON snapshot plus an append-only journal of changes:

* ``<base_dir>/<pipeline>/<run>.json`` – the snapshot, replaced atomically (temp file, fsync, rename,
  fsync of the directory);
* ``<base_dir>/<pipeline>/<run>.journal`` – one line per change since the snapshot, each with a CRC,
  fsynced before ``save`` returns; folded into a new snapshot every ``compact_every`` changes.

So each component's completion costs one small append, not a rewrite of the whole record, and a process
killed at any instant leaves a checkpoint that loads: a torn last journal line is a write that never
returned and is ignored; anything else that does not parse raises :class:`CheckpointCorruptError`
naming the file. File names are derived from the run id and pipeline name (any characters) and can never
leave ``base_dir``.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import threading
import time
import weakref
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Protocol, runtime_checkable

from airflow_ppf.checkpoint.errors import (
    CheckpointChangedError,
    CheckpointCorruptError,
    CheckpointError,
    CheckpointLocationError,
    CheckpointVersionError,
)
from airflow_ppf.checkpoint.locks import (
    HeldLock,
    exclusive,
    exclusive_now,
    is_temp_file_of,
    open_file,
    shared,
    temp_file_in,
)
from airflow_ppf.checkpoint.naming import safe_file_name
from airflow_ppf.checkpoint.state import CheckpointState, Fence, check_fence
from airflow_ppf.config.limits import nesting_problem, too_deep
from airflow_ppf.spark.fs import fsync_dir

log = logging.getLogger(__name__)

__all__ = [
    "CheckpointInfo",
    "CheckpointStore",
    "InMemoryCheckpointStore",
    "LocalCheckpointStore",
]


@dataclass(frozen=True)
class CheckpointInfo:
    """A line of :meth:`CheckpointStore.list_runs`."""

    run_id: str
    pipeline_name: str
    status: str
    attempt: int
    completed: int
    updated_at: str
    location: str = ""
    #: Why the checkpoint cannot be read (``status`` is then ``corrupt``); empty for a readable one.
    problem: str = ""


@runtime_checkable
class CheckpointStore(Protocol):
    """Persistence of checkpoints. ``save`` must be durable when it returns and must refuse (raise
    :class:`~airflow_ppf.checkpoint.errors.CheckpointFencedError`) a write from an older attempt
    than the stored one (see :func:`~airflow_ppf.checkpoint.state.check_fence`)."""

    def save(self, state: CheckpointState) -> None:
        """Persist ``state`` (insert or replace)."""
        ...

    def load(self, run_id: str, pipeline_name: str | None = None) -> CheckpointState | None:
        """Return the checkpoint of ``run_id`` (of ``pipeline_name`` when given), or ``None``."""
        ...

    def delete(self, run_id: str, pipeline_name: str | None = None) -> bool:
        """Remove a checkpoint; return whether one existed."""
        ...

    def exists(self, run_id: str, pipeline_name: str | None = None) -> bool:
        """Whether a checkpoint exists."""
        ...

    def list_runs(self, pipeline_name: str | None = None) -> list[CheckpointInfo]:
        """Describe every stored checkpoint (of one pipeline when given)."""
        ...


def info_of(state: CheckpointState, location: str = "") -> CheckpointInfo:
    """Summarise a state for :meth:`CheckpointStore.list_runs`."""
    return CheckpointInfo(
        run_id=state.run_id,
        pipeline_name=state.pipeline_name,
        status=state.status,
        attempt=state.attempt,
        completed=len(state.completed_components),
        updated_at=state.updated_at,
        location=location,
    )


_encode_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _dump(state: CheckpointState, journal_seq: int) -> bytes:
    doc = state.document(detached=False)  # serialised at once: no copies needed
    doc["journal_seq"] = journal_seq
    return _encode_json(doc).encode("utf-8")


def _journal_line(seq: int, op: dict[str, Any]) -> bytes:
    body = _encode_json({"seq": seq, "op": op}).encode("utf-8")
    return b"%08x %s\n" % (zlib.crc32(body), body)


def compaction_limit(state: CheckpointState, compact_every: int) -> int:
    """How many changes a journal may hold before it is folded into a new snapshot of ``state``.

    At least ``compact_every``; for large checkpoints as many as they have components, so that rewriting
    the snapshot costs about what the changes since the last one did: each change pays a constant share
    however large the checkpoint grows (a run's bookkeeping stays linear in its number of components),
    and a load replays at most about as many changes as the snapshot holds components.
    """
    return max(compact_every, len(state.components))


def _make_dirs(folder: Path) -> None:
    """Create ``folder`` and its missing parents as ``0o750`` whatever the process umask."""
    missing: list[Path] = []
    while not folder.exists():
        missing.append(folder)
        folder = folder.parent
    for path in reversed(missing):
        try:
            path.mkdir(mode=0o750)
        except FileExistsError:
            continue
        os.chmod(path, 0o750)  # mkdir's mode is filtered by the umask


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data``: ``os.write`` may write less than asked and a torn line must stay the last one."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def _run_files(folder: Path, stem: str) -> tuple[Path, Path, Path]:
    """The snapshot, journal and lock file of the run whose files are named ``stem`` in ``folder``."""
    return folder / f"{stem}.json", folder / f"{stem}.journal", folder / f"{stem}.lock"


def _active_file(snapshot: Path) -> Path:
    """The file every running attempt of the run holds a shared lock on."""
    return snapshot.with_suffix(".active")


def _holds(state: CheckpointState) -> str:
    """What a stored checkpoint holds, in a few words (for errors)."""
    return f"attempt {state.attempt} ({state.status}), {len(state.completed_components)} components done"


def _version(seq: int, state: CheckpointState) -> str:
    """What identifies one stored version of a checkpoint (its journal position and latest writer)."""
    return f"{seq}:{state.writer}"


#: A file name stem made by :func:`safe_file_name`.
_FILE_STEM = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*-[0-9a-f]{10}")


def remove_stale_temp_files(snapshot: Path) -> list[Path]:
    """Remove the temp files of snapshot writes of this run that never completed; return them.

    Only a writer holding the run's lock writes them, and the caller holds it: each one found was left by
    a writer that died (or lost the lock to a takeover) between creating it and renaming it.
    """
    removed: list[Path] = []
    try:
        entries = list(os.scandir(snapshot.parent))
    except FileNotFoundError:
        return removed
    for entry in entries:
        if is_temp_file_of(entry.name, snapshot.stem):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    if removed:
        log.warning(
            "Removed %d unfinished checkpoint write%s (the writer stopped before renaming it): %s",
            len(removed),
            "" if len(removed) == 1 else "s",
            ", ".join(map(str, removed)),
        )
    return removed


def _recovered_name(raw: bytes, key: str, stem: str, doc: Any) -> str | None:
    """Read back the ``key`` field of a damaged snapshot: from its document when it parsed, else from the
    text, else from the file name slug; only a value whose safe file name is ``stem`` is believed."""
    candidates: list[Any] = [doc.get(key) if isinstance(doc, dict) else None]
    for match in re.finditer(rb'"' + key.encode() + rb'"\s*:\s*("(?:[^"\\]|\\.)*")', raw[:65536]):
        with contextlib.suppress(ValueError, UnicodeDecodeError):
            candidates.append(json.loads(match.group(1).decode("utf-8")))
    candidates.append(stem.rsplit("-", 1)[0])
    for candidate in candidates:
        if isinstance(candidate, str) and candidate and safe_file_name(candidate) == stem:
            return candidate
    return None


def _damaged_info(snapshot: Path, error: CheckpointError) -> CheckpointInfo:
    """The :meth:`LocalCheckpointStore.list_runs` line of a checkpoint that does not load."""
    try:
        raw = snapshot.read_bytes()
    except OSError:
        raw = b""
    doc: Any = None
    with contextlib.suppress(ValueError, RecursionError):
        doc = json.loads(raw)
    with contextlib.suppress(OSError):
        raw += b"\n" + _active_file(snapshot).read_bytes()[:4096]  # the run's name tag (see running())
    run_id = _recovered_name(raw, "run_id", snapshot.stem, doc) or snapshot.stem
    pipeline = _recovered_name(raw, "pipeline_name", snapshot.parent.name, doc) or snapshot.parent.name
    problem = getattr(error, "problem", None) or str(error)
    return CheckpointInfo(run_id, pipeline, "corrupt", 0, 0, "", str(snapshot), problem=problem)


def _unusable_because(base_dir: Path, error: OSError, doing: str = "write") -> str:
    """Say why ``base_dir`` cannot hold checkpoints, from the error that showed it (while ``doing``)."""
    for path in (base_dir, *base_dir.parents):
        if path.is_symlink() and not path.exists():
            where = "it is" if path == base_dir else f"{path} is"
            return f"{where} a symbolic link to {os.readlink(path)}, which does not exist"
        if path.exists():
            if not path.is_dir():
                return "it is a file, not a folder" if path == base_dir else f"{path} is a file, not a folder"
            break
    name = error.filename if error.filename is not None else base_dir
    if error.errno == errno.EROFS:
        return "it is on a read-only file system"
    if error.errno == errno.EISDIR:
        return f"{name} is a folder where airflow-ppf keeps a file"
    return f"cannot {doing} {name}: {error.strerror or error}"


@dataclass
class _Tracked:
    """What this store instance last wrote for one run (to append safely without re-reading)."""

    # A weak reference, not id(): a new state object may get the id of a freed one and must not
    # append to a journal it has never read (that would bypass fencing).
    state: weakref.ref[CheckpointState]
    seq: int
    since_snapshot: int
    snapshot: tuple[int, int, int] | None
    journal: tuple[int, int, int] | None
    #: Changes the journal may hold before the next snapshot (:func:`compaction_limit`).
    limit: int
    #: The journal, open for appending (``None`` until the first append): valid while the journal's path
    #: still names the file it was opened on, which ``journal`` (its stat) proves before every append.
    fd: int | None = None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class LocalCheckpointStore:
    """Durable checkpoints as files under ``base_dir`` (group-readable).

    Args:
        base_dir: the folder; created on first save.
        compact_every: fold the journal into a new snapshot after this many appended changes (or, for a
            checkpoint of more components than that, as many changes as it has components: see
            :func:`compaction_limit`).
        lock_timeout: how long a write waits for another process that holds the run's lock (held only
            while it writes, milliseconds) before it gives up (``CheckpointBusyError``) or, when it
            belongs to a newer attempt of the run and the holder's lease expired, takes the lock over
            from that frozen holder (see :mod:`airflow_ppf.checkpoint.locks`). A write of this store
            refuses to complete once it held the lock for more than half of it (its lease).
    """

    def __init__(self, base_dir: str | Path, *, compact_every: int = 256, lock_timeout: float = 60.0) -> None:
        self.base_dir = Path(base_dir)
        self.compact_every = max(1, compact_every)
        if lock_timeout <= 0:
            raise ValueError(f"lock_timeout must be positive, got {lock_timeout!r}")
        self.lock_timeout = float(lock_timeout)
        self._tracked: dict[tuple[str, str], _Tracked] = {}
        #: Runs whose lock this store took over from a frozen holder: written by snapshots only from then
        #: on (a holder frozen between its last lease check and removing a journal cannot remove ours).
        self._taken_over: set[tuple[str, str]] = set()
        self._lease: HeldLock | None = None
        self._paths: dict[tuple[str, str], tuple[Path, Path, Path]] = {}
        self._thread_lock = threading.Lock()

    def __del__(self) -> None:
        for tracked in getattr(self, "_tracked", {}).values():
            tracked.close()

    def _untrack(self, key: tuple[str, str]) -> None:
        tracked = self._tracked.pop(key, None)
        if tracked is not None:
            tracked.close()

    def __repr__(self) -> str:
        return f"LocalCheckpointStore({str(self.base_dir)!r})"

    def default_data_location(self) -> str:
        """Where saved views go unless told otherwise: ``<base_dir>/_data``."""
        return str((self.base_dir / "_data").absolute())

    # -- paths ------------------------------------------------------------------------------------------

    def _pipeline_dir(self, pipeline_name: str) -> Path:
        return self.base_dir / safe_file_name(pipeline_name)

    def paths(self, run_id: str, pipeline_name: str) -> tuple[Path, Path, Path]:
        """Return the snapshot, journal and lock file of a run."""
        key = (pipeline_name, run_id)
        files = self._paths.get(key)
        if files is None:  # derived once per run: every save needs them
            files = self._paths[key] = _run_files(self._pipeline_dir(pipeline_name), safe_file_name(run_id))
        return files

    def snapshot_path(self, run_id: str, pipeline_name: str | None = None) -> Path | None:
        """Return the snapshot file of a run, or ``None`` when there is none."""
        name = pipeline_name or self._find_pipeline(run_id)
        if name is None:
            return None
        snapshot = self.paths(run_id, name)[0]
        return snapshot if snapshot.exists() else None

    @contextlib.contextmanager
    def _locked(
        self, lock_path: Path, *, may_take_over: Callable[[], bool] | None = None, what: str = "this write"
    ) -> Iterator[HeldLock]:
        _make_dirs(lock_path.parent)
        with (
            self._thread_lock,
            exclusive(lock_path, timeout=self.lock_timeout, may_take_over=may_take_over, what=what) as held,
        ):
            self._lease = held
            try:
                yield held
            finally:
                self._lease = None

    def _check_lease(self, action: str) -> None:
        if self._lease is not None:
            self._lease.check_lease(action)

    # -- save -------------------------------------------------------------------------------------------

    def save(self, state: CheckpointState) -> None:
        """Persist ``state`` durably.

        Raises:
            CheckpointFencedError: the stored checkpoint belongs to a newer attempt or another writer.
            CheckpointCorruptError: the stored checkpoint is damaged (it is never silently replaced).
            OSError: the disk refused the write.
        """
        snapshot, journal, lock = self.paths(state.run_id, state.pipeline_name)
        key = (state.pipeline_name, state.run_id)
        with self._locked(lock, may_take_over=lambda: self._is_newer(state, snapshot, journal)) as held:
            if held.taken_over:
                log.warning("Took over the checkpoint lock %s of run %r from a frozen writer", lock, state.run_id)
                self._taken_over.add(key)
            tracked = self._tracked.get(key)
            # Nobody else wrote since our last write of this very state object: the files hold exactly
            # what we wrote, so no re-read (and no fencing check) is needed.
            current = (
                not held.taken_over
                and tracked is not None
                and tracked.state() is state
                and _stat_key(snapshot) == tracked.snapshot
                and _stat_key(journal) == tracked.journal
            )
            room = (
                tracked is not None
                and key not in self._taken_over
                and tracked.since_snapshot + len(state.pending_ops) <= tracked.limit
            )
            if current and state.pending_ops and room:
                assert tracked is not None
                try:
                    self._append(journal, tracked, state)
                except BaseException:
                    # What reached the disk is unknown: the next save re-reads the files.
                    self._untrack(key)
                    raise
            else:
                self._untrack(key)
                if not current:
                    remove_stale_temp_files(snapshot)
                # The temp file exists before the stored checkpoint is read and checked: a writer frozen
                # from here on loses it to the cleanup of whoever takes the lock over, so its rename fails.
                fd, tmp = temp_file_in(snapshot.parent, snapshot.stem)
                with os.fdopen(fd, "wb") as fh:
                    try:
                        if current:
                            assert tracked is not None
                            stored_seq = tracked.seq  # compaction: fold our own journal into a new snapshot
                        else:
                            stored_seq = self._check_before_replacing(state, snapshot, journal)
                        self._write_snapshot(snapshot, journal, state, stored_seq + 1, fh, tmp)
                    except BaseException:
                        tmp.unlink(missing_ok=True)
                        raise
                self._tracked[key] = _Tracked(
                    weakref.ref(state),
                    stored_seq + 1,
                    0,
                    _stat_key(snapshot),
                    _stat_key(journal),
                    compaction_limit(state, self.compact_every),
                )
            state.pending_ops.clear()
            state.base_version = None

    def _check_before_replacing(self, state: CheckpointState, snapshot: Path, journal: Path) -> int:
        """Read the stored checkpoint and refuse to replace it when ``state`` may not (fencing), or when it
        changed since ``state`` was loaded from it; return its journal sequence number.

        Raises:
            CheckpointFencedError: it belongs to a newer attempt or another writer.
            CheckpointChangedError: it changed since ``state`` was loaded (``state.base_version``).
            CheckpointCorruptError: it is damaged.
        """
        if not snapshot.exists():
            if state.base_version is not None:
                raise CheckpointChangedError(state.run_id, str(snapshot), "nothing: it was deleted")
            return 0
        stored, stored_seq = self._read(snapshot, journal)
        check_fence(stored, state)
        if state.base_version is not None and state.base_version != _version(stored_seq, stored):
            raise CheckpointChangedError(state.run_id, str(snapshot), _holds(stored))
        return stored_seq

    def _is_newer(self, state: CheckpointState, snapshot: Path, journal: Path) -> bool:
        """Whether ``state`` is of a newer attempt than the stored checkpoint (it may take its lock over)."""
        try:
            stored = self._read(snapshot, journal)[0] if snapshot.exists() else None
        except CheckpointError:
            return False
        return stored is None or not stored.attempts or state.attempt > stored.attempt

    def _append(self, journal: Path, tracked: _Tracked, state: CheckpointState) -> None:
        lines = [_journal_line(tracked.seq + i, op) for i, op in enumerate(state.pending_ops, start=1)]
        created = tracked.journal is None
        if tracked.fd is None:
            tracked.fd = open_file(journal, os.O_WRONLY | os.O_APPEND)
        self._check_lease("append to the journal")
        _write_all(tracked.fd, b"".join(lines))
        os.fsync(tracked.fd)
        # A line written after a takeover carries a number the new holder already used: readers skip it.
        self._check_lease("confirm the journal append")
        if created:
            fsync_dir(journal.parent)
        tracked.seq += len(lines)
        tracked.since_snapshot += len(lines)
        tracked.journal = _stat_key(journal)

    def _write_snapshot(
        self, snapshot: Path, journal: Path, state: CheckpointState, seq: int, fh: BinaryIO, tmp: Path
    ) -> None:
        """Write ``state`` to the temp file ``fh`` (at ``tmp``) and rename it over ``snapshot``."""
        fh.write(_dump(state, seq))
        fh.flush()
        os.fsync(fh.fileno())
        os.fchmod(fh.fileno(), 0o640)
        self._check_lease("replace the checkpoint")
        os.replace(tmp, snapshot)
        # The journal's changes are now in the snapshot (journal_seq tells a reader to skip them even if
        # we die before the unlink below). Past the lease the journal may be a newer holder's: keep it.
        self._check_lease("remove the journal folded into the new snapshot")
        journal.unlink(missing_ok=True)
        fsync_dir(snapshot.parent)

    # -- load -------------------------------------------------------------------------------------------

    def _read(self, snapshot: Path, journal: Path) -> tuple[CheckpointState, int]:
        # Readers take no lock. A writer may compact (new snapshot, journal removed, new journal) between
        # our reads of the snapshot and of the journal: the journal then seems to skip changes, or is gone
        # and we would return an older state than a previous load did. The snapshot is replaced first, so
        # a snapshot unchanged across both reads means the two match; otherwise read again.
        for _ in range(10):
            before = _stat_key(snapshot)
            try:
                result = self._read_once(snapshot, journal)
            except CheckpointCorruptError:
                if _stat_key(snapshot) == before:
                    raise
                continue
            if _stat_key(snapshot) == before:
                return result
        return self._read_once(snapshot, journal)

    def _read_once(self, snapshot: Path, journal: Path) -> tuple[CheckpointState, int]:
        try:
            raw = snapshot.read_bytes()
        except OSError as exc:
            raise CheckpointCorruptError(snapshot, f"cannot read it ({exc})") from exc
        try:
            doc = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError:
            raise CheckpointCorruptError(snapshot, "not UTF-8 text") from None
        except json.JSONDecodeError as exc:
            what = "truncated" if exc.pos >= len(raw.rstrip()) else "not valid JSON"
            raise CheckpointCorruptError(snapshot, f"{what} (line {exc.lineno}, column {exc.colno})") from None
        except RecursionError:
            raise CheckpointCorruptError(snapshot, too_deep()) from None
        too_nested = nesting_problem(doc)
        if too_nested is not None:
            raise CheckpointCorruptError(snapshot, too_nested)
        seq = doc.pop("journal_seq", 0) if isinstance(doc, dict) else 0
        try:
            state = CheckpointState.from_dict(doc)
        except ValueError as exc:
            raise CheckpointCorruptError(snapshot, str(exc)) from None
        except CheckpointVersionError as exc:
            raise exc.at(snapshot) from None
        if not isinstance(seq, int):
            raise CheckpointCorruptError(snapshot, f"journal_seq must be an integer, got {seq!r}")
        for entry_seq, op in self._journal_entries(journal):
            if entry_seq <= seq:
                continue  # already folded into the snapshot
            if entry_seq != seq + 1:
                raise CheckpointCorruptError(journal, f"journal skips from change {seq} to {entry_seq}")
            try:
                state.apply(op)
            except CheckpointVersionError as exc:
                raise exc.at(journal) from None
            except CheckpointError:
                raise
            except Exception as exc:
                raise CheckpointCorruptError(journal, f"change {entry_seq} cannot be applied ({exc})") from None
            seq = entry_seq
        state.pending_ops.clear()
        return state, seq

    def _journal_entries(self, journal: Path) -> Iterator[tuple[int, dict[str, Any]]]:
        try:
            raw = journal.read_bytes()
        except FileNotFoundError:
            return
        lines = raw.split(b"\n")
        # ``raw`` ends with a newline when the last append completed; otherwise the last piece is torn.
        complete, tail = lines[:-1], lines[-1]
        del tail  # a torn last write never returned from save(): it is not part of the checkpoint
        for number, line in enumerate(complete, start=1):
            parsed = self._parse_line(line)
            if parsed is None:
                if number == len(complete):
                    return  # torn (but newline-terminated) last write: same as above
                raise CheckpointCorruptError(journal, f"line {number} is damaged")
            yield parsed

    @staticmethod
    def _parse_line(line: bytes) -> tuple[int, dict[str, Any]] | None:
        crc, _, body = line.partition(b" ")
        try:
            if int(crc, 16) != zlib.crc32(body):
                return None
            entry = json.loads(body.decode("utf-8"))
            if nesting_problem(entry) is not None:
                return None
            return int(entry["seq"]), dict(entry["op"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, RecursionError):
            return None

    def load(self, run_id: str, pipeline_name: str | None = None) -> CheckpointState | None:
        """Return the checkpoint of ``run_id``, or ``None`` when there is none.

        With ``pipeline_name`` omitted, the run id alone is looked up across pipelines.

        Raises:
            CheckpointCorruptError: the stored files are damaged (naming the file).
            CheckpointError: the run id exists for several pipelines and ``pipeline_name`` was omitted.
        """
        name = pipeline_name or self._find_pipeline(run_id)
        if name is None:
            return None
        snapshot, journal, _ = self.paths(run_id, name)
        if not snapshot.exists():
            return None
        state, seq = self._read(snapshot, journal)
        if state.run_id != run_id or state.pipeline_name != name:
            raise CheckpointCorruptError(
                snapshot,
                f"it holds run {state.run_id!r} of {state.pipeline_name!r}, not {run_id!r} of {name!r}",
            )
        state.base_version = _version(seq, state)
        return state

    def _find_pipeline(self, run_id: str) -> str | None:
        snapshots = self._snapshots([safe_file_name(run_id)])
        found = [self._pipeline_name_in(folder / f"{stem}.json") for folder, stem in snapshots]
        if len(found) > 1:
            raise CheckpointError(
                f"run id {run_id!r} has checkpoints for several pipelines ({', '.join(found)}); "
                "pass pipeline_name to choose one"
            )
        return found[0] if found else None

    def _pipeline_name_in(self, snapshot: Path) -> str:
        try:
            doc = json.loads(snapshot.read_text(encoding="utf-8"))
            return str(doc["pipeline_name"])
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
            self._read(snapshot, snapshot.with_suffix(".journal"))  # raises, saying what the damage is
            raise CheckpointCorruptError(snapshot, f"cannot read its pipeline name ({exc})") from None

    # -- the rest ---------------------------------------------------------------------------------------

    def exists(self, run_id: str, pipeline_name: str | None = None) -> bool:
        return self.snapshot_path(run_id, pipeline_name) is not None

    def delete(self, run_id: str, pipeline_name: str | None = None) -> bool:
        name = pipeline_name or self._find_pipeline(run_id)
        if name is None:
            return False
        snapshot, journal, lock = self.paths(run_id, name)
        with self._locked(lock, what="deleting the checkpoint"):
            existed = snapshot.exists()
            # Journal first: a journal without a snapshot is never read, a snapshot without its journal is.
            journal.unlink(missing_ok=True)
            snapshot.unlink(missing_ok=True)
            remove_stale_temp_files(snapshot)
            fsync_dir(snapshot.parent)
            self._untrack((name, run_id))
        lock.unlink(missing_ok=True)
        return existed

    def quarantine(self, run_id: str, pipeline_name: str | None = None) -> list[Path]:
        """Move a (damaged) checkpoint's files aside as ``*.corrupt-<time>``; return the new paths.

        Nothing is read, so any damage can be moved aside. Nothing is deleted: the files stay next to
        where they were, for inspection. Without ``pipeline_name`` the run is found by its file name
        alone; ``run_id`` may also be the file name stem that :meth:`list_runs` shows for a damaged
        checkpoint whose run id cannot be read back.

        Raises:
            CheckpointError: without ``pipeline_name``, the run id has checkpoints for several pipelines.
        """
        if pipeline_name is not None:
            snapshot, journal, lock = self.paths(run_id, pipeline_name)
        else:
            located = self._locate(run_id)
            if located is None:
                return []
            snapshot, journal, lock = _run_files(*located)
        moved: list[Path] = []
        stamp = time.strftime("%Y%m%dT%H%M%S")
        with self._locked(lock, what="moving the checkpoint aside"):
            for path in (snapshot, journal):
                if path.exists():
                    target = path.with_name(f"{path.name}.corrupt-{stamp}")
                    n = 1
                    while target.exists():  # quarantined before in the same second: keep both
                        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
                        n += 1
                    os.replace(path, target)
                    moved.append(target)
            remove_stale_temp_files(snapshot)
            if moved:
                fsync_dir(snapshot.parent)
            for key in [k for k in self._tracked if safe_file_name(k[1]) == snapshot.stem]:
                self._untrack(key)
        return moved

    def _locate(self, run_id: str, pipeline_name: str | None = None) -> tuple[Path, str] | None:
        """Find a run's folder and file stem by file names alone (no file is read).

        Raises:
            CheckpointError: the run id has checkpoints for several pipelines.
        """
        stems = [safe_file_name(run_id)]
        if _FILE_STEM.fullmatch(run_id):
            stems.append(run_id)  # the stem list_runs shows for a damaged checkpoint it cannot name
        found = self._snapshots(stems, None if pipeline_name is None else [self._pipeline_dir(pipeline_name)])
        if len(found) > 1:
            raise CheckpointError(
                f"run id {run_id!r} has checkpoints in several pipeline folders "
                f"({', '.join(f.name for f, _ in found)}); pass the pipeline name to choose one"
            )
        return found[0] if found else None

    def _snapshots(self, stems: list[str], folders: list[Path] | None = None) -> list[tuple[Path, str]]:
        """The folder and stem of each ``<stem>.json`` snapshot in ``folders`` (by default every pipeline
        folder of ``base_dir``), in folder order, found by file names alone."""
        if folders is None:
            folders = sorted(f for f in self.base_dir.iterdir() if f.is_dir()) if self.base_dir.is_dir() else []
        return [(folder, stem) for folder in folders for stem in stems if (folder / f"{stem}.json").is_file()]

    def list_runs(self, pipeline_name: str | None = None) -> list[CheckpointInfo]:
        """Describe every checkpoint; a damaged one is listed too, with status ``corrupt``, its ``problem``,
        and the run id and pipeline name read back from what is left (else its file name stem)."""
        if not self.base_dir.is_dir():
            return []
        folders = [self._pipeline_dir(pipeline_name)] if pipeline_name else sorted(self.base_dir.iterdir())
        out: list[CheckpointInfo] = []
        for folder in folders:
            if not folder.is_dir():
                continue
            for snapshot in sorted(folder.glob("*.json")):
                journal = snapshot.with_suffix(".journal")
                try:
                    state, _ = self._read(snapshot, journal)
                except CheckpointError as exc:
                    out.append(_damaged_info(snapshot, exc))
                    continue
                out.append(info_of(state, str(snapshot)))
        return sorted(out, key=lambda i: i.updated_at, reverse=True)

    # -- before a run: is the folder usable, is the run running ------------------------------------------

    def ensure_writable(self, run_id: str, pipeline_name: str) -> None:
        """Check, before anything runs, that the run's checkpoint can be written here: the folders can be
        created, the lock files opened, a file written (and removed again).

        Raises:
            CheckpointLocationError: ``base_dir`` cannot be used (a file, a dangling link, read-only, ...),
                with the reason.
        """
        snapshot, _, lock = self.paths(run_id, pipeline_name)
        try:
            _make_dirs(snapshot.parent)
        except OSError as exc:
            raise CheckpointLocationError(self.base_dir, _unusable_because(self.base_dir, exc, "create")) from None
        try:
            for path in (lock, _active_file(snapshot)):
                os.close(open_file(path, os.O_RDWR))
            fd, probe = temp_file_in(snapshot.parent, snapshot.stem)
            try:
                os.write(fd, b"probe")
            finally:
                os.close(fd)
                probe.unlink(missing_ok=True)
        except OSError as exc:
            raise CheckpointLocationError(self.base_dir, _unusable_because(self.base_dir, exc)) from None

    @contextlib.contextmanager
    def running(self, run_id: str, pipeline_name: str) -> Iterator[None]:
        """Mark the run as running while the block runs (a shared lock every attempt of it holds), so that
        :meth:`exclusive_use` refuses to clear it meanwhile.

        Raises:
            CheckpointBusyError: a tool held the run (a clear in progress) for longer than the lock timeout.
        """
        snapshot = self.paths(run_id, pipeline_name)[0]
        _make_dirs(snapshot.parent)
        active = _active_file(snapshot)
        with shared(active, timeout=self.lock_timeout, what=f"run {run_id!r}"):
            # The run's name tag: list_runs reads it back when the snapshot is too damaged to name the run.
            tag = json.dumps({"run_id": run_id, "pipeline_name": pipeline_name}, ensure_ascii=False)
            with contextlib.suppress(OSError):
                active.write_text(tag + "\n", encoding="utf-8")
            yield

    @contextlib.contextmanager
    def exclusive_use(self, run_id: str, pipeline_name: str | None = None) -> Iterator[None]:
        """Hold the run for a tool (clearing it) while the block runs; refuse at once if it is running.

        Raises:
            CheckpointBusyError: an attempt of the run is running (or frozen) on this machine.
        """
        located = self._locate(run_id, pipeline_name)
        if located is None:
            yield
            return
        snapshot = _run_files(*located)[0]
        active = _active_file(snapshot)
        busy = (
            f"run {run_id!r} is running (an attempt of it holds {active}): stop it, or wait until it ends, "
            "then try again"
        )
        with exclusive_now(active, busy):
            yield
            if not snapshot.exists():
                active.unlink(missing_ok=True)  # cleared: its marker goes too (acquirers check the file)


@dataclass
class _MemoryEntry:
    """One run in :class:`InMemoryCheckpointStore`: a JSON snapshot and the JSON changes since."""

    snapshot: str
    changes: list[str]
    fence: Fence
    #: The state object that wrote last (weakly: see :class:`_Tracked`), and the journal's limit.
    writer: weakref.ref[CheckpointState]
    limit: int

    def state(self) -> CheckpointState:
        state = CheckpointState.from_dict(json.loads(self.snapshot))
        for change in self.changes:
            state.apply(json.loads(change))
        state.pending_ops.clear()
        return state


class InMemoryCheckpointStore:
    """Checkpoints in a dict, serialised as JSON like a real store (for tests and experiments).

    Kept like :class:`LocalCheckpointStore` keeps its files: a snapshot plus the changes since, so that a
    save costs the change, not the whole checkpoint.
    """

    def __init__(self, *, compact_every: int = 256) -> None:
        self._data: dict[tuple[str, str], _MemoryEntry] = {}
        self._versions: dict[tuple[str, str], int] = {}  # saves per key, deletions included
        self._lock = threading.Lock()
        self.compact_every = max(1, compact_every)
        self.saves = 0

    def save(self, state: CheckpointState) -> None:
        key = (state.pipeline_name, state.run_id)
        with self._lock:
            entry = self._data.get(key)
            if state.base_version is not None and (
                entry is None or state.base_version != f"{self._versions.get(key, 0)}"
            ):
                now = "nothing: it was deleted" if entry is None else _holds(entry.state())
                raise CheckpointChangedError(state.run_id, f"in memory, {key}", now)
            ops = state.pending_ops
            if entry is not None and entry.writer() is state and ops and len(entry.changes) + len(ops) <= entry.limit:
                entry.changes.extend(_encode_json(op) for op in ops)
                entry.fence = Fence.of(state)
            else:
                if entry is not None and entry.writer() is not state:
                    check_fence(entry.fence, state)
                self._data[key] = _MemoryEntry(
                    _encode_json(state.document(detached=False)),
                    [],
                    Fence.of(state),
                    weakref.ref(state),
                    compaction_limit(state, self.compact_every),
                )
            self._versions[key] = self._versions.get(key, 0) + 1
            ops.clear()
            state.base_version = None
            self.saves += 1

    def _key(self, run_id: str, pipeline_name: str | None) -> tuple[str, str] | None:
        if pipeline_name is not None:
            key = (pipeline_name, run_id)
            return key if key in self._data else None
        keys = [k for k in self._data if k[1] == run_id]
        if len(keys) > 1:
            raise CheckpointError(f"run id {run_id!r} has checkpoints for several pipelines; pass pipeline_name")
        return keys[0] if keys else None

    def load(self, run_id: str, pipeline_name: str | None = None) -> CheckpointState | None:
        with self._lock:
            key = self._key(run_id, pipeline_name)
            if key is None:
                return None
            state = self._data[key].state()
            state.base_version = f"{self._versions.get(key, 0)}"
            return state

    def exists(self, run_id: str, pipeline_name: str | None = None) -> bool:
        with self._lock:
            return self._key(run_id, pipeline_name) is not None

    def delete(self, run_id: str, pipeline_name: str | None = None) -> bool:
        with self._lock:
            key = self._key(run_id, pipeline_name)
            if key is None:
                return False
            del self._data[key]
            self._versions[key] = self._versions.get(key, 0) + 1
            return True

    def list_runs(self, pipeline_name: str | None = None) -> list[CheckpointInfo]:
        with self._lock:
            states = [entry.state() for entry in self._data.values()]
        return [info_of(s) for s in states if pipeline_name in (None, s.pipeline_name)]
