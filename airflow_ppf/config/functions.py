"""Function-style loading, as pyspark-pipeline-framework offers it: ``load_from_file(path, PipelineConfig)``.

The same loading as :meth:`PipelineConfig.from_file` / :meth:`PipelineConfig.from_string`, for the
config class given (the pipeline, or one of its parts such as :class:`SparkConfig`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar, cast

from airflow_ppf.config.errors import ConfigError, ConfigProblem
from airflow_ppf.config.loading import parse_file, parse_text
from airflow_ppf.config.models import PipelineConfig, _section_reader

__all__ = ["load_from_file", "load_from_string"]

T = TypeVar("T")


def _build(data: dict[str, Any], config_class: type[T], source: str | None) -> T:
    if config_class is PipelineConfig:
        return cast(T, PipelineConfig.from_dict(data, source=source))
    problems: list[ConfigProblem] = []
    built = _section_reader(config_class)(data, "", problems)
    if problems or built is None:
        raise ConfigError(problems, source=source)
    return built


def load_from_file(path: str | Path, config_class: type[T] = PipelineConfig) -> T:  # type: ignore[assignment]
    """Load ``config_class`` from a HOCON, JSON or YAML file (by its extension).

    Raises:
        ConfigError: every problem, each with its location.
    """
    return _build(parse_file(path), config_class, str(path))


def load_from_string(text: str, config_class: type[T] = PipelineConfig, format: str = "hocon") -> T:  # type: ignore[assignment]
    """Load ``config_class`` from HOCON text (or ``format="json"`` / ``"yaml"``).

    Raises:
        ConfigError: every problem, each with its location.
    """
    return _build(parse_text(text, format), config_class, None)
