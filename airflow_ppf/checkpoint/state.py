"""The checkpoint record of one pipeline run: versioned, with the history of every attempt.

A :class:`CheckpointState` changes only through its ``record_*`` / ``begin_attempt`` / ``finish_attempt``
/ ``invalidate`` methods. Each change is also kept as a small *operation* (a dict) in
:attr:`CheckpointState.pending_ops`, so a store can append just the change to a journal instead of
rewriting the whole record (a 1,000-component pipeline does not pay a quadratic cost) and replay it on load
with :meth:`CheckpointState.apply`.

Schema history (``schema_version``):

* (none) – pyspark-pipeline-framework 1.0's format. Loads; its fingerprint never matches ours, so a
  resume from it starts from the beginning (with a warning that says so).
* 1 – this format. Unknown top-level fields written by a newer 1.x are kept and written back.
  ``graph`` (each component's ``depends_on``, set by every attempt) and ``views`` (the temp views each
  completed component read and produced, kept when it is marked not done; for a component that did not
  complete, what it declared when its attempt ended) were added within version 1:
  a checkpoint without them loads with them empty, and an older 1.x keeps them as unknown fields.

Renaming a stored field breaks in-flight retries of running deployments: add fields, bump the version
and migrate instead.
"""

from __future__ import annotations

import copy
import datetime as dt
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from airflow_ppf.checkpoint.errors import CheckpointFencedError, CheckpointVersionError
from airflow_ppf.runner.report import first_line

__all__ = [
    "EDIT_EVENTS",
    "RESUME_EVENT",
    "SCHEMA_VERSION",
    "AttemptRecord",
    "CheckpointState",
    "CheckpointStatus",
    "ComponentRecord",
    "Fence",
    "check_fence",
    "new_writer_id",
    "recorded_graph",
    "utcnow",
]

SCHEMA_VERSION = 1

#: Recorded when a person resumes the task from the checkpoint view (it also clears the task instance).
RESUME_EVENT = "resume"
#: Events recorded when a person edits a stored checkpoint (:mod:`airflow_ppf.checkpoint.edits`).
EDIT_EVENTS = ("reset", "rerun_from", RESUME_EVENT)


class CheckpointStatus:
    """Values of :attr:`CheckpointState.status`."""

    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    ALL = (IN_PROGRESS, COMPLETED, FAILED, INTERRUPTED)


def utcnow() -> str:
    """Current time as an ISO-8601 UTC string."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")


def new_writer_id() -> str:
    """An identifier for one writer (one attempt in one process): ``host:pid:random``."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class NameIndex:
    """A list of names as a set, for constant-time membership: a resume may record thousands of components.

    The list stays the record (its order is history); the set is rebuilt when the list was replaced or changed
    size behind the index's back (a plugin editing the lists directly).
    """

    __slots__ = ("_length", "_list", "_names")

    def __init__(self) -> None:
        self._list: list[str] | None = None
        self._length = -1
        self._names: set[str] = set()

    def names(self, names: list[str]) -> set[str]:
        if self._list is not names or self._length != len(names):
            self._list, self._length, self._names = names, len(names), set(names)
        return self._names

    def append_once(self, names: list[str], name: str) -> None:
        if name not in self.names(names):
            names.append(name)
            self._names.add(name)
            self._length += 1

    def remove(self, names: list[str], name: str) -> None:
        if name in self.names(names):
            names.remove(name)
            self._names.discard(name)
            self._length -= 1


@dataclass
class ComponentRecord:
    """What the checkpoint knows about one *completed* component."""

    attempt: int
    duration_ms: int
    completed_at: str
    fingerprint: str | None = None
    outputs: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return self._document(detached=True)

    def _document(self, *, detached: bool) -> dict[str, Any]:
        out: dict[str, Any] = {
            "attempt": self.attempt,
            "duration_ms": self.duration_ms,
            "completed_at": self.completed_at,
        }
        if self.fingerprint is not None:
            out["fingerprint"] = self.fingerprint
        if self.outputs:
            out["outputs"] = copy.deepcopy(self.outputs) if detached else self.outputs
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ComponentRecord:
        return cls(
            attempt=int(data.get("attempt", 0)),
            duration_ms=int(data.get("duration_ms", 0)),
            completed_at=str(data.get("completed_at", "")),
            fingerprint=data.get("fingerprint"),
            outputs=list(data.get("outputs") or []),
        )


