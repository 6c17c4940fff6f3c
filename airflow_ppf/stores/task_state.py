"""Checkpoints in Airflow's task state store (Airflow 3.3+, ``context["task_state_store"]``).

The task state store is a key/value store per task instance in Airflow's metadata database: it survives
retries, works across workers of any executor, and shows in the UI (Storage → Task State Store) and the
REST API. Every ``get`` or ``set`` is a round trip to Airflow's API server (10-25 ms here), so the store
spends as few as it can: one ``set`` per completed component. Layout of the keys this store writes:

``ppf_checkpoint``
    The head: run id, pipeline, attempt and writer (for fencing), and the checkpoint as it was when the
    head was written, inline as JSON when it is small (readable in the UI), else as a generation number
    plus the count and hash of its chunks; and the tag of its journal.
``ppf_checkpoint.<generation>.<i>``
    Chunks of a large checkpoint (zlib + base64), each well under Airflow's 64 KB value limit. They are
    written *before* the head that points at them, so a crash mid-write leaves the previous head valid.
``ppf_checkpoint.j.<tag>.<n>``
    The journal: the changes since the head was written, :data:`BLOCK_OPS` to a block. A completion
    rewrites the last block (one ``set``); every value is written whole, so a crash leaves either the
    block before or the block after. A new head (a new attempt, the end of an attempt, a full journal)
    gets a new tag and the old blocks are deleted.
``ppf_summary``
    A small human-readable digest (status, attempt, done/failed components) for people in the UI,
    rewritten when the status changes.

Fencing (a zombie try must not overwrite a newer try's progress): a head is written only after reading
the stored head and checking its attempt and writer. Journal blocks carry the tag of their own writer's
head, so an older try can never overwrite a newer one's blocks or head with them: a reader follows only
the stored head's tag.
An appending writer re-reads the head when it last knew it current more than :data:`FENCE_INTERVAL` ago
(and at its next head write at the latest), so a zombie is refused within that time. Airflow fences too:
each try has its own task instance id, and a previous try's writes are refused once a new try started.

Format history: 1 – the whole checkpoint in the head, rewritten on every save (still read); 2 – the head
plus a journal. Renaming these keys breaks in-flight retries of running deployments; bump ``FORMAT``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import time
import uuid
import weakref
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from airflow_ppf.checkpoint.errors import CheckpointCorruptError, CheckpointVersionError
from airflow_ppf.checkpoint.state import CheckpointState, CheckpointStatus, Fence, check_fence
from airflow_ppf.checkpoint.stores import CheckpointInfo, _encode_json, info_of

__all__ = ["HEAD_KEY", "SUMMARY_KEY", "TaskStateAccessor", "TaskStateCheckpointStore"]

HEAD_KEY = "ppf_checkpoint"
SUMMARY_KEY = "ppf_summary"
FORMAT = 2
#: Head formats this version reads.
READABLE_FORMATS = (1, 2)
#: Checkpoints up to this many bytes of JSON are stored inline (readable in the UI); larger ones in chunks.
INLINE_LIMIT = 48_000
CHUNK_CHARS = 48_000
#: Changes per journal block, and blocks a journal may have before a new head folds them in.
BLOCK_OPS = 16
MAX_BLOCKS = 4
#: A journal block whose JSON would be larger than this is not written: a new head is, instead.
BLOCK_CHARS = 48_000
#: Seconds for which the stored head, once read or written by this store, is taken as current by appends.
FENCE_INTERVAL = 1.0


class TaskStateAccessor(Protocol):
    """What this store needs of ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, **kwargs: Any) -> None: ...

    def delete(self, key: str) -> None: ...


@dataclass
class _Head:
    """What this store knows of the stored head (read or written by it)."""

    run_id: str
    fence: Fence
    encoding: str
    generation: int
    parts: int
    tag: str | None
    #: Journal blocks under ``tag`` (deleted when a new head replaces this one); ``None``: not known.
    blocks: int | None
    #: Clock time when it was last known to be the stored head.
    seen_at: float
    #: Whether this store wrote it (else: read it).
    written: bool


