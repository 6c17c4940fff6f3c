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
import fcntl
import json
import os
import tempfile
import threading
import time
import weakref
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from airflow_ppf.checkpoint.errors import CheckpointCorruptError, CheckpointError
from airflow_ppf.checkpoint.naming import safe_file_name
from airflow_ppf.checkpoint.state import CheckpointState, Fence, check_fence
from airflow_ppf.spark.fs import fsync_dir

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


def _make_dirs(folder: Path | str) -> None:
    """Create ``folder`` and its missing parents as ``0o750`` whatever the process umask."""
    folder = Path(folder)
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


def _open_file(path: Path | str, flags: int) -> int:
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


def _write_all(fd: int, data: bytes) -> None:
    """Write all of ``data``: ``os.write`` may write less than asked and a torn line must stay the last one."""
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _stat_key(path: Path | str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


@dataclass(frozen=True)
class _RunFiles:
    """The files of one run (plain strings: the hot path makes system calls, no ``Path`` objects)."""

    folder: str
    snapshot: str
    journal: str
    lock: str


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
    """

    def __init__(self, base_dir: str | Path, *, compact_every: int = 256) -> None:
        self.base_dir = Path(base_dir)
        self.compact_every = max(1, compact_every)
        self._tracked: dict[tuple[str, str], _Tracked] = {}
        self._files: dict[tuple[str, str], _RunFiles] = {}
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
        files = self._files_of(run_id, pipeline_name)
        return Path(files.snapshot), Path(files.journal), Path(files.lock)

    def _files_of(self, run_id: str, pipeline_name: str) -> _RunFiles:
        key = (pipeline_name, run_id)
        files = self._files.get(key)
        if files is None:
            folder = self._pipeline_dir(pipeline_name)
            stem = safe_file_name(run_id)
            files = _RunFiles(
                str(folder), str(folder / f"{stem}.json"), str(folder / f"{stem}.journal"), str(folder / f"{stem}.lock")
            )
            self._files[key] = files
        return files

    def snapshot_path(self, run_id: str, pipeline_name: str | None = None) -> Path | None:
        """Return the snapshot file of a run, or ``None`` when there is none."""
        name = pipeline_name or self._find_pipeline(run_id)
        if name is None:
            return None
        snapshot = self.paths(run_id, name)[0]
        return snapshot if snapshot.exists() else None

    @contextlib.contextmanager
    def _locked(self, lock_path: Path | str) -> Iterator[None]:
        with self._thread_lock:
            try:
                fd = _open_file(lock_path, os.O_RDWR)
            except FileNotFoundError:  # the first save of this pipeline: make its folder
                _make_dirs(os.path.dirname(lock_path))
                fd = _open_file(lock_path, os.O_RDWR)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                yield
            finally:
                os.close(fd)

    # -- save -------------------------------------------------------------------------------------------

    def save(self, state: CheckpointState) -> None:
        """Persist ``state`` durably.

        Raises:
            CheckpointFencedError: the stored checkpoint belongs to a newer attempt or another writer.
            CheckpointCorruptError: the stored checkpoint is damaged (it is never silently replaced).
            OSError: the disk refused the write.
        """
        files = self._files_of(state.run_id, state.pipeline_name)
        snapshot, journal = files.snapshot, files.journal
        key = (state.pipeline_name, state.run_id)
        with self._locked(files.lock):
            tracked = self._tracked.get(key)
            # Nobody else wrote since our last write of this very state object: the files hold exactly
            # what we wrote, so no re-read (and no fencing check) is needed.
            current = (
                tracked is not None
                and tracked.state() is state
                and _stat_key(snapshot) == tracked.snapshot
                and _stat_key(journal) == tracked.journal
            )
            room = tracked is not None and tracked.since_snapshot + len(state.pending_ops) <= tracked.limit
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
                if current:
                    assert tracked is not None
                    stored_seq = tracked.seq  # compaction: fold our own journal into a new snapshot
                else:
                    stored_seq = 0
                    if os.path.exists(snapshot):
                        stored, stored_seq = self._read(Path(snapshot), Path(journal))
                        check_fence(stored, state)
                self._write_snapshot(files, state, stored_seq + 1)
                self._tracked[key] = _Tracked(
                    weakref.ref(state),
                    stored_seq + 1,
                    0,
                    _stat_key(snapshot),
                    _stat_key(journal),
                    compaction_limit(state, self.compact_every),
                )
            state.pending_ops.clear()

    def _append(self, journal: str, tracked: _Tracked, state: CheckpointState) -> None:
        lines = [_journal_line(tracked.seq + i, op) for i, op in enumerate(state.pending_ops, start=1)]
        created = tracked.journal is None
        if tracked.fd is None:
            tracked.fd = _open_file(journal, os.O_WRONLY | os.O_APPEND)
        _write_all(tracked.fd, b"".join(lines))
        os.fsync(tracked.fd)
        if created:
            fsync_dir(os.path.dirname(journal))
        tracked.seq += len(lines)
        tracked.since_snapshot += len(lines)
        tracked.journal = _stat_key(journal)

    def _write_snapshot(self, files: _RunFiles, state: CheckpointState, seq: int) -> None:
        folder = files.folder
        _make_dirs(folder)
        data = _dump(state, seq)
        stem = os.path.basename(files.snapshot)[: -len(".json")]
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{stem}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp_name, 0o640)
            os.replace(tmp_name, files.snapshot)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp_name)
            raise
        # The journal's changes are now in the snapshot (journal_seq tells a reader to skip them even if
        # we die before the unlink below).
        with contextlib.suppress(FileNotFoundError):
            os.unlink(files.journal)
        fsync_dir(folder)

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
        seq = doc.pop("journal_seq", 0) if isinstance(doc, dict) else 0
        try:
            state = CheckpointState.from_dict(doc)
        except ValueError as exc:
            raise CheckpointCorruptError(snapshot, str(exc)) from None
        if not isinstance(seq, int):
            raise CheckpointCorruptError(snapshot, f"journal_seq must be an integer, got {seq!r}")
        for entry_seq, op in self._journal_entries(journal):
            if entry_seq <= seq:
                continue  # already folded into the snapshot
            if entry_seq != seq + 1:
                raise CheckpointCorruptError(journal, f"journal skips from change {seq} to {entry_seq}")
            try:
                state.apply(op)
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
            return int(entry["seq"]), dict(entry["op"])
        except (ValueError, KeyError, TypeError, UnicodeDecodeError):
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
        state, _ = self._read(snapshot, journal)
        if state.run_id != run_id or state.pipeline_name != name:
            raise CheckpointCorruptError(
                snapshot,
                f"it holds run {state.run_id!r} of {state.pipeline_name!r}, not {run_id!r} of {name!r}",
            )
        return state

    def _find_pipeline(self, run_id: str) -> str | None:
        if not self.base_dir.is_dir():
            return None
        stem = safe_file_name(run_id)
        found: list[str] = []
        for folder in sorted(self.base_dir.iterdir()):
            snapshot = folder / f"{stem}.json"
            if snapshot.is_file():
                found.append(self._pipeline_name_in(snapshot))
        if len(found) > 1:
            raise CheckpointError(
                f"run id {run_id!r} has checkpoints for several pipelines ({', '.join(found)}); "
                "pass pipeline_name to choose one"
            )
        return found[0] if found else None

    @staticmethod
    def _pipeline_name_in(snapshot: Path) -> str:
        try:
            doc = json.loads(snapshot.read_text(encoding="utf-8"))
            return str(doc["pipeline_name"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointCorruptError(snapshot, f"cannot read its pipeline name ({exc})") from None

    # -- the rest ---------------------------------------------------------------------------------------

    def exists(self, run_id: str, pipeline_name: str | None = None) -> bool:
        return self.snapshot_path(run_id, pipeline_name) is not None

    def delete(self, run_id: str, pipeline_name: str | None = None) -> bool:
        name = pipeline_name or self._find_pipeline(run_id)
        if name is None:
            return False
        snapshot, journal, lock = self.paths(run_id, name)
        with self._locked(lock):
            existed = snapshot.exists()
            # Journal first: a journal without a snapshot is never read, a snapshot without its journal is.
            journal.unlink(missing_ok=True)
            snapshot.unlink(missing_ok=True)
            fsync_dir(snapshot.parent)
            self._untrack((name, run_id))
        lock.unlink(missing_ok=True)
        return existed

    def quarantine(self, run_id: str, pipeline_name: str) -> list[Path]:
        """Move a (corrupt) checkpoint's files aside as ``*.corrupt-<time>``; return the new paths.

        Nothing is deleted: the files stay next to where they were, for inspection.
        """
        snapshot, journal, lock = self.paths(run_id, pipeline_name)
        moved: list[Path] = []
        stamp = time.strftime("%Y%m%dT%H%M%S")
        with self._locked(lock):
            for path in (snapshot, journal):
                if path.exists():
                    target = path.with_name(f"{path.name}.corrupt-{stamp}")
                    n = 1
                    while target.exists():  # quarantined before in the same second: keep both
                        target = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
                        n += 1
                    os.replace(path, target)
                    moved.append(target)
            if moved:
                fsync_dir(snapshot.parent)
            self._untrack((pipeline_name, run_id))
        return moved

    def list_runs(self, pipeline_name: str | None = None) -> list[CheckpointInfo]:
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
                    out.append(CheckpointInfo("?", folder.name, "corrupt", 0, 0, "", f"{snapshot}: {exc}"))
                    continue
                out.append(info_of(state, str(snapshot)))
        return sorted(out, key=lambda i: i.updated_at, reverse=True)


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
        self._lock = threading.Lock()
        self.compact_every = max(1, compact_every)
        self.saves = 0

    def save(self, state: CheckpointState) -> None:
        key = (state.pipeline_name, state.run_id)
        with self._lock:
            entry = self._data.get(key)
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
            ops.clear()
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
            return None if key is None else self._data[key].state()

    def exists(self, run_id: str, pipeline_name: str | None = None) -> bool:
        with self._lock:
            return self._key(run_id, pipeline_name) is not None

    def delete(self, run_id: str, pipeline_name: str | None = None) -> bool:
        with self._lock:
            key = self._key(run_id, pipeline_name)
            if key is None:
                return False
            del self._data[key]
            return True

    def list_runs(self, pipeline_name: str | None = None) -> list[CheckpointInfo]:
        with self._lock:
            states = [entry.state() for entry in self._data.values()]
        return [info_of(s) for s in states if pipeline_name in (None, s.pipeline_name)]
