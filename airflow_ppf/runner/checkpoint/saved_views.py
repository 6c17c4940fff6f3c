"""Save temp views to durable storage when their producer completes, and restore them on resume.

Layout under the data location (any Spark-writable URI)::

    <location>/<pipeline>/<run>/<component>/<view>/a<attempt>-<id>/   parquet files
                                                             _PPF_COMMITTED   written last

A copy is complete only when its commit marker exists: the marker is written after Spark's job commit,
so a write that dies halfway leaves a folder without it, which is never restored and is cleaned up.
Each copy gets a fresh folder, so nothing is ever overwritten in place.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from airflow_ppf.runner.checkpoint.state import utcnow
from airflow_ppf.runner.checkpoint.stores import safe_file_name
from airflow_ppf.runner.report import describe_error
from airflow_ppf.spark.fs import DataFileSystem, filesystem_for, is_local_uri, join_uri

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = ["COMMIT_MARKER", "ViewMaterializer"]

log = logging.getLogger(__name__)

COMMIT_MARKER = "_PPF_COMMITTED"


def _schema_hash(schema_json: str) -> str:
    return hashlib.sha256(schema_json.encode("utf-8")).hexdigest()[:16]


class ViewMaterializer:
    """Save, verify, restore and clean up the materialized views of one pipeline run.

    Args:
        location: base URI of checkpoint data (local path, ``file://``, ``hdfs://``, ``s3a://``...).
        pipeline_name: the pipeline.
        run_id: the run (any characters; mapped to safe folder names).
        spark: returns the SparkSession (called only when Spark is really needed).
    """

    def __init__(self, location: str, pipeline_name: str, run_id: str, spark: Callable[[], SparkSession]) -> None:
        self.location = location
        self.run_root = join_uri(location, safe_file_name(pipeline_name), safe_file_name(run_id))
        self._spark = spark
        self._fs: DataFileSystem | None = None
        self.restore_seconds = 0.0
        self.restored_bytes = 0

    @property
    def fs(self) -> DataFileSystem:
        if self._fs is None:
            spark = None if is_local_uri(self.location) else self._spark()
            self._fs = filesystem_for(spark, self.location)
        return self._fs

    def save(self, component: str, view: str, attempt: int) -> dict[str, Any]:
        """Write ``view`` as parquet, commit it, and re-point the view at the saved copy.

        Downstream components then read the saved copy instead of recomputing the view's lineage.
        Returns the output record kept in the checkpoint.
        """
        spark = self._spark()
        target = join_uri(
            self.run_root, safe_file_name(component), safe_file_name(view), f"a{attempt}-{uuid.uuid4().hex[:8]}"
        )
        started = time.monotonic()
        spark.table(view).write.mode("errorifexists").parquet(target)
        saved = spark.read.parquet(target)
        record: dict[str, Any] = {
            "view": view,
            "path": target,
            "format": "parquet",
            "schema_hash": _schema_hash(saved.schema.json()),
            "rows": saved.count(),
            "bytes": self.fs.size(target),
        }
        self.fs.write_text(join_uri(target, COMMIT_MARKER), json.dumps({**record, "committed_at": utcnow()}))
        saved.createOrReplaceTempView(view)
        log.info(
            "Saved view %r of %s: %d rows, %.1f MB in %.1f s (%s)",
            view,
            component,
            record["rows"],
            int(record["bytes"]) / 1e6,
            time.monotonic() - started,
            target,
        )
        return record

    def verify(self, record: dict[str, Any]) -> str | None:
        """Check a recorded output against reality; return what is wrong, or ``None`` when it is usable."""
        path, view = record.get("path"), record.get("view")
        if not path or not view:
            return "its output record is incomplete"
        try:
            if not self.fs.exists(path):
                return f"saved view '{view}' is missing ({path})"
            marker_uri = join_uri(path, COMMIT_MARKER)
            if not self.fs.exists(marker_uri):
                return f"saved view '{view}' has no commit marker (an unfinished write) at {path}"
            marker = json.loads(self.fs.read_text(marker_uri))
            schema = self._spark().read.parquet(path).schema.json()
        except Exception as exc:  # a damaged copy must lead to a rerun, never to a crash
            return f"saved view '{view}' cannot be read ({describe_error(exc, 200)})"
        if marker.get("schema_hash") != record.get("schema_hash") or _schema_hash(schema) != record.get("schema_hash"):
            return f"saved view '{view}' does not have the recorded schema ({path})"
        return None

    def restore(self, record: dict[str, Any]) -> None:
        """Register the saved copy under its view name."""
        started = time.monotonic()
        self._spark().read.parquet(record["path"]).createOrReplaceTempView(record["view"])
        self.restore_seconds += time.monotonic() - started
        self.restored_bytes += int(record.get("bytes") or 0)
        log.info("Restored view %r from %s", record["view"], record["path"])

    def copies(self) -> list[str]:
        """Every saved-copy folder of this run (committed or not)."""
        found: list[str] = []
        for component_dir in self.fs.list_dir(self.run_root):
            for view_dir in self.fs.list_dir(component_dir):
                found.extend(self.fs.list_dir(view_dir))
        return found

    def remove_unreferenced(self, keep: Iterable[str]) -> list[str]:
        """Delete saved copies the checkpoint does not reference (unfinished or superseded writes)."""
        wanted = {p.rstrip("/") for p in keep}
        removed = []
        for copy in self.copies():
            if _normalise(copy) not in {_normalise(w) for w in wanted}:
                self.fs.delete(copy)
                removed.append(copy)
        if removed:
            log.info(
                "Removed %d unreferenced saved cop%s: %s", len(removed), "y" if len(removed) == 1 else "ies", removed
            )
        return removed

    def delete_all(self) -> bool:
        """Delete every saved view of this run."""
        deleted = self.fs.delete(self.run_root)
        if deleted:
            log.info("Deleted the saved views of this run (%s)", self.run_root)
        return deleted


def _normalise(uri: str) -> str:
    """Compare ``file:/x``, ``file:///x`` and ``/x`` as the same place."""
    text = uri.rstrip("/")
    for prefix in ("file://", "file:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return "/" + text.lstrip("/") if text.startswith("/") else text
