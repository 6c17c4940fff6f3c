"""The harness's own promises, checked in a few seconds: stopping a service leaves nothing behind."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.harness import SESSION_MARK, ServiceProcess, free_port, surviving_processes

# A parent that ignores SIGTERM, with a child that starts a session of its own (as pg_ctl's postmaster does;
# only the marker variable finds it) and ignores SIGTERM too.
STUBBORN = """
import signal, subprocess, sys, time
signal.signal(signal.SIGTERM, signal.SIG_IGN)
child = "import os, signal, time; os.setsid(); signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
subprocess.Popen([sys.executable, "-c", child])
print("started", flush=True)
time.sleep(600)
"""


def test_stop_kills_a_stubborn_service_and_the_child_that_left_its_group(tmp_path: Path) -> None:
    service = ServiceProcess(
        "stubborn", [sys.executable, "-c", STUBBORN], log_dir=tmp_path, env=dict(os.environ), mark=SESSION_MARK
    ).start()
    deadline = time.monotonic() + 30
    while len(service.processes()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(service.processes()) == 2, service.describe()
    assert len(surviving_processes()) >= 2

    killed = service.stop(timeout=2)
    assert len(killed) == 2, killed
    assert service.processes() == []
    assert service.proc is not None
    assert service.proc.returncode is not None  # reaped
    assert "started" in service.log_tail()


def test_stop_is_quick_for_a_service_that_exits_on_sigterm(tmp_path: Path) -> None:
    service = ServiceProcess(
        "polite",
        [sys.executable, "-c", "import time; time.sleep(600)"],
        log_dir=tmp_path,
        env=dict(os.environ),
        mark=SESSION_MARK,
    ).start()
    began = time.monotonic()
    assert service.stop(timeout=10) == []
    assert time.monotonic() - began < 5


# A service whose child leaves the process group but not the session (as Airflow's task processes do) and
# hides its environment by renaming itself (setproctitle overwrites it; here: an exec with no environment).
GROUP_LEAVER = """
import os, subprocess, sys, time
child = "import os, time; os.setpgid(0, 0); time.sleep(600)"
subprocess.Popen([sys.executable, "-c", child], env={})
time.sleep(600)
"""


def test_stop_finds_children_by_session_without_the_marker(tmp_path: Path) -> None:
    service = ServiceProcess(
        "leaver", [sys.executable, "-c", GROUP_LEAVER], log_dir=tmp_path, env=dict(os.environ), mark=SESSION_MARK
    ).start()
    deadline = time.monotonic() + 30
    while len(service.processes()) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(service.processes()) == 2, service.describe()
    assert service.stop(timeout=4) == []  # both exit on SIGTERM
    assert service.processes() == []


def test_free_ports_are_not_handed_out_twice() -> None:
    ports = [free_port() for _ in range(20)]
    assert len(set(ports)) == 20


# -- headless Chromium (tests/e2e/browser.py) never outlives its caller -----------------------------------

REPO = Path(__file__).resolve().parents[2]
#: A caller that opens a browser and then hangs, as a test killed by a timeout does.
CHROMIUM_CALLER = """
import sys, time
sys.path.insert(0, {repo!r})
from tests.e2e.browser import HeadlessChromium
browser = HeadlessChromium()
print(browser.pgid, flush=True)
time.sleep(600)
"""


def _group_members(pgid: int) -> list[int]:
    """Live processes of process group ``pgid`` (zombies excluded), from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat[stat.rindex(")") + 2 :].split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _wait_group_gone(pgid: int, timeout: float = 30) -> list[int]:
    deadline = time.monotonic() + timeout
    while (left := _group_members(pgid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in left:  # never leave a browser behind, even when the test fails
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    return left


@pytest.mark.usefixtures("chromium")
def test_closing_the_browser_kills_its_whole_process_group() -> None:
    from tests.e2e.browser import HeadlessChromium

    browser = HeadlessChromium()
    try:
        assert browser.evaluate("1 + 1") == 2
        members = _group_members(browser.pgid)
        assert len(members) >= 2, members  # the browser and its helpers (zygote, renderer...)
    finally:
        browser.close()
    assert _wait_group_gone(browser.pgid, timeout=2) == []
    assert not browser.profile.exists()
    browser.close()  # idempotent


@pytest.mark.usefixtures("chromium")
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_chromium_dies_with_a_caller_killed_by_a_timeout(sig: int) -> None:
    caller = subprocess.Popen(
        [sys.executable, "-c", CHROMIUM_CALLER.format(repo=str(REPO))], stdout=subprocess.PIPE, text=True
    )
    try:
        assert caller.stdout is not None
        pgid = int(caller.stdout.readline())
        assert len(_group_members(pgid)) >= 2
    finally:
        caller.send_signal(sig)
        caller.wait(30)
    assert _wait_group_gone(pgid) == [], f"Chromium outlived its caller killed by {signal.Signals(sig).name}"
