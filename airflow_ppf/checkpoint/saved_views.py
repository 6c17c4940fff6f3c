"""Saved views: temp views written to durable storage when their producer completes, restored on resume.

Layout under the data location (any Spark-writable URI)::

    <location>/<pipeline>/<run>/<component>/<view>/a<attempt>-<id>/   parquet files
                                                             _PPF_COMMITTED   written last

A saved view is complete only when its commit marker exists: the marker is written after Spark's job
commit, so a write that dies halfway leaves a folder without it, which is never restored and is cleaned
up. Each save gets a fresh folder, so nothing is ever overwritten in place.

The marker lists the saved view's files with their sizes and (on local paths) a CRC-32 of each file's
bytes, its schema and its row count. Before a saved view is restored, :meth:`SavedViews.verify` checks all
of them, so a deleted, truncated, replaced or altered file makes its producer run again instead of failing
the component that reads the view. With checksums this reads the files at disk speed and starts no Spark
job; without them (remote file systems, markers written before checksums were recorded) the row count is
checked by reading every file's footer, a cheap Spark job.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeGuard
from urllib.parse import urlparse

from airflow_ppf.checkpoint.naming import safe_file_name
from airflow_ppf.checkpoint.state import CheckpointState, utcnow
from airflow_ppf.runner.report import describe_error
from airflow_ppf.spark.fs import (
    DataFileSystem,
    filesystem_for,
    is_local_uri,
    join_uri,
    local_path,
    local_path_shared_with,
)
from airflow_ppf.spark.jvm import analyzed_plan, executed_plan, has_driver_jvm, temp_view_plan
from airflow_ppf.spark.parquet import parquet_row_count

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, DataFrameReader, SparkSession

__all__ = [
    "COMMIT_MARKER",
    "SavedViewDamagedError",
    "SavedViews",
    "ViewNotSavedError",
    "changed_views",
    "damaged_saved_view",
    "describe_damage",
    "has_temp_view",
    "is_missing_problem",
    "temp_views",
]

log = logging.getLogger(__name__)

COMMIT_MARKER = "_PPF_COMMITTED"

#: How :meth:`SavedViews.verify` starts to say that a saved view's folder is gone (:func:`is_missing_problem`).
_MISSING = "saved view '{view}' is missing"


def _schema_hash(schema_json: str) -> str:
    return hashlib.sha256(schema_json.encode("utf-8")).hexdigest()[:16]


class ViewNotSavedError(RuntimeError):
    """Spark refused to write the view as parquet before writing anything (e.g. duplicate column names,
    which a view made by a join can have); the view stays as it is and is recorded as not saved."""


class SavedViews:
    """Save, verify, restore and clean up the saved views of one pipeline run.

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
        # Frames read by verify(), reused by restore().
        self._verified: dict[str, DataFrame] = {}

    @property
    def fs(self) -> DataFileSystem:
        if self._fs is None:
            spark = None if is_local_uri(self.location) else self._spark()
            self._fs = filesystem_for(spark, self.location)
        return self._fs

    def save(self, component: str, view: str, attempt: int) -> dict[str, Any]:
        """Write ``view`` as parquet, commit it, and re-point the view at the saved view.

        Downstream components then read the saved view instead of recomputing the view's lineage.
        Returns the output record kept in the checkpoint.

        Raises:
            ViewNotSavedError: Spark refused the view before writing anything (nothing is left behind).
            Exception: the write failed while running (the view's own computation failed, or storage);
                the unfinished folder is removed.
        """
        spark = self._spark()
        # Spark Connect: the server writes the files, this process checks and commits it. (The probe goes
        # inside the run's folder, so that deleting the run's saved views removes any leftover of it.)
        if (
            is_local_uri(self.location)
            and not has_driver_jvm(spark)
            and local_path_shared_with(spark, join_uri(self.run_root, "probe")) is None
        ):
            raise ViewNotSavedError(
                f"the Spark Connect server does not see the data location {self.location}; "
                "use a path that this process and the server both see (the same machine or a shared mount)"
            )
        target = join_uri(
            self.run_root, safe_file_name(component), safe_file_name(view), f"a{attempt}-{uuid.uuid4().hex[:8]}"
        )
        started = time.monotonic()
        original = spark.table(view)
        # Rows are counted from the written files' footers where this process can read them (local paths),
        # else by the write itself (an observed metric): never by a second job.
        local = is_local_uri(self.location)
        counted, rows_of = (original, _not_counted) if local else _counting(original)
        try:
            counted.write.mode("error").parquet(target)
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.fs.delete(target)
            if _is_analysis_error(exc):
                raise ViewNotSavedError(f"Spark cannot save it as parquet: {describe_error(exc, 200)}") from exc
            raise
        # Read back with the view's own schema: the same as Spark would infer from the files (all columns
        # nullable), without the job that inference costs.
        saved = _reader(spark).schema(original.schema).parquet(target)
        schema_json = saved.schema.json()
        files = self._list_files(target)
        rows = _footer_rows(target, files) if local else rows_of()
        record: dict[str, Any] = {
            "view": view,
            "path": target,
            "format": "parquet",
            "schema_hash": _schema_hash(schema_json),
            "rows": saved.count() if rows is None else rows,
            "bytes": sum(files.values()),
        }
        marker = {**record, "schema": schema_json, "files": files, "committed_at": utcnow()}
        checksums = self._checksums(target, files)
        if checksums is not None:
            marker["checksums"] = checksums
        self.fs.write_text(join_uri(target, COMMIT_MARKER), json.dumps(marker))
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

    def cheap_to_recompute(self, view: str) -> bool:
        """Whether ``view`` is a narrow query over saved views or generated data (no shuffle, no other source).

        Such a view is not worth saving under ``auto``: recomputing it on a resume (by rerunning its
        producer, which reads the restored views) costs about what reading a saved view would, while
        saving it costs a full extra write and read on every successful run. Decided from Spark's physical
        plan and the files it reads; anything unrecognised (other sources, Python UDFs, Spark Connect)
        counts as expensive.
        """
        frame = self._spark().table(view)
        logical = analyzed_plan(frame)
        if logical is not None and _EXPENSIVE_LOGICAL.search(logical):
            # A quick first look (planning a query physically takes a tenth of a second or more): an
            # aggregation, join, sort... in the query as written. The optimiser may still remove one (then
            # the view is saved although the physical plan would have found it cheap: over-saving is safe).
            return False
        plan = executed_plan(frame)
        if plan is None:
            return False
        if _EXPENSIVE.search(plan) or ("FileScan" in plan and "FileScan parquet" not in plan):
            return False
        # The files Spark will read, named in full (the plan's text cuts long paths short, often inside
        # the run's own folder): all must be in saved views of this run.
        try:
            files = frame.inputFiles()
        except Exception:
            return False
        root = _normalise(self.run_root)
        return all(_normalise(f).startswith(root + "/") for f in files)

    def verify(self, record: dict[str, Any]) -> str | None:
        """Check a recorded output against reality; return what is wrong, or ``None`` when it is usable.

        Checks that the saved view and its commit marker exist, that its schema and row count are the
        recorded ones, that its files are those the marker lists (same names and sizes) and hold the bytes
        that were saved: their checksums, where the marker has them (local paths), else by reading every
        file's footer for the row count (a Spark job). Any error doing so is a reason to rerun the
        producer, never a crash.
        """
        path, view = record.get("path"), record.get("view")
        if not path or not view:
            return "its output record is incomplete"
        try:
            if not self.fs.exists(path):
                return f"{_MISSING.format(view=view)} ({path})"
            marker_uri = join_uri(path, COMMIT_MARKER)
            if not self.fs.exists(marker_uri):
                return f"saved view '{view}' has no commit marker (an unfinished write) at {path}"
            marker = json.loads(self.fs.read_text(marker_uri))
            if not isinstance(marker, dict):
                return f"saved view '{view}' has a damaged commit marker at {path}"
            if marker.get("schema_hash") != record.get("schema_hash"):
                return f"saved view '{view}' does not have the recorded schema ({path})"
            files = self._list_files(path)
            changed = _files_changed(marker.get("files"), files)
            if changed:
                return f"saved view '{view}' is damaged: {changed} ({path})"
            frame = self._read(path, marker.get("schema"))
            if _schema_hash(frame.schema.json()) != record.get("schema_hash"):
                return f"saved view '{view}' does not have the recorded schema ({path})"
            checksums = marker.get("checksums")
            if _checkable(checksums, marker.get("files")):
                # Same bytes as saved: same footers, same rows. No Spark job.
                altered = self._checksums_changed(path, checksums)
                if altered:
                    return f"saved view '{view}' is damaged: {altered} ({path})"
                rows = marker.get("rows")
            else:
                rows = frame.count()  # reads every file's footer: catches damaged files
        except Exception as exc:  # a damaged saved view must lead to a rerun, never to a crash
            return f"saved view '{view}' cannot be read ({describe_error(exc, 200)})"
        if record.get("rows") is not None and rows != int(record["rows"]):
            return f"saved view '{view}' has {rows} rows, {record['rows']} were saved ({path})"
        self._verified[_normalise(path)] = frame
        return None

    def _checksums(self, path: str, files: Mapping[str, int]) -> dict[str, str] | None:
        """``{file name: checksum}`` of a saved view's files, or ``None`` when the file system has none."""
        out: dict[str, str] = {}
        for name in files:
            checksum = self.fs.checksum(join_uri(path, name))
            if checksum is None:
                return None
            out[name] = checksum
        return out

    def _checksums_changed(self, path: str, expected: Mapping[str, str]) -> str | None:
        """Say which files of a saved view no longer have their recorded checksum (``None``: all do)."""
        altered = sorted(
            name for name, checksum in expected.items() if self.fs.checksum(join_uri(path, name)) != checksum
        )
        if not altered:
            return None
        return f"{len(altered)} file(s) changed content ({altered[0]}...)"

    def restore(self, record: dict[str, Any]) -> None:
        """Register the saved view under its view name."""
        started = time.monotonic()
        frame = self._verified.pop(_normalise(record["path"]), None)
        if frame is None:
            frame = _reader(self._spark()).parquet(record["path"])
        frame.createOrReplaceTempView(record["view"])
        self.restore_seconds += time.monotonic() - started
        self.restored_bytes += int(record.get("bytes") or 0)
        log.info("Restored view %r from %s", record["view"], record["path"])

    def _read(self, path: str, schema_json: str | None) -> DataFrame:
        """Read a saved view with its recorded schema (no inference job); infer it for older markers."""
        spark = self._spark()
        if not schema_json:
            return _reader(spark).parquet(path)
        from pyspark.sql.types import StructType

        schema = StructType.fromJson(json.loads(schema_json))
        return _reader(spark).schema(schema).parquet(path)

    def _list_files(self, path: str) -> dict[str, int]:
        """``{file name: size}`` of a saved view (a flat folder), without the commit marker."""
        files = {}
        for entry in self.fs.list_dir(path):
            name = entry.rstrip("/").rpartition("/")[2]
            if name != COMMIT_MARKER:
                files[name] = self.fs.size(entry)
        return files

    def folders(self) -> list[str]:
        """Every saved view's folder of this run (committed or not)."""
        found: list[str] = []
        for component_dir in self.fs.list_dir(self.run_root):
            for view_dir in self.fs.list_dir(component_dir):
                found.extend(self.fs.list_dir(view_dir))
        return found

    def remove_unreferenced(self, keep: Iterable[str]) -> list[str]:
        """Delete saved views the checkpoint does not reference (unfinished or superseded writes)."""
        wanted = {p.rstrip("/") for p in keep}
        removed = []
        for folder in self.folders():
            if _normalise(folder) not in {_normalise(w) for w in wanted}:
                self.fs.delete(folder)
                removed.append(folder)
        if removed:
            log.info(
                "Removed %d unreferenced saved view%s: %s", len(removed), "" if len(removed) == 1 else "s", removed
            )
        return removed

    def delete_all(self) -> bool:
        """Delete every saved view of this run."""
        deleted = self.fs.delete(self.run_root)
        if deleted:
            log.info("Deleted the saved views of this run (%s)", self.run_root)
        return deleted


