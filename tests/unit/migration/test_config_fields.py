"""pyspark-pipeline-framework's config fields: accepted with its meaning, or refused with a clear error."""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import pytest

from airflow_ppf.config import (
    CircuitBreakerConfig,
    CircuitBreakerConfigs,
    ComponentConfig,
    ConfigError,
    Environment,
    HooksConfig,
    LogLevel,
    PipelineConfig,
    PipelineMode,
    ResiliencePolicies,
    ResiliencePolicy,
    RetryConfig,
    RetryPolicies,
    SecretsConfig,
    SparkConfig,
    SparkDeployMode,
    load_from_file,
    load_from_string,
)
from tests.unit.migration.conftest import CONF

STEP = "tests.unit.migration.upstream_project.Load"


def doc(**fields: Any) -> dict[str, Any]:
    return {"name": "p", "components": [{"name": "a", "class_path": STEP}], **fields}


# -- one set of rules for loaded and Python-built configs -------------------------------------------


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: SparkConfig(driver_cores=0), "driver_cores: must be at least 1, got 0"),
        (lambda: SparkConfig(num_executors=-3), "num_executors: must be at least 1, got -3"),
        (lambda: SparkConfig(executor_cores=0), "executor_cores: must be at least 1, got 0"),
        (lambda: PipelineConfig("p", [ComponentConfig("a", STEP)], version=""), "version: must be a non-empty"),
        (lambda: ComponentConfig("a", "NoDots"), "class_path: 'NoDots' is not a class path"),
        (lambda: RetryConfig(max_attempts=0), "max_attempts: must be at least 1, got 0"),
        (lambda: CircuitBreakerConfig(timeout_seconds=-1), "timeout_seconds: must be at least 0, got -1"),
    ],
)
def test_python_built_configs_are_checked_like_loaded_ones(build: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build()


@pytest.mark.parametrize(
    ("spark", "location", "message"),
    [
        ({"driver_cores": 0}, "spark.driver_cores", "must be at least 1, got 0"),
        ({"num_executors": -3}, "spark.num_executors", "must be at least 1, got -3"),
        ({"deploy_mode": "remote"}, "spark.deploy_mode", "must be one of client, cluster; got 'remote'"),
    ],
)
def test_loaded_configs_get_the_same_messages_at_their_place(
    spark: dict[str, Any], location: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_dict(doc(spark=spark))

    assert {p.location: p.message for p in info.value.problems} == {location: message}


def test_dynamic_allocation_allows_zero_executors() -> None:
    assert SparkConfig(num_executors=0, dynamic_allocation=True).num_executors == 0
    with pytest.raises(ConfigError, match="num_executors: must be at least 1, got 0"):
        SparkConfig(num_executors=0)


# -- upstream fields ----------------------------------------------------------------------------------


def test_enum_fields_behave_like_upstream_enums() -> None:
    config = PipelineConfig.from_dict(doc(environment="STAGING", spark={"deploy_mode": "cluster"}))

    assert config.environment is Environment.STAGING
    assert (config.environment == "staging", config.environment.value) == (True, "staging")
    assert config.mode is PipelineMode.BATCH
    assert config.mode.value == "batch"
    assert config.spark.deploy_mode is SparkDeployMode.CLUSTER
    assert config.spark.deploy_mode == "cluster"
    assert config.components[0].component_type.value == "transformation"
    assert PipelineConfig("p", [ComponentConfig("a", STEP)], environment="prod").environment is Environment.PROD


def test_list_fields_equal_lists() -> None:
    comp = ComponentConfig("b", STEP, depends_on=["a"], retry=RetryConfig(retry_on_exceptions=["OSError"]))
    config = PipelineConfig("p", [ComponentConfig("a", STEP), comp])

    assert comp.depends_on == ["a"]
    assert comp.depends_on == ("a",)
    assert comp.depends_on != ["b"]
    assert comp.retry is not None
    assert comp.retry.retry_on_exceptions == ["OSError"]
    assert config.components == [ComponentConfig("a", STEP), comp]


def test_streaming_mode_is_refused_with_a_reason() -> None:
    with pytest.raises(ConfigError, match=r"mode: streaming pipelines are not supported.*set it to batch"):
        PipelineConfig.from_dict(doc(mode="streaming"))
    with pytest.raises(ConfigError, match="mode: streaming pipelines are not supported"):
        PipelineConfig("p", [ComponentConfig("a", STEP)], mode=PipelineMode.STREAMING)


def test_connect_string_is_the_spark_connect_url() -> None:
    spark = SparkConfig(connect_string="sc://h:15002")

    assert (spark.remote, spark.connect_string) == ("sc://h:15002", "sc://h:15002")
    # One stored value: moving to a master (as the operator does for an Airflow Spark connection) drops it.
    moved = dataclasses.replace(spark, master="spark://h:7077", remote=None)
    assert (moved.master, moved.remote, moved.connect_string) == ("spark://h:7077", None, None)
    assert PipelineConfig.from_dict(doc(spark={"connect_string": "sc://h:15002"})).spark == spark
    with pytest.raises(ConfigError, match="connect_string: is another name for 'remote'"):
        SparkConfig(remote="sc://a:1", connect_string="sc://b:2")
    with pytest.raises(ConfigError, match="remote: set either 'master' or 'remote'"):
        SparkConfig(master="local[2]", connect_string="sc://h:15002")


def test_resilience_fills_retry_and_circuit_breaker() -> None:
    loaded = PipelineConfig.from_dict(
        doc(components=[{"name": "a", "class_path": STEP, "resilience": {"retry": {"max_attempts": 4}}}])
    )
    assert loaded.components[0].retry == RetryConfig(max_attempts=4)
    assert loaded.components[0].circuit_breaker is None

    built = ComponentConfig("a", STEP, resilience=ResiliencePolicies.AGGRESSIVE)
    assert built.retry is RetryPolicies.AGGRESSIVE
    assert built.circuit_breaker is CircuitBreakerConfigs.SENSITIVE
    # Round trip: the policy is written out as the retry and circuit breaker it filled.
    again = PipelineConfig.from_dict(PipelineConfig("p", [built]).to_dict())
    assert again.components[0] == built

    with pytest.raises(ConfigError, match="resilience: set either 'resilience' or 'retry' / 'circuit_breaker'"):
        ComponentConfig("a", STEP, retry=RetryConfig(), resilience=ResiliencePolicy(retry=RetryConfig()))
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_dict(
            doc(components=[{"name": "a", "class_path": STEP, "retry": {}, "resilience": {"retry": {}}}])
        )
    assert [p.location for p in info.value.problems] == ["components[0].resilience"]


def test_hooks_and_secrets_sections_are_typed_and_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    data = doc(
        hooks={"logging": {"level": "debug", "format": "text"}, "metrics": {"backend": "opentelemetry"}},
        secrets={"provider": "vault", "vault_url": "https://vault:8200"},
    )
    with caplog.at_level(logging.WARNING, logger="airflow_ppf.config.models"):
        config = PipelineConfig.from_dict(data)

    assert config.hooks.logging is not None
    assert config.hooks.logging.level is LogLevel.DEBUG
    assert config.hooks.metrics is not None
    assert config.hooks.metrics.backend.value == "opentelemetry"
    assert config.secrets == SecretsConfig(provider="vault", vault_url="https://vault:8200")
    assert [r.getMessage() for r in caplog.records] == [
        "Pipeline 'p': hooks and secrets are kept on the config but not acted on: airflow-ppf sets up logging and "
        "metrics with hooks (LoggingHooks, MetricsHooks, Airflow's metrics) and takes secrets from Airflow "
        "connections, variables or ${VAR}; see docs/migration.md"
    ]
    assert PipelineConfig.from_dict(config.to_dict()) == config


def test_a_config_without_those_sections_warns_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="airflow_ppf.config.models"):
        config = PipelineConfig.from_dict(doc())

    assert caplog.records == []
    assert config.hooks == HooksConfig()
    assert config.secrets is None


@pytest.mark.parametrize(
    ("section", "location", "message"),
    [
        (
            {"hooks": {"metrics": {"export_interval_seconds": 0}}},
            "hooks.metrics.export_interval_seconds",
            "must be at least 1, got 0",
        ),
        ({"hooks": {"logging": {"level": "LOUD"}}}, "hooks.logging.level", "must be one of DEBUG, INFO, WARNING"),
        ({"hooks": {"loging": {}}}, "hooks.loging", "unknown key; did you mean 'logging'?"),
        ({"secrets": {"provider": "vault"}}, "secrets.vault_url", "is required when provider is vault"),
        ({"secrets": {"cache_ttl_seconds": "soon"}}, "secrets.cache_ttl_seconds", "must be an integer, got 'soon'"),
    ],
)
def test_section_problems_are_located(section: dict[str, Any], location: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_dict(doc(**section))

    problems = {p.location: p.message for p in info.value.problems}
    assert problems[location].startswith(message), problems


def test_function_style_loading() -> None:
    config = load_from_file(str(CONF), PipelineConfig)
    assert config == PipelineConfig.from_file(CONF)

    spark = load_from_string('app_name: "x"\nconnect_string: "sc://h:1"', SparkConfig)
    assert spark == SparkConfig(app_name="x", remote="sc://h:1")
    with pytest.raises(ConfigError, match="driver_cores: must be at least 1, got 0"):
        load_from_string("driver_cores: 0", SparkConfig)
