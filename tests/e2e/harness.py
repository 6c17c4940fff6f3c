"""Real services on loopback for the end-to-end tests: Airflow, PostgreSQL, a Spark standalone cluster.

Everything here starts real processes and stops them again, by the PIDs it started:

* :class:`ServiceProcess` runs one long-lived command in its own session and process group, logs to a
  file and stops it with SIGTERM, then SIGKILL. A service's processes are found two ways, so that none
  escapes: by **session id** (Airflow's task processes leave the process group with ``setpgid`` but stay
  in the session; a PID is never reused while it names a live session) and by a **marker variable**
  (``PPF_E2E_PROC``) in the environment, inherited by descendants, for those that start a session of their
  own (``pg_ctl``'s postmaster). Airflow's processes rename themselves with setproctitle, which hides
  their environment, hence both.
* :class:`PostgresCluster` is a throwaway Debian PostgreSQL cluster with a database ``airflow``.
* :class:`AirflowStack` is ``airflow db migrate`` plus api-server, scheduler and dag-processor
  (LocalExecutor) in a private ``AIRFLOW_HOME``, with :class:`AirflowClient` for the REST API.
* :class:`RedisServer` is Debian's redis-server (the CeleryExecutor's broker); :meth:`AirflowStack.start_celery_worker`
  adds ``airflow celery worker`` processes, each with an environment of its own (a "machine").
* :class:`SparkStandalone` is a Spark master and one worker from the venv's pyspark.
* :class:`SparkConnectServer` is a Spark Connect server from the venv's pyspark.

:func:`surviving_processes` lists whatever this test process started that is still alive; the e2e
conftest checks it is empty at the end of the session.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from importlib.util import find_spec
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

import requests

__all__ = [
    "AirflowClient",
    "AirflowStack",
    "HarnessError",
    "PostgresCluster",
    "RedisServer",
    "ServiceProcess",
    "SparkConnectServer",
    "SparkStandalone",
    "copy_dags",
    "free_port",
    "kill_survivors",
    "postgres_missing",
    "redis_missing",
    "surviving_processes",
]

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_DAGS = REPO / "example_dags"
VENV_BIN = Path(sys.executable).parent


def _postgres_bin_dir() -> Path:
    """Debian's PostgreSQL server binaries: ``$PPF_PG_BIN``, else the newest ``/usr/lib/postgresql/<major>/bin``."""
    if os.environ.get("PPF_PG_BIN"):
        return Path(os.environ["PPF_PG_BIN"])
    found = sorted(
        (path.parent for path in Path("/usr/lib/postgresql").glob("*/bin/initdb")),
        key=lambda path: int(path.parent.name) if path.parent.name.isdigit() else 0,
    )
    return found[-1] if found else Path("/usr/lib/postgresql/15/bin")


#: Debian 12 ships PostgreSQL 15, Debian 13 PostgreSQL 17: whichever ``apt-get install postgresql`` installed.
PG_BIN = _postgres_bin_dir()

#: Environment variable carried by every process the harness starts (and inherited by their children).
MARK_VAR = "PPF_E2E_PROC"
#: Unique per test process: processes of another pytest run (or another session) are never touched.
SESSION_MARK = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"

_issued_ports: set[int] = set()

#: Variables of the test process that must not leak into services: Airflow settings of other test tiers
#: (tests/airflow sets AIRFLOW_HOME etc. in os.environ), and Spark state such as the
#: SPARK_CONNECT_MODE_ENABLED that a Spark Connect session leaves behind in its process.
_PRIVATE_PREFIXES = ("AIRFLOW", "SPARK_", "PYSPARK_", MARK_VAR)


def clean_environ() -> dict[str, str]:
    """``os.environ`` without Airflow, Spark and harness variables: a neutral base for a service."""
    return {k: v for k, v in os.environ.items() if not k.startswith(_PRIVATE_PREFIXES)}


class HarnessError(AssertionError):
    """A service did not start, did not become healthy, or an API call failed (message has log tails)."""


# -- processes ----------------------------------------------------------------------------------------