#: Physical operators that make a view expensive to recompute: shuffles, aggregations, joins, sorts,
#: windows, Python code, and scans of anything but a parquet file or generated rows.
_EXPENSIVE = re.compile(
    r"Exchange|Aggregate|Join|Window|Sort\b|Expand|Generate|EvalPython|InPandas|InArrow|MapPartitions"
    r"|BatchScan|Scan (?!parquet)|ExistingRDD|InMemoryTableScan|Cartesian"
)
#: Logical operators (a line of the analyzed plan's tree starting with one) that make a view expensive.
_EXPENSIVE_LOGICAL = re.compile(
    r"^[\s:|+-]*(?:Aggregate|Join|Window|Sort|Generate|Expand|Distinct|Deduplicate|Intersect|Except"
    r"|Repartition|RepartitionByExpression|RebalancePartitions|FlatMapGroupsInPandas|MapInPandas|MapInArrow)\b",
    re.MULTILINE,
)
#: Error texts of a failed read of a file (corrupt data, a checksum mismatch, a file gone).
_READ_FAILURE = re.compile(
    r"FAILED_READ_FILE|ChecksumException|ParquetDecodingException|FileNotFoundException|not a Parquet file"
    r"|CANNOT_READ_FILE_FOOTER"
)


class SavedViewDamagedError(RuntimeError):
    """A component failed reading a saved view whose files are damaged (found only when read: sizes and
    footers were intact). The message names the saved view, its folder, the damaged file and the damage;
    the read error is the cause."""


