"""File operations on any Spark-writable URI (``file://``, plain paths, ``hdfs://``, ``s3a://``...).

Classic sessions go through Hadoop's ``FileSystem`` API in the driver JVM, so what Spark can write, this
can list, rename and delete with the same credentials. Local paths (and Spark Connect, which has no
driver JVM on the client) use the local file system.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import uuid
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from airflow_ppf.spark.jvm import hadoop_handles, has_driver_jvm

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

__all__ = [
    "NETWORK_FS_TYPES",
    "DataFileSystem",
    "HadoopFileSystem",
    "LocalFileSystem",
    "filesystem_for",
    "fsync_dir",
    "is_local_uri",
    "is_network_path",
    "join_uri",
    "local_path",
    "local_path_shared_with",
]


class DataFileSystem(Protocol):
    """The few file operations checkpoint data and atomic writes need."""

    def exists(self, uri: str) -> bool: ...

    def read_text(self, uri: str) -> str: ...

    def write_text(self, uri: str, text: str) -> None:
        """Create or replace a small file."""
        ...

    def delete(self, uri: str) -> bool:
        """Delete a file or a directory tree; return whether something was there."""
        ...

    def rename(self, src: str, dst: str) -> None:
        """Rename ``src`` to ``dst`` (which must not exist); raise ``OSError`` on failure."""
        ...

    def list_dir(self, uri: str) -> list[str]:
        """Full URIs of the entries of a directory (empty when it does not exist)."""
        ...

    def size(self, uri: str) -> int:
        """Total bytes of a file or directory tree."""
        ...

    def checksum(self, uri: str) -> str | None:
        """A checksum of a file's bytes (``"<algorithm>:<hex>"``), or ``None`` when this file system cannot
        give one without reading the file through Spark."""
        ...


def is_local_uri(uri: str) -> bool:
    """Whether ``uri`` is a local path (no scheme, or ``file:``)."""
    scheme = urlparse(uri).scheme
    return scheme in ("", "file") or (len(scheme) == 1 and os.name == "nt")


#: File system types of ``/proc/self/mountinfo`` whose files other machines see too (a shared mount).
NETWORK_FS_TYPES = frozenset(
    {
        *("nfs", "nfs4", "cifs", "smb3", "smbfs", "ceph", "glusterfs", "lustre", "afs", "gpfs", "beegfs"),
        *("ocfs2", "gfs2", "fuse.sshfs", "fuse.s3fs", "fuse.gcsfuse", "fuse.juicefs", "fuse.rclone"),
        *("fuse.goofys", "fuse.mountpoint-s3", "fuse.ceph-fuse", "fuse.glusterfs"),
    }
)


def is_network_path(uri: str, mountinfo: str | None = None) -> bool:
    """Whether a local ``uri`` lies on a network file system (NFS, SMB, CephFS, a FUSE mount of an object
    store...), which other machines mount too. Read from ``/proc/self/mountinfo`` (or the given text);
    ``False`` when that cannot be told (no ``/proc``, another OS)."""
    if not is_local_uri(uri):
        return False
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    path = os.path.realpath(local_path(uri))
    best, best_type = "", ""
    for line in mountinfo.splitlines():
        fields, _, tail = line.partition(" - ")
        parts = fields.split()
        if len(parts) < 5 or not tail:
            continue
        point = parts[4].replace("\\040", " ").replace("\\011", "\t").replace("\\134", "\\")
        inside = path == point or path.startswith(point.rstrip("/") + "/")
        if inside and len(point) >= len(best):
            best, best_type = point, tail.split()[0]
    return best_type in NETWORK_FS_TYPES


def join_uri(base: str, *parts: str) -> str:
    """Join path segments onto a path or URI with ``/``."""
    out = base.rstrip("/")
    for part in parts:
        out += "/" + part.strip("/")
    return out


def local_path(uri: str) -> Path:
    """The local path of a local URI (a plain path, or ``file:``)."""
    parsed = urlparse(uri)
    return Path(parsed.path if parsed.scheme == "file" else uri)


class LocalFileSystem:
    """:class:`DataFileSystem` on the local disk."""

    def exists(self, uri: str) -> bool:
        return local_path(uri).exists()

    def read_text(self, uri: str) -> str:
        return local_path(uri).read_text(encoding="utf-8")

    def write_text(self, uri: str, text: str) -> None:
        path = local_path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        fsync_dir(path.parent)

    def delete(self, uri: str) -> bool:
        path = local_path(uri)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            return True
        if path.exists() or path.is_symlink():
            path.unlink()
            return True
        return False

    def rename(self, src: str, dst: str) -> None:
        target = local_path(dst)
        if target.exists():
            raise FileExistsError(f"cannot rename {src} to {dst}: the target exists")
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(local_path(src), target)
        fsync_dir(target.parent)

    def list_dir(self, uri: str) -> list[str]:
        path = local_path(uri)
        if not path.is_dir():
            return []
        return [join_uri(uri, child.name) for child in sorted(path.iterdir())]

    def size(self, uri: str) -> int:
        path = local_path(uri)
        if path.is_file():
            return path.stat().st_size
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())

    def checksum(self, uri: str) -> str:
        """CRC-32 of the file's bytes (read at disk speed; catches any changed byte but deliberate forgery)."""
        crc = 0
        with open(local_path(uri), "rb", buffering=0) as fh:
            while chunk := fh.read(_CHUNK):
                crc = zlib.crc32(chunk, crc)
        return f"crc32:{crc:08x}"


