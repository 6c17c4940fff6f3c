"""Fingerprints: canonical, stable across processes, and covering exactly what a pipeline computes."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_ppf.config import PipelineConfig
from airflow_ppf.runner import compute_pipeline_fingerprint
from airflow_ppf.runner.checkpoint import compute_component_fingerprints
from tests.unit.checkpoint.support import STEP, run_child

Edit = Callable[[dict[str, Any]], None]


def component(name: str, deps: list[str] | None = None, class_path: str = STEP, **config: Any) -> dict[str, Any]:
    return {"name": name, "class_path": class_path, "config": config, "depends_on": deps or []}


def diamond() -> dict[str, Any]:
    """``a -> (b, c) -> d`` plus an unrelated ``e``."""
    return {
        "name": "diamond",
        "spark": {"app_name": "fp", "master": "local[1]"},
        "components": [
            component("a", sql="select 1", options={"z": 1, "a": [1, 2, {"k": "v"}]}),
            component("b", ["a"], sql="select * from a"),
            component("c", ["a"], sql="select 2"),
            component("d", ["b", "c"], sql="select * from b join c"),
            component("e", sql="select 3"),
        ],
    }


def fingerprint(data: dict[str, Any]) -> str:
    return compute_pipeline_fingerprint(PipelineConfig.from_dict(data))


def edited(edit: Edit) -> dict[str, Any]:
    data = diamond()
    edit(data)
    return data


def comp(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in data["components"] if c["name"] == name)


def test_fingerprint_is_a_sha256_hex_digest() -> None:
    fp = fingerprint(diamond())
    assert len(fp) == 64
    int(fp, 16)
    assert fingerprint(diamond()) == fp


def test_fingerprints_are_stable_across_processes_and_hash_seeds(tmp_path: Path) -> None:
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps(diamond()), encoding="utf-8")
    config = PipelineConfig.from_file(path)
    expected = {"pipeline": compute_pipeline_fingerprint(config), "components": compute_component_fingerprints(config)}

    outputs = []
    for seed in ("0", "1", "4242"):
        proc = run_child("fingerprint", str(path), PYTHONHASHSEED=seed)
        assert proc.returncode == 0, proc.stderr
        outputs.append(json.loads(proc.stdout))

    assert outputs == [expected] * 3


@pytest.mark.parametrize(
    ("left", "right"),
    [
        pytest.param(
            [component("ab", class_path="c.Step")],
            [component("a", class_path="bc.Step")],
            id="name+class_path",
        ),
        pytest.param(
            [component("x", a="b,c")],
            [component("x", a="b", c="")],
            id="config-value-vs-keys",
        ),
        pytest.param(
            [component("x", a="b", c="d")],
            [component("x", a="b,c=d")],
            id="config-key-value-join",
        ),
        pytest.param(
            [component("a,b"), component("a"), component("b"), component("x", ["a,b"])],
            [component("a,b"), component("a"), component("b"), component("x", ["a", "b"])],
            id="depends_on-join",
        ),
        pytest.param([component("x", n=1)], [component("x", n="1")], id="int-vs-string"),
        pytest.param([component("x", n=True)], [component("x", n=1)], id="bool-vs-int"),
        pytest.param([component("x", n=None)], [component("x", n="None")], id="null-vs-string"),
        pytest.param([component("x", n=[1, 2])], [component("x", n="[1, 2]")], id="list-vs-string"),
        pytest.param([component("x", n={"a": 1})], [component("x", **{"n.a": 1})], id="nested-vs-dotted"),
    ],
)
def test_different_pipelines_never_share_a_fingerprint(left: list[dict[str, Any]], right: list[dict[str, Any]]) -> None:
    a = {"name": "p", "components": left}
    b = {"name": "p", "components": right}
    assert fingerprint(a) != fingerprint(b)


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(lambda d: comp(d, "b").update(config={"sql": "select * from a where ok"}), id="config-value"),
        pytest.param(lambda d: comp(d, "b")["config"].update(limit=10), id="config-key-added"),
        pytest.param(lambda d: comp(d, "a")["config"]["options"]["a"][2].update(k="w"), id="nested-config"),
        pytest.param(
            lambda d: comp(d, "c").update(class_path="tests.unit.checkpoint.components.Other"), id="class_path"
        ),
        pytest.param(lambda d: comp(d, "e").update(depends_on=["a"]), id="depends_on"),
        pytest.param(lambda d: comp(d, "e").update(enabled=False), id="enabled"),
        pytest.param(lambda d: comp(d, "e").update(name="f"), id="name"),
        pytest.param(lambda d: d["components"].pop(), id="component-removed"),
        pytest.param(lambda d: d["components"].append(component("f")), id="component-added"),
    ],
)
def test_what_a_pipeline_computes_changes_its_fingerprint(edit: Edit) -> None:
    assert fingerprint(edited(edit)) != fingerprint(diamond())


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(
            lambda d: d.update(spark={"app_name": "other", "master": "local[4]", "spark_conf": {"x": "1"}}), id="spark"
        ),
        pytest.param(lambda d: comp(d, "b").update(retry={"max_attempts": 5, "initial_delay_seconds": 0}), id="retry"),
        pytest.param(lambda d: comp(d, "b").update(circuit_breaker={"failure_threshold": 2}), id="circuit_breaker"),
        pytest.param(lambda d: comp(d, "b").update(description="now documented"), id="description"),
        pytest.param(lambda d: d["components"].reverse(), id="component-order"),
        pytest.param(lambda d: comp(d, "d").update(depends_on=["c", "b"]), id="depends_on-order"),
        pytest.param(
            lambda d: comp(d, "a").update(config=dict(reversed(list(comp(d, "a")["config"].items())))),
            id="config-key-order",
        ),
        pytest.param(lambda d: d.update(version="2.0.0", description="x", tags={"team": "data"}), id="metadata"),
    ],
)
def test_how_a_pipeline_runs_does_not_change_its_fingerprint(edit: Edit) -> None:
    data = edited(edit)
    assert fingerprint(data) == fingerprint(diamond())
    assert compute_component_fingerprints(PipelineConfig.from_dict(data)) == compute_component_fingerprints(
        PipelineConfig.from_dict(diamond())
    )


@pytest.mark.parametrize(
    ("changed", "expected"),
    [
        ("a", {"a", "b", "c", "d"}),
        ("b", {"b", "d"}),
        ("c", {"c", "d"}),
        ("d", {"d"}),
        ("e", {"e"}),
    ],
)
def test_component_fingerprints_change_for_the_component_and_its_descendants_only(
    changed: str, expected: set[str]
) -> None:
    before = compute_component_fingerprints(PipelineConfig.from_dict(diamond()))
    data = copy.deepcopy(diamond())
    comp(data, changed)["config"]["sql"] = "select 'changed'"

    after = compute_component_fingerprints(PipelineConfig.from_dict(data))

    assert set(after) == set(before) == {"a", "b", "c", "d", "e"}
    assert {name for name in before if before[name] != after[name]} == expected


def test_component_fingerprints_differ_between_identical_components_with_different_upstreams() -> None:
    data = {
        "name": "p",
        "components": [
            component("u1", sql="1"),
            component("u2", sql="2"),
            component("x", ["u1"]),
            component("y", ["u2"]),
        ],
    }
    fps = compute_component_fingerprints(PipelineConfig.from_dict(data))
    assert len(set(fps.values())) == 4


def test_unencodable_config_values_are_refused_with_a_clear_error() -> None:
    from airflow_ppf.config import ComponentConfig

    config = PipelineConfig(name="p", components=(ComponentConfig(name="x", class_path=STEP, config={"f": object()}),))
    with pytest.raises(TypeError, match="cannot fingerprint a config value of type object"):
        compute_pipeline_fingerprint(config)


def _golden_pipeline(typed: bool) -> PipelineConfig:
    """A pipeline with plain JSON config values (``typed``: also dates, decimals, NaN, bytes and sets)."""
    import datetime as dt
    import decimal

    extra: dict[str, Any] = (
        {"when": dt.date(2026, 1, 2), "amount": decimal.Decimal("1.10"), "nan": float("nan"), "raw": b"\x00\x01"}
        if typed
        else {}
    )
    return PipelineConfig.from_dict(
        {
            "name": "golden",
            "components": [
                component("read", path="/data/orders.csv", options={"header": True, "sep": ";"}, output_view="o"),
                component(
                    "totals",
                    ["read"],
                    sql="SELECT région, SUM(x) AS s FROM o GROUP BY 1 -- \u2603",
                    limit=10,
                    ratio=0.25,
                    none=None,
                    deep={"b": [1, {"z": -0.0, "a": 1e300}], "a": ""},
                    big=10**40,
                    **extra,
                ),
                {**component("write", ["totals"], path="/out"), "enabled": False},
            ],
        }
    )


@pytest.mark.parametrize(
    ("typed", "pipeline_fp", "component_fps"),
    [
        pytest.param(
            False,
            "dc3363773a2dde331534bd04a14edb6c2afbca7544c8151a46fa36831274c8c7",
            {"read": "7fe48a51218a214d", "totals": "b8713bd98fec7518", "write": "d18370900101bade"},
            id="plain-json",
        ),
        pytest.param(
            True,
            "90fa9a02e5cfd03047050fe213493adaf40622c134627fb9467ea50c10af2b55",
            {"read": "7fe48a51218a214d", "totals": "b38b3be5a8ad4bd8", "write": "8376c85e06f14fc4"},
            id="typed-values",
        ),
    ],
)
def test_fingerprints_of_a_fixed_pipeline_never_change(
    typed: bool, pipeline_fp: str, component_fps: dict[str, str]
) -> None:
    """A changed encoding would make every in-flight retry start over: FINGERPRINT_VERSION must say so."""
    config = _golden_pipeline(typed)
    assert compute_pipeline_fingerprint(config) == pipeline_fp
    assert compute_component_fingerprints(config) == component_fps


@pytest.mark.parametrize(
    "value",
    [
        {"b": 1, "a": [1, 2.5, -0.0, None, True, 'é\n"\u2603'], "c": {"z": {}, "y": []}},
        [1e300, 10**40, -7, "", {"k": [{"j": False}]}],
        {"sql": "SELECT 1", "n": 3},
        "text",
        0.1,
    ],
)
def test_plain_values_are_encoded_exactly_as_canonical_json(value: Any) -> None:
    from airflow_ppf.checkpoint.fingerprint import _canonical_plain_json, canonical_json

    assert _canonical_plain_json(value) == canonical_json(value)
