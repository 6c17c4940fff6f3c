"""PipelineConfig: the schema, its defaults, to_dict round trips and validation with located problems."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_ppf.config import (
    CircuitBreakerConfig,
    ComponentConfig,
    ComponentType,
    ConfigError,
    ConfigProblem,
    MaterializePolicy,
    PipelineConfig,
    RetryConfig,
    SparkConfig,
)
from tests.helpers.components import STEP

# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------


def comp(name: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "class_path": STEP, "depends_on": list(deps), **extra}


def doc(*components: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"name": "p", "components": list(components), **extra}


def problems_of(data: Any) -> list[ConfigProblem]:
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_dict(data)
    return info.value.problems


def by_location(data: Any) -> dict[str, str]:
    return {p.location: p.message for p in problems_of(data)}


# --------------------------------------------------------------------------------------------------
# schema and defaults
# --------------------------------------------------------------------------------------------------


def test_minimal_config_gets_documented_defaults() -> None:
    config = PipelineConfig.from_dict({"name": "p", "components": [{"name": "a", "class_path": STEP}]})

    assert config.name == "p"
    assert config.version == "1.0.0"
    assert config.environment == "dev"
    assert config.mode == "batch"
    assert config.materialize is MaterializePolicy.AUTO
    assert config.spark == SparkConfig()
    (a,) = config.components
    assert a == ComponentConfig(name="a", class_path=STEP)
    assert a.component_type is ComponentType.TRANSFORMATION
    assert a.enabled is True
    assert a.depends_on == ()
    assert a.config == {}
    assert a.retry is None
    assert a.circuit_breaker is None


def test_spark_block_may_be_omitted_and_every_spark_field_stays_unset() -> None:
    config = PipelineConfig.from_dict(doc(comp("a")))

    assert config.spark.master is None
    assert config.spark.remote is None
    assert config.spark.app_name is None
    assert config.spark.to_spark_conf() == {}


@pytest.mark.parametrize(
    ("raw", "expected"), [("source", "source"), ("SINK", "sink"), (" Transformation ", "transformation")]
)
def test_component_type_is_read_case_insensitively(raw: str, expected: str) -> None:
    config = PipelineConfig.from_dict(doc(comp("a", component_type=raw)))

    assert config.components[0].component_type == ComponentType(expected)


def test_nested_spark_conf_is_flattened_to_dotted_string_keys() -> None:
    config = PipelineConfig.from_dict(
        doc(
            comp("a"),
            spark={
                "master": "local[2]",
                "spark_conf": {
                    "spark": {"sql": {"shuffle.partitions": 4, "adaptive": {"enabled": True}}},
                    "spark.executor.memoryOverhead": "512m",
                },
            },
        )
    )

    assert config.spark.spark_conf == {
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.adaptive.enabled": "true",
        "spark.executor.memoryOverhead": "512m",
    }


def test_spark_settings_map_to_spark_properties() -> None:
    spark = SparkConfig(
        master="yarn",
        deploy_mode="cluster",
        driver_memory="2g",
        executor_cores=2,
        num_executors=3,
        dynamic_allocation=False,
        spark_conf={"spark.sql.shuffle.partitions": "8"},
    )

    assert spark.to_spark_conf() == {
        "spark.submit.deployMode": "cluster",
        "spark.driver.memory": "2g",
        "spark.executor.cores": "2",
        "spark.executor.instances": "3",
        "spark.dynamicAllocation.enabled": "false",
        "spark.sql.shuffle.partitions": "8",
    }


def test_master_and_remote_together_are_rejected() -> None:
    with pytest.raises(ConfigError, match=r"spark\.remote: set either 'master' or 'remote'"):
        PipelineConfig.from_dict(doc(comp("a"), spark={"master": "local", "remote": "sc://localhost:15002"}))


def test_a_lone_depends_on_string_is_read_as_a_one_item_list() -> None:
    config = PipelineConfig.from_dict(doc(comp("a"), {"name": "b", "class_path": STEP, "depends_on": "a"}))

    assert config.components[1].depends_on == ("a",)


@pytest.mark.parametrize(("raw", "expected"), [("false", False), ("no", False), ("On", True), (True, True)])
def test_enabled_accepts_booleans_and_boolean_words(raw: object, expected: bool) -> None:
    config = PipelineConfig.from_dict(doc(comp("a", enabled=raw)))

    assert config.components[0].enabled is expected


def test_retry_and_circuit_breaker_blocks_fill_in_defaults() -> None:
    config = PipelineConfig.from_dict(
        doc(comp("a", retry={"max_attempts": 5}, circuit_breaker={"failure_threshold": 2}))
    )
    a = config.components[0]

    assert a.retry == RetryConfig(max_attempts=5)
    assert a.retry.retry_on_exceptions == ("Exception",)
    assert a.circuit_breaker == CircuitBreakerConfig(failure_threshold=2)


def test_config_block_is_kept_as_plain_data() -> None:
    config = PipelineConfig.from_dict(doc(comp("a", config={"path": "/in", "opts": {"sep": ";"}, "cols": ["x", "y"]})))

    assert config.components[0].config == {"path": "/in", "opts": {"sep": ";"}, "cols": ["x", "y"]}


def test_graph_accessors() -> None:
    config = PipelineConfig.from_dict(doc(comp("a"), comp("b", "a"), comp("c", "b"), comp("x")))

    assert config.component_names == ["a", "b", "c", "x"]
    assert [c.name for c in config] == ["a", "b", "c", "x"]
    assert config.get_component("b") is config.components[1]
    assert config.get_component("nope") is None
    assert config.dependency_graph() == {"a": (), "b": ("a",), "c": ("b",), "x": ()}
    assert config.downstream_of(["a"]) == {"b", "c"}
    assert config.upstream_of(["c"]) == {"a", "b"}


def test_execution_order_includes_disabled_components() -> None:
    config = PipelineConfig.from_dict(doc(comp("b", "a"), comp("a", enabled=False)))

    assert config.get_execution_order() == ["a", "b"]


# --------------------------------------------------------------------------------------------------
# to_dict round trips
# --------------------------------------------------------------------------------------------------

ROUND_TRIP_CASES: dict[str, dict[str, Any]] = {
    "minimal": doc(comp("a")),
    "diamond": doc(comp("a"), comp("b", "a"), comp("c", "a"), comp("d", "b", "c")),
    "declared out of order": doc(comp("load", "clean"), comp("clean", "read"), comp("read")),
    "everything set": {
        "name": "full",
        "version": "2.3.4",
        "environment": "prod",
        "mode": "batch",
        "materialize": "always",
        "description": "all the fields",
        "tags": {"team": "data", "tier": "1"},
        "hooks": {"logging": {"level": "INFO"}},
        "secrets": {"provider": "env"},
        "spark": {
            "app_name": "Full",
            "master": "spark://host:7077",
            "deploy_mode": "client",
            "driver_memory": "2g",
            "driver_cores": 1,
            "executor_memory": "4g",
            "executor_cores": 2,
            "num_executors": 3,
            "dynamic_allocation": True,
            "log_level": "WARN",
            "spark_conf": {"spark.sql.shuffle.partitions": "8"},
        },
        "components": [
            comp(
                "read",
                component_type="source",
                config={"path": "/in", "options": {"header": True}, "columns": ["a", "b"]},
                retry={
                    "max_attempts": 4,
                    "initial_delay_seconds": 0.5,
                    "max_delay_seconds": 10,
                    "backoff_multiplier": 3,
                    "jitter": 0.2,
                    "retry_on_exceptions": ["ConnectionError", "pyspark.errors.AnalysisException"],
                },
                circuit_breaker={
                    "failure_threshold": 3,
                    "success_threshold": 1,
                    "timeout_seconds": 30,
                    "half_open_max_calls": 2,
                },
                materialize="never",
                description="reads",
            ),
            comp("write", "read", component_type="sink", enabled=False),
        ],
    },
    "spark connect": doc(comp("a"), spark={"remote": "sc://localhost:15002", "app_name": "c"}),
}


@pytest.mark.parametrize("data", ROUND_TRIP_CASES.values(), ids=ROUND_TRIP_CASES.keys())
def test_to_dict_round_trips(data: dict[str, Any]) -> None:
    config = PipelineConfig.from_dict(data)

    again = PipelineConfig.from_dict(config.to_dict())

    assert again == config
    assert again.to_dict() == config.to_dict()


def test_to_dict_of_a_full_config_keeps_every_field() -> None:
    config = PipelineConfig.from_dict(ROUND_TRIP_CASES["everything set"])

    out = config.to_dict()

    assert out["tags"] == {"team": "data", "tier": "1"}
    assert out["spark"]["num_executors"] == 3
    assert out["components"][0]["retry"]["retry_on_exceptions"] == [
        "ConnectionError",
        "pyspark.errors.AnalysisException",
    ]
    assert out["components"][0]["circuit_breaker"]["half_open_max_calls"] == 2
    assert out["components"][1]["enabled"] is False


def test_round_trip_of_directly_built_models() -> None:
    nested_conf: Any = {"spark": {"ui": {"enabled": False}}}  # flattened by SparkConfig
    config = PipelineConfig(
        name="built",
        components=(
            ComponentConfig("a", STEP, retry=RetryConfig(max_attempts=2, retry_on_exceptions=("ValueError",))),
            ComponentConfig("b", STEP, depends_on=("a",), circuit_breaker=CircuitBreakerConfig(timeout_seconds=5)),
        ),
        spark=SparkConfig(master="local[1]", spark_conf=nested_conf),
    )

    assert PipelineConfig.from_dict(config.to_dict()) == config


# --------------------------------------------------------------------------------------------------
# validation: every problem, each with its location
# --------------------------------------------------------------------------------------------------


def test_unknown_top_level_key_suggests_the_closest_one() -> None:
    with pytest.raises(ConfigError, match=r"compnents: unknown key; did you mean 'components'\?"):
        PipelineConfig.from_dict({"name": "p", "components": [comp("a")], "compnents": []})


def test_unknown_component_key_suggests_the_closest_one() -> None:
    assert by_location(doc(comp("a", dependson=["b"]))) == {
        "components[0].dependson": "unknown key; did you mean 'depends_on'?"
    }


def test_unknown_key_without_close_match_lists_the_allowed_keys() -> None:
    problems = by_location(doc(comp("a", retry={"zzz": 1})))

    assert problems["components[0].retry.zzz"].startswith("unknown key; allowed keys: max_attempts,")


@pytest.mark.parametrize(
    ("entry", "location", "message"),
    [
        (comp("a", depends_on=5), "components[0].depends_on", "must be a list of strings, got a number"),
        (comp("a", depends_on=["", 3]), "components[0].depends_on[0]", "must be a non-empty string, got ''"),
        (comp("a", config=[1, 2]), "components[0].config", "must be an object, got a list"),
        (comp("a", enabled="maybe"), "components[0].enabled", "must be true or false, got 'maybe'"),
        (comp("a", component_type="loader"), "components[0].component_type", "must be one of source,"),
        (comp("a", class_path="NoDots"), "components[0].class_path", "'NoDots' is not a class path"),
        (comp("a", class_path="pkg.1bad.Cls"), "components[0].class_path", "is not a class path"),
        (comp("a", class_path=["x"]), "components[0].class_path", "must be a string, got a list"),
        ({"class_path": STEP}, "components[0].name", "is required"),
        (comp(" a"), "components[0].name", "must not start or end with whitespace"),
        (comp("a\nb"), "components[0].name", "must not contain control characters"),
        (comp("x" * 201), "components[0].name", "must be at most 200 characters"),
        ("just-a-string", "components[0]", "a component must be an object, got a string"),
    ],
)
def test_wrong_types_are_reported_at_their_location(entry: Any, location: str, message: str) -> None:
    problems = by_location(doc(entry))

    assert location in problems, problems
    assert problems[location].startswith(message) or message in problems[location]


@pytest.mark.parametrize(
    ("data", "location", "message"),
    [
        ({"components": [comp("a")]}, "name", "is required"),
        ({"name": "  ", "components": [comp("a")]}, "name", "must not be empty"),
        ({"name": "p"}, "components", "is required"),
        ({"name": "p", "components": {"a": {}}}, "components", "must be a list of components, got an object"),
        (doc(comp("a"), environment="qa"), "environment", "must be one of dev, staging, prod, test; got 'qa'"),
        (doc(comp("a"), spark="local"), "spark", "spark must be an object, got a string"),
        (doc(comp("a"), spark={"driver_cores": 0}), "spark.driver_cores", "must be at least 1, got 0"),
        (doc(comp("a"), spark={"num_executors": 1.5}), "spark.num_executors", "must be an integer, got 1.5"),
    ],
)
def test_top_level_problems_are_located(data: Any, location: str, message: str) -> None:
    assert by_location(data)[location] == message


def test_a_non_mapping_document_is_rejected() -> None:
    with pytest.raises(ConfigError, match="a pipeline config must be an object, got a list"):
        PipelineConfig.from_dict([comp("a")])  # type: ignore[arg-type]


def test_empty_pipeline_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"components: the pipeline has no components; add at least one"):
        PipelineConfig.from_dict({"name": "p", "components": []})


def test_duplicate_names_name_both_places() -> None:
    problems = problems_of(doc(comp("a"), comp("b"), comp("a")))

    assert problems == [ConfigProblem("components[2].name", "duplicate component name 'a' (also components[0])")]


def test_unknown_dependency_suggests_a_close_name() -> None:
    problems = by_location(doc(comp("read"), comp("clean", "raed"), comp("write", "nothing_like_it")))

    assert problems == {
        "components[1].depends_on[0]": "unknown component 'raed'; did you mean 'read'?",
        "components[2].depends_on[0]": "unknown component 'nothing_like_it'",
    }


def test_dependency_locations_stay_right_after_an_invalid_entry() -> None:
    problems = problems_of(doc(comp("a", depends_on=[3, "ghost"])))

    assert problems == [
        ConfigProblem("components[0].depends_on[0]", "must be a non-empty string, got 3"),
        ConfigProblem("components[0].depends_on[1]", "unknown component 'ghost'"),
    ]


def test_self_dependency_is_rejected() -> None:
    problems = problems_of(doc(comp("a", "a")))

    assert problems == [ConfigProblem("components[0].depends_on[0]", "component 'a' cannot depend on itself")]


def test_repeated_dependency_is_rejected() -> None:
    assert by_location(doc(comp("a"), comp("b", "a", "a"))) == {
        "components[1].depends_on": "lists a component more than once"
    }


def test_cycle_message_shows_the_path() -> None:
    data = doc(comp("a", "c"), comp("b", "a"), comp("c", "b"))

    with pytest.raises(ConfigError, match=r"components\[0\]\.depends_on: dependency cycle: a -> c -> b -> a;"):
        PipelineConfig.from_dict(data)


def test_cycle_not_involving_the_first_component_is_located_at_its_start() -> None:
    problems = problems_of(doc(comp("root"), comp("x", "root", "z"), comp("y", "x"), comp("z", "y")))

    assert problems == [
        ConfigProblem(
            "components[1].depends_on", "dependency cycle: x -> z -> y -> x; remove one of these dependencies"
        )
    ]


def test_direct_construction_validates_the_graph_too() -> None:
    with pytest.raises(ConfigError, match=r"dependency cycle: a -> b -> a"):
        PipelineConfig(
            "p", (ComponentConfig("a", STEP, depends_on=("b",)), ComponentConfig("b", STEP, depends_on=("a",)))
        )


def test_direct_construction_rejects_an_empty_name() -> None:
    with pytest.raises(ConfigError, match=r"name: must be a non-empty string"):
        ComponentConfig("", STEP)


@pytest.mark.parametrize(
    ("retry", "location", "message"),
    [
        ({"max_attempts": 0}, "max_attempts", "must be at least 1, got 0"),
        ({"max_attempts": 2.5}, "max_attempts", "must be an integer, got 2.5"),
        ({"max_attempts": "three"}, "max_attempts", "must be an integer, got 'three'"),
        ({"max_attempts": True}, "max_attempts", "must be an integer, got a boolean"),
        ({"initial_delay_seconds": -1}, "initial_delay_seconds", "must be at least 0, got -1"),
        ({"backoff_multiplier": 0.5}, "backoff_multiplier", "must be at least 1, got 0.5"),
        ({"jitter": 1.5}, "jitter", "must be between 0 and 1"),
        (
            {"initial_delay_seconds": 5, "max_delay_seconds": 1},
            "max_delay_seconds",
            "must be >= initial_delay_seconds (5)",
        ),
        ({"max_delay_seconds": float("inf")}, "max_delay_seconds", "must be a finite number, got inf"),
        ({"retry_on_exceptions": "ValueError"}, None, None),
        ({"retry_on_exceptions": [1]}, "retry_on_exceptions[0]", "must be a non-empty string, got 1"),
    ],
)
def test_bad_retry_values(retry: dict[str, Any], location: str | None, message: str | None) -> None:
    data = doc(comp("a", retry=retry))
    if location is None:
        # A lone string is accepted as a one-item list.
        assert PipelineConfig.from_dict(data).components[0].retry.retry_on_exceptions == ("ValueError",)  # type: ignore[union-attr]
        return
    assert by_location(data) == {f"components[0].retry.{location}": message}


@pytest.mark.parametrize(
    ("breaker", "location", "message"),
    [
        ({"failure_threshold": 0}, "failure_threshold", "must be at least 1, got 0"),
        ({"success_threshold": -2}, "success_threshold", "must be at least 1, got -2"),
        ({"half_open_max_calls": 0}, "half_open_max_calls", "must be at least 1, got 0"),
        ({"timeout_seconds": -1}, "timeout_seconds", "must be at least 0, got -1"),
        ({"timeout": 3}, "timeout", "unknown key; did you mean 'timeout_seconds'?"),
    ],
)
def test_bad_circuit_breaker_values(breaker: dict[str, Any], location: str, message: str) -> None:
    assert by_location(doc(comp("a", circuit_breaker=breaker))) == {
        f"components[0].circuit_breaker.{location}": message
    }


def test_direct_model_construction_validates_values() -> None:
    with pytest.raises(ConfigError, match=r"max_attempts: must be at least 1[\s\S]*jitter: must be between 0 and 1"):
        RetryConfig(max_attempts=0, jitter=2)
    with pytest.raises(ConfigError, match=r"failure_threshold: must be at least 1"):
        CircuitBreakerConfig(failure_threshold=0)


def test_all_problems_are_collected_at_once() -> None:
    data = {
        "name": "p",
        "compnents": [],
        "components": [
            comp("a", "ghost", retry={"max_attempts": 0}),
            comp("b", enabled="perhaps", colour="red"),
            comp("a", class_path="nope"),
            comp("c", "c"),
        ],
    }

    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_dict(data)

    error = info.value
    locations = [p.location for p in error.problems]
    assert sorted(locations) == sorted(
        [
            "components[0].retry.max_attempts",
            "components[0].depends_on[0]",
            "components[1].enabled",
            "components[1].colour",
            "components[2].class_path",
            "components[2].name",
            "components[3].depends_on[0]",
            "compnents",
        ]
    )
    assert str(error).startswith("Invalid pipeline config: 8 problems\n  - ")
    assert all(f"\n  - {p}" in str(error) for p in error.problems)


def test_a_bad_component_does_not_hide_graph_problems_of_others() -> None:
    # components[0] is invalid (bad class path) but still counts as a known name for its dependents.
    problems = by_location(doc(comp("a", class_path="bad"), comp("b", "a"), comp("c", "zzz")))

    assert set(problems) == {"components[0].class_path", "components[2].depends_on[0]"}


def test_config_error_problems_and_message() -> None:
    error = ConfigError(
        [ConfigProblem("components[1].depends_on", "unknown component 'x'"), ConfigProblem("", "whole doc")],
        source="pipeline.conf",
    )

    assert error.problems[0].location == "components[1].depends_on"
    assert error.source == "pipeline.conf"
    assert str(error) == (
        "Invalid pipeline config (pipeline.conf): 2 problems\n"
        "  - components[1].depends_on: unknown component 'x'\n"
        "  - whole doc"
    )
    assert isinstance(error, ValueError)


def test_config_error_single_and_singular_header() -> None:
    error = ConfigError.single("name", "is required")

    assert error.problems == [ConfigProblem("name", "is required")]
    assert str(error) == "Invalid pipeline config: 1 problem\n  - name: is required"


def test_from_dict_passes_its_source_to_the_error() -> None:
    with pytest.raises(ConfigError, match=r"^Invalid pipeline config \(my.conf\): 1 problem") as info:
        PipelineConfig.from_dict({"name": "p"}, source="my.conf")

    assert info.value.source == "my.conf"
