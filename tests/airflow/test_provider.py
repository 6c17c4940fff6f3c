"""Provider registration: the provider-info dict, its entry point, its config section, `airflow providers list`."""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import subprocess
import sys

import pytest

from airflow_ppf import __version__
from airflow_ppf.get_provider_info import get_provider_info


def test_entry_point_points_at_get_provider_info() -> None:
    eps = importlib.metadata.entry_points(group="apache_airflow_provider")
    ours = [ep for ep in eps if ep.value.startswith("airflow_ppf.")]
    assert [ep.value for ep in ours] == ["airflow_ppf.get_provider_info:get_provider_info"]
    assert ours[0].dist is not None
    assert ours[0].dist.metadata["Name"] == get_provider_info()["package-name"] == "airflow-ppf"


def test_every_class_path_in_provider_info_imports() -> None:
    info = get_provider_info()
    modules = [m for group in info["operators"] for m in group["python-modules"]]
    assert modules == ["airflow_ppf.operators.pipeline"]
    for module in modules:
        importlib.import_module(module)
    for path in info["extra-links"]:
        module, _, name = path.rpartition(".")
        cls = getattr(importlib.import_module(module), name)
        assert cls().name == "Checkpoint"
    assert info["versions"] == [__version__]


def test_provider_info_passes_airflows_schema() -> None:
    import json
    from pathlib import Path

    import airflow
    import jsonschema

    schema = json.loads((Path(airflow.__file__).parent / "provider_info.schema.json").read_text())
    jsonschema.validate(get_provider_info(), schema)


@pytest.mark.usefixtures("airflow_db")
def test_airflow_lists_the_provider_and_reads_its_config() -> None:
    env = {**os.environ, "AIRFLOW__PPF__DATA_LOCATION": "s3a://bucket/ppf"}
    listed = subprocess.run(
        [sys.executable, "-m", "airflow", "providers", "list", "-o", "json"], capture_output=True, text=True, env=env
    )
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert '"airflow-ppf"' in listed.stdout
    value = subprocess.run(
        [sys.executable, "-m", "airflow", "config", "get-value", "ppf", "data_location"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert value.stdout.strip() == "s3a://bucket/ppf"
