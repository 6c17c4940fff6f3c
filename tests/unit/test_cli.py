"""The ppf command line, run as a user runs it: a separate process, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from airflow_ppf.checkpoint import LocalCheckpointStore
from tests.helpers.components import APPEND_NAME, trace
from tests.unit.checkpoint.components import BLOCK_ENV, BLOCK_INIT_ENV, read_log
from tests.unit.checkpoint.support import chain, write_config

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow  # a Python process per command: seconds, not milliseconds


def ppf(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "airflow_ppf", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=120
    )


def write_pipeline(path: Path, log: Path, *, fail_on: list[int] | None = None, extra: str = "") -> Path:
    gate_attempts = json.dumps(fail_on if fail_on is not None else [1])
    path.write_text(
        f"""
name: cli-demo
components: [
  {{ name: extract, class_path: {APPEND_NAME}, config {{ log_file: "{log}" }} }}
  {{ name: transform, class_path: {APPEND_NAME}, depends_on: [extract], config {{ log_file: "{log}" {extra} }} }}
  {{ name: gate, class_path: airflow_ppf.components.faults.FaultInjection, depends_on: [transform],
     config {{ fail_on_attempts: {gate_attempts} }} }}
  {{ name: load, class_path: {APPEND_NAME}, depends_on: [gate], config {{ log_file: "{log}" }} }}
]
""",
        encoding="utf-8",
    )
    return path


def test_validate_ok(tmp_path: Path) -> None:
    config = write_pipeline(tmp_path / "p.conf", tmp_path / "log")
    out = ppf("validate", str(config))
    assert out.returncode == 0, out.stderr
    assert "OK: pipeline 'cli-demo', 4 components" in out.stdout
    assert "extract → transform → gate → load" in out.stdout


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\ncomponents: [{name: a, class_path: x.Y, depends_on: [b]}]", "unknown component 'b'"),
        ("name: x\ncomponents: [{name: a, class_path: x.Y, colour: red}]", "components[0].colour: unknown key"),
        ("name: x\ncomponents: [{name: a, class_path: no_such.Mod}]", "cannot import module 'no_such'"),
        ("name: x\ncomponents: [ {name: a, class_path: x.Y ", "HOCON syntax error"),
        (
            "name: x\ncomponents: [{name: a, class_path: x.Y, depends_on: [b]}, {name: b, class_path: x.Y, "
            "depends_on: [a]}]",
            "dependency cycle: a -> b -> a",
        ),
        (f"name: x\ncomponents: [{{name: a, class_path: {APPEND_NAME}, config {{ log: 1 }} }}]", "unknown config key"),
        ("name: x\ncomponents: [{name: a, class_path: tests.helpers.components.BrokenInit}]", "cannot use value 0"),
        ("name: x\ncomponents: " + "[" * 100_000, "bad.conf): 1 problem\n  - the document is nested more than 100"),
    ],
)
def test_bad_input_exits_2_with_one_clear_message(tmp_path: Path, text: str, expected: str) -> None:
    config = tmp_path / "bad.conf"
    config.write_text(text, encoding="utf-8")
    out = ppf("validate", str(config))
    assert out.returncode == 2
    assert expected in out.stderr
    assert "Traceback" not in out.stderr
    run = ppf("run", str(config), "--checkpoint-dir", str(tmp_path / "ckpt"))
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "ckpt").exists() or not any((tmp_path / "ckpt").rglob("*.json")), "nothing half-written"


def test_missing_file_exits_2(tmp_path: Path) -> None:
    out = ppf("run", str(tmp_path / "nope.conf"))
    assert out.returncode == 2
    assert "config file not found" in out.stderr


def test_run_fails_then_resumes_and_shows_the_plan(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    config = write_pipeline(tmp_path / "p.conf", log)
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt")]

    first = ppf("run", str(config), "--run-id", "nightly:2026-11-27+00", *ckpt)
    assert first.returncode == 1, first.stderr
    assert "[1/4] extract ✓" in first.stdout
    assert "gate ✗ InjectedFailure" in first.stdout
    assert "Resume with: ppf run" in first.stdout
    assert trace(log) == ["extract@1", "transform@1"]

    second = ppf("run", str(config), "--run-id", "nightly:2026-11-27+00", "--resume", *ckpt)
    assert second.returncode == 0, second.stderr
    assert "skipping 2 of 4 components" in second.stdout
    assert re.search(r"extract\s+skip\s+completed in attempt 1", second.stdout)
    assert re.search(r"gate\s+run\s+failed in attempt 1: InjectedFailure", second.stdout)
    assert "[1/4] extract skipped (completed in attempt 1)" in second.stdout
    assert "SUCCESS" in second.stdout
    assert trace(log) == ["extract@1", "transform@1", "load@2"]

    listed = ppf("checkpoints", *ckpt, "list")
    assert "nightly:2026-11-27+00" in listed.stdout
    assert "completed" in listed.stdout
    shown = ppf("checkpoints", *ckpt, "show", "nightly:2026-11-27+00")
    assert shown.returncode == 0
    assert "Attempts:" in shown.stdout
    assert "gate: InjectedFailure: injected failure (attempt 1)" in shown.stdout
    assert "attempt 2: ran gate, load; skipped extract, transform" in shown.stdout
    as_json = json.loads(ppf("checkpoints", *ckpt, "show", "nightly:2026-11-27+00", "--json").stdout)
    assert as_json["completed_components"] == ["extract", "transform", "gate", "load"]

    cleared = ppf("checkpoints", *ckpt, "clear", "nightly:2026-11-27+00")
    assert cleared.returncode == 0
    assert "its next run starts from the beginning" in cleared.stdout
    assert "No checkpoints" in ppf("checkpoints", *ckpt, "list").stdout


def test_resume_after_a_config_change_restarts_or_fails(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    config = write_pipeline(tmp_path / "p.conf", log)
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt"), "--run-id", "r1"]
    assert ppf("run", str(config), *ckpt).returncode == 1
    write_pipeline(config, log, extra=", value: changed")
    refused = ppf("run", str(config), *ckpt, "--resume", "--on-config-change", "fail")
    assert refused.returncode == 2
    assert "transform: config.value added" in refused.stderr
    restarted = ppf("run", str(config), *ckpt, "--resume")
    assert restarted.returncode == 0
    assert "starting from the beginning because the pipeline changed" in restarted.stdout
    assert trace(log) == ["extract@1", "transform@1", "extract@2", "transform@2", "load@2"]


def test_run_json_output_and_no_checkpoint(tmp_path: Path) -> None:
    config = write_pipeline(tmp_path / "p.conf", tmp_path / "log", fail_on=[])
    out = ppf("run", str(config), "--no-checkpoint", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout[out.stdout.index("{") :])
    assert doc["status"] == "success"
    assert [c["name"] for c in doc["components"]] == ["extract", "transform", "gate", "load"]


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    config = write_pipeline(tmp_path / "p.conf", tmp_path / "log")
    out = ppf("run", str(config), "--resume")
    assert out.returncode == 2
    assert "--resume needs --run-id" in out.stderr
    bad_conf = ppf("run", str(config), "--conf", "novalue")
    assert bad_conf.returncode == 2
    assert "--conf expects KEY=VALUE" in bad_conf.stderr
    assert ppf("checkpoints", "--checkpoint-dir", str(tmp_path), "show", "missing").returncode == 2


def test_corrupt_checkpoint_is_named_and_exits_2(tmp_path: Path) -> None:
    config = write_pipeline(tmp_path / "p.conf", tmp_path / "log")
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt"), "--run-id", "r1"]
    assert ppf("run", str(config), *ckpt).returncode == 1
    snapshot = next((tmp_path / "ckpt").rglob("*.json"))
    snapshot.write_text("{ not json", encoding="utf-8")
    out = ppf("run", str(config), *ckpt, "--resume")
    assert out.returncode == 2
    assert str(snapshot) in out.stderr
    assert "is corrupt" in out.stderr
    assert "Traceback" not in out.stderr


def test_module_entry_point_and_console_script_agree() -> None:
    out = ppf("--help")
    assert out.returncode == 0
    assert "validate" in out.stdout
    assert "checkpoints" in out.stdout


def test_version_and_options_after_the_command(tmp_path: Path) -> None:
    from airflow_ppf import __version__

    version = ppf("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"ppf {__version__}")
    config = write_pipeline(tmp_path / "p.conf", tmp_path / "log")
    ckpt = str(tmp_path / "ckpt")
    assert ppf("run", str(config), "--checkpoint-dir", ckpt, "--run-id", "r1").returncode == 1
    # --checkpoint-dir after the action, as well as before it; --debug after the command as well as before it
    for args in (
        ["checkpoints", "list", "--checkpoint-dir", ckpt],
        ["checkpoints", "--checkpoint-dir", ckpt, "list"],
        ["checkpoints", "list", "--checkpoint-dir", ckpt, "--debug"],
    ):
        out = ppf(*args)
        assert out.returncode == 0, (args, out.stderr)
        assert re.search(r"^\s*r1\s+cli-demo\s+failed\b", out.stdout, re.MULTILINE), (args, out.stdout)
    shown = ppf("checkpoints", "show", "r1", "--checkpoint-dir", ckpt)
    assert shown.returncode == 0, shown.stderr
    assert "Run 'r1' of pipeline 'cli-demo': failed" in shown.stdout
    bad = tmp_path / "bad.conf"
    bad.write_text("name: x\ncomponents: [{ name: a, class_path: no.such.Thing }]\n", encoding="utf-8")
    debug = ppf("validate", str(bad), "--debug")
    assert debug.returncode == 2
    assert "no.such" in debug.stderr
    assert ppf("checkpoints", "clear", "r1", "--checkpoint-dir", ckpt).returncode == 0
    assert "No checkpoints" in ppf("checkpoints", "list", "--checkpoint-dir", ckpt).stdout


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "{config}", "--checkpoint-dir", ""], "--checkpoint-dir must not be empty"),
        (["run", "{config}", "--run-id", ""], "--run-id must not be empty"),
        (["run", "{config}", "--run-id", " ", "--resume"], "--run-id must not be empty"),
        (["checkpoints", "--checkpoint-dir", "", "list"], "--checkpoint-dir must not be empty"),
        (["checkpoints", "--checkpoint-dir", "{ckpt}", "clear", ""], "the run id must not be empty"),
    ],
)
def test_empty_arguments_exit_2_instead_of_a_default(tmp_path: Path, args: list[str], expected: str) -> None:
    log = tmp_path / "trace.log"
    config = write_pipeline(tmp_path / "p.conf", log, fail_on=[])
    argv = [a.format(config=config, ckpt=tmp_path / "ckpt") for a in args]

    out = ppf(*argv, cwd=tmp_path)

    assert out.returncode == 2, out
    assert f"ppf: {expected}" in out.stderr
    assert "Traceback" not in out.stderr
    assert not log.exists(), "nothing ran"
    assert not (tmp_path / ".ppf").exists(), "no default folder was used instead"


# -- damaged checkpoints: listed by run id, cleared, or moved aside by a run that does not resume -----------


def _damage(snapshot: Path, how: str) -> tuple[Path, str]:
    """Damage a checkpoint; return the file the error names and the problem ``list`` shows."""
    journal = snapshot.with_suffix(".journal")
    if how == "corrupt-json":
        snapshot.write_text("{ not json", encoding="utf-8")
        return snapshot, "not valid JSON (line 1, column 3)"
    if how == "damaged-journal":
        lines = journal.read_bytes().split(b"\n")
        assert len(lines) > 2
        lines[0] = lines[0][:20] + b"#" + lines[0][21:]
        journal.write_bytes(b"\n".join(lines))
        return journal, "line 1 is damaged"
    doc = json.loads(snapshot.read_bytes())
    doc["schema_version"] = 99
    snapshot.write_text(json.dumps(doc), encoding="utf-8")
    return snapshot, "checkpoint schema version 99 was written by a newer airflow-ppf"


@pytest.mark.parametrize("damage", ["corrupt-json", "damaged-journal", "future-schema"])
def test_a_damaged_checkpoint_is_listed_by_run_id_and_can_be_cleared(tmp_path: Path, damage: str) -> None:
    log = tmp_path / "trace.log"
    config = write_pipeline(tmp_path / "p.conf", log)  # gate fails on attempt 1
    run_id = "nightly:2026-11-27+00"
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt")]
    assert ppf("run", str(config), "--run-id", run_id, *ckpt).returncode == 1
    snapshot = next((tmp_path / "ckpt").rglob("*.json"))
    named, problem = _damage(snapshot, damage)

    listed = ppf("checkpoints", *ckpt, "list")
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if "damaged:" in line)
    assert row.strip().startswith(f"{run_id}  cli-demo  damaged: {problem}")

    resumed = ppf("run", str(config), "--run-id", run_id, "--resume", *ckpt)
    assert resumed.returncode == 2
    assert str(named) in resumed.stderr
    assert "ppf checkpoints clear" in resumed.stderr

    cleared = ppf("checkpoints", *ckpt, "clear", run_id)
    assert cleared.returncode == 0, cleared.stderr
    assert f"Moved the damaged checkpoint aside ({problem}" in cleared.stdout
    assert f"Cleared the checkpoint of run {run_id!r}: its next run starts from the beginning" in cleared.stdout
    assert not snapshot.exists()
    assert len(list(snapshot.parent.glob(f"{snapshot.stem}.*.corrupt-*"))) == 2  # kept for inspection
    assert "No checkpoints" in ppf("checkpoints", *ckpt, "list").stdout

    again = ppf("run", str(config), "--run-id", run_id, "--resume", *ckpt)
    assert again.returncode == 1  # a fresh attempt 1: the gate fails again
    assert "attempt 1" in again.stdout
    assert trace(log) == ["extract@1", "transform@1", "extract@1", "transform@1"]


@pytest.mark.parametrize("damage", ["corrupt-json", "future-schema"])
def test_a_run_without_resume_moves_a_damaged_checkpoint_aside(tmp_path: Path, damage: str) -> None:
    log = tmp_path / "trace.log"
    config = write_pipeline(tmp_path / "p.conf", log, fail_on=[])
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt"), "--run-id", "r1"]
    assert ppf("run", str(config), *ckpt).returncode == 0
    snapshot = next((tmp_path / "ckpt").rglob("*.json"))
    _damage(snapshot, damage)

    rerun = ppf("run", str(config), *ckpt)

    assert rerun.returncode == 0, rerun.stderr
    assert f"Note: damaged checkpoint moved aside to {snapshot}.corrupt-" in rerun.stdout
    assert "SUCCESS" in rerun.stdout
    state = LocalCheckpointStore(tmp_path / "ckpt").load("r1")
    assert state is not None
    assert [a.attempt for a in state.attempts] == [1]
    assert state.status == "completed"


# -- an unusable --checkpoint-dir is bad input, found before anything runs ----------------------------------


@pytest.mark.parametrize("kind", ["file", "parent-is-a-file", "dangling-symlink", "under-proc", "lock-is-a-folder"])
def test_an_unusable_checkpoint_dir_exits_2_before_anything_runs(tmp_path: Path, kind: str) -> None:
    log = tmp_path / "trace.log"
    config = write_pipeline(tmp_path / "p.conf", log, fail_on=[])
    afile = tmp_path / "afile"
    afile.write_text("not a folder", encoding="utf-8")
    (tmp_path / "link").symlink_to(tmp_path / "gone")
    target, reason = {
        "file": (afile, "it is a file, not a folder"),
        "parent-is-a-file": (afile / "ckpt", f"{afile} is a file, not a folder"),
        "dangling-symlink": (tmp_path / "link", f"it is a symbolic link to {tmp_path / 'gone'}, which does not exist"),
        "under-proc": (Path("/proc/ppf-test"), "cannot create /proc/ppf-test: No such file or directory"),
        "lock-is-a-folder": (tmp_path / "ckpt", "{lock} is a folder where airflow-ppf keeps a file"),
    }[kind]
    lock = LocalCheckpointStore(tmp_path / "ckpt").paths("r1", "cli-demo")[2]
    lock.mkdir(parents=True)

    out = ppf("run", str(config), "--run-id", "r1", "--checkpoint-dir", str(target))

    assert out.returncode == 2, out
    assert out.stderr == f"ppf: checkpoint folder {target} cannot be used: {reason.format(lock=lock)}\n"
    assert out.stdout == ""
    assert not log.exists(), "nothing ran"
    assert not (tmp_path / "gone").exists()
    if kind == "file":
        listed = ppf("checkpoints", "--checkpoint-dir", str(target), "list")
        assert (listed.returncode, listed.stderr) == (2, f"ppf: checkpoint folder {target} is a file, not a folder\n")


def _read_only_mounts_work(folder: Path) -> bool:
    """Whether this process may bind-mount ``folder`` read-only in a private mount namespace (root here)."""
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", READ_ONLY_MOUNT + ' && ! touch "$0/probe" 2>/dev/null', str(folder)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    return probe.returncode == 0


#: Bind-mount ``$0`` read-only onto itself (in the private mount namespace of ``unshare --mount``).
READ_ONLY_MOUNT = 'mount --bind "$0" "$0" && mount -o remount,bind,ro "$0" "$0"'


def test_a_read_only_checkpoint_dir_exits_2_before_anything_runs(tmp_path: Path) -> None:
    log = tmp_path / "trace.log"
    config = write_pipeline(tmp_path / "p.conf", log, fail_on=[])
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    if not _read_only_mounts_work(ckpt):
        pytest.skip("cannot bind-mount a folder read-only here (needs unshare and CAP_SYS_ADMIN)")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-m", "airflow_ppf", "run", str(config), "--run-id", "r1", "--checkpoint-dir", str(ckpt)]

    out = subprocess.run(
        ["unshare", "--mount", "sh", "-c", READ_ONLY_MOUNT + ' && shift && exec "$@"', str(ckpt), "--", *command],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )

    assert out.returncode == 2, out
    assert out.stderr == f"ppf: checkpoint folder {ckpt} cannot be used: it is on a read-only file system\n"
    assert not log.exists(), "nothing ran"


# -- processes that meet: a closed stdout, SIGTERM, a clear during a run, two attempts at once -------------


def ppf_start(*args: str, **env: str) -> subprocess.Popen[str]:
    """Start ``ppf`` in the background (``env``: extra environment variables)."""
    return subprocess.Popen(
        [sys.executable, "-m", "airflow_ppf", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(REPO), **env},
    )


def wait_for(path: Path, proc: subprocess.Popen[str], timeout: float = 60) -> None:
    """Wait until ``path`` exists (a test component created it), failing if ``proc`` ends first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"ppf ended early ({proc.returncode}): {proc.communicate()}")
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    try:
        out, err = proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, out, err