#: Bytes read at a time by :meth:`LocalFileSystem.checksum`.
_CHUNK = 4 * 1024 * 1024


def fsync_dir(path: Path | str) -> None:
    """Make a rename or a new file in ``path`` durable (fsync of the directory itself)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class HadoopFileSystem:
    """:class:`DataFileSystem` through Hadoop's FileSystem API in the driver JVM."""

    def __init__(self, spark: SparkSession) -> None:
        self._jvm, self._conf = hadoop_handles(spark)

    def _path(self, uri: str) -> tuple[Any, Any]:
        path = self._jvm.org.apache.hadoop.fs.Path(uri)
        return path.getFileSystem(self._conf), path

    def exists(self, uri: str) -> bool:
        fs, path = self._path(uri)
        return bool(fs.exists(path))

    def read_text(self, uri: str) -> str:
        fs, path = self._path(uri)
        stream = fs.open(path)
        try:
            reader = self._jvm.java.io.BufferedReader(
                self._jvm.java.io.InputStreamReader(stream, self._jvm.java.nio.charset.StandardCharsets.UTF_8)
            )
            lines = []
            while (line := reader.readLine()) is not None:
                lines.append(line)
            return "\n".join(lines)
        finally:
            stream.close()

    def write_text(self, uri: str, text: str) -> None:
        fs, path = self._path(uri)
        stream = fs.create(path, True)
        try:
            stream.write(bytearray(text.encode("utf-8")))
            stream.hsync()
        finally:
            stream.close()

    def delete(self, uri: str) -> bool:
        fs, path = self._path(uri)
        if not fs.exists(path):
            return False
        return bool(fs.delete(path, True))

    def rename(self, src: str, dst: str) -> None:
        fs, source = self._path(src)
        _, target = self._path(dst)
        if fs.exists(target):
            raise FileExistsError(f"cannot rename {src} to {dst}: the target exists")
        parent = target.getParent()
        if parent is not None and not fs.exists(parent):
            fs.mkdirs(parent)
        if not fs.rename(source, target):
            raise OSError(f"rename of {src} to {dst} failed")

    def list_dir(self, uri: str) -> list[str]:
        fs, path = self._path(uri)
        if not fs.exists(path):
            return []
        return sorted(str(status.getPath().toString()) for status in fs.listStatus(path))

    def size(self, uri: str) -> int:
        fs, path = self._path(uri)
        return int(fs.getContentSummary(path).getLength())

    def checksum(self, uri: str) -> None:
        """``None``: reading a remote file through the py4j gateway would be slower than a Spark job."""
        return None


def filesystem_for(spark: SparkSession | None, uri: str) -> DataFileSystem:
    """Pick the file system for ``uri``: the local disk for local paths, else Hadoop's through the JVM.

    Raises:
        ValueError: a remote URI with no driver JVM at hand (Spark Connect).
    """
    if is_local_uri(uri):
        return LocalFileSystem()
    if spark is None or not has_driver_jvm(spark):
        raise ValueError(
            f"{uri!r} is not a local path and this Spark session has no driver JVM (Spark Connect): "
            "use a local or shared-mount path for checkpoint data"
        )
    return HadoopFileSystem(spark)


#: ``(session, folder) -> whether the Spark Connect server sees this process's files there``.
_shared_folders: dict[tuple[str, str], bool] = {}


def local_path_shared_with(spark: SparkSession, path: str, *, probe_infix: str = ".ppf-") -> Path | None:
    """``path`` as a local path if the (Spark Connect) server of ``spark`` sees this process's files there
    (the same machine or a shared mount), else ``None``; relative and remote paths give ``None``.

    Decided once per session and folder by a probe: this process writes a random token into a folder
    named ``<name of path><probe_infix>probe-<id>`` next to ``path`` and asks the server to read it back
    (a name that does not start with ``.`` or ``_``, which Spark would skip; callers pick an infix whose
    leftovers their own clean-up removes).
    """
    if not is_local_uri(path):
        return None
    target = local_path(path)
    if not target.is_absolute():
        return None  # relative to the server's working directory, which this process cannot know
    key = (str(getattr(spark, "session_id", id(spark))), str(target.parent))
    if key not in _shared_folders:
        _shared_folders[key] = _server_reads_back(spark, target, probe_infix)
    return target if _shared_folders[key] else None


def _server_reads_back(spark: SparkSession, target: Path, probe_infix: str) -> bool:
    folder = target.parent
    # Folders the probe creates, deepest first: removed again if the server does not see them.
    created = [p for p in (folder, *folder.parents) if not p.exists()]
    token = uuid.uuid4().hex
    probe = folder / f"{target.name}{probe_infix}probe-{token}"
    shared = False
    try:
        probe.mkdir(parents=True)
        (probe / "probe.txt").write_text(token, encoding="utf-8")
        shared = [row[0] for row in spark.read.text(str(probe)).collect()] == [token]
    except Exception as exc:  # the server cannot read it: not shared
        log.debug("The Spark server does not see %s: %s", folder, exc)
    finally:
        with contextlib.suppress(OSError):
            (probe / "probe.txt").unlink(missing_ok=True)
            probe.rmdir()
    if not shared:
        with contextlib.suppress(OSError):
            for made in created:
                made.rmdir()
    return shared
