"""Pipeline configuration: typed models and HOCON / JSON / YAML / dict loading with located errors."""

from __future__ import annotations

from airflow_ppf.config.errors import ConfigError, ConfigProblem
from airflow_ppf.config.models import (
    CircuitBreakerConfig,
    ComponentConfig,
    ComponentType,
    MaterializePolicy,
    PipelineConfig,
    RetryConfig,
    SparkConfig,
)

__all__ = [
    "CircuitBreakerConfig",
    "ComponentConfig",
    "ComponentType",
    "ConfigError",
    "ConfigProblem",
    "MaterializePolicy",
    "PipelineConfig",
    "RetryConfig",
    "SparkConfig",
]