#: What a failed read of a saved view's file says about the damage, first match wins.
_DAMAGE_KINDS = (
    (re.compile(r"ChecksumException|checksum verification failed|Checksum error", re.IGNORECASE), "checksum mismatch"),
    (re.compile(r"FileNotFoundException|No such file", re.IGNORECASE), "missing file"),
    (re.compile(r"not a Parquet file|CANNOT_READ_FILE_FOOTER|footer", re.IGNORECASE), "unreadable footer"),
    (re.compile(r"ParquetDecodingException|Can not read value|decompress", re.IGNORECASE), "undecodable data"),
)


def _error_text(error: BaseException) -> str:
    """The messages of ``error`` and its causes (a Py4J error's message holds the JVM's whole chain)."""
    texts: list[str] = []
    seen: BaseException | None = error
    while seen is not None and len(texts) < 10:
        texts.append(str(seen))
        seen = seen.__cause__ or seen.__context__
    return "\n".join(texts)


def _local_part(path: str) -> str:
    """The path part of a saved view's folder: it identifies it whatever the scheme and authority look like
    in an error (the folder name is unique: attempt and a random id)."""
    return urlparse(path).path.rstrip("/")


def is_missing_problem(problem: str, view: str) -> bool:
    """Whether ``problem``, found by :meth:`SavedViews.verify`, is that the saved view ``view`` is gone."""
    return problem.startswith(_MISSING.format(view=view))


