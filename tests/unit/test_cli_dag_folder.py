"""``ppf`` in a DAG folder: components defined next to the config import, ``--var NAME=VALUE`` fills ``${NAME}``."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.unit.test_cli import ppf

pytestmark = pytest.mark.slow  # a Python process per command

#: A component module that lives in the DAG folder only (not on PYTHONPATH).
LOCAL_COMPONENTS = """
from pathlib import Path

from airflow_ppf.components import Component


class WriteMessage(Component):
    def __init__(self, path: str, message: str) -> None:
        self.path, self.message = path, message

    def run(self) -> None:
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(self.message + "\\n")
"""


def _dag_folder(tmp_path: Path) -> tuple[Path, Path]:
    folder = tmp_path / "dags"
    folder.mkdir()
    (folder / "region_steps.py").write_text(LOCAL_COMPONENTS, encoding="utf-8")
    out = tmp_path / "out.txt"
    config = folder / "report.conf"
    config.write_text(
        f"""
name: region-report
components: [
  {{
    name: pick
    class_path: region_steps.WriteMessage
    config {{
      path: "{out}"
      message: \"\"\"SELECT * FROM orders WHERE region = '${{REGION}}' AND day = '${{DAY}}'\"\"\"
    }}
  }}
]
""",
        encoding="utf-8",
    )
    return config, out


def test_validate_imports_components_next_to_the_config(tmp_path: Path) -> None:
    config, _ = _dag_folder(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    out = ppf("validate", str(config), "--var", "REGION=north", "--var", "DAY=2026-11-27", cwd=elsewhere)

    assert out.returncode == 0, out.stderr
    assert "OK: pipeline 'region-report', 1 components" in out.stdout


def test_run_substitutes_vars_inside_quoted_strings(tmp_path: Path) -> None:
    config, written = _dag_folder(tmp_path)

    out = ppf("run", str(config), "--var", "REGION=north", "--var", "DAY=2026-11-27", "--no-checkpoint", cwd=tmp_path)

    assert out.returncode == 0, out.stderr
    assert written.read_text(encoding="utf-8").splitlines() == [
        "SELECT * FROM orders WHERE region = 'north' AND day = '2026-11-27'"
    ]


def test_a_missing_var_exits_2_naming_it_and_its_place(tmp_path: Path) -> None:
    config, written = _dag_folder(tmp_path)
    checkpoints = tmp_path / "ckpt"

    for command in ("validate", "run"):
        args = [command, str(config), "--var", "DAY=d"]
        if command == "run":
            args += ["--checkpoint-dir", str(checkpoints)]
        out = ppf(*args)
        assert out.returncode == 2, (command, out.stderr)
        assert "components[0].config.message: unknown variable 'REGION'" in out.stderr, out.stderr
        assert "--var REGION=" in out.stderr
        assert "Traceback" not in out.stderr
    assert not written.exists()
    assert not checkpoints.exists() or not any(checkpoints.rglob("*.json"))


@pytest.mark.parametrize(
    ("var", "expected"),
    [
        ("REGION", "--var expects NAME=VALUE, got 'REGION'"),
        ("=north", "--var expects NAME=VALUE, got '=north'"),
        ("1REGION=north", "'1REGION' is not a variable name"),
    ],
)
def test_bad_var_syntax_exits_2_with_a_clear_message(tmp_path: Path, var: str, expected: str) -> None:
    config, _ = _dag_folder(tmp_path)
    for command in ("validate", "run"):
        out = ppf(command, str(config), "--var", var)
        assert out.returncode == 2, (command, out.stderr)
        assert expected in out.stderr, out.stderr
        assert "Traceback" not in out.stderr


def test_a_failed_run_says_how_to_resume_with_its_vars(tmp_path: Path) -> None:
    folder = tmp_path / "dags"
    folder.mkdir()
    config = folder / "gate.conf"
    config.write_text(
        "name: gate\ncomponents: [{ name: gate, class_path: airflow_ppf.components.faults.FaultInjection, "
        'config { fail_on_attempts: [1], message: "no ${WHAT} today" } }]\n',
        encoding="utf-8",
    )

    out = ppf("run", str(config), "--var", "WHAT=reports today", "--checkpoint-dir", str(tmp_path / "ckpt"))

    assert out.returncode == 1, out.stderr
    assert "no reports today today" in out.stdout
    assert "--resume --checkpoint-dir" in out.stdout
    assert "--var 'WHAT=reports today'" in out.stdout
    resume = out.stdout.split("Resume with: ", 1)[1].strip().split()
    assert resume[:2] == ["ppf", "run"]
    again = subprocess.run(
        [
            "sh",
            "-c",
            out.stdout.split("Resume with: ", 1)[1].strip().replace("ppf run", "python -m airflow_ppf run", 1),
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=120,
    )
    assert again.returncode == 0, again.stderr


def _env() -> dict[str, str]:
    import os
    import sys

    from tests.unit.test_cli import REPO

    return {**os.environ, "PYTHONPATH": str(REPO), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
