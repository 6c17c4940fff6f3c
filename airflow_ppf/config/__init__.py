"""Pipeline configuration: typed models and HOCON / JSON / YAML / dict loading with located errors."""

from __future__ import annotations

from airflow_ppf.config.errors import ConfigError, ConfigProblem
from airflow_ppf.config.functions import load_from_file, load_from_string
from airflow_ppf.config.models import (
    CircuitBreakerConfig,
    ComponentConfig,
    ComponentType,
    Environment,
    MaterializePolicy,
    PipelineConfig,
    PipelineMode,
    ResiliencePolicy,
    RetryConfig,
    SparkConfig,
    SparkDeployMode,
)
from airflow_ppf.config.presets import CircuitBreakerConfigs, ResiliencePolicies, RetryPolicies
from airflow_ppf.config.sections import (
    AuditConfig,
    HooksConfig,
    LogFormat,
    LoggingConfig,
    LogLevel,
    MetricsBackend,
    MetricsConfig,
    SecretsConfig,
    SecretsProvider,
)

__all__ = [
    "AuditConfig",
    "CircuitBreakerConfig",
    "CircuitBreakerConfigs",
    "ComponentConfig",
    "ComponentType",
    "ConfigError",
    "ConfigProblem",
    "Environment",
    "HooksConfig",
    "LogFormat",
    "LogLevel",
    "LoggingConfig",
    "MaterializePolicy",
    "MetricsBackend",
    "MetricsConfig",
    "PipelineConfig",
    "PipelineMode",
    "ResiliencePolicies",
    "ResiliencePolicy",
    "RetryConfig",
    "RetryPolicies",
    "SecretsConfig",
    "SecretsProvider",
    "SparkConfig",
    "SparkDeployMode",
    "load_from_file",
    "load_from_string",
]
