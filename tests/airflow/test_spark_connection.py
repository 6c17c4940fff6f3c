"""Airflow Spark connections → pipeline Spark settings (master URL or Spark Connect URL, conf)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest


@pytest.fixture
def connection(monkeypatch: pytest.MonkeyPatch) -> Iterator[object]:
    def define(conn_id: str, **fields: object) -> None:
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(fields))

    return define


@pytest.mark.parametrize(
    ("fields", "master"),
    [
        ({"conn_type": "spark", "host": "local[2]"}, "local[2]"),
        ({"conn_type": "spark", "host": "yarn"}, "yarn"),
        ({"conn_type": "spark", "host": "spark://10.0.0.5", "port": 7077}, "spark://10.0.0.5:7077"),
        ({"conn_type": "spark", "host": "10.0.0.5", "port": 7077}, "spark://10.0.0.5:7077"),
        ({"conn_type": "spark", "host": "k8s://https://k8s.example:6443"}, "k8s://https://k8s.example:6443"),
    ],
)
def test_spark_connection_gives_a_master_url(connection: object, fields: dict[str, object], master: str) -> None:
    from airflow_ppf.hooks import spark_settings_from_connection

    connection("ppf_test_spark", **fields)  # type: ignore[operator]
    settings = spark_settings_from_connection("ppf_test_spark")
    assert settings.master == master
    assert settings.remote is None


def test_extras_become_spark_conf(connection: object, caplog: pytest.LogCaptureFixture) -> None:
    from airflow_ppf.hooks import spark_settings_from_connection

    connection(  # type: ignore[operator]
        "ppf_test_spark",
        conn_type="spark",
        host="yarn",
        extra={
            "deploy-mode": "cluster",
            "queue": "etl",
            "spark.executor.memory": "4g",
            "spark.dynamicAllocation.enabled": True,
            "conf": {"spark.sql.shuffle.partitions": 64},
            "colour": "blue",
        },
    )
    settings = spark_settings_from_connection("ppf_test_spark")
    assert settings.conf == {
        "spark.submit.deployMode": "cluster",
        "spark.yarn.queue": "etl",
        "spark.executor.memory": "4g",
        "spark.dynamicAllocation.enabled": "true",
        "spark.sql.shuffle.partitions": "64",
    }
    assert "Ignoring extra 'colour'" in caplog.text


def test_spark_connect_connection_gives_an_sc_url_without_leaking_the_token(connection: object) -> None:
    from airflow_ppf.hooks import spark_settings_from_connection

    connection(  # type: ignore[operator]
        "ppf_test_connect",
        conn_type="spark_connect",
        host="connect.example",
        port=15002,
        login="etl",
        password="s3cret",
    )
    settings = spark_settings_from_connection("ppf_test_connect")
    assert settings.master is None
    assert settings.remote == "sc://connect.example:15002/;user_id=etl;token=s3cret"
    assert "s3cret" not in settings.describe()


def test_missing_or_wrong_connections_are_errors(connection: object) -> None:
    from airflow_ppf.hooks import SparkConnectionError, spark_settings_from_connection

    with pytest.raises(SparkConnectionError, match="'ppf_nope' not found"):
        spark_settings_from_connection("ppf_nope")
    connection("ppf_test_pg", conn_type="postgres", host="db")  # type: ignore[operator]
    with pytest.raises(SparkConnectionError, match="has type 'postgres'"):
        spark_settings_from_connection("ppf_test_pg")
    connection("ppf_test_nohost", conn_type="spark")  # type: ignore[operator]
    with pytest.raises(SparkConnectionError, match="has no host"):
        spark_settings_from_connection("ppf_test_nohost")


def test_operator_applies_connection_then_spark_conf(connection: object) -> None:
    from airflow_ppf.config import PipelineConfig
    from airflow_ppf.operators import PipelineOperator

    connection(  # type: ignore[operator]
        "ppf_test_spark", conn_type="spark", host="spark://m", port=7077, extra={"spark.executor.cores": "2"}
    )
    config = PipelineConfig.from_dict(
        {"name": "p", "spark": {"master": "local[1]"}, "components": [{"name": "a", "class_path": "x.Y"}]}
    )
    op = PipelineOperator(
        task_id="t", pipeline=config, spark_conn_id="ppf_test_spark", spark_conf={"spark.executor.cores": 4}
    )
    manager = op._spark_manager(config)
    assert manager.config.master == "spark://m:7077"
    # Spark's console progress bar is off unless asked for (a task log shows stderr as ERROR lines).
    assert manager.extra_conf == {"spark.executor.cores": "4", "spark.ui.showConsoleProgress": "false"}
    assert not manager.started


@pytest.mark.parametrize("where", ["config", "spark_conf", "connection"])
def test_a_progress_bar_asked_for_is_kept(connection: object, where: str) -> None:
    from airflow_ppf.config import PipelineConfig
    from airflow_ppf.operators import PipelineOperator

    asked = {"spark.ui.showConsoleProgress": "true"}
    connection("ppf_test_spark", conn_type="spark", host="local[1]", extra=asked if where == "connection" else {})  # type: ignore[operator]
    config = PipelineConfig.from_dict(
        {
            "name": "p",
            "spark": {"master": "local[1]", "spark_conf": asked if where == "config" else {}},
            "components": [{"name": "a", "class_path": "x.Y"}],
        }
    )
    op = PipelineOperator(
        task_id="t",
        pipeline=config,
        spark_conn_id="ppf_test_spark",
        spark_conf=asked if where == "spark_conf" else {},
    )
    manager = op._spark_manager(config)
    assert {**manager.config.to_spark_conf(), **manager.extra_conf}["spark.ui.showConsoleProgress"] == "true"


@pytest.mark.usefixtures("airflow_db")
def test_a_missing_connection_fails_the_task_once_without_retries(tmp_path: object) -> None:
    from tests.airflow.test_pipeline_operator import _dag as pipeline_dag
    from tests.helpers.components import APPEND_NAME

    dag = pipeline_dag(
        retries=2,
        spark_conn_id="ppf_no_such_connection",
        pipeline={
            "name": "p",
            "components": [{"name": "a", "class_path": APPEND_NAME, "config": {"log_file": f"{tmp_path}/t"}}],
        },
    )
    dag_run = dag.test()

    assert dag_run.state == "failed"
    (ti,) = dag_run.get_task_instances()
    assert ti.state == "failed"
    assert ti.try_number == 1  # a config error: no retries burnt