def test_a_closed_stdout_stops_the_output_not_the_run(tmp_path: Path) -> None:
    """``ppf run … | head -1``: once the reader is gone, ppf writes nothing more; the run completes."""
    log, go = tmp_path / "ran.log", tmp_path / "go"
    config = write_config(tmp_path / "p.json", log, chain("a", "b", "c", b={"block": True}))
    ckpt = ["--run-id", "r1", "--checkpoint-dir", str(tmp_path / "ckpt")]
    proc = ppf_start("run", str(config), *ckpt, **{BLOCK_ENV: str(go)})
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("Pipeline 'demo' · run id r1")  # head -1
    wait_for(Path(f"{go}.waiting"), proc)
    proc.stdout.close()  # the reader goes away, with b still running: all further output hits a closed pipe
    go.touch()

    code = proc.wait(timeout=60)
    err = proc.stderr.read() if proc.stderr else ""

    assert code == 0, err
    assert "BrokenPipeError" not in err
    assert "Exception ignored" not in err
    assert read_log(log) == ["a", "b", "c"]
    state = LocalCheckpointStore(tmp_path / "ckpt").load("r1")
    assert state is not None
    assert (state.status, state.completed_components) == ("completed", ["a", "b", "c"])


def test_sigterm_marks_the_checkpoint_interrupted_and_exits_143(tmp_path: Path) -> None:
    log, go = tmp_path / "ran.log", tmp_path / "go"
    config = write_config(tmp_path / "p.json", log, chain("a", "b", "c", b={"block": True}))
    ckpt = ["--run-id", "r1", "--checkpoint-dir", str(tmp_path / "ckpt")]
    proc = ppf_start("run", str(config), *ckpt, **{BLOCK_ENV: str(go)})
    wait_for(Path(f"{go}.waiting"), proc)

    proc.send_signal(signal.SIGTERM)  # what schedulers, `timeout` and Kubernetes send
    code, _, err = finish(proc)

    assert code == 143, err
    assert "ppf: terminated (SIGTERM); the checkpoint is kept" in err
    assert "Traceback" not in err
    state = LocalCheckpointStore(tmp_path / "ckpt").load("r1")
    assert state is not None
    assert (state.status, state.attempts[-1].status) == ("interrupted", "interrupted")
    assert state.completed_components == ["a"]
    resumed = ppf("run", str(config), *ckpt, "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert read_log(log) == ["a", "b", "b", "c"]


def test_clearing_a_run_while_it_runs_is_refused(tmp_path: Path) -> None:
    log, go = tmp_path / "ran.log", tmp_path / "go"
    config = write_config(tmp_path / "p.json", log, chain("a", "b", "c", b={"block": True}))
    ckpt = ["--checkpoint-dir", str(tmp_path / "ckpt")]
    proc = ppf_start("run", str(config), "--run-id", "r1", *ckpt, **{BLOCK_ENV: str(go)})
    try:
        wait_for(Path(f"{go}.waiting"), proc)
        refused = ppf("checkpoints", *ckpt, "clear", "r1")
        assert refused.returncode == 2
        assert re.match(r"ppf: run 'r1' is running \(an attempt of it holds .*\.active\): stop it", refused.stderr)
        assert LocalCheckpointStore(tmp_path / "ckpt").load("r1") is not None
    finally:
        go.touch()
    code, _, err = finish(proc)
    assert code == 0, err
    state = LocalCheckpointStore(tmp_path / "ckpt").load("r1")
    assert state is not None
    assert (state.status, state.completed_components) == ("completed", ["a", "b", "c"])  # nothing undone
    cleared = ppf("checkpoints", *ckpt, "clear", "r1")
    assert cleared.returncode == 0, cleared.stderr
    assert LocalCheckpointStore(tmp_path / "ckpt").load("r1") is None


def test_a_retry_plans_and_writes_from_one_read_of_the_checkpoint(tmp_path: Path) -> None:
    """Attempt 1 is still running when attempt 2 reads the checkpoint; attempt 1 then finishes before attempt
    2's first write. Attempt 2 must neither drop attempt 1's progress nor run its components again."""
    log, go, built = tmp_path / "ran.log", tmp_path / "go", tmp_path / "built"
    config = write_config(tmp_path / "p.json", log, chain("a", "b", "c", b={"block": True}, c={"block_init": True}))
    ckpt = ["--run-id", "r1", "--checkpoint-dir", str(tmp_path / "ckpt")]
    older = ppf_start("run", str(config), *ckpt, **{BLOCK_ENV: str(go)})
    retry = None
    try:
        wait_for(Path(f"{go}.waiting"), older)  # attempt 1: a done, b running
        retry = ppf_start("run", str(config), *ckpt, "--resume", **{BLOCK_INIT_ENV: str(built)})
        wait_for(Path(f"{built}.waiting"), retry)  # attempt 2 read the checkpoint and planned: skip a
        go.touch()
        assert finish(older)[0] == 0  # attempt 1 finishes b and c meanwhile
        built.touch()
        code, out, err = finish(retry)
    finally:
        go.touch()
        built.touch()
        for proc in (older, retry):
            if proc is not None and proc.poll() is None:
                proc.kill()
    assert code == 0, out + err
    assert "planned again: checkpoint of run 'r1'" in out
    assert read_log(log) == ["a", "b", "c"], "attempt 2 ran again what attempt 1 had finished"
    state = LocalCheckpointStore(tmp_path / "ckpt").load("r1")
    assert state is not None
    assert state.completed_components == ["a", "b", "c"]
    assert {n: r.attempt for n, r in state.components.items()} == {"a": 1, "b": 1, "c": 1}
    assert state.attempts[-1].skipped == ["a", "b", "c"]


def test_a_higher_attempt_number_fences_off_an_older_attempt_that_started_first(tmp_path: Path) -> None:
    """Attempt 1 started first but had not written yet when the scheduler started attempt 2 (``--attempt``):
    attempt 2 owns the checkpoint, whichever writes first."""
    log, built = tmp_path / "ran.log", tmp_path / "built"
    config = write_config(tmp_path / "p.json", log, chain("a", "b", a={"block_init": True}))
    ckpt = ["--run-id", "r1", "--checkpoint-dir", str(tmp_path / "ckpt")]
    older = ppf_start("run", str(config), *ckpt, "--attempt", "1", **{BLOCK_INIT_ENV: str(built)})
    try:
        wait_for(Path(f"{built}.waiting"), older)  # attempt 1 read (no checkpoint), not written yet
        newer = ppf("run", str(config), *ckpt, "--attempt", "2", "--resume")
        assert newer.returncode == 0, newer.stderr
        assert "attempt 2" in newer.stdout
        built.touch()
        code, out, err = finish(older)
    finally:
        built.touch()
        if older.poll() is None:
            older.kill()
    assert code == 1, out + err
    assert "its checkpoint could not be kept: checkpoint of run 'r1' belongs to attempt 2" in out
    assert read_log(log) == ["a", "b"]  # only attempt 2 ran them
    state = LocalCheckpointStore(tmp_path / "ckpt").load("r1")
    assert state is not None
    assert ([a.attempt for a in state.attempts], state.status) == ([2], "completed")

    again = ppf("run", str(config), *ckpt, "--attempt", "2", "--resume")
    assert again.returncode == 2
    assert "belongs to attempt 2" in again.stderr
    assert "(--attempt 3 or higher takes over)" in again.stderr
    assert ppf("run", str(config), *ckpt, "--attempt", "0").returncode == 2
