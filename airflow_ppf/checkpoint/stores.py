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

from airflow_ppf.checkpoint.errors import CheckpointCorruptError, CheckpointError, CheckpointVersionError
from airflow_ppf.checkpoint.naming import safe_file_name
from airflow_ppf.checkpoint.state import CheckpointState, check_fence
from airflow_ppf.config.limits import nesting_problem, too_deep
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


def _dump(state: CheckpointState, journal_seq: int) -> bytes:
    doc = state.to_dict()
    doc["journal_seq"] = journal_seq
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _journal_line(seq: int, op: dict[str, Any]) -> bytes:
    body = json.dumps({"seq": seq, "op": op}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return b"%08x %s\n" % (zlib.crc32(body), body)


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


def _open_file(path: Path, flags: int) -> int:
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


def _stat_key(path: Path) -> tuple[int, int, int] | None:
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


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


class LocalCheckpointStore:
    """Durable checkpoints as files under ``base_dir`` (group-readable).

    Args:
        base_dir: the folder; created on first save.
        compact_every: fold the journal into a new snapshot after this many appended changes.
    """

    def __init__(self, base_dir: str | Path, *, compact_every: int = 256) -> None:
        self.base_dir = Path(base_dir)
        self.compact_every = max(1, compact_every)
        self._tracked: dict[tuple[str, str], _Tracked] = {}
        self._thread_lock = threading.Lock()

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
        folder = self._pipeline_dir(pipeline_name)
        stem = safe_file_name(run_id)
        return folder / f"{stem}.json", folder / f"{stem}.journal", folder / f"{stem}.lock"

    def snapshot_path(self, run_id: str, pipeline_name: str | None = None) -> Path | None:
        """Return the snapshot file of a run, or ``None`` when there is none."""
        name = pipeline_name or self._find_pipeline(run_id)
        if name is None:
            return None
        snapshot = self.paths(run_id, name)[0]
        return snapshot if snapshot.exists() else None

    @contextlib.contextmanager
    def _locked(self, lock_path: Path) -> Iterator[None]:
        _make_dirs(lock_path.parent)
        with self._thread_lock:
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
        snapshot, journal, lock = self.paths(state.run_id, state.pipeline_name)
        key = (state.pipeline_name, state.run_id)
        with self._locked(lock):
            tracked = self._tracked.get(key)
            # Nobody else wrote since our last write of this very state object: the files hold exactly
            # what we wrote, so no re-read (and no fencing check) is needed.
            current = (
                tracked is not None
                and tracked.state() is state
                and _stat_key(snapshot) == tracked.snapshot
                and _stat_key(journal) == tracked.journal
            )
            room = tracked is not None and tracked.since_snapshot + len(state.pending_ops) <= self.compact_every
            if current and state.pending_ops and room:
                assert tracked is not None
                try:
                    self._append(journal, tracked, state)
                except BaseException:
                    # What reached the disk is unknown: the next save re-reads the files.
                    del self._tracked[key]
                    raise
            else:
                self._tracked.pop(key, None)
                if current:
                    assert tracked is not None
                    stored_seq = tracked.seq  # compaction: fold our own journal into a new snapshot
                else:
                    stored_seq = 0
                    if snapshot.exists():
                        stored, stored_seq = self._read(snapshot, journal)
                        check_fence(stored, state)
                self._write_snapshot(snapshot, journal, state, stored_seq + 1)
                self._tracked[key] = _Tracked(
                    weakref.ref(state), stored_seq + 1, 0, _stat_key(snapshot), _stat_key(journal)
                )
            state.pending_ops.clear()

    def _append(self, journal: Path, tracked: _Tracked, state: CheckpointState) -> None:
        lines = [_journal_line(tracked.seq + i, op) for i, op in enumerate(state.pending_ops, start=1)]
        fd = _open_file(journal, os.O_WRONLY | os.O_APPEND)
        created = tracked.journal is None
        try:
            _write_all(fd, b"".join(lines))
            os.fsync(fd)
        finally:
            os.close(fd)
        if created:
            fsync_dir(journal.parent)
        tracked.seq += len(lines)
        tracked.since_snapshot += len(lines)
        tracked.journal = _stat_key(journal)

    def _write_snapshot(self, snapshot: Path, journal: Path, state: CheckpointState, seq: int) -> None:
        folder = snapshot.parent
        _make_dirs(folder)
        data = _dump(state, seq)
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{snapshot.stem}.", suffix=".tmp")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o640)
            os.replace(tmp, snapshot)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        # The journal's changes are now in the snapshot (journal_seq tells a reader to skip them even if
        # we die before the unlink below).
        journal.unlink(missing_ok=True)
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
        except (OSError, ValueError, KeyError, TypeError, RecursionError) as exc:
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
            self._tracked.pop((name, run_id), None)
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
            self._tracked.pop((pipeline_name, run_id), None)
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


class InMemoryCheckpointStore:
    """Checkpoints in a dict, serialised as JSON like a real store (for tests and experiments)."""

    def __init__(self) -> None:
        self._data: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()
        self.saves = 0

    def save(self, state: CheckpointState) -> None:
        key = (state.pipeline_name, state.run_id)
        with self._lock:
            stored = self._data.get(key)
            if stored is not None:
                check_fence(CheckpointState.from_dict(json.loads(stored)), state)
            self._data[key] = json.dumps(state.to_dict())
            state.pending_ops.clear()
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
            return None if key is None else CheckpointState.from_dict(json.loads(self._data[key]))

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
            states = [CheckpointState.from_dict(json.loads(v)) for v in self._data.values()]
        return [info_of(s) for s in states if pipeline_name in (None, s.pipeline_name)]
