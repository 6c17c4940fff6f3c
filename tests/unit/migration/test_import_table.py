"""The import table of docs/migration.md: every name imports from the new module it lists."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

MIGRATION_PAGE = Path(__file__).parents[3] / "docs" / "migration.md"
ROW = re.compile(
    r"^\| `(?P<name>\w+)` \| (?P<old>(?:`pyspark_pipeline_framework[\w.]*`(?:, )?)+)"
    r" \| `(?P<new>airflow_ppf[\w.]*)` \|$"
)


def table() -> list[tuple[str, list[str], str]]:
    rows = []
    for line in MIGRATION_PAGE.read_text(encoding="utf-8").splitlines():
        match = ROW.match(line)
        if match:
            old = re.findall(r"`([\w.]+)`", match["old"])
            rows.append((match["name"], old, match["new"]))
    return rows


ROWS = table()


def test_the_table_covers_upstreams_public_api() -> None:
    names = [name for name, _, _ in ROWS]

    assert len(names) == len(set(names)), "a name is listed twice"
    # The names a migrating project imports most; the table must have them all.
    assert {
        "PipelineConfig",
        "SparkConfig",
        "ComponentConfig",
        "RetryConfig",
        "CircuitBreakerConfig",
        "ResiliencePolicy",
        "PipelineComponent",
        "DataFlow",
        "Resource",
        "SimplePipelineRunner",
        "CheckpointHooks",
        "LocalCheckpointStore",
        "load_checkpoint_for_resume",
        "RetryExecutor",
        "CircuitBreaker",
        "LoggingHooks",
        "MetricsHooks",
        "validate_pipeline",
        "SparkSessionWrapper",
    } <= set(names)


@pytest.mark.parametrize(("name", "old", "new"), ROWS, ids=[row[0] for row in ROWS])
def test_every_listed_name_imports_from_its_new_module(name: str, old: list[str], new: str) -> None:
    module = importlib.import_module(new)

    assert name in module.__all__, f"{name} is not public in {new}"
    assert getattr(module, name) is not None
    assert all(o.startswith("pyspark_pipeline_framework.") for o in old)
