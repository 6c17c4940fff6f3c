"""Names of checkpoints: the run id of an Airflow task instance, and safe file names for any run id.

Both are read by the operator (which writes checkpoints), the UI plugin (which finds them) and the stores
(which name files and folders after them): they live here, once.
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["check_run_id", "pipeline_run_id", "safe_file_name"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def pipeline_run_id(dag_id: str, dag_run_id: str, task_id: str, map_index: int | None = -1) -> str:
    """The checkpoint run id of one task instance: ``dag/run/task``, plus ``[i]`` for mapped tasks.

    Stable across the tries of a task instance, distinct for every other task instance.
    """
    base = f"{dag_id}/{dag_run_id}/{task_id}"
    return f"{base}[{map_index}]" if map_index is not None and map_index >= 0 else base


def check_run_id(run_id: object) -> str:
    """Return ``run_id`` if it is a usable checkpoint run id: a string that is not empty or blank.

    Raises:
        TypeError: not a string (an int run id would fail much later, in a file name or a JSON key).
        ValueError: empty or only white space.
    """
    if not isinstance(run_id, str):
        raise TypeError(f"run_id must be a string, got {type(run_id).__name__} ({run_id!r})")
    if not run_id.strip():
        raise ValueError(f"run_id must not be empty (got {run_id!r})")
    return run_id


def safe_file_name(text: str, max_slug: int = 60) -> str:
    """Map any string to a file name that is unique per input and cannot traverse directories.

    ``scheduled__2024-01-01T00:00:00+00:00`` becomes ``scheduled__2024-01-01T00_00_00_00_00-<hash>``;
    the hash keeps ``a:b`` and ``a_b`` apart, the slug keeps names readable.
    """
    slug = _UNSAFE.sub("_", text).lstrip(".-")[:max_slug] or "x"
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]
    return f"{slug}-{digest}"