def describe_damage(error: BaseException, path: str) -> str:
    """What ``error``, a failed read of the saved view at ``path``, says is wrong: ``checksum mismatch in
    part-00000-….snappy.parquet`` (the damage, and the file when the error names one)."""
    text = _error_text(error)
    kind = next((name for pattern, name in _DAMAGE_KINDS if pattern.search(text)), "unreadable data")
    files = re.findall(re.escape(_local_part(path)) + r"/([^\s/'\"`,;:()\[\]]+)", text)
    names = [f.rstrip(".") for f in files if f.rstrip(".") and not f.startswith(".")]
    if not names:
        return kind
    return f"{names[0]} is missing" if kind == "missing file" else f"{kind} in {names[0]}"


def damaged_saved_view(state: CheckpointState, error: BaseException) -> tuple[str, str] | None:
    """``(producer, view)`` of the saved view that ``error`` failed to read, if it is one of the run's."""
    text = _error_text(error)
    if not _READ_FAILURE.search(text):
        return None
    for name, record in state.components.items():
        if not state.has_completed(name):
            continue
        for output in record.outputs:
            path = output.get("path")
            where = _local_part(path) if path else ""
            if where and f"{where}/" in text:
                return name, str(output.get("view"))
    return None


def _reader(spark: SparkSession) -> DataFrameReader:
    """A reader of saved views that checks every data page's CRC (Spark writes them; it checks none by
    default): damage inside the data then fails the read instead of giving wrong rows, also on stores
    without checksums of their own (object stores)."""
    return spark.read.option("parquet.page.verify-checksum.enabled", "true")


