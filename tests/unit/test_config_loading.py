"""Loading configs from HOCON, JSON and YAML text and files: one schema, located syntax errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from airflow_ppf.config import (
    CircuitBreakerConfig,
    ComponentType,
    ConfigError,
    PipelineConfig,
    RetryConfig,
)
from airflow_ppf.config.loading import format_for_path, parse_text
from tests.helpers.components import STEP

#: A pipeline in the layout of pyspark-pipeline-framework's HOCON files (only the class paths differ).
SEED_STYLE_HOCON = f"""
# Nightly orders pipeline
name = "orders-nightly"
version = "2.0.1"
environment = "staging"
mode = "batch"

spark {{
  app_name = "Orders Nightly"
  master = "local[2]"
  deploy_mode = "client"
  driver_memory = "1g"
  executor_cores = 2
  dynamic_allocation = false
  spark_conf {{
    "spark.sql.shuffle.partitions" = "16"
    "spark.sql.adaptive.enabled" = "true"
  }}
}}

hooks {{
  logging {{ level = "INFO" }}
}}

secrets {{
  provider = "env"
}}

components = [
  {{
    name = "orders-source"
    component_type = "source"
    class_path = "{STEP}"
    enabled = true
    config {{
      advance = 0.5
      message = "read failed"
    }}
    retry {{
      max_attempts = 4
      initial_delay_seconds = 0.5
      max_delay_seconds = 20.0
      backoff_multiplier = 3.0
      retry_on_exceptions = ["IOError", "TimeoutError"]
    }}
  }},
  {{
    name = "orders-clean"
    component_type = transformation
    class_path = "{STEP}"
    depends_on = ["orders-source"]
    circuit_breaker {{
      failure_threshold = 3
      success_threshold = 1
      timeout_seconds = 30.0
      half_open_max_calls = 1
    }}
  }},
  {{
    name = "orders-sink"
    component_type = "sink"
    class_path = "{STEP}"
    depends_on = ["orders-clean"]
    enabled = false
  }}
]

tags {{
  team = "data-eng"
  priority = 1
}}
"""


def test_seed_style_hocon_loads_with_every_field() -> None:
    config = PipelineConfig.from_string(SEED_STYLE_HOCON)

    assert (config.name, config.version, config.environment, config.mode) == (
        "orders-nightly",
        "2.0.1",
        "staging",
        "batch",
    )
    assert config.spark.app_name == "Orders Nightly"
    assert config.spark.master == "local[2]"
    assert config.spark.executor_cores == 2
    assert config.spark.dynamic_allocation is False
    assert config.spark.spark_conf == {"spark.sql.shuffle.partitions": "16", "spark.sql.adaptive.enabled": "true"}
    assert config.hooks.logging is not None
    assert config.hooks.logging.level == "INFO"
    assert config.secrets is not None
    assert config.secrets.provider == "env"
    assert config.tags == {"team": "data-eng", "priority": "1"}

    source, clean, sink = config.components
    assert source.component_type is ComponentType.SOURCE
    assert source.config == {"advance": 0.5, "message": "read failed"}
    assert source.retry == RetryConfig(
        max_attempts=4,
        initial_delay_seconds=0.5,
        max_delay_seconds=20.0,
        backoff_multiplier=3.0,
        retry_on_exceptions=("IOError", "TimeoutError"),
    )
    assert clean.component_type is ComponentType.TRANSFORMATION
    assert clean.depends_on == ("orders-source",)
    assert clean.circuit_breaker == CircuitBreakerConfig(
        failure_threshold=3, success_threshold=1, timeout_seconds=30.0, half_open_max_calls=1
    )
    assert sink.component_type is ComponentType.SINK
    assert sink.enabled is False
    assert config.get_execution_order() == ["orders-source", "orders-clean", "orders-sink"]


def test_hocon_dotted_spark_conf_keys_nest_and_are_flattened_back() -> None:
    config = PipelineConfig.from_string(
        f"""
        name = p
        spark {{ spark_conf {{ spark.sql.shuffle.partitions = 8, spark.ui.enabled = false }} }}
        components = [{{ name = a, class_path = "{STEP}" }}]
        """
    )

    assert config.spark.spark_conf == {"spark.sql.shuffle.partitions": "8", "spark.ui.enabled": "false"}


# --------------------------------------------------------------------------------------------------
# one schema across formats
# --------------------------------------------------------------------------------------------------

AS_DICT = {
    "name": "orders",
    "version": "1.1.0",
    "spark": {"master": "local[1]", "spark_conf": {"spark.sql.shuffle.partitions": "2"}},
    "components": [
        {"name": "read", "component_type": "source", "class_path": STEP, "config": {"advance": 1.5}},
        {
            "name": "clean",
            "class_path": STEP,
            "depends_on": ["read"],
            "retry": {"max_attempts": 2, "retry_on_exceptions": ["ValueError"]},
        },
        {"name": "write", "component_type": "sink", "class_path": STEP, "depends_on": ["clean"], "enabled": False},
    ],
}

AS_HOCON = f"""
name = orders
version = "1.1.0"
spark {{
  master = "local[1]"
  spark_conf {{ "spark.sql.shuffle.partitions" = "2" }}
}}
components = [
  {{ name = read, component_type = source, class_path = "{STEP}", config {{ advance = 1.5 }} }}
  {{
    name = clean
    class_path = "{STEP}"
    depends_on = [read]
    retry {{ max_attempts = 2, retry_on_exceptions = [ValueError] }}
  }}
  {{ name = write, component_type = sink, class_path = "{STEP}", depends_on = [clean], enabled = false }}
]
"""

AS_YAML = f"""
name: orders
version: "1.1.0"
spark:
  master: local[1]
  spark_conf:
    spark.sql.shuffle.partitions: "2"
