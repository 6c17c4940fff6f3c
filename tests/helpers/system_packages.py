"""Tests that need a system package: skip when it is absent, naming the package and its install command.

``make test`` has to pass on a machine with Python and Java alone, so a test that needs a Debian package
(:data:`CHROMIUM`, :data:`POSTGRESQL`, :data:`REDIS`) calls :func:`require` first; when the package is
missing the test is skipped with a reason such as::

    missing system package 'chromium': chromium is not on PATH; install it with `apt-get install chromium`

and the end of the run says how many tests were skipped per package (:func:`skipped_by_package`, shown by
``pytest_terminal_summary`` in ``tests/conftest.py``). CI installs the packages and sets
``PPF_REQUIRE_SYSTEM_PACKAGES=1``, which turns such a skip into a failure: a green CI ran every test.
"""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

__all__ = [
    "CHROMIUM",
    "PACKAGES",
    "POSTGRESQL",
    "REDIS",
    "REQUIRE_VAR",
    "SystemPackage",
    "chromium_binary",
    "require",
    "skipped_by_package",
]

#: Set to 1 (as .ci/run does) to make a missing system package fail its tests instead of skipping them.
REQUIRE_VAR = "PPF_REQUIRE_SYSTEM_PACKAGES"

_REASON = re.compile(r"missing system package '([^']+)'")


@dataclass(frozen=True)
class SystemPackage:
    """A Debian package some tests need.

    Args:
        debian: the package name for ``apt-get install``.
        missing: returns what is missing on this machine, or ``None`` when the package is usable.
    """

    debian: str
    missing: Callable[[], str | None]

    @property
    def install(self) -> str:
        return f"apt-get install {self.debian}"


def chromium_binary() -> str | None:
    """The headless-capable Chromium on PATH (Debian's ``chromium``), or ``None``."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def _chromium_missing() -> str | None:
    return None if chromium_binary() else "chromium is not on PATH"


def _postgresql_missing() -> str | None:
    from tests.e2e.harness import postgres_missing

    return postgres_missing()


def _redis_missing() -> str | None:
    from tests.e2e.harness import redis_missing

    return redis_missing()


CHROMIUM = SystemPackage("chromium", _chromium_missing)
POSTGRESQL = SystemPackage("postgresql", _postgresql_missing)
#: The CeleryExecutor's broker in the end-to-end test of a retry on another worker.
REDIS = SystemPackage("redis-server", _redis_missing)
#: Every system package a test may require, by Debian name.
PACKAGES = {package.debian: package for package in (CHROMIUM, POSTGRESQL, REDIS)}


def require(package: SystemPackage) -> None:
    """Skip the calling test (or fixture) when ``package`` is missing; fail instead under ``REQUIRE_VAR=1``."""
    missing = package.missing()
    if missing is None:
        return
    reason = f"missing system package '{package.debian}': {missing}; install it with `{package.install}`"
    if os.environ.get(REQUIRE_VAR) == "1":
        pytest.fail(f"{reason} ({REQUIRE_VAR}=1: required, not skipped)", pytrace=False)
    pytest.skip(reason)


def skipped_by_package(reports: Iterable[Any]) -> Counter[str]:
    """How many of these skipped test reports were skipped for each missing system package."""
    counts: Counter[str] = Counter()
    for report in reports:
        longrepr = getattr(report, "longrepr", None)
        text = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        match = _REASON.search(text)
        if match:
            counts[match.group(1)] += 1
    return counts
