"""Without a driver JVM (Spark Connect), whether the server sees this process's disk decides how outputs
are written and whether views can be saved; a probe the server must read back tells.

The real server is in ``tests/e2e/test_spark_connections.py`` (same machine: shared). Here a stand-in
session plays a server that does or does not see this process's files, which one machine cannot show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_ppf.checkpoint.saved_views import SavedViews, ViewNotSavedError
from airflow_ppf.components.spark import atomic
from airflow_ppf.components.spark.atomic import CommitAction, write_atomically


class _Rows:
    def __init__(self, rows: list[tuple[str]]) -> None:
        self._rows = rows

    def collect(self) -> list[tuple[str]]:
        return self._rows


class ConnectLike:
    """No ``_jvm``; ``read.text(folder)`` returns the folder's lines if the "server" shares our disk."""

    def __init__(self, shared: bool) -> None:
        self.shared = shared
        self.session_id = f"session-{id(self)}"
        self.probes: list[str] = []
        self.read = self

    def __getattr__(self, name: str) -> Any:
        if name in ("_jvm", "_jsc"):
            raise AttributeError(f"[JVM_ATTRIBUTE_NOT_SUPPORTED] {name}")
        raise AttributeError(name)

    def text(self, path: str) -> _Rows:
        self.probes.append(path)
        if not self.shared:
            return _Rows([])
        return _Rows([(line,) for f in sorted(Path(path).iterdir()) for line in f.read_text().splitlines()])


def _writer(tmp: list[str]) -> Any:
    def write(location: str, mode: str) -> None:
        tmp.append(location)
        out = Path(location)
        if mode == "overwrite" and out.exists():
            for f in out.iterdir():
                f.unlink()
        out.mkdir(parents=True, exist_ok=mode != "error")
        (out / "part-0").write_text("new")

    return write


def test_a_server_that_sees_our_disk_gets_staged_and_renamed_writes(tmp_path: Path) -> None:
    session = ConnectLike(shared=True)
    target = tmp_path / "new" / "out"
    written: list[str] = []

    first = write_atomically(session, str(target), "overwrite", _writer(written))  # type: ignore[arg-type]
    second = write_atomically(session, str(target), "overwrite", _writer(written))  # type: ignore[arg-type]

    assert (first.action, first.atomic) == (CommitAction.CREATED, True)
    assert (second.action, second.atomic) == (CommitAction.REPLACED, True)
    assert all(".ppf-tmp-" in w for w in written)  # staged, never written in place
    assert len(session.probes) == 1  # probed once per session and folder
    assert sorted(p.name for p in target.parent.iterdir()) == ["out"]  # no probe or temporary left


def test_a_server_that_does_not_see_our_disk_gets_a_plain_write_and_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    session = ConnectLike(shared=False)
    target = tmp_path / "new" / "out"
    written: list[str] = []

    result = write_atomically(session, str(target), "overwrite", _writer(written))  # type: ignore[arg-type]

    assert (result.action, result.atomic) == (CommitAction.WRITTEN, False)
    assert written == [str(target)]
    assert "plain Spark write" in caplog.text
    assert len(session.probes) == 1


def test_views_are_not_saved_where_the_server_cannot_see_them(tmp_path: Path) -> None:
    session = ConnectLike(shared=False)
    views = SavedViews(str(tmp_path / "data"), "p", "r", lambda: session)  # type: ignore[arg-type,return-value]

    with pytest.raises(ViewNotSavedError, match=r"server does not see the data location .*/data; use a path"):
        views.save("clean", "clean_orders", 1)
    assert not (tmp_path / "data").exists()  # nothing left behind by the probe


def test_relative_and_remote_paths_are_never_probed(tmp_path: Path) -> None:
    session = ConnectLike(shared=True)
    for path in ("relative/out", "s3a://bucket/out", "hdfs://nn/out"):
        assert atomic._shared_local_path(session, path) is None  # type: ignore[arg-type]
    assert session.probes == []