def free_port() -> int:
    """Return a free TCP port on 127.0.0.1, never the same one twice in this process."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind(("127.0.0.1", 0))
            port = int(sock.getsockname()[1])
        if port not in _issued_ports:
            _issued_ports.add(port)
            return port
    raise HarnessError("no free port found")


def _proc_stat(pid: str) -> tuple[bytes, int] | None:
    """State letter and session id of a process, from ``/proc/<pid>/stat`` (``None`` when gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            fields = fh.read().rsplit(b")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[3])  # state, ppid, pgrp, session...


def _marked_processes(prefix: str) -> list[tuple[int, str]]:
    """PIDs (and marker values) of live processes whose ``PPF_E2E_PROC`` starts with ``prefix``."""
    needle = f"{MARK_VAR}=".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:  # gone, or a zombie / kernel thread
            continue
        for item in environ.split(b"\0"):
            if item.startswith(needle):
                value = item[len(needle) :].decode(errors="replace")
                if value.startswith(prefix):
                    found.append((int(entry), value))
                break
    return found


def _session_members(sessions: Iterable[int]) -> list[int]:
    """Live (non-zombie) processes whose session id is one of ``sessions``."""
    wanted = set(sessions)
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        stat = _proc_stat(entry)
        if stat is not None and stat[1] in wanted and stat[0] not in (b"Z", b"X"):
            found.append(int(entry))
    return found


def _owned_processes(sessions: Iterable[int], mark: str) -> list[int]:
    """Processes in one of ``sessions`` or carrying a marker that starts with ``mark``."""
    return sorted({*_session_members(sessions), *(pid for pid, _ in _marked_processes(mark))})


#: Session ids of every process the harness started (a ServiceProcess leader, the postmaster).
_started_sessions: set[int] = set()


def _describe_pid(pid: int) -> str:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        cmdline = "?"
    return f"{pid} {cmdline[:160].strip()}"


def _signal_pids(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def _wait_gone(pids: Iterable[int], timeout: float, reap: Callable[[], object] | None = None) -> list[int]:
    """Wait until none of ``pids`` is alive (zombies count as gone); return the ones still alive."""
    deadline = time.monotonic() + timeout
    pending = list(pids)
    while True:
        if reap is not None:
            reap()
        pending = [pid for pid in pending if _alive(pid)]
        if not pending or time.monotonic() >= deadline:
            return pending
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    stat = _proc_stat(str(pid))
    return stat is not None and stat[0] not in (b"Z", b"X")


def surviving_processes() -> list[str]:
    """Describe every process this test process started (directly or not) that is still alive."""
    return [_describe_pid(pid) for pid in _owned_processes(_started_sessions, SESSION_MARK)]


def kill_survivors() -> list[str]:
    """SIGKILL every surviving process of this test session; return what was killed."""
    pids = _owned_processes(_started_sessions, SESSION_MARK)
    found = [_describe_pid(pid) for pid in pids]
    _signal_pids(pids, signal.SIGKILL)
    _wait_gone(pids, 5.0)
    return found


# Last resort when fixtures never ran their finalizers (pytest crashed, or was killed with SIGINT twice).
atexit.register(kill_survivors)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:])


class ServiceProcess:
    """One long-running command in its own session and process group, logging to ``<log_dir>/<name>.log``.

    Args:
        name: short name, used for the log file and in messages.
        argv: the command.
        log_dir: folder of the log file.
        env: the complete environment (the marker variable is added).
        mark: marker prefix of the owning stack; the process is marked ``<mark>/<name>``.
    """

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log_dir: Path,
        env: Mapping[str, str],
        mark: str,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = log_dir / f"{name}.log"
        self.mark = f"{mark}/{name}"
        self.env = {**env, MARK_VAR: self.mark}
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid: int | None = None

    def start(self) -> ServiceProcess:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=self.cwd,
                start_new_session=True,
            )
        self.pid = self.proc.pid
        _started_sessions.add(self.pid)
        return self

    def processes(self) -> list[int]:
        """Every live process of this service (session members and marked descendants)."""
        return _owned_processes([self.pid] if self.pid else [], self.mark)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines)

    def describe(self, lines: int = 40) -> str:
        """Name, PID, state and the tail of the log, for failure messages."""
        if self.proc is None:
            return f"--- {self.name}: not started"
        code = self.proc.poll()
        state = "running" if code is None else f"exited with {code}"
        return f"--- {self.name} (pid {self.pid}, {state}), {self.log_path}:\n{self.log_tail(lines)}"

    def stop(self, timeout: float = 15.0) -> list[str]:
        """Stop the service: SIGTERM, wait up to ``timeout``, then SIGKILL whatever is left; always reap.

        The leader gets SIGTERM first and the rest of its processes half-way through the timeout:
        Airflow's commands stop their own children cleanly when only the parent is signalled, while a
        group-wide SIGTERM can leave the scheduler waiting forever on LocalExecutor workers.
        Returns the processes that needed SIGKILL (for the record).
        """
        if self.proc is None:
            return []
        proc, leader = self.proc, self.proc.pid
        grace = timeout / 2
        if proc.poll() is None:
            _signal_pids([leader], signal.SIGTERM)
            _wait_gone([leader], grace, reap=proc.poll)
        rest = self.processes()
        _signal_pids(rest, signal.SIGTERM)
        _wait_gone(rest, timeout - grace, reap=proc.poll)
        # Whatever is left, including processes started while we waited.
        left = self.processes()
        killed = [_describe_pid(pid) for pid in left]
        _signal_pids(left, signal.SIGKILL)
        _wait_gone(left, 5.0, reap=proc.poll)
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            proc.kill()
            proc.wait()
        if not self.processes():
            # Nothing holds the session id any more, so its number may be reused: stop watching it.
            _started_sessions.discard(leader)
        return killed


def run_once(name: str, argv: list[str], *, log_dir: Path, env: Mapping[str, str], mark: str, timeout: float) -> None:
    """Run a one-shot command to completion (own process group, logged); raise with its log tail if it fails."""
    service = ServiceProcess(name, argv, log_dir=log_dir, env=env, mark=mark).start()
    assert service.proc is not None
    try:
        code = service.proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        service.stop(timeout=5)
        raise HarnessError(f"{name} did not finish in {timeout:.0f} s\n{service.describe(60)}") from None
    service.stop(timeout=5)  # anything it left behind
    if code != 0:
        raise HarnessError(f"{name} failed with exit code {code}\n{service.describe(60)}")


