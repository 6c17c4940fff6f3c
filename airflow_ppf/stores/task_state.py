"""Checkpoints in Airflow's task state store (Airflow 3.3+, ``context["task_state_store"]``).

The task state store is a key/value store per task instance in Airflow's metadata database: it survives
retries, works across workers of any executor, and shows in the UI (Storage → Task State Store) and the
REST API. Layout of the keys this store writes:

``ppf_checkpoint``
    The head: run id, pipeline, attempt and writer (for fencing), and the checkpoint itself, inline as
    JSON when it is small, else as a generation number plus the count and hash of its chunks.
``ppf_checkpoint.<generation>.<i>``
    Chunks of a large checkpoint (zlib + base64), each well under Airflow's 64 KB value limit. They are
    written *before* the head that points at them, so a crash mid-write leaves the previous head valid.
``ppf_summary``
    A small human-readable digest (status, attempt, done/failed components) for people in the UI,
    rewritten when the status changes (the head's ``done`` count is always current).

A save costs a read of the head (fencing: a newer try may have taken over) and a write of it (plus its
chunks when large); the summary is written only when the status changes.

Renaming these keys breaks in-flight retries of running deployments; bump ``FORMAT`` instead.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import zlib
from typing import Any, Protocol

from airflow_ppf.checkpoint.errors import CheckpointCorruptError, CheckpointVersionError
from airflow_ppf.checkpoint.state import CheckpointState, check_fence
from airflow_ppf.checkpoint.stores import CheckpointInfo, info_of

__all__ = ["HEAD_KEY", "SUMMARY_KEY", "TaskStateAccessor", "TaskStateCheckpointStore"]

HEAD_KEY = "ppf_checkpoint"
SUMMARY_KEY = "ppf_summary"
FORMAT = 1
#: Checkpoints up to this many bytes of JSON are stored inline (readable in the UI); larger ones in chunks.
INLINE_LIMIT = 48_000
CHUNK_CHARS = 48_000


class TaskStateAccessor(Protocol):
    """What this store needs of ``context["task_state_store"]``."""

    def get(self, key: str, default: Any = None) -> Any: ...

    def set(self, key: str, value: Any, **kwargs: Any) -> None: ...

    def delete(self, key: str) -> None: ...


class TaskStateCheckpointStore:
    """A :class:`~airflow_ppf.checkpoint.stores.CheckpointStore` on one task instance's state store.

    Args:
        accessor: ``context["task_state_store"]`` of the running task instance.
        location: a description for messages (``dag/run/task[map]``).

    One task instance holds one checkpoint; ``run_id`` and ``pipeline_name`` are checked against it.
    """

    def __init__(self, accessor: TaskStateAccessor, location: str = "task state store") -> None:
        self.accessor = accessor
        self.location = location
        self._generation_written: int | None = None
        self._last_summary: tuple[Any, ...] | None = None

    def __repr__(self) -> str:
        return f"TaskStateCheckpointStore({self.location!r})"

    def _where(self, key: str = HEAD_KEY) -> str:
        return f"{self.location} key '{key}'"

    # -- reading ----------------------------------------------------------------------------------------

    def _head(self) -> dict[str, Any] | None:
        head = self.accessor.get(HEAD_KEY)
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
        if version != FORMAT:
            raise CheckpointCorruptError(self._where(), f"unknown format {version!r}")
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
            chunk = self.accessor.get(key)
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

    def load(self, run_id: str, pipeline_name: str | None = None) -> CheckpointState | None:
        """Return the checkpoint if it is of ``run_id`` (and ``pipeline_name``), else ``None``.

        Raises:
            CheckpointCorruptError: the stored value is damaged.
        """
        head = self._head()
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
        self._generation_written = int(head.get("generation", 0) or 0)
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
        """Write ``state`` (chunks first, then the head that commits them).

        Raises:
            CheckpointFencedError: the stored checkpoint belongs to a newer attempt or another writer.
        """
        # Read before every write: a newer try of the task (this one being a zombie) may have taken over.
        head = self._head()
        if head is not None and head.get("run_id") == state.run_id:
            check_fence(_FenceView(head), state)  # type: ignore[arg-type]
        old_generation = int(head.get("generation", 0) or 0) if head else 0
        document = state.to_dict()
        text = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        new_head: dict[str, Any] = {
            "format": FORMAT,
            "run_id": state.run_id,
            "pipeline_name": state.pipeline_name,
            "attempt": state.attempt,
            "writer": state.writer,
            "status": state.status,
            "done": len(state.completed_components),
            "updated_at": state.updated_at,
        }
        if len(text.encode("utf-8")) <= INLINE_LIMIT:
            new_head.update(encoding="json", state=document)
            self.accessor.set(HEAD_KEY, new_head)
        else:
            blob = base64.b64encode(zlib.compress(text.encode("utf-8"), 6)).decode("ascii")
            generation = old_generation + 1
            chunks = [blob[i : i + CHUNK_CHARS] for i in range(0, len(blob), CHUNK_CHARS)]
            for i, chunk in enumerate(chunks):
                self.accessor.set(f"{HEAD_KEY}.{generation}.{i}", chunk)
            new_head.update(
                encoding="zlib+base64",
                generation=generation,
                parts=len(chunks),
                sha256=hashlib.sha256(blob.encode("ascii")).hexdigest(),
                bytes=len(text),
            )
            self.accessor.set(HEAD_KEY, new_head)
        if head is not None and head.get("encoding") == "zlib+base64":
            self._delete_chunks(old_generation, int(head.get("parts", 0) or 0))
        milestone = (state.run_id, state.attempt, state.status, state.failed_component)
        if milestone != self._last_summary:
            self.accessor.set(SUMMARY_KEY, summary_of(state))
            self._last_summary = milestone
        state.pending_ops.clear()

    def _delete_chunks(self, generation: int, parts: int) -> None:
        for i in range(parts):
            self.accessor.delete(f"{HEAD_KEY}.{generation}.{i}")

    def delete(self, run_id: str, pipeline_name: str | None = None) -> bool:
        head = self._head()
        if head is None or head.get("run_id") != run_id or pipeline_name not in (None, head.get("pipeline_name")):
            return False
        self.accessor.delete(HEAD_KEY)
        self._last_summary = None
        if head.get("encoding") == "zlib+base64":
            self._delete_chunks(int(head.get("generation", 0) or 0), int(head.get("parts", 0) or 0))
        self.accessor.delete(SUMMARY_KEY)
        return True

    def quarantine(self, run_id: str, pipeline_name: str) -> list[str]:
        """Move a (corrupt) head aside to ``ppf_checkpoint.corrupt.<time>``; return the new key."""
        raw = self.accessor.get(HEAD_KEY)
        if raw is None:
            return []
        key = f"{HEAD_KEY}.corrupt.{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S')}"
        self.accessor.set(key, raw)
        self.accessor.delete(HEAD_KEY)
        self._last_summary = None
        return [key]


class _FenceView:
    """The fencing-relevant part of a stored head, shaped like a CheckpointState for ``check_fence``."""

    def __init__(self, head: dict[str, Any]) -> None:
        self.attempt = int(head.get("attempt") or 0)
        self.writer = str(head.get("writer") or "")
        self.attempts = [self] if self.attempt else []


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