def _normalise(uri: str) -> str:
    """Compare ``file:/x``, ``file:///x`` and ``/x`` as the same place."""
    text = uri.rstrip("/")
    for prefix in ("file://", "file:"):
        if text.startswith(prefix):
            text = text[len(prefix) :]
            break
    return "/" + text.lstrip("/") if text.startswith("/") else text


def _files_changed(expected: Any, found: dict[str, int]) -> str | None:
    """Say how the files of a saved view differ from those its marker lists (``None``: same, or not listed)."""
    if not isinstance(expected, dict):
        return None  # a marker written before files were listed
    missing = sorted(set(expected) - set(found))
    if missing:
        return f"{len(missing)} file(s) missing ({missing[0]}...)"
    resized = sorted(n for n in expected if int(expected[n]) != found[n])
    if resized:
        name = resized[0]
        return f"{len(resized)} file(s) changed size ({name}: {found[name]} bytes, {expected[name]} saved)"
    extra = sorted(set(found) - set(expected))
    if extra:
        return f"{len(extra)} unexpected file(s) ({extra[0]}...)"
    return None


def _checkable(checksums: Any, files: Any) -> TypeGuard[dict[str, str]]:
    """Whether a marker's checksums cover exactly its listed files (markers of older versions have none)."""
    return isinstance(checksums, dict) and isinstance(files, dict) and bool(files) and set(checksums) == set(files)


def _not_counted() -> int | None:
    return None


def _footer_rows(folder: str, files: Mapping[str, int]) -> int | None:
    """The rows of a saved view on a local path, from its data files' footers (``None``: one is unreadable)."""
    total = 0
    for name in files:
        if name.startswith(("_", ".")):
            continue  # Spark's _SUCCESS, Hadoop's .crc sidecars
        rows = parquet_row_count(local_path(join_uri(folder, name)))
        if rows is None:
            return None
        total += rows
    return total


def _counting(frame: DataFrame) -> tuple[DataFrame, Callable[[], int | None]]:
    """Return ``frame`` with a row counter that the write fills in (no second job to count)."""
    try:
        from pyspark.sql import Observation
        from pyspark.sql import functions as F

        observation = Observation(f"ppf_rows_{uuid.uuid4().hex[:8]}")
        counted = frame.observe(observation, F.count(F.lit(1)).alias("rows"))
    except Exception:  # older or unusual sessions: count after the write instead
        return frame, lambda: None

    def rows() -> int | None:
        try:
            return int(observation.get["rows"])
        except Exception:
            return None

    return counted, rows


def _is_analysis_error(exc: BaseException) -> bool:
    """Whether Spark rejected the query before running it (schema problems, unsupported types)."""
    from pyspark.errors import AnalysisException

    return isinstance(exc, AnalysisException)


def temp_views(spark: SparkSession) -> dict[str, Any]:
    """``{view: identity}`` of the session's temp views; the identity (the JVM plan object the view is
    registered with) changes when a view is replaced, and is ``None`` without a JVM (Spark Connect)."""
    return {t.name: temp_view_plan(spark, t.name) for t in spark.catalog.listTables() if t.isTemporary}


def changed_views(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """Views created, or replaced (registered again), between two :func:`temp_views` snapshots."""
    changed = []
    for name, plan in after.items():
        if name not in before:
            changed.append(name)
        elif plan is not None and before[name] is not None:
            try:
                same = bool(plan.equals(before[name]))
            except Exception:
                same = True
            if not same:
                changed.append(name)
    return sorted(changed)


def has_temp_view(spark: SparkSession, view: str) -> bool:
    """Whether the session has a table or view called ``view``."""
    try:
        return bool(spark.catalog.tableExists(view))
    except Exception:
        return False
