"""Layering rules that keep the core usable without Airflow and DAG parsing cheap."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CORE = [
    "airflow_ppf.config",
    "airflow_ppf.components",
    "airflow_ppf.runner",
    "airflow_ppf.spark",
    "airflow_ppf.checkpoint",
    "airflow_ppf.cli",
]


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_import_linter_contracts_hold() -> None:
    out = subprocess.run(
        [str(Path(sys.executable).parent / "lint-imports")], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "Contracts: 3 kept, 0 broken" in out.stdout
    assert "Layers: " in out.stdout


def test_the_core_imports_without_airflow() -> None:
    # Every submodule of the core packages, imported in a fresh interpreter: Airflow must stay out.
    code = f"""
import importlib, pkgutil, sys
for name in {CORE!r}:
    module = importlib.import_module(name)
    for info in pkgutil.walk_packages(getattr(module, "__path__", []), name + "."):
        importlib.import_module(info.name)
bad = sorted(m for m in sys.modules if m == "airflow" or m.startswith("airflow."))
assert not bad, bad
"""
    out = _python(code)
    assert out.returncode == 0, out.stderr[-3000:]


def test_no_module_imports_pyspark_at_import_time() -> None:
    code = """
import importlib, pkgutil, sys
import airflow_ppf
for info in pkgutil.walk_packages(airflow_ppf.__path__, "airflow_ppf."):
    if info.name == "airflow_ppf.__main__":
        continue
    importlib.import_module(info.name)
loaded = sorted(m for m in sys.modules if m == "pyspark" or m.startswith("pyspark."))
assert not loaded, loaded
print("checked")
"""
    out = _python(code)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "checked" in out.stdout


#: What the operator's import must not load (DAG parsing): observability is imported when a task runs.
OBSERVABILITY = (
    "openlineage",
    "airflow.providers.openlineage",
    "opentelemetry",
    "statsd",
    "airflow.sdk.observability",
    "airflow_ppf.observability",
)


def test_the_operator_import_loads_no_observability_machinery() -> None:
    code = f"""
import sys
import airflow.sdk
before = set(sys.modules)
from airflow_ppf.operators import PipelineOperator
added = sorted(m for m in set(sys.modules) - before if m.startswith({OBSERVABILITY!r}))
assert not added, added
print("checked")
"""
    out = _python(code)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "checked" in out.stdout
