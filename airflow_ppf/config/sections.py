"""The ``hooks`` and ``secrets`` sections of a pipeline config, with pyspark-pipeline-framework's schema.

They are typed, validated and kept on the config (``config.hooks.logging.level``) so that code written
for pyspark-pipeline-framework reads them as before. As there, nothing in the runner acts on them:
logging, metrics and audit are set up with hooks in Python (``LoggingHooks``, ``MetricsHooks``, Airflow's
own metrics and lineage), and secrets come from Airflow connections, variables or ``${VAR}``. Loading a
file that sets them logs a warning saying so (see :func:`describe_unused_sections`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from airflow_ppf.config.errors import ConfigProblem
from airflow_ppf.config.rules import at_least, coerce_enum, raise_if

__all__ = [
    "AuditConfig",
    "HooksConfig",
    "LogFormat",
    "LogLevel",
    "LoggingConfig",
    "MetricsBackend",
    "MetricsConfig",
    "SecretsConfig",
    "SecretsProvider",
    "describe_unused_sections",
]


class LogLevel(StrEnum):
    """Logging levels of ``hooks.logging.level``."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"
    CRITICAL = "CRITICAL"


class LogFormat(StrEnum):
    """Log formats of ``hooks.logging.format``."""

    JSON = "json"
    TEXT = "text"


class MetricsBackend(StrEnum):
    """Metrics backends of ``hooks.metrics.backend``."""

    PROMETHEUS = "prometheus"
    OPENTELEMETRY = "opentelemetry"
    CUSTOM = "custom"


class SecretsProvider(StrEnum):
    """Secret providers of ``secrets.provider``."""

    VAULT = "vault"
    AWS_SECRETS_MANAGER = "aws_secrets_manager"
    ENV = "env"
    FILE = "file"


@dataclass(frozen=True)
class LoggingConfig:
    """``hooks.logging``: level, format, output and whether logs are structured."""

    level: LogLevel = LogLevel.INFO
    format: LogFormat = LogFormat.JSON
    output: str = "stdout"
    structured: bool = True

    def __post_init__(self) -> None:
        problems: list[ConfigProblem] = []
        object.__setattr__(self, "level", coerce_enum(LogLevel, self.level, "level", problems, LogLevel.INFO))
        object.__setattr__(self, "format", coerce_enum(LogFormat, self.format, "format", problems, LogFormat.JSON))
        raise_if(problems)


@dataclass(frozen=True)
class MetricsConfig:
    """``hooks.metrics``: whether metrics are collected, the backend, a push gateway and the export interval."""

    enabled: bool = True
    backend: MetricsBackend = MetricsBackend.PROMETHEUS
    push_gateway_url: str | None = None
    export_interval_seconds: int = 60

    def __post_init__(self) -> None:
        problems: list[ConfigProblem] = []
        backend = coerce_enum(MetricsBackend, self.backend, "backend", problems, MetricsBackend.PROMETHEUS)
        object.__setattr__(self, "backend", backend)
        at_least(problems, "export_interval_seconds", self.export_interval_seconds, 1)
        raise_if(problems)


@dataclass(frozen=True)
class AuditConfig:
    """``hooks.audit``: the audit trail's switch, data samples, path and retention."""

    enabled: bool = True
    include_data_samples: bool = False
    audit_trail_path: str = "/var/log/pipeline/audit"
    retention_days: int = 90

    def __post_init__(self) -> None:
        problems: list[ConfigProblem] = []
        at_least(problems, "retention_days", self.retention_days, 1)
        raise_if(problems)


@dataclass(frozen=True)
class HooksConfig:
    """``hooks { logging {...}, metrics {...}, audit {...} }``; ``logging`` defaults to :class:`LoggingConfig`."""

    logging: LoggingConfig | None = None
    metrics: MetricsConfig | None = None
    audit: AuditConfig | None = None

    def __post_init__(self) -> None:
        if self.logging is None:
            object.__setattr__(self, "logging", LoggingConfig())


@dataclass(frozen=True)
class SecretsConfig:
    """``secrets { provider, vault_url, ... }``: where secrets would come from."""

    provider: SecretsProvider = SecretsProvider.ENV
    vault_url: str | None = None
    vault_token: str | None = None
    vault_namespace: str | None = None
    aws_region: str | None = None
    secret_prefix: str | None = None
    cache_ttl_seconds: int = 300

    def __post_init__(self) -> None:
        problems: list[ConfigProblem] = []
        provider = coerce_enum(SecretsProvider, self.provider, "provider", problems, SecretsProvider.ENV)
        object.__setattr__(self, "provider", provider)
        at_least(problems, "cache_ttl_seconds", self.cache_ttl_seconds, 0)
        if provider is SecretsProvider.VAULT and not self.vault_url:
            problems.append(ConfigProblem("vault_url", "is required when provider is vault"))
        if provider is SecretsProvider.AWS_SECRETS_MANAGER and not self.aws_region:
            problems.append(ConfigProblem("aws_region", "is required when provider is aws_secrets_manager"))
        raise_if(problems)


def section_dict(section: Any) -> dict[str, Any]:
    """Return the plain dict of a section (enum members as their values, unset nested sections left out)."""
    out: dict[str, Any] = {}
    for f in fields(section):
        value = getattr(section, f.name)
        if value is None:
            continue
        if hasattr(value, "__dataclass_fields__"):
            value = section_dict(value)
        elif isinstance(value, StrEnum):
            value = value.value
        out[f.name] = value
    return out


def describe_unused_sections(hooks: HooksConfig, secrets: SecretsConfig | None) -> str | None:
    """Say which of these sections are set although nothing acts on them (``None`` when none is set)."""
    unused = [name for name, value in (("hooks", hooks != HooksConfig()), ("secrets", secrets is not None)) if value]
    if not unused:
        return None
    return (
        f"{' and '.join(unused)} {'are' if len(unused) > 1 else 'is'} kept on the config but not acted on: "
        "airflow-ppf sets up logging and metrics with hooks (LoggingHooks, MetricsHooks, Airflow's metrics) "
        "and takes secrets from Airflow connections, variables or ${VAR}; see docs/migration.md"
    )