@dataclass
class _Journal:
    """The journal this store appends to (under the head it wrote)."""

    state: weakref.ref[CheckpointState]
    tag: str
    #: Changes in the journal so far, and the JSON of those of the last block.
    changes: int = 0
    block: list[str] = field(default_factory=list)


def _block_key(tag: str, n: int) -> str:
    return f"{HEAD_KEY}.j.{tag}.{n}"


class TaskStateCheckpointStore:
    """A :class:`~airflow_ppf.checkpoint.stores.CheckpointStore` on one task instance's state store.

    Args:
        accessor: ``context["task_state_store"]`` of the running task instance.
        location: a description for messages (``dag/run/task[map]``).
        fence_interval: seconds for which appends take the stored head as current once this store read or
            wrote it (see the module's doc); ``0`` checks before every write.
        clock: monotonic clock (tests).

    One task instance holds one checkpoint; ``run_id`` and ``pipeline_name`` are checked against it.
    """

    def __init__(
        self,
        accessor: TaskStateAccessor,
        location: str = "task state store",
        *,
        fence_interval: float = FENCE_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.accessor = accessor
        self.location = location
        self.fence_interval = fence_interval
        self._clock = clock
        self._head_seen: _Head | None = None
        self._journal: _Journal | None = None
        self._last_summary: tuple[Any, ...] | None = None
        #: Round trips to the accessor so far (``get``, ``set``, ``delete``), for benchmarks.
        self.round_trips = 0

    def __repr__(self) -> str:
        return f"TaskStateCheckpointStore({self.location!r})"

    def _where(self, key: str = HEAD_KEY) -> str:
        return f"{self.location} key '{key}'"

    def _get(self, key: str) -> Any:
        self.round_trips += 1
        return self.accessor.get(key)

    def _set(self, key: str, value: Any) -> None:
        self.round_trips += 1
        self.accessor.set(key, value)

    def _delete(self, key: str) -> None:
        self.round_trips += 1
        self.accessor.delete(key)

    # -- reading ----------------------------------------------------------------------------------------

    def _head(self) -> dict[str, Any] | None:
        head = self._get(HEAD_KEY)
        if head is None:
            return None
        if not isinstance(head, dict):
            raise CheckpointCorruptError(self._where(), f"expected an object, got {type(head).__name__}")
        version = head.get("format")
        if isinstance(version, int) and version > FORMAT:
            raise CheckpointVersionError(
                f"{self._where()} has format {version}, newer than this airflow-ppf reads ({FORMAT}); "
                "upgrade airflow-ppf on this worker"
            )
        if version not in READABLE_FORMATS:
            raise CheckpointCorruptError(self._where(), f"unknown format {version!r}")
        return head

    def _read_head(self) -> dict[str, Any] | None:
        """Read the stored head and remember it as current."""
        head = self._head()
        if head is None:
            self._head_seen = None
            return None
        journal = head.get("journal")
        self._head_seen = _Head(
            run_id=str(head.get("run_id")),
            fence=Fence(int(head.get("attempt") or 0), str(head.get("writer") or ""), bool(head.get("attempt"))),
            encoding=str(head.get("encoding")),
            generation=int(head.get("generation", 0) or 0),
            parts=int(head.get("parts", 0) or 0),
            tag=str(journal["tag"]) if isinstance(journal, dict) and journal.get("tag") else None,
            blocks=None,
            seen_at=self._clock(),
            written=False,
        )
        return head

    def _document(self, head: dict[str, Any]) -> Any:
        encoding = head.get("encoding")
        if encoding == "json":
            return head.get("state")
        if encoding != "zlib+base64":
            raise CheckpointCorruptError(self._where(), f"unknown encoding {encoding!r}")
        try:
            generation, parts, digest = int(head["generation"]), int(head["parts"]), str(head["sha256"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointCorruptError(self._where(), f"incomplete head ({exc})") from None
        chunks = []
        for i in range(parts):
            key = f"{HEAD_KEY}.{generation}.{i}"
            chunk = self._get(key)
            if not isinstance(chunk, str):
                raise CheckpointCorruptError(self._where(key), "chunk is missing")
            chunks.append(chunk)
        blob = "".join(chunks)
        if hashlib.sha256(blob.encode("ascii")).hexdigest() != digest:
            raise CheckpointCorruptError(self._where(), "chunks do not match the recorded hash")
        try:
            return json.loads(zlib.decompress(base64.b64decode(blob)).decode("utf-8"))
        except (ValueError, zlib.error) as exc:
            raise CheckpointCorruptError(self._where(), f"cannot decode the chunks ({exc})") from None

    def _replay(self, state: CheckpointState, tag: str) -> int:
        """Apply the journal blocks of ``tag`` to ``state``; return how many blocks there are."""
        n = 0
        while True:
            key = _block_key(tag, n)
            block = self._get(key)
            if block is None:
                return n
            ops = block.get("ops") if isinstance(block, dict) else None
            if not isinstance(ops, list) or block.get("seq") != n * BLOCK_OPS or len(ops) > BLOCK_OPS:
                raise CheckpointCorruptError(self._where(key), "not a journal block of this checkpoint")
            for op in ops:
                try:
                    state.apply(op)
                except CheckpointVersionError as exc:
                    raise exc.at(self._where(key)) from None
                except Exception as exc:
                    raise CheckpointCorruptError(self._where(key), f"a change cannot be applied ({exc})") from None
            n += 1
            if len(ops) < BLOCK_OPS:
                return n  # the last block: the next one is never written before this one is full

    def load(self, run_id: str, pipeline_name: str | None = None) -> CheckpointState | None:
        """Return the checkpoint if it is of ``run_id`` (and ``pipeline_name``), else ``None``.

        Raises:
            CheckpointCorruptError: the stored value is damaged.
        """
        head = self._read_head()
        if head is None or head.get("run_id") != run_id:
            return None
        if pipeline_name is not None and head.get("pipeline_name") != pipeline_name:
            return None
        try:
            state = CheckpointState.from_dict(self._document(head))
        except ValueError as exc:
            raise CheckpointCorruptError(self._where(), str(exc)) from None
        except CheckpointVersionError as exc:
            raise exc.at(self._where()) from None
        seen = self._head_seen
        if seen is not None and seen.tag is not None:
            seen.blocks = self._replay(state, seen.tag)
        state.pending_ops.clear()
        return state

    def exists(self, run_id: str, pipeline_name: str | None = None) -> bool:
        head = self._head()
        return head is not None and head.get("run_id") == run_id and pipeline_name in (None, head.get("pipeline_name"))

    def list_runs(self, pipeline_name: str | None = None) -> list[CheckpointInfo]:
        head = self._head()
        if head is None or pipeline_name not in (None, head.get("pipeline_name")):
            return []
        state = self.load(str(head.get("run_id")), head.get("pipeline_name"))
        return [info_of(state, self.location)] if state is not None else []

    # -- writing ----------------------------------------------------------------------------------------

    def save(self, state: CheckpointState) -> None:
        """Write ``state``: its new changes as a journal block when it can, else a new head.

        Raises:
            CheckpointFencedError: the stored checkpoint belongs to a newer attempt or another writer.
        """
        try:
            try:
                appended = self._append(state)
            except _HeadReplaced:
                appended = False
            if not appended:
                self._write_head(state)
        except BaseException:
            self._journal = None  # what reached the store is unknown: the next save writes a new head
            self._head_seen = None
            raise
        state.pending_ops.clear()

    def _append(self, state: CheckpointState) -> bool:
        """Write the state's pending changes into the journal; ``False`` when a new head is needed.

        Raises:
            _HeadReplaced: the stored head is no longer the one this store wrote.
        """
        journal, seen, ops = self._journal, self._head_seen, state.pending_ops
        if (
            journal is None
            or journal.state() is not state
            or seen is None
            or not seen.written
            or not ops
            or state.status != CheckpointStatus.IN_PROGRESS
            or journal.changes + len(ops) > BLOCK_OPS * MAX_BLOCKS
            or any(op.get("op") == "begin" for op in ops)
        ):
            return False
        # The last block is rewritten whole with the new changes (a value is replaced atomically).
        texts = [*journal.block, *(_encode_json(op) for op in ops)]
        first = journal.changes - len(journal.block)
        writes = [((first + i) // BLOCK_OPS, texts[i : i + BLOCK_OPS]) for i in range(0, len(texts), BLOCK_OPS)]
        if any(sum(len(t) + 1 for t in block) > BLOCK_CHARS for _, block in writes):
            return False
        if self._clock() - seen.seen_at >= self.fence_interval:
            self._verify(state)
        for n, block in writes:
            self._set(_block_key(journal.tag, n), {"seq": n * BLOCK_OPS, "ops": [json.loads(t) for t in block]})
        journal.changes += len(ops)
        last = writes[-1][1]
        journal.block = last if len(last) < BLOCK_OPS else []
        seen.blocks = max(seen.blocks or 0, writes[-1][0] + 1)
        return True

    def _verify(self, state: CheckpointState) -> None:
        """Check that the head this store wrote is still the stored one (a newer try may have taken over).

        Raises:
            CheckpointFencedError: a newer attempt (or another writer) has written since.
            _HeadReplaced: someone else (a person editing the checkpoint) wrote a head this store can check
                but does not extend: a new head must be written instead of appending.
        """
        mine = self._head_seen
        self._read_head()
        stored = self._head_seen
        if stored is None or mine is None or stored.tag != mine.tag or stored.fence != mine.fence:
            if stored is not None and stored.run_id == state.run_id:
                check_fence(stored.fence, state)
            raise _HeadReplaced
        mine.seen_at = stored.seen_at
        self._head_seen = mine

    def _write_head(self, state: CheckpointState) -> None:
        """Write ``state`` as a new head (chunks first, then the head that commits them) with a new journal."""
        previous = self._head_seen
        # Read before writing, always (a head is written a few times per try): a newer try of the task
        # (this one being a zombie) may have taken over, or one may have written since this store loaded the
        # checkpoint to edit it (the checkpoint view's actions), however recently that was.
        self._read_head()
        seen = self._head_seen
        if seen is not None and previous is not None and seen is not previous and seen.tag == previous.tag:
            seen.blocks = previous.blocks  # our own journal: we know its blocks
        if seen is not None and seen.run_id == state.run_id:
            check_fence(seen.fence, state)
        document = state.document(detached=False)  # serialised at once: no copies needed
        text = _encode_json(document)
        tag = uuid.uuid4().hex[:8]
        new_head: dict[str, Any] = {
            "format": FORMAT,
            "run_id": state.run_id,
            "pipeline_name": state.pipeline_name,
            "attempt": state.attempt,
            "writer": state.writer,
            "status": state.status,
            "done": len(state.completed_components),
            "updated_at": state.updated_at,
            "journal": {"tag": tag},
        }
        generation = seen.generation if seen is not None else 0
        parts = 0
        if len(text.encode("utf-8")) <= INLINE_LIMIT:
            new_head.update(encoding="json", state=json.loads(text))
        else:
            generation += 1
            blob = base64.b64encode(zlib.compress(text.encode("utf-8"), 6)).decode("ascii")
            chunks = [blob[i : i + CHUNK_CHARS] for i in range(0, len(blob), CHUNK_CHARS)]
            for i, chunk in enumerate(chunks):
                self._set(f"{HEAD_KEY}.{generation}.{i}", chunk)
            parts = len(chunks)
            new_head.update(
                encoding="zlib+base64",
                generation=generation,
                parts=parts,
                sha256=hashlib.sha256(blob.encode("ascii")).hexdigest(),
                bytes=len(text),
            )
        self._set(HEAD_KEY, new_head)
        self._head_seen = _Head(
            run_id=state.run_id,
            fence=Fence.of(state),
            encoding=str(new_head["encoding"]),
            generation=generation,
            parts=parts,
            tag=tag,
            blocks=0,
            seen_at=self._clock(),
            written=True,
        )
        self._journal = _Journal(weakref.ref(state), tag)
        if seen is not None:
            self._delete_replaced(seen)
        milestone = (state.run_id, state.attempt, state.status, state.failed_component)
        if milestone != self._last_summary:
            self._set(SUMMARY_KEY, summary_of(state))
            self._last_summary = milestone

    def _delete_replaced(self, old: _Head) -> None:
        """Delete the chunks and journal blocks of a head that a new one replaced."""
        if old.encoding == "zlib+base64":
            self._delete_chunks(old.generation, old.parts)
        if old.tag is not None:
            self._delete_blocks(old.tag, old.blocks)

    def _delete_blocks(self, tag: str, known: int | None) -> None:
        """Delete the journal blocks of ``tag`` (``known``: how many; ``None``: look them up)."""
        if known is not None:
            for n in range(known):
                self._delete(_block_key(tag, n))
            return
        n = 0
        while self._get(_block_key(tag, n)) is not None:
            self._delete(_block_key(tag, n))
            n += 1

    def _delete_chunks(self, generation: int, parts: int) -> None:
        for i in range(parts):
            self._delete(f"{HEAD_KEY}.{generation}.{i}")

    def delete(self, run_id: str, pipeline_name: str | None = None) -> bool:
        head = self._head()
        if head is None or head.get("run_id") != run_id or pipeline_name not in (None, head.get("pipeline_name")):
            return False
        self._delete(HEAD_KEY)
        self._last_summary = None
        self._head_seen = None
        self._journal = None
        if head.get("encoding") == "zlib+base64":
            self._delete_chunks(int(head.get("generation", 0) or 0), int(head.get("parts", 0) or 0))
        journal = head.get("journal")
        if isinstance(journal, dict) and journal.get("tag"):
            self._delete_blocks(str(journal["tag"]), None)
        self._delete(SUMMARY_KEY)
        return True

    def quarantine(self, run_id: str, pipeline_name: str) -> list[str]:
        """Move a (corrupt) head aside to ``ppf_checkpoint.corrupt.<time>``; return the new key."""
        raw = self._get(HEAD_KEY)
        if raw is None:
            return []
        key = f"{HEAD_KEY}.corrupt.{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}"
        self._set(key, raw)
        self._delete(HEAD_KEY)
        self._last_summary = None
        self._head_seen = None
        self._journal = None
        return [key]


class _HeadReplaced(Exception):
    """The stored head is not the one this store appends to (internal: a new head is written instead)."""


def summary_of(state: CheckpointState, limit: int = 50) -> dict[str, Any]:
    """A small human-readable digest of a checkpoint for the UI's state store tab."""
    last = state.current_attempt
    done = state.completed_components
    out: dict[str, Any] = {
        "pipeline": state.pipeline_name,
        "run_id": state.run_id,
        "status": state.status,
        "attempt": state.attempt,
        "done": len(done),
        "done_components": done[:limit] + ([f"... {len(done) - limit} more"] if len(done) > limit else []),
        "updated_at": state.updated_at,
        "fingerprint": state.pipeline_fingerprint[:16],
    }
    if last is not None and last.failed:
        out["failed_component"] = last.failed
        out["error"] = f"{last.error_type}: {last.error_message}"
    return out
