"""The harness's own promises, checked in a few seconds: stopping a service leaves nothing behind."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

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
