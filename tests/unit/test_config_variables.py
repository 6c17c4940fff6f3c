"""Pipeline variables reach string values (quoted HOCON, JSON, YAML, dicts): one rule, located errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_ppf.config import ConfigError, PipelineConfig
from tests.helpers.components import STEP

#: The example's mistake: a variable inside a triple-quoted SQL string, which HOCON leaves alone.
REGION_HOCON = f'''
name = regions
components = [
  {{ name = read, class_path = "{STEP}", config {{ path = ${{DATA_DIR}}/orders.csv }} }}
  {{
    name = pick
    class_path = "{STEP}"
    depends_on = [read]
    config {{
      sql = """
        SELECT * FROM orders WHERE region = '${{REGION}}' AND day = "${{RUN_DATE}}"
      """
    }}
  }}
]
'''


def _sql(config: PipelineConfig) -> str:
    return " ".join(str(config.components[1].config["sql"]).split())


def test_variables_reach_triple_quoted_hocon_strings() -> None:
    config = PipelineConfig.from_string(
        REGION_HOCON, variables={"DATA_DIR": "/in", "REGION": "north", "RUN_DATE": "2026-11-27"}
    )

    assert _sql(config) == """SELECT * FROM orders WHERE region = 'north' AND day = "2026-11-27\""""
    assert config.components[0].config["path"] == "/in/orders.csv"  # HOCON's own substitution still works


def test_an_unknown_variable_in_a_string_is_a_config_error_naming_it_and_its_place() -> None:
    with pytest.raises(ConfigError, match=r"components\[1\]\.config\.sql: unknown variable 'REGION'") as info:
        PipelineConfig.from_string(REGION_HOCON, variables={"DATA_DIR": "/in", "RUN_DATE": "x"}, source="regions.conf")

    (problem,) = info.value.problems
    assert problem.location == "components[1].config.sql"
    assert "pipeline_vars" in problem.message
    assert "--var REGION=" in problem.message
    assert "$${REGION}" in problem.message  # the escape for a literal
    assert info.value.source == "regions.conf"


def test_every_unknown_variable_is_reported_with_a_hint() -> None:
    with pytest.raises(ConfigError) as info:
        PipelineConfig.from_string(REGION_HOCON, variables={"DATA_DIR": "/in", "REGOIN": "north"})

    messages = {p.location: p.message for p in info.value.problems}
    assert len(info.value.problems) == 2
    assert "unknown variable 'REGION'" in info.value.problems[0].message
    assert "did you mean 'REGOIN'?" in info.value.problems[0].message
    assert "unknown variable 'RUN_DATE'" in info.value.problems[1].message
    assert set(messages) == {"components[1].config.sql"}


def test_double_dollar_is_a_literal_and_optional_unknown_is_empty() -> None:
    config = PipelineConfig.from_dict(
        {
            "name": "p",
            "components": [
                {
                    "name": "a",
                    "class_path": STEP,
                    "config": {
                        "sql": "SELECT '$${hivevar:day}', '${DAY}', '${?MISSING}'",
                        "items": ["${DAY}", 3, {"deep": "x-${ DAY }"}],
                    },
                }
            ],
        },
        variables={"DAY": "mon"},
    )

    assert config.components[0].config == {
        "sql": "SELECT '${hivevar:day}', 'mon', ''",
        "items": ["mon", 3, {"deep": "x-mon"}],
    }


def test_a_literal_dollar_brace_survives_to_dict_and_back() -> None:
    config = PipelineConfig.from_string(
        f'name = p\ncomponents = [{{ name = a, class_path = "{STEP}", config {{ sql = "SELECT \'$${{x}}\'" }} }}]'
    )
    assert config.components[0].config["sql"] == "SELECT '${x}'"

    assert PipelineConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    ("fmt", "dump"),
    [
        ("json", json.dumps),
        ("yaml", lambda d: __import__("yaml").safe_dump(d)),
    ],
)
def test_json_and_yaml_follow_the_same_rule(fmt: str, dump: Any) -> None:
    doc = {"name": "p", "components": [{"name": "a", "class_path": STEP, "config": {"where": "r = '${REGION}'"}}]}

    config = PipelineConfig.from_string(dump(doc), fmt, variables={"REGION": "west"})
    assert config.components[0].config == {"where": "r = 'west'"}

    with pytest.raises(ConfigError, match=r"components\[0\]\.config\.where: unknown variable 'REGION'"):
        PipelineConfig.from_string(dump(doc), fmt)


def test_dicts_follow_the_same_rule() -> None:
    doc = {"name": "p", "tags": {"team": "${TEAM}"}, "components": [{"name": "a", "class_path": STEP}]}

    assert PipelineConfig.from_dict(doc, variables={"TEAM": "data"}).tags == {"team": "data"}
    with pytest.raises(ConfigError, match=r"tags\.team: unknown variable 'TEAM'"):
        PipelineConfig.from_dict(doc)


def test_files_follow_the_same_rule(tmp_path: Path) -> None:
    path = tmp_path / "regions.conf"
    path.write_text(REGION_HOCON, encoding="utf-8")

    config = PipelineConfig.from_file(path, variables={"DATA_DIR": "/in", "REGION": "east", "RUN_DATE": "d"})
    assert "region = 'east'" in _sql(config)

    with pytest.raises(ConfigError, match=r"unknown variable 'REGION'") as info:
        PipelineConfig.from_file(path, variables={"DATA_DIR": "/in", "RUN_DATE": "d"})
    assert info.value.source == str(path)


def test_a_variable_value_is_inserted_verbatim() -> None:
    """A value holding ``${`` or ``$${`` is data, not a reference: it is not substituted again."""
    doc = {"name": "p", "components": [{"name": "a", "class_path": STEP, "config": {"v": "<${V}>"}}]}

    config = PipelineConfig.from_dict(doc, variables={"V": "$${x} ${y}"})

    assert config.components[0].config == {"v": "<$${x} ${y}>"}
