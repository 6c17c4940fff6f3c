"""The ppf command line, run as a user runs it: a separate process, exit codes, no tracebacks."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers.components import APPEND_NAME, trace

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