@dataclass
class AttemptRecord:
    """One attempt (one try of the task, one ``run()``): what it ran, skipped, and how it ended."""

    attempt: int
    started_at: str
    writer: str = ""
    ended_at: str | None = None
    status: str = CheckpointStatus.IN_PROGRESS
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    durations_ms: dict[str, int] = field(default_factory=dict)
    failed: str | None = None
    error_type: str | None = None
    error_message: str | None = None
    pipeline_fingerprint: str | None = None
    resume: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        #: The skipped and ran names as sets (see :class:`NameIndex`). Not fields: ``asdict(record)`` holds only
        #: the record itself.
        self._skipped_index = NameIndex()
        self._ran_index = NameIndex()

    def to_dict(self) -> dict[str, Any]:
        return self._document(detached=True)

    def _document(self, *, detached: bool) -> dict[str, Any]:
        """The JSON document; with ``detached=False`` it shares this record's lists and dicts (to be
        serialised at once, never kept or changed)."""
        out: dict[str, Any] = {
            "attempt": self.attempt,
            "writer": self.writer,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "status": self.status,
            "ran": list(self.ran) if detached else self.ran,
            "skipped": list(self.skipped) if detached else self.skipped,
            "durations_ms": dict(self.durations_ms) if detached else self.durations_ms,
            "failed": self.failed,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "pipeline_fingerprint": self.pipeline_fingerprint,
        }
        if self.resume:
            out["resume"] = copy.deepcopy(self.resume) if detached else self.resume
        if self.events:
            out["events"] = copy.deepcopy(self.events) if detached else self.events
        if self.meta:
            out["meta"] = copy.deepcopy(self.meta) if detached else self.meta
        return out

    def _note_skipped(self, name: str) -> None:
        """Add ``name`` to :attr:`skipped` once (in constant time: a resume may skip thousands)."""
        self._skipped_index.append_once(self.skipped, name)

    def _note_ran(self, name: str) -> None:
        """Add ``name`` to :attr:`ran` once, taking it out of :attr:`skipped` if it was skipped earlier in this
        attempt (a damaged saved view made it run again)."""
        self._skipped_index.remove(self.skipped, name)
        self._ran_index.append_once(self.ran, name)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttemptRecord:
        return cls(
            attempt=int(data["attempt"]),
            started_at=str(data.get("started_at", "")),
            writer=str(data.get("writer", "")),
            ended_at=data.get("ended_at"),
            status=str(data.get("status", CheckpointStatus.IN_PROGRESS)),
            ran=list(data.get("ran") or []),
            skipped=list(data.get("skipped") or []),
            durations_ms={str(k): int(v) for k, v in (data.get("durations_ms") or {}).items()},
            failed=data.get("failed"),
            error_type=data.get("error_type"),
            error_message=data.get("error_message"),
            pipeline_fingerprint=data.get("pipeline_fingerprint"),
            resume=dict(data.get("resume") or {}),
            events=list(data.get("events") or []),
            meta=dict(data.get("meta") or {}),
        )


_MAX_ERROR_MESSAGE = 1000