def copy_dags(target: Path, source: Path = EXAMPLE_DAGS) -> Path:
    """A private copy of a DAG folder (the dag-processor and tasks may write caches next to the files)."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return target


# -- PostgreSQL ---------------------------------------------------------------------------------------


def postgres_missing(bin_dir: Path = PG_BIN) -> str | None:
    """What a :class:`PostgresCluster` lacks on this machine (``None`` when it can start)."""
    for tool in ("initdb", "pg_ctl", "createdb"):
        if not (bin_dir / tool).exists():
            return f"the PostgreSQL server is not installed ({bin_dir / tool} is missing)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "the 'postgres' system user is missing"
    return None


class PostgresCluster:
    """A throwaway PostgreSQL cluster (:data:`PG_BIN`) on ``127.0.0.1:<port>``, trust auth, a database ``airflow``.

    Root cannot run postgres, so when the tests run as root every PostgreSQL command runs as the
    ``postgres`` user (``runuser -u postgres --``), and the cluster lives in a fresh folder under the
    system temp dir owned by that user (pytest's temp folders are private to root).
    """

    def __init__(self, mark: str, port: int | None = None, bin_dir: Path = PG_BIN) -> None:
        self.mark = f"{mark}/postgres"
        self.port = port or free_port()
        self.bin_dir = bin_dir
        self.root: Path | None = None
        self.pid: int | None = None

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the ``airflow`` database."""
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/airflow"

    @property
    def log_path(self) -> Path | None:
        return self.root / "postgres.log" if self.root else None

    def _cmd(self, *argv: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *argv]
        return list(argv)

    def _run(self, *argv: str, timeout: float = 120) -> None:
        env = {**clean_environ(), MARK_VAR: self.mark, "LC_ALL": "C.UTF-8"}
        out = subprocess.run(
            self._cmd(*argv),
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            start_new_session=True,
            check=False,
            cwd=self.root,
        )
        if out.returncode != 0:
            raise HarnessError(
                f"PostgreSQL command failed ({out.returncode}): {' '.join(argv)}\n{out.stdout[-2000:]}"
                f"\n{out.stderr[-2000:]}\n--- postgres.log:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 40) -> str:
        return _tail(self.log_path, lines) if self.log_path else "(not started)"

    def start(self) -> PostgresCluster:
        missing = postgres_missing(self.bin_dir)
        if missing is not None:
            raise HarnessError(
                f"{missing}. The e2e tests need Debian's postgresql package: apt-get install postgresql "
                "(.ci/run installs it)."
            )
        initdb = self.bin_dir / "initdb"
        self.root = Path(tempfile.mkdtemp(prefix="ppf-e2e-pg-"))
        data, sock = self.root / "data", self.root / "sock"
        for path in (self.root, sock):
            path.mkdir(exist_ok=True)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")  # present: postgres_missing() checked
            for path in (self.root, sock):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        self._run(str(initdb), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync")
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {sock} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(self.log_path),
            "-o",
            options,
            "-w",
            "-t",
            "60",
            "start",
        )
        self.pid = int((data / "postmaster.pid").read_text().split()[0])
        _started_sessions.add(self.pid)  # the postmaster starts a session of its own (setsid)
        self._run(str(self.bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "airflow")
        return self

    def stop(self) -> None:
        """``pg_ctl stop -m fast``; SIGKILL whatever is left; delete the cluster folder."""
        if self.root is None:
            return
        data = self.root / "data"
        try:
            if self.pid is not None and _alive(self.pid):
                self._run(
                    str(self.bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "-t", "15", "stop", timeout=30
                )
        except (HarnessError, subprocess.TimeoutExpired):
            pass
        finally:
            left = _owned_processes([self.pid] if self.pid else [], self.mark)
            _signal_pids(left, signal.SIGKILL)
            if not _wait_gone(left, 5.0) and self.pid is not None:
                _started_sessions.discard(self.pid)
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None


# -- Redis --------------------------------------------------------------------------------------------


def redis_missing() -> str | None:
    """What a :class:`RedisServer` lacks on this machine (``None`` when it can start)."""
    return None if shutil.which("redis-server") else "redis-server is not on PATH"


class RedisServer:
    """Debian's ``redis-server`` on ``127.0.0.1:<port>``, without persistence, in a private folder.

    Started in the foreground as a :class:`ServiceProcess` (stopped by its PID); ready once it answers
    ``PING``.
    """

    def __init__(self, root: Path, port: int | None = None) -> None:
        self.root = root
        self.mark = f"{SESSION_MARK}:redis-{uuid.uuid4().hex[:6]}"
        self.port = port or free_port()
        self.service: ServiceProcess | None = None
        self.timings: dict[str, float] = {}

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def start(self, timeout: float = 30) -> RedisServer:
        started = time.monotonic()
        binary = shutil.which("redis-server")
        if binary is None:
            raise HarnessError("redis-server is not installed: apt-get install redis-server (.ci/run installs it)")
        self.root.mkdir(parents=True, exist_ok=True)
        argv = [binary, "--bind", "127.0.0.1", "--port", str(self.port), "--save", "", "--appendonly", "no"]
        argv += ["--dir", str(self.root), "--daemonize", "no", "--protected-mode", "yes"]
        self.service = ServiceProcess(
            "redis", argv, log_dir=self.root / "service-logs", env=clean_environ(), mark=self.mark, cwd=self.root
        ).start()
        while not self.ping():
            if not self.service.alive():
                raise HarnessError(f"redis-server exited while starting\n{self.service.describe()}")
            if time.monotonic() > started + timeout:
                raise HarnessError(f"redis-server did not answer PING in {timeout:.0f} s\n{self.service.describe()}")
            time.sleep(0.2)
        self.timings["start"] = time.monotonic() - started
        return self

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def stop(self) -> list[str]:
        """Stop the server; return the processes that needed SIGKILL."""
        return self.service.stop() if self.service is not None else []


# -- Airflow ------------------------------------------------------------------------------------------


class AirflowClient:
    """A small client of Airflow's public REST API (``/api/v2``), authenticated with a JWT from ``/auth/token``.

    Args:
        base_url: e.g. ``http://127.0.0.1:28080``.
        diagnostics: called to add context (service log tails) to error messages.
        health_check: called while waiting; raises when the services behind the API died (fail fast
            instead of waiting for a timeout).
    """

    def __init__(
        self,
        base_url: str,
        *,
        diagnostics: Callable[[], str] | None = None,
        health_check: Callable[[], None] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.http = requests.Session()
        self.diagnostics = diagnostics or (lambda: "")
        self.health_check = health_check or (lambda: None)
        self._token: str | None = None

    # -- plumbing ---------------------------------------------------------------------------------

    def token(self, username: str, password: str) -> str:
        """Get a JWT for a SimpleAuthManager user (``POST /auth/token``)."""
        resp = self.http.post(
            f"{self.base_url}/auth/token", json={"username": username, "password": password}, timeout=30
        )
        if resp.status_code not in (200, 201):
            raise HarnessError(f"POST /auth/token as {username!r}: {resp.status_code} {resp.text[:500]}")
        return str(resp.json()["access_token"])

    def login(self, username: str, password: str) -> AirflowClient:
        """Use a token of this user for every following request."""
        self._token = self.token(username, password)
        return self

    def request(self, method: str, path: str, *, expect: Iterable[int] = (200,), **kwargs: Any) -> requests.Response:
        """Send a request to ``base_url + path``; raise :class:`HarnessError` on an unexpected status."""
        headers = {"Accept": "application/json", **kwargs.pop("headers", {})}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        resp = self.http.request(method, f"{self.base_url}{path}", headers=headers, timeout=60, **kwargs)
        if resp.status_code not in tuple(expect):
            raise HarnessError(f"{method} {path}: HTTP {resp.status_code} {resp.text[:1000]}")
        return resp

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs).json()

    def post(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("POST", path, json=body, **kwargs).json()

    def patch(self, path: str, body: Any, **kwargs: Any) -> Any:
        return self.request("PATCH", path, json=body, **kwargs).json()

    @staticmethod
    def ti_path(dag_id: str, run_id: str, task_id: str) -> str:
        """``/api/v2/dags/{dag}/dagRuns/{run}/taskInstances/{task}`` with every part URL-encoded."""
        return (
            f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}"
            f"/taskInstances/{quote(task_id, safe='')}"
        )

    @staticmethod
    def _map(map_index: int | None) -> dict[str, int]:
        return {} if map_index is None else {"map_index": map_index}

    # -- DAGs and runs ----------------------------------------------------------------------------

    def wait_for_dag(self, dag_id: str, timeout: float = 120) -> dict[str, Any]:
        """Wait until the dag-processor has parsed ``dag_id``; unpause it; return the DAG.

        Fails early, with the error, when the DAG's file (``<dag_id>.py``) has an import error.
        """
        deadline = time.monotonic() + timeout
        while True:
            resp = self.request("GET", f"/api/v2/dags/{quote(dag_id, safe='')}", expect=(200, 404))
            if resp.status_code == 200:
                break
            self.health_check()
            errors = self.get("/api/v2/importErrors").get("import_errors", [])
            own = [e for e in errors if Path(str(e.get("filename", ""))).stem == dag_id]
            if own:
                raise HarnessError(f"{dag_id} does not import:\n{own[0].get('stack_trace', own[0])}")
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"DAG {dag_id} was not parsed within {timeout:.0f} s; import errors: "
                    f"{json.dumps(errors)[:3000]}\n{self.diagnostics()}"
                )
            time.sleep(1)
        return dict(self.patch(f"/api/v2/dags/{quote(dag_id, safe='')}", {"is_paused": False}))

    def trigger(self, dag_id: str, conf: Mapping[str, Any] | None = None) -> str:
        """Trigger a manual run (no logical date) with ``conf``; return its run id."""
        body = {"logical_date": None, "conf": dict(conf or {})}
        run = self.post(f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns", body)
        return str(run["dag_run_id"])

    def run_state(self, dag_id: str, run_id: str) -> str:
        run = self.get(f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}")
        return str(run["state"])

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 300) -> str:
        """Wait until the run is ``success`` or ``failed``; return the state.

        Raises:
            HarnessError: still running after ``timeout`` (with task states, task logs and service logs).
        """
        deadline = time.monotonic() + timeout
        while True:
            state = self.run_state(dag_id, run_id)
            if state in ("success", "failed"):
                return state
            self.health_check()
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"run {run_id} of {dag_id} still {state} after {timeout:.0f} s\n"
                    f"{self.run_report(dag_id, run_id)}\n{self.diagnostics()}"
                )
            time.sleep(1)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict[str, Any]]:
        path = f"/api/v2/dags/{quote(dag_id, safe='')}/dagRuns/{quote(run_id, safe='')}/taskInstances"
        return list(self.get(path, params={"limit": 100})["task_instances"])

    def run_report(self, dag_id: str, run_id: str, log_lines: int = 40) -> str:
        """Task states of a run and the log tail of every failed try, for failure messages."""
        out = []
        try:
            for ti in self.task_instances(dag_id, run_id):
                task_id, map_index = ti["task_id"], ti.get("map_index", -1)
                out.append(f"* {task_id}[{map_index}]: {ti['state']} (try {ti['try_number']})")
                mi = None if map_index in (None, -1) else map_index
                for t in self.tries(dag_id, run_id, task_id, mi):
                    if t["state"] not in ("success", None):
                        lines = self.logs(dag_id, run_id, task_id, t["try_number"], mi)
                        out.append(f"  log of try {t['try_number']} ({t['state']}):")
                        out.extend(f"    {line}" for line in lines[-log_lines:])
        except Exception as exc:  # a report must never hide the original failure
            out.append(f"(report incomplete: {exc})")
        return "\n".join(out)

    # -- task instances -----------------------------------------------------------------------------

    def tries(self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> list[dict[str, Any]]:
        """Every try of a task instance, oldest first."""
        path = self.ti_path(dag_id, run_id, task_id)
        path += "/tries" if map_index is None else f"/{map_index}/tries"
        return sorted(self.get(path)["task_instances"], key=lambda t: t["try_number"])

    def logs(self, dag_id: str, run_id: str, task_id: str, try_number: int, map_index: int | None = None) -> list[str]:
        """The log lines (``event`` strings) of one try."""
        path = f"{self.ti_path(dag_id, run_id, task_id)}/logs/{try_number}"
        body = self.get(path, params={"full_content": "true", **self._map(map_index)})
        content = body.get("content") or []
        return [str(item.get("event", "")) if isinstance(item, dict) else str(item) for item in content]

    def state_store(
        self, dag_id: str, run_id: str, task_id: str, key: str | None = None, map_index: int | None = None
    ) -> Any:
        """The task state store: all entries as ``{key: value}``, or the value of ``key``."""
        path = f"{self.ti_path(dag_id, run_id, task_id)}/state-store"
        if key is not None:
            return self.get(f"{path}/{quote(key, safe='')}", params=self._map(map_index))["value"]
        entries = self.get(path, params={"limit": 100, **self._map(map_index)})["task_state_store"]
        return {entry["key"]: entry["value"] for entry in entries}

    def xcom(
        self, dag_id: str, run_id: str, task_id: str, key: str = "return_value", map_index: int | None = None
    ) -> Any:
        """The value of one XCom (decoded when the API returns it as JSON text)."""
        path = f"{self.ti_path(dag_id, run_id, task_id)}/xcomEntries/{quote(key, safe='')}"
        value = self.get(path, params=self._map(map_index))["value"]
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value

    def links(self, dag_id: str, run_id: str, task_id: str, map_index: int | None = None) -> dict[str, Any]:
        """The extra links of a task instance: ``{name: url or None}``."""
        body = self.get(f"{self.ti_path(dag_id, run_id, task_id)}/links", params=self._map(map_index))
        return dict(body["extra_links"])


class AirflowStack:
    """Airflow api-server + scheduler + dag-processor (LocalExecutor) on loopback in a private AIRFLOW_HOME.

    Args:
        root: an empty folder for this stack (AIRFLOW_HOME, logs, checkpoints, the PostgreSQL cluster log).
        backend: metadata database: ``"sqlite"`` (a file in AIRFLOW_HOME) or ``"postgres"`` (a throwaway
            cluster started and stopped with the stack).
        dags_folder: the DAG folder.
        extra_env: environment added last (e.g. ``AIRFLOW_CONN_*``).
        port: the api-server's port on 127.0.0.1 (default: a free one).

    Users (SimpleAuthManager): ``admin`` (admin), ``viewer`` (viewer), ``user1`` (user); passwords in
    :attr:`PASSWORDS`. :attr:`client` is logged in as admin once the stack is up.
    """

    PASSWORDS: ClassVar[dict[str, str]] = {"admin": "admin-pw", "viewer": "viewer-pw", "user1": "user1-pw"}
    SERVICES = ("api-server", "scheduler", "dag-processor")

    def __init__(
        self,
        root: Path,
        *,
        backend: str = "sqlite",
        dags_folder: Path,
        extra_env: Mapping[str, str] | None = None,
        name: str | None = None,
        port: int | None = None,
    ) -> None:
        if backend not in ("sqlite", "postgres"):
            raise ValueError(f"backend must be 'sqlite' or 'postgres', got {backend!r}")
        self.root = root
        self.backend = backend
        self.dags_folder = dags_folder
        self.name = name or f"airflow-{backend}"
        self.mark = f"{SESSION_MARK}:{self.name}-{uuid.uuid4().hex[:6]}"
        self.home = root / "airflow-home"
        self.log_dir = root / "service-logs"
        self.checkpoint_dir = root / "ppf-checkpoints"
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.postgres = PostgresCluster(self.mark) if backend == "postgres" else None
        self.extra_env = dict(extra_env or {})
        self.services: dict[str, ServiceProcess] = {}
        #: Celery workers started with :meth:`start_celery_worker`, by name.
        self.workers: dict[str, ServiceProcess] = {}
        self.client = AirflowClient(self.base_url, diagnostics=self.describe, health_check=self.check_running)
        self.timings: dict[str, float] = {}

    # -- configuration ------------------------------------------------------------------------------

    def env(self) -> dict[str, str]:
        """The environment of every Airflow process of this stack."""
        env = clean_environ()
        conn = self.postgres.url if self.postgres is not None else f"sqlite:///{self.home / 'airflow.db'}"
        env.update(
            {
                "PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
                "AIRFLOW_HOME": str(self.home),
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": conn,
                "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
                "AIRFLOW__CORE__PARALLELISM": "2",
                "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
                "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.base_url}/execution/",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin,viewer:viewer,user1:user",
                "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(self.home / "passwords.json"),
                "AIRFLOW__API__HOST": "127.0.0.1",
                "AIRFLOW__API__PORT": str(self.port),
                "AIRFLOW__API__BASE_URL": self.base_url,
                "AIRFLOW__API__WORKERS": "1",
                "AIRFLOW__API__SECRET_KEY": "ppf-e2e-api-secret-key",
                "AIRFLOW__API_AUTH__JWT_SECRET": "ppf-e2e-jwt-secret-0123456789abcdef",
                "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__PPF__CHECKPOINT_DIR": str(self.checkpoint_dir),
                # Spark in task processes: loopback only, and Python workers with this venv's interpreter.
                "SPARK_LOCAL_IP": "127.0.0.1",
                "PYSPARK_PYTHON": sys.executable,
                "PYSPARK_DRIVER_PYTHON": sys.executable,
                # Test speed only: a Spark driver JVM that starts faster (C1 JIT, serial GC). The pipelines'
                # own settings still apply (--conf from the session builder comes first).
                "PYSPARK_SUBMIT_ARGS": '--driver-java-options "-XX:+UseSerialGC -XX:TieredStopAtLevel=1" pyspark-shell',
            }
        )
        env.update(self.extra_env)
        return env

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self, timeout: float = 180) -> AirflowStack:
        """Start the database (postgres), migrate, start the three services and wait until healthy."""
        started = time.monotonic()
        self.home.mkdir(parents=True, exist_ok=True)
        self.checkpoint_dir.mkdir(parents=True, exist_ok=True)
        (self.home / "passwords.json").write_text(json.dumps(self.PASSWORDS))
        if self.postgres is not None:
            self.postgres.start()
        self.timings["database"] = time.monotonic() - started
        env = self.env()
        airflow = str(VENV_BIN / "airflow")
        run_once("db-migrate", [airflow, "db", "migrate"], log_dir=self.log_dir, env=env, mark=self.mark, timeout=300)
        self.timings["migrate"] = time.monotonic() - started
        for service in self.SERVICES:
            self.services[service] = ServiceProcess(
                service, [airflow, service], log_dir=self.log_dir, env=env, mark=self.mark, cwd=self.home
            ).start()
        self.wait_healthy(timeout)
        self.client.login("admin", self.PASSWORDS["admin"])
        self.timings["start"] = time.monotonic() - started
        return self

    def start_celery_worker(
        self, name: str, *, env: Mapping[str, str], concurrency: int = 1, timeout: float = 120
    ) -> ServiceProcess:
        """Start ``airflow celery worker`` (CeleryExecutor stacks) with this stack's environment plus ``env``
        (each worker its own: a stand-in for a machine of its own); wait until it is ready.

        Its PID file is its own and it serves no logs (the stack's services share one log folder).
        """
        argv = [str(VENV_BIN / "airflow"), "celery", "worker", "--concurrency", str(concurrency)]
        argv += ["--celery-hostname", f"{name}@127.0.0.1", "--pid", str(self.home / f"{name}.pid")]
        argv += ["--skip-serve-logs", "--without-gossip", "--without-mingle"]
        worker = ServiceProcess(
            name, argv, log_dir=self.log_dir, env={**self.env(), **env}, mark=self.mark, cwd=self.home
        ).start()
        self.workers[name] = worker
        deadline = time.monotonic() + timeout
        while f"{name}@127.0.0.1 ready" not in worker.log_tail(400):
            if not worker.alive():
                raise HarnessError(f"celery worker {name} exited while starting\n{worker.describe(60)}")
            if time.monotonic() > deadline:
                raise HarnessError(f"celery worker {name} not ready after {timeout:.0f} s\n{worker.describe(60)}")
            time.sleep(0.5)
        return worker

    def stop_celery_worker(self, name: str) -> list[str]:
        """Stop one Celery worker (a warm shutdown: SIGTERM, then SIGKILL what is left); return SIGKILLed ones."""
        worker = self.workers.pop(name, None)
        return [f"{name}: {k}" for k in worker.stop(timeout=30)] if worker is not None else []

    def health(self) -> dict[str, Any] | None:
        try:
            resp = requests.get(f"{self.base_url}/api/v2/monitor/health", timeout=5)
        except requests.RequestException:
            return None
        return resp.json() if resp.status_code == 200 else None

    def check_running(self) -> None:
        """Raise (with log tails) if a service of this stack has exited."""
        dead = [s for s in self.services.values() if not s.alive()]
        if dead:
            raise HarnessError(f"{', '.join(s.name for s in dead)} of {self.name} exited\n{self.describe()}")

    def wait_healthy(self, timeout: float) -> None:
        """Wait until the metadata DB, scheduler and dag-processor report healthy; fail fast if a service dies."""
        deadline = time.monotonic() + timeout
        health: dict[str, Any] | None = None
        while True:
            self.check_running()
            health = self.health()
            if health and all(
                (health.get(part) or {}).get("status") == "healthy"
                for part in ("metadatabase", "scheduler", "dag_processor")
            ):
                return
            if time.monotonic() > deadline:
                raise HarnessError(
                    f"{self.name} not healthy after {timeout:.0f} s (last health: {health})\n{self.describe()}"
                )
            time.sleep(1)

    def describe(self, lines: int = 40) -> str:
        """State and log tails of every service (and the database), for failure messages."""
        parts = [s.describe(lines) for s in (*self.services.values(), *self.workers.values())]
        if self.postgres is not None:
            parts.append(f"--- postgres ({self.postgres.log_path}):\n{self.postgres.log_tail(lines)}")
        return "\n".join(parts)

    def stop(self) -> list[str]:
        """Stop dag-processor, scheduler, api-server (in that order), then the database; return SIGKILLed ones."""
        started = time.monotonic()
        killed: list[str] = []
        for name in list(self.workers):
            killed += self.stop_celery_worker(name)
        for name in reversed(self.SERVICES):
            service = self.services.get(name)
            if service is not None:
                killed += [f"{name}: {k}" for k in service.stop()]
        if self.postgres is not None:
            self.postgres.stop()
        # Anything of this stack that escaped its service (should be nothing).
        strays = [pid for pid, _ in _marked_processes(self.mark)]
        if strays:
            killed += [f"stray: {_describe_pid(pid)}" for pid in strays]
            _signal_pids(strays, signal.SIGKILL)
            _wait_gone(strays, 5.0)
        self.timings["stop"] = time.monotonic() - started
        return killed


# -- Spark --------------------------------------------------------------------------------------------


def pyspark_home() -> Path:
    """The folder of the venv's pyspark, which is a complete SPARK_HOME (jars and bin/)."""
    spec = find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise HarnessError("pyspark is not installed in this venv: pip install -e '.[spark]'")
    return Path(spec.origin).parent


class SparkStandalone:
    """A Spark standalone master and one worker (2 cores, 2 GiB) on 127.0.0.1, from the venv's pyspark.

    Args:
        root: folder for logs and the worker's work dir.
    """

    def __init__(self, root: Path, *, cores: int = 2, memory: str = "2g") -> None:
        self.root = root
        self.mark = f"{SESSION_MARK}:spark-{uuid.uuid4().hex[:6]}"
        self.cores = cores
        self.memory = memory
        self.port, self.webui_port = free_port(), free_port()
        self.worker_port, self.worker_webui_port = free_port(), free_port()
        self.master: ServiceProcess | None = None
        self.worker: ServiceProcess | None = None
        self.timings: dict[str, float] = {}
        self._starter: threading.Thread | None = None
        self._start_error: BaseException | None = None

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        home = pyspark_home()
        return {
            **clean_environ(),
            "SPARK_HOME": str(home),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOCAL_DIRS": str(self.root / "local"),
            "SPARK_WORKER_DIR": str(self.root / "work"),
            "PYSPARK_PYTHON": sys.executable,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def start(self, timeout: float = 120) -> SparkStandalone:
        started = time.monotonic()
        spark_class = pyspark_home() / "bin" / "spark-class"
        if not spark_class.exists():
            raise HarnessError(f"{spark_class} is missing: the venv's pyspark has no launcher scripts")
        if shutil.which("java") is None and "JAVA_HOME" not in os.environ:
            raise HarnessError("java is not on PATH: the Spark daemons need Java 17")
        logs = self.root / "service-logs"
        for sub in ("local", "work"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        env = self.env()
        self.master = ServiceProcess(
            "spark-master",
            [
                str(spark_class),
                "org.apache.spark.deploy.master.Master",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--webui-port",
                str(self.webui_port),
            ],
            log_dir=logs,
            env=env,
            mark=self.mark,
        ).start()
        self._wait(lambda s: s.get("status") == "ALIVE", "the master to be ALIVE", started + timeout)
        self.worker = ServiceProcess(
            "spark-worker",
            [
                str(spark_class),
                "org.apache.spark.deploy.worker.Worker",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.worker_port),
                "--webui-port",
                str(self.worker_webui_port),
                "--cores",
                str(self.cores),
                "--memory",
                self.memory,
                "--work-dir",
                str(self.root / "work"),
                self.master_url,
            ],
            log_dir=logs,
            env=env,
            mark=self.mark,
        ).start()
        self._wait(
            lambda s: any(w.get("state") == "ALIVE" for w in s.get("workers", [])),
            "an ALIVE worker",
            started + timeout,
        )
        self.timings["start"] = time.monotonic() - started
        return self

    def start_in_background(self, timeout: float = 120) -> SparkStandalone:
        """Run :meth:`start` in a thread (e.g. while an Airflow stack starts); :meth:`wait_started` joins it."""

        def run() -> None:
            try:
                self.start(timeout)
            except BaseException as exc:
                self._start_error = exc

        self._starter = threading.Thread(target=run, name="spark-standalone-start", daemon=True)
        self._starter.start()
        return self

    def wait_started(self) -> SparkStandalone:
        """Wait for :meth:`start_in_background`; raise its error if the cluster did not come up."""
        if self._starter is not None:
            self._starter.join()
        if self._start_error is not None:
            raise self._start_error
        return self

    def master_json(self) -> dict[str, Any] | None:
        """The master's status (``/json/``): workers, activeapps, completedapps, ..."""
        try:
            resp = requests.get(f"http://127.0.0.1:{self.webui_port}/json/", timeout=5)
            # While Jetty starts, the page can answer 200 with an empty or HTML body: not up yet.
            return resp.json() if resp.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    def worker_json(self) -> dict[str, Any] | None:
        """The worker's status (``/json/``): executors, finishedexecutors, ..."""
        try:
            resp = requests.get(f"http://127.0.0.1:{self.worker_webui_port}/json/", timeout=5)
            # While Jetty starts, the page can answer 200 with an empty or HTML body: not up yet.
            return resp.json() if resp.status_code == 200 else None
        except (requests.RequestException, ValueError):
            return None

    def completed_apps(self) -> list[dict[str, Any]]:
        """Applications that ran on this cluster and finished."""
        return list((self.master_json() or {}).get("completedapps", []))

    def describe(self, lines: int = 40) -> str:
        return "\n".join(s.describe(lines) for s in (self.master, self.worker) if s is not None)

    def _wait(self, ready: Callable[[dict[str, Any]], bool], what: str, deadline: float) -> None:
        while True:
            dead = [s for s in (self.master, self.worker) if s is not None and not s.alive()]
            if dead:
                raise HarnessError(f"{dead[0].name} exited while waiting for {what}\n{self.describe()}")
            status = self.master_json()
            if status is not None and ready(status):
                return
            if time.monotonic() > deadline:
                raise HarnessError(f"timed out waiting for {what} (status: {status})\n{self.describe()}")
            time.sleep(0.5)

    def stop(self) -> list[str]:
        """Stop the worker (and its executors), then the master; return SIGKILLed processes."""
        if self._starter is not None:
            self._starter.join()  # start() gives up by its own timeout
        started = time.monotonic()
        killed: list[str] = []
        for service in (self.worker, self.master):
            if service is not None:
                killed += [f"{service.name}: {k}" for k in service.stop()]
        self.timings["stop"] = time.monotonic() - started
        return killed


class SparkConnectServer:
    """A Spark Connect server (``local[2]`` inside) on 127.0.0.1, from the venv's pyspark jars.

    Clients reach it at :attr:`url` (``sc://127.0.0.1:<port>``). The server's driver runs every query;
    the client process starts no JVM.

    Args:
        root: folder for logs, Spark's local dirs and the server's warehouse.
    """

    MAIN_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"

    def __init__(self, root: Path) -> None:
        self.root = root
        self.mark = f"{SESSION_MARK}:spark-connect-{uuid.uuid4().hex[:6]}"
        self.port = free_port()
        self.service: ServiceProcess | None = None
        self.timings: dict[str, float] = {}

    @property
    def url(self) -> str:
        return f"sc://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120) -> SparkConnectServer:
        started = time.monotonic()
        spark_submit = pyspark_home() / "bin" / "spark-submit"
        if not spark_submit.exists():
            raise HarnessError(f"{spark_submit} is missing: the venv's pyspark has no launcher scripts")
        (self.root / "local").mkdir(parents=True, exist_ok=True)
        env = {
            **clean_environ(),
            "SPARK_HOME": str(pyspark_home()),
            "SPARK_LOCAL_IP": "127.0.0.1",
            "SPARK_LOCAL_DIRS": str(self.root / "local"),
            "PYSPARK_PYTHON": sys.executable,
            "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        }
        conf = {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(self.port),
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "2",
            "spark.sql.session.timeZone": "UTC",
            "spark.sql.warehouse.dir": str(self.root / "warehouse"),
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={self.root / 'derby'} -XX:+UseSerialGC",
        }
        argv = [str(spark_submit), "--class", self.MAIN_CLASS, "--master", "local[2]", "--name", "ppf-e2e-connect"]
        for key, value in conf.items():
            argv += ["--conf", f"{key}={value}"]
        argv.append("spark-internal")
        self.service = ServiceProcess(
            "spark-connect", argv, log_dir=self.root / "service-logs", env=env, mark=self.mark, cwd=self.root
        ).start()
        deadline = started + timeout
        while not self._accepting():
            if not self.service.alive():
                raise HarnessError(f"the Spark Connect server exited while starting\n{self.describe()}")
            if time.monotonic() > deadline:
                raise HarnessError(f"the Spark Connect server did not listen in {timeout:.0f} s\n{self.describe()}")
            time.sleep(0.5)
        self.timings["start"] = time.monotonic() - started
        return self

    def _accepting(self) -> bool:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(1)
            return sock.connect_ex(("127.0.0.1", self.port)) == 0

    def describe(self, lines: int = 60) -> str:
        return self.service.describe(lines) if self.service is not None else "--- spark-connect: not started"

    def stop(self) -> list[str]:
        """Stop the server; return the processes that needed SIGKILL."""
        started = time.monotonic()
        killed = self.service.stop() if self.service is not None else []
        self.timings["stop"] = time.monotonic() - started
        return killed

    def executions(self) -> int:
        """How many operations clients have run on the server so far (from its log)."""
        if self.service is None:
            return 0
        try:
            text = self.service.log_path.read_text(errors="replace")
        except OSError:
            return 0
        return sum(1 for line in text.splitlines() if "ExecuteHolder" in line and "is created" in line)
