"""The warning of a try whose saved views cannot help a retry on another worker (``[core] executor``)."""

from __future__ import annotations

import pytest

from airflow_ppf.settings import task_executor, worker_local_warning

NFS = "36 25 0:53 / /mnt/shared rw,relatime shared:1 - nfs4 fileserver:/export rw,vers=4.2\n"


@pytest.mark.parametrize(
    ("configured", "task", "expected"),
    [
        pytest.param("LocalExecutor", None, "LocalExecutor", id="local"),
        pytest.param("CeleryExecutor", None, "CeleryExecutor", id="celery"),
        pytest.param("LocalExecutor,CeleryExecutor", "CeleryExecutor", "CeleryExecutor", id="the-task-picks-one"),
        pytest.param(
            "LocalExecutor,fast:airflow.providers.celery.executors.celery_executor.CeleryExecutor",
            "fast",
            "CeleryExecutor",
            id="an-alias",
        ),
        pytest.param(
            "airflow.providers.cncf.kubernetes.executors.kubernetes_executor.KubernetesExecutor",
            None,
            "KubernetesExecutor",
            id="a-class-path",
        ),
    ],
)
def test_the_task_executor_comes_from_airflow_conf(
    monkeypatch: pytest.MonkeyPatch, configured: str, task: str | None, expected: str
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", configured)
    assert task_executor(task) == expected


@pytest.mark.parametrize(
    ("executor", "location", "warns"),
    [
        pytest.param("CeleryExecutor", "/var/lib/ppf", True, id="celery-plain-path"),
        pytest.param("CeleryExecutor", "file:///var/lib/ppf", True, id="celery-file-uri"),
        pytest.param("KubernetesExecutor", "/tmp/ppf", True, id="kubernetes-plain-path"),
        pytest.param("CeleryExecutor", "s3a://bucket/ppf", False, id="celery-object-store"),
        pytest.param("CeleryExecutor", "hdfs://nn/ppf", False, id="celery-hdfs"),
        pytest.param("LocalExecutor", "/var/lib/ppf", False, id="local-plain-path"),
    ],
)
def test_a_worker_local_data_location_warns_only_under_a_multi_machine_executor(
    monkeypatch: pytest.MonkeyPatch, executor: str, location: str, warns: bool
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
    warning = worker_local_warning(location)
    if not warns:
        assert warning is None
        return
    assert warning is not None
    assert warning.startswith(f"Saved views go to {location}, a path on this worker's own disk, but the {executor} ")
    assert "a retry on another worker: there the saved views cannot help it" in warning


def test_a_path_on_a_network_mount_does_not_warn(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow_ppf.spark import fs

    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")
    real = fs.is_network_path
    monkeypatch.setattr(fs, "is_network_path", lambda uri: real(uri, mountinfo=NFS))

    assert worker_local_warning("/mnt/shared/ppf") is None
    assert worker_local_warning("/var/lib/ppf") is not None