@dataclass
class CheckpointState:
    """Serialisable progress of one pipeline run.

    The first eight fields are those of pyspark-pipeline-framework's ``CheckpointState`` (same names,
    same meaning), so code written for it keeps working.
    """

    run_id: str
    pipeline_name: str
    pipeline_fingerprint: str
    completed_components: list[str] = field(default_factory=list)
    failed_component: str | None = None
    status: str = CheckpointStatus.IN_PROGRESS
    created_at: str = ""
    updated_at: str = ""
    schema_version: int = SCHEMA_VERSION
    components: dict[str, ComponentRecord] = field(default_factory=dict)
    component_fingerprints: dict[str, str] = field(default_factory=dict)
    field_digests: dict[str, dict[str, str]] = field(default_factory=dict)
    attempts: list[AttemptRecord] = field(default_factory=list)
    data_location: str | None = None
    graph: dict[str, list[str]] = field(default_factory=dict)
    views: dict[str, dict[str, list[str] | None]] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.run_id:
            raise ValueError("run_id must not be empty")
        if not self.pipeline_name:
            raise ValueError("pipeline_name must not be empty")
        if not self.pipeline_fingerprint:
            raise ValueError("pipeline_fingerprint must not be empty")
        if self.status not in CheckpointStatus.ALL:
            raise ValueError(f"Invalid status {self.status!r}; must be one of {', '.join(CheckpointStatus.ALL)}")
        self.completed_components = list(self.completed_components)
        # A store written the pyspark-pipeline-framework way saves json.dumps(asdict(state)) and loads
        # CheckpointState(**data): the nested records then arrive as plain dicts.
        self.components = {
            str(k): ComponentRecord.from_dict(v) if isinstance(v, dict) else v for k, v in self.components.items()
        }
        self.attempts = [AttemptRecord.from_dict(a) if isinstance(a, dict) else a for a in self.attempts]
        #: Changes not yet handed to a store (a journaling store appends just these); not a field, so
        #: ``asdict(state)`` holds only the record itself.
        self.pending_ops: list[dict[str, Any]] = []
        #: The stored version this state was loaded from (set by stores that support conditional writes):
        #: its next save refuses to replace a checkpoint that changed since
        #: (:class:`~airflow_ppf.checkpoint.errors.CheckpointChangedError`), so an attempt never writes a
        #: record that drops progress it did not see. Not a field either.
        self.base_version: str | None = None
        #: The completed names as a set for O(1) lookups (see :class:`NameIndex`). Not a field either.
        self._done_index = NameIndex()
        self._now: Callable[[], str] = utcnow
        now = self._now()
        self.created_at = self.created_at or now
        self.updated_at = self.updated_at or self.created_at

    def use_clock(self, now: Callable[[], str]) -> None:
        """Time-stamp this state's changes with ``now()`` (ISO-8601 text) instead of the current UTC time."""
        self._now = now

    # -- reading ----------------------------------------------------------------------------------------

    @property
    def attempt(self) -> int:
        """Number of the latest attempt (0 when none was recorded)."""
        return self.attempts[-1].attempt if self.attempts else 0

    @property
    def writer(self) -> str:
        """Writer of the latest attempt."""
        return self.attempts[-1].writer if self.attempts else ""

    @property
    def current_attempt(self) -> AttemptRecord | None:
        return self.attempts[-1] if self.attempts else None

    def completed_set(self) -> set[str]:
        return set(self.completed_components)

    def has_completed(self, name: str) -> bool:
        """Whether ``name`` is recorded done (in constant time)."""
        return name in self._done_index.names(self.completed_components)

    def saved_view_paths(self) -> list[str]:
        """Paths of every saved view the checkpoint references."""
        return [o["path"] for r in self.components.values() for o in r.outputs if o.get("path")]

    def recorded_duration_ms(self, names: set[str] | list[str]) -> int:
        """Total recorded run time of ``names`` (what skipping them saves)."""
        return sum(self.components[n].duration_ms for n in names if n in self.components)

    # -- changes ----------------------------------------------------------------------------------------

    def apply(self, op: dict[str, Any]) -> None:
        """Apply one recorded operation (used to replay a journal)."""
        kind = op["op"]
        handler = getattr(self, f"_op_{kind}", None)
        if handler is None:
            raise CheckpointVersionError(
                f"checkpoint journal has an operation {kind!r} unknown to this version of airflow-ppf"
            )
        handler(op)
        if "at" in op:
            self.updated_at = op["at"]

    def _do(self, op: dict[str, Any]) -> None:
        op.setdefault("at", self._now())
        self.apply(op)
        self.pending_ops.append(op)

    def begin_attempt(
        self,
        attempt: int,
        writer: str,
        *,
        pipeline_fingerprint: str,
        component_fingerprints: dict[str, str],
        field_digests: dict[str, dict[str, str]],
        resume: dict[str, Any] | None = None,
        data_location: str | None = None,
        meta: dict[str, Any] | None = None,
        graph: dict[str, list[str]] | None = None,
    ) -> None:
        """Start a new attempt (the previous attempts stay in the history).

        ``meta`` holds facts about who ran the attempt (e.g. Airflow's try number and max_tries).
        ``graph`` maps every component to the names it depends on (for viewers and tools that need the
        pipeline's shape without its config); ``None`` keeps the stored one.
        """
        op: dict[str, Any] = {
            "op": "begin",
            "attempt": attempt,
            "writer": writer,
            "pipeline_fingerprint": pipeline_fingerprint,
            "component_fingerprints": component_fingerprints,
            "field_digests": field_digests,
            "resume": resume or {},
            "data_location": data_location,
            "meta": meta or {},
        }
        if graph is not None:
            op["graph"] = {str(k): [str(d) for d in v] for k, v in graph.items()}
        self._do(op)

    def _op_begin(self, op: dict[str, Any]) -> None:
        self.attempts.append(
            AttemptRecord(
                attempt=int(op["attempt"]),
                writer=op["writer"],
                started_at=op["at"],
                pipeline_fingerprint=op["pipeline_fingerprint"],
                resume=dict(op.get("resume") or {}),
                meta=dict(op.get("meta") or {}),
            )
        )
        self.pipeline_fingerprint = op["pipeline_fingerprint"]
        self.component_fingerprints = dict(op["component_fingerprints"])
        self.field_digests = {str(k): dict(v) for k, v in op["field_digests"].items()}
        self.data_location = op.get("data_location") or self.data_location
        if op.get("graph") is not None:
            self.graph = {k: list(v) for k, v in op["graph"].items()}
        self.status = CheckpointStatus.IN_PROGRESS
        self.failed_component = None

    def invalidate(self, names: list[str], reason: str) -> None:
        """Mark ``names`` not done (they will run again), keeping why in the attempt history."""
        present = [n for n in names if n in self.components or self.has_completed(n)]
        if present:
            self._do({"op": "invalidate", "names": present, "reason": reason})

    def _op_invalidate(self, op: dict[str, Any]) -> None:
        names = set(op["names"])
        self.completed_components = [n for n in self.completed_components if n not in names]
        for name in names:
            self.components.pop(name, None)
        if self.attempts:
            self.attempts[-1].events.append({"event": "invalidated", "names": op["names"], "reason": op["reason"]})

    def record_skipped(self, name: str) -> None:
        """Note that the current attempt skipped ``name`` (saved with the next change)."""
        self._do({"op": "skip", "name": name})

    def _op_skip(self, op: dict[str, Any]) -> None:
        if self.attempts:
            self.attempts[-1]._note_skipped(op["name"])

    def record_completed(
        self,
        name: str,
        duration_ms: int,
        *,
        fingerprint: str | None = None,
        outputs: list[dict[str, Any]] | None = None,
        reads: Sequence[str] | None = None,
        writes: Sequence[str] | None = None,
    ) -> None:
        """Record that ``name`` finished in the current attempt.

        ``outputs`` describe its saved views; ``reads`` / ``writes`` name the temp views it read and
        produced, where known (kept for planners that work from the checkpoint alone).
        """
        op: dict[str, Any] = {
            "op": "complete",
            "name": name,
            "duration_ms": int(duration_ms),
            "fingerprint": fingerprint,
            "outputs": outputs or [],
        }
        if reads is not None or writes is not None:
            op["views"] = _views_entry(reads, writes)
        self._do(op)

    def _op_complete(self, op: dict[str, Any]) -> None:
        name = op["name"]
        attempt = self.attempts[-1] if self.attempts else None
        self._done_index.remove(self.completed_components, name)  # a component completed again moves to the end
        self._done_index.append_once(self.completed_components, name)
        self.components[name] = ComponentRecord(
            attempt=attempt.attempt if attempt else 0,
            duration_ms=op["duration_ms"],
            completed_at=op["at"],
            fingerprint=op.get("fingerprint"),
            outputs=list(op.get("outputs") or []),
        )
        if op.get("views") is not None:
            self.views[name] = dict(op["views"])
        if attempt is not None:
            attempt._note_ran(name)
            attempt.durations_ms[name] = op["duration_ms"]
        if self.failed_component == name:
            self.failed_component = None

    def record_failed(self, name: str, error: BaseException, duration_ms: int = 0) -> None:
        """Record that ``name`` failed in the current attempt."""
        message = first_line(error, _MAX_ERROR_MESSAGE)
        self._do(
            {
                "op": "fail",
                "name": name,
                "error_type": type(error).__name__,
                "error_message": message,
                "duration_ms": int(duration_ms),
            }
        )

    def _op_fail(self, op: dict[str, Any]) -> None:
        self.failed_component = op["name"]
        if self.attempts:
            attempt = self.attempts[-1]
            attempt.failed = op["name"]
            attempt.error_type = op["error_type"]
            attempt.error_message = op["error_message"]
            attempt.durations_ms[op["name"]] = op.get("duration_ms", 0)

    def record_event(self, event: str, **details: Any) -> None:
        """Add a free-form event to the current attempt's history (e.g. outputs cleaned up)."""
        self._do({"op": "event", "event": event, "details": details})

    def _op_event(self, op: dict[str, Any]) -> None:
        if self.attempts:
            self.attempts[-1].events.append({"event": op["event"], **op.get("details", {}), "at": op["at"]})

    def finish_attempt(
        self, status: str, *, views: Mapping[str, tuple[Sequence[str] | None, Sequence[str] | None]] | None = None
    ) -> None:
        """End the current attempt with ``status`` (completed / failed / interrupted).

        ``views`` maps components that did not complete to the temp views they read and produce
        (``(reads, writes)``, ``None`` where unknown), so that a planner working from the checkpoint alone
        knows what they need when they run next.
        """
        if status not in CheckpointStatus.ALL:
            raise ValueError(f"invalid status {status!r}")
        op: dict[str, Any] = {"op": "finish", "status": status}
        if views:
            op["views"] = {str(name): _views_entry(reads, writes) for name, (reads, writes) in views.items()}
        self._do(op)

    def _op_finish(self, op: dict[str, Any]) -> None:
        for name, entry in (op.get("views") or {}).items():
            if not self.has_completed(name):  # a completed component's record is the one to keep
                self.views[name] = dict(entry)
        self.status = op["status"]
        if self.attempts:
            self.attempts[-1].status = op["status"]
            self.attempts[-1].ended_at = op["at"]

    # -- serialisation ----------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON document of this state (``pending_ops`` are not part of it)."""
        return self.document(detached=True)

    def document(self, *, detached: bool = True) -> dict[str, Any]:
        """Return the JSON document of this state.

        With ``detached=False`` the document shares this state's lists and dicts instead of copying them:
        for serialising it at once (what stores do), never for keeping or changing it.
        """
        out: dict[str, Any] = dict(copy.deepcopy(self.extra) if detached else self.extra)
        out.update(
            {
                "schema_version": SCHEMA_VERSION,
                "run_id": self.run_id,
                "pipeline_name": self.pipeline_name,
                "pipeline_fingerprint": self.pipeline_fingerprint,
                "status": self.status,
                "created_at": self.created_at,
                "updated_at": self.updated_at,
                "completed_components": list(self.completed_components) if detached else self.completed_components,
                "failed_component": self.failed_component,
                "components": {k: v._document(detached=detached) for k, v in self.components.items()},
                "component_fingerprints": (
                    dict(self.component_fingerprints) if detached else self.component_fingerprints
                ),
                "field_digests": copy.deepcopy(self.field_digests) if detached else self.field_digests,
                "attempts": [a._document(detached=detached) for a in self.attempts],
                "data_location": self.data_location,
            }
        )
        if self.graph:
            out["graph"] = {k: list(v) for k, v in self.graph.items()} if detached else self.graph
        if self.views:
            out["views"] = copy.deepcopy(self.views) if detached else self.views
        return out

    @classmethod
    def from_dict(cls, data: Any) -> CheckpointState:
        """Read a checkpoint document of any known schema version.

        Raises:
            CheckpointVersionError: written by a newer, incompatible airflow-ppf.
            ValueError: not a checkpoint document (missing or wrongly typed fields); the message says which.
        """
        if not isinstance(data, dict):
            raise ValueError(f"expected a JSON object, got {type(data).__name__}")
        version = data.get("schema_version")
        if version is None:
            return cls._from_seed_format(data)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"schema_version must be an integer, got {version!r}")
        if version > SCHEMA_VERSION:
            raise CheckpointVersionError(
                f"checkpoint schema version {version} was written by a newer airflow-ppf; this version reads "
                f"up to {SCHEMA_VERSION}. Upgrade airflow-ppf on this worker, or move the checkpoint aside to "
                "start this run from the beginning (ppf checkpoints clear, or on_corrupt_checkpoint='restart' "
                "in the operator)"
            )
        if version < 1:
            raise CheckpointVersionError(f"unknown checkpoint schema version {version}")
        known = {
            "schema_version",
            "run_id",
            "pipeline_name",
            "pipeline_fingerprint",
            "status",
            "created_at",
            "updated_at",
            "completed_components",
            "failed_component",
            "components",
            "component_fingerprints",
            "field_digests",
            "attempts",
            "data_location",
            "graph",
            "views",
        }
        try:
            _require(data, "run_id", str)
            _require(data, "pipeline_name", str)
            _require(data, "pipeline_fingerprint", str)
            _require(data, "completed_components", list)
            state = cls(
                run_id=data["run_id"],
                pipeline_name=data["pipeline_name"],
                pipeline_fingerprint=data["pipeline_fingerprint"],
                completed_components=[str(n) for n in data["completed_components"]],
                failed_component=data.get("failed_component"),
                status=str(data.get("status", CheckpointStatus.IN_PROGRESS)),
                created_at=str(data.get("created_at", "")),
                updated_at=str(data.get("updated_at", "")),
                components={str(k): ComponentRecord.from_dict(v) for k, v in (data.get("components") or {}).items()},
                component_fingerprints=dict(data.get("component_fingerprints") or {}),
                field_digests=dict(data.get("field_digests") or {}),
                attempts=[AttemptRecord.from_dict(a) for a in (data.get("attempts") or [])],
                data_location=data.get("data_location"),
                graph=_graph_of(data.get("graph")),
                views=_views_of(data.get("views")),
                extra={k: v for k, v in data.items() if k not in known},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed checkpoint document: {type(exc).__name__}: {exc}") from None
        return state

    @classmethod
    def _from_seed_format(cls, data: dict[str, Any]) -> CheckpointState:
        """Read pyspark-pipeline-framework 1.0's checkpoint format (no schema_version)."""
        for key, kind in (("run_id", str), ("pipeline_name", str), ("completed_components", list)):
            _require(data, key, kind)
        return cls(
            run_id=data["run_id"],
            pipeline_name=data["pipeline_name"],
            # The seed's fingerprint hashes a different encoding; mark it so it never matches ours.
            pipeline_fingerprint="seed:" + str(data.get("pipeline_fingerprint", "")),
            completed_components=[str(n) for n in data["completed_components"]],
            failed_component=data.get("failed_component"),
            status=str(data.get("status", CheckpointStatus.IN_PROGRESS)),
            created_at=str(data.get("created_at", "")),
            updated_at=str(data.get("updated_at", "")),
        )

    def copy(self) -> CheckpointState:
        """Return a deep copy without pending operations."""
        return CheckpointState.from_dict(self.to_dict())


def _graph_of(value: Any) -> dict[str, list[str]]:
    """Read the stored dependency graph (absent in checkpoints written before it existed)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, list) for v in value.values()):
        raise ValueError("field 'graph' must map component names to lists of names")
    return {str(k): [str(d) for d in v] for k, v in value.items()}


def _views_entry(reads: Sequence[str] | None, writes: Sequence[str] | None) -> dict[str, list[str] | None]:
    return {
        "inputs": None if reads is None else [str(v) for v in reads],
        "outputs": None if writes is None else [str(v) for v in writes],
    }


def _views_of(value: Any) -> dict[str, dict[str, list[str] | None]]:
    """Read the recorded views of each component (absent in checkpoints written before they existed)."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, dict) for v in value.values()):
        raise ValueError("field 'views' must map component names to objects")
    out: dict[str, dict[str, list[str] | None]] = {}
    for name, known in value.items():
        out[str(name)] = {}
        for key in ("inputs", "outputs"):
            views = known.get(key)
            if views is not None and not isinstance(views, list):
                raise ValueError(f"field 'views.{name}.{key}' must be a list of names")
            out[str(name)][key] = None if views is None else [str(v) for v in views]
    return out


def recorded_graph(state: CheckpointState) -> tuple[dict[str, list[str]], bool]:
    """Return the pipeline's ``name -> depends_on`` as the checkpoint recorded it, and whether it is known.

    Checkpoints written before the graph was recorded only know the names (from the fingerprints, the
    completed list and the attempts); they get no edges.
    """
    if state.graph:
        return {name: list(deps) for name, deps in state.graph.items()}, True
    names: dict[str, list[str]] = {}
    for name in [*state.component_fingerprints, *state.completed_components]:
        names.setdefault(name, [])
    for attempt in state.attempts:
        for name in [*attempt.ran, *attempt.skipped, *([attempt.failed] if attempt.failed else [])]:
            names.setdefault(name, [])
    return names, False


def _require(data: dict[str, Any], key: str, kind: type) -> None:
    if key not in data:
        raise ValueError(f"missing field {key!r}")
    if not isinstance(data[key], kind):
        raise ValueError(f"field {key!r} must be a {kind.__name__}, got {type(data[key]).__name__}")


@dataclass(frozen=True)
class Fence:
    """Who wrote a stored checkpoint last (its latest attempt and that attempt's writer): all that
    :func:`check_fence` needs, kept by stores so that a write need not load the whole stored checkpoint."""

    attempt: int
    writer: str
    #: Whether the checkpoint has any attempt (one without any can be overwritten by anyone).
    has_attempts: bool = True

    @classmethod
    def of(cls, state: CheckpointState) -> Fence:
        return cls(state.attempt, state.writer, bool(state.attempts))


def check_fence(stored: CheckpointState | Fence | None, incoming: CheckpointState) -> None:
    """Refuse a write that would overwrite a newer attempt's checkpoint.

    A write is allowed when nothing is stored, when it comes from a later attempt, or from the same
    attempt and the same writer. Writes that carry no attempt (tools editing a stored checkpoint) must
    carry the stored latest attempt unchanged.

    Raises:
        CheckpointFencedError: the stored checkpoint belongs to a newer attempt or another writer.
    """
    if stored is None:
        return
    if isinstance(stored, CheckpointState):
        stored = Fence.of(stored)
    if not stored.has_attempts:
        return
    mine, theirs = incoming.attempt, stored.attempt
    if mine > theirs:
        return
    if mine == theirs and incoming.writer == stored.writer:
        return
    raise CheckpointFencedError(incoming.run_id, theirs, stored.writer, mine, incoming.writer)