components:
  - name: read
    component_type: source
    class_path: {STEP}
    config:
      advance: 1.5
  - name: clean
    class_path: {STEP}
    depends_on: [read]
    retry:
      max_attempts: 2
      retry_on_exceptions: [ValueError]
  - name: write
    component_type: sink
    class_path: {STEP}
    depends_on: [clean]
    enabled: false
"""


def test_the_same_pipeline_in_every_format_gives_equal_configs() -> None:
    from_dict = PipelineConfig.from_dict(AS_DICT)

    assert PipelineConfig.from_string(AS_HOCON) == from_dict
    assert PipelineConfig.from_string(json.dumps(AS_DICT), "json") == from_dict
    assert PipelineConfig.from_string(AS_YAML, "yaml") == from_dict
    # HOCON is a superset of JSON: the default format reads JSON too.
    assert PipelineConfig.from_string(json.dumps(AS_DICT)) == from_dict


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        (".conf", AS_HOCON),
        (".hocon", AS_HOCON),
        (".json", json.dumps(AS_DICT)),
        (".yaml", AS_YAML),
        (".yml", AS_YAML),
        (".txt", AS_HOCON),
    ],
)
def test_from_file_picks_the_format_from_the_extension(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"pipeline{suffix}"
    path.write_text(text, encoding="utf-8")

    assert PipelineConfig.from_file(path) == PipelineConfig.from_dict(AS_DICT)
    assert PipelineConfig.from_file(str(path)) == PipelineConfig.from_dict(AS_DICT)


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.conf", "hocon"),
        ("a.HOCON", "hocon"),
        ("a.json", "json"),
        ("a.Yaml", "yaml"),
        ("a.yml", "yaml"),
        ("a", "hocon"),
    ],
)
def test_format_for_path(name: str, fmt: str) -> None:
    assert format_for_path(name) == fmt


def test_yaml_written_from_to_dict_loads_back_equal(tmp_path: Path) -> None:
    config = PipelineConfig.from_string(SEED_STYLE_HOCON)
    path = tmp_path / "dumped.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()), encoding="utf-8")

    assert PipelineConfig.from_file(path) == config


def test_json_written_from_to_dict_loads_back_equal(tmp_path: Path) -> None:
    config = PipelineConfig.from_string(SEED_STYLE_HOCON)
    path = tmp_path / "dumped.json"
    path.write_text(json.dumps(config.to_dict()), encoding="utf-8")

    assert PipelineConfig.from_file(path) == config


# --------------------------------------------------------------------------------------------------
# HOCON substitution and includes
# --------------------------------------------------------------------------------------------------


def test_hocon_substitutes_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PPF_TEST_INPUT", "/data/in")
    monkeypatch.setenv("PPF_TEST_MASTER", "local[3]")

    config = PipelineConfig.from_string(
        f"""
        name = p
        spark.master = ${{PPF_TEST_MASTER}}
        components = [{{ name = a, class_path = "{STEP}", config {{ path = ${{PPF_TEST_INPUT}}"/orders" }} }}]
        """
    )

    assert config.spark.master == "local[3]"
    assert config.components[0].config == {"path": "/data/in/orders"}


def test_hocon_optional_substitution_leaves_the_key_out_when_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PPF_TEST_UNSET", raising=False)
    text = f"""
        name = p
        description = ${{?PPF_TEST_UNSET}}
        spark {{ master = "local[1]", master = ${{?PPF_TEST_UNSET}} }}
        components = [{{ name = a, class_path = "{STEP}" }}]
    """

    config = PipelineConfig.from_string(text)

    assert config.description is None
    assert config.spark.master == "local[1]"  # the earlier value survives

    monkeypatch.setenv("PPF_TEST_UNSET", "local[4]")
    assert PipelineConfig.from_string(text).spark.master == "local[4]"


def test_hocon_substitution_of_another_key() -> None:
    # Unknown top-level helper keys are rejected, so shared values live under a known key such as tags.
    config = PipelineConfig.from_string(
        f"""
        name = p
        tags {{ root = "/warehouse" }}
        components = [{{ name = a, class_path = "{STEP}", config {{ path = ${{tags.root}}"/x" }} }}]
        """
    )

    assert config.components[0].config == {"path": "/warehouse/x"}


def test_unresolved_hocon_variable_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PPF_TEST_MISSING", raising=False)

    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_string(f"name = ${{PPF_TEST_MISSING}}\ncomponents = [{{ name = a, class_path = {STEP} }}]")

    (problem,) = info.value.problems
    assert problem.location == ""
    assert "Cannot resolve variable ${PPF_TEST_MISSING}" in problem.message
    assert "line: 1" in problem.message
    assert "set the environment variable PPF_TEST_MISSING" in problem.message
    assert "${?PPF_TEST_MISSING}" in problem.message


def test_hocon_include_resolves_next_to_the_file(tmp_path: Path) -> None:
    (tmp_path / "spark.conf").write_text('spark { master = "local[2]" }', encoding="utf-8")
    main = tmp_path / "pipeline.conf"
    main.write_text(f'include "spark.conf"\nname = p\ncomponents = [{{ name = a, class_path = "{STEP}" }}]')

    assert PipelineConfig.from_file(main).spark.master == "local[2]"


# --------------------------------------------------------------------------------------------------
# malformed text and bad files
# --------------------------------------------------------------------------------------------------


def test_malformed_hocon_reports_line_and_column() -> None:
    text = f'name = p\ncomponents = [\n  {{ name = a, class_path = "{STEP}" }}\n]]\n'

    with pytest.raises(ConfigError, match=r"HOCON syntax error: .*line:4, col:2") as info:
        PipelineConfig.from_string(text, source="broken.conf")

    assert info.value.source == "broken.conf"
    assert str(info.value).startswith("Invalid pipeline config (broken.conf): 1 problem")


def test_malformed_json_reports_line_and_column() -> None:
    text = '{\n  "name": "p",\n  "components": [,]\n}'

    with pytest.raises(ConfigError, match=r"JSON syntax error at line 3, column 18: Expecting value"):
        PipelineConfig.from_string(text, "json")


def test_malformed_yaml_reports_line_and_column() -> None:
    text = "name: p\ncomponents:\n  - name: a\n   class_path: x.Y\n"

    with pytest.raises(ConfigError, match=r"YAML syntax error at line 4, column 4: "):
        PipelineConfig.from_string(text, "yaml")


def test_unknown_format_lists_the_supported_ones() -> None:
    with pytest.raises(ConfigError, match=r"unknown config format 'toml'; use one of hocon, json, yaml"):
        PipelineConfig.from_string("name = p", "toml")


@pytest.mark.parametrize(
    ("text", "fmt", "kind"), [("[1, 2]", "json", "list"), ("- a\n- b\n", "yaml", "list"), ("", "yaml", "NoneType")]
)
def test_top_level_must_be_an_object(text: str, fmt: str, kind: str) -> None:
    with pytest.raises(ConfigError, match=rf"the top level of a pipeline config must be an object, got {kind}"):
        parse_text(text, fmt)


def test_schema_problems_of_a_file_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: p\ncomponents:\n  - name: a\n    class_path: tests.helpers.components.Step\n    retyr: {}\n")

    with pytest.raises(
        ConfigError,
        match=r"\(.*bad\.yaml\): 1 problem\n  - components\[0\]\.retyr: unknown key; did you mean 'retry'\?",
    ):
        PipelineConfig.from_file(path)


def test_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.conf"

    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.conf") as info:
        PipelineConfig.from_file(missing)

    assert info.value.source == str(missing)


def test_directory_instead_of_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"expected a config file, got a directory: "):
        PipelineConfig.from_file(tmp_path)


def test_undecodable_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.conf"
    path.write_bytes(b"name = caf\xe9\n")

    with pytest.raises(ConfigError, match=r"cannot read config file: .*codec can't decode"):
        PipelineConfig.from_file(path)


# -- documents too deep or too large to read (deep nesting, alias and substitution bombs) -----------------

_COMPONENT = f"{{name: a, class_path: {STEP}}}"


def _deep_json(depth: int) -> str:
    """A valid pipeline whose one component has a config value of ``depth`` nested lists."""
    deep = "[" * depth + "]" * depth
    return f'{{"name": "x", "components": [{{"name": "a", "class_path": "{STEP}", "config": {{"v": {deep}}}}}]}}'


@pytest.mark.parametrize(
    ("suffix", "text"),
    [
        pytest.param(".json", '{"name": "x", "components": ' + "[" * 100_000, id="json-100000-unclosed"),
        pytest.param(".json", _deep_json(500), id="json-500-balanced"),
        pytest.param(".yaml", "name: x\ncomponents: " + "[" * 5_000, id="yaml-5000"),
        pytest.param(".yaml", _deep_json(150), id="yaml-150-balanced"),
        pytest.param(".conf", "name: x\ncomponents: " + "[" * 100_000, id="hocon-100000"),
        pytest.param(".conf", _deep_json(150), id="hocon-150-balanced"),
    ],
)
def test_deep_nesting_is_a_config_error_naming_the_file(tmp_path: Path, suffix: str, text: str) -> None:
    path = tmp_path / f"deep{suffix}"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError, match=r"nested more than 100 levels deep") as info:
        PipelineConfig.from_file(path)

    assert info.value.source == str(path)
    assert str(path) in str(info.value)


def test_nesting_within_the_bound_loads(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    path.write_text(_deep_json(90), encoding="utf-8")
    assert PipelineConfig.from_file(path).name == "x"


def _yaml_alias_bomb(levels: int) -> str:
    """Billion laughs inside a component's free-form config: each level repeats the one before 9 times."""
    lines = ["name: bomb", "components:", "  - name: a", f"    class_path: {STEP}", "    config:"]
    lines.append('      l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]')
    for i in range(1, levels):
        lines.append(f"      l{i}: &l{i} [" + ",".join([f"*l{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [6, 9])
def test_yaml_alias_bomb_is_refused_before_it_expands(tmp_path: Path, levels: int) -> None:
    import tracemalloc

    path = tmp_path / "bomb.yaml"
    path.write_text(_yaml_alias_bomb(levels), encoding="utf-8")
    assert path.stat().st_size < 600  # 9 levels: 9**9 (387 million) strings from ~500 bytes

    tracemalloc.start()
    try:
        with pytest.raises(ConfigError, match=r"expands to more than 100,000 values .*YAML aliases") as info:
            PipelineConfig.from_file(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert info.value.source == str(path)
    # Refused while reading the event stream: the expanded structure was never built.
    assert peak < 20_000_000


def test_hocon_substitution_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ["name: bomb", f"components: [{_COMPONENT}]", "l0: [lol,lol,lol,lol,lol,lol,lol,lol,lol]"]
    for i in range(1, 7):
        lines.append(f"l{i}: [" + ",".join(["${l" + str(i - 1) + "}"] * 9) + "]")
    path = tmp_path / "bomb.conf"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")

    with pytest.raises(ConfigError, match=r"expands to more than 100,000 values .*HOCON substitutions") as info:
        PipelineConfig.from_file(path)

    assert info.value.source == str(path)


def test_aliases_and_substitutions_within_the_bound_load(tmp_path: Path) -> None:
    shared = tmp_path / "shared.yaml"
    shared.write_text(
        "name: x\ndefaults: &d {log: a}\ncomponents:\n"
        + "".join(f"  - {{name: c{i}, class_path: {STEP}, config: *d}}\n" for i in range(50)),
        encoding="utf-8",
    )
    hocon = tmp_path / "shared.conf"
    hocon.write_text(
        "d: {log: a}\nname: x\ncomponents: ["
        + ", ".join(f"{{name: c{i}, class_path: {STEP}, config: ${{d}} }}" for i in range(50))
        + "]\n",
        encoding="utf-8",
    )
    assert len(parse_text(shared.read_text(), "yaml")["components"]) == 50
    assert len(parse_text(hocon.read_text(), "hocon")["components"]) == 50
