"""Tests that need a missing system package skip (naming it and its install command), or fail when required."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.system_packages import REDIS, REQUIRE_VAR, SystemPackage, require, skipped_by_package

REPO = Path(__file__).resolve().parents[2]

PRESENT = SystemPackage("ppf-present", lambda: None)
ABSENT = SystemPackage("ppf-absent", lambda: "ppf-absent-tool is not on PATH")


def test_a_present_package_lets_the_test_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_VAR, "1")
    require(PRESENT)  # neither skips nor fails


def test_a_missing_package_skips_naming_the_package_and_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(REQUIRE_VAR, raising=False)
    with pytest.raises(
        pytest.skip.Exception, match=r"^missing system package 'ppf-absent': ppf-absent-tool is not on"
    ) as skip:
        require(ABSENT)
    assert "install it with `apt-get install ppf-absent`" in str(skip.value)


def test_the_switch_turns_the_skip_into_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_VAR, "1")
    with pytest.raises(pytest.fail.Exception, match=rf"apt-get install ppf-absent.*{REQUIRE_VAR}=1: required"):
        require(ABSENT)


@pytest.mark.parametrize("required", [False, True], ids=["skips", "fails-when-required"])
def test_without_redis_server_the_celery_test_skips_naming_the_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, required: bool
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no redis-server on it
    if required:
        monkeypatch.setenv(REQUIRE_VAR, "1")
    else:
        monkeypatch.delenv(REQUIRE_VAR, raising=False)
    expected = (
        r"^missing system package 'redis-server': redis-server is not on PATH; "
        r"install it with `apt-get install redis-server`"
    )
    with pytest.raises(pytest.fail.Exception if required else pytest.skip.Exception, match=expected):
        require(REDIS)


SAMPLE = """
import pytest
from tests.helpers.system_packages import SystemPackage, require

ABSENT = SystemPackage("ppf-absent", lambda: "ppf-absent-tool is not on PATH")

@pytest.fixture(scope="module")
def service():
    require(ABSENT)

def test_one(service): pass
def test_two(service): pass
def test_other(): pytest.skip("an unrelated reason")
def test_runs(): pass
"""


def _run_sample(tmp_path: Path, require_all: bool) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_sample.py").write_text(SAMPLE)
    env = {k: v for k, v in os.environ.items() if k != REQUIRE_VAR}
    env["PYTHONPATH"] = str(REPO)
    if require_all:
        env[REQUIRE_VAR] = "1"
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.conftest", "-p", "no:cacheprovider", "-q", "test_sample.py"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_the_summary_counts_the_skips_of_each_missing_package(tmp_path: Path) -> None:
    out = _run_sample(tmp_path, require_all=False)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "1 passed, 3 skipped" in out.stdout, out.stdout
    # A module-scoped fixture that skips skips every test using it; the unrelated skip is not counted.
    assert "2 tests skipped: Debian package 'ppf-absent' is missing (apt-get install ppf-absent)" in out.stdout, (
        out.stdout
    )


def test_under_the_switch_the_same_tests_fail(tmp_path: Path) -> None:
    out = _run_sample(tmp_path, require_all=True)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "2 errors" in out.stdout, out.stdout
    assert f"{REQUIRE_VAR}=1: required, not skipped" in out.stdout, out.stdout
    assert "skipped: missing system packages" not in out.stdout, out.stdout


def test_reports_without_a_package_reason_are_not_counted() -> None:
    class Report:
        def __init__(self, longrepr: object) -> None:
            self.longrepr = longrepr

    reports = [
        Report(("x.py", 1, "Skipped: missing system package 'chromium': chromium is not on PATH; install it")),
        Report(("x.py", 2, "Skipped: missing system package 'chromium': chromium is not on PATH; install it")),
        Report(("x.py", 3, "Skipped: missing system package 'postgresql': the PostgreSQL server is not installed")),
        Report(("x.py", 4, "Skipped: something else")),
        Report(None),
    ]
    assert skipped_by_package(reports) == {"chromium": 2, "postgresql": 1}
