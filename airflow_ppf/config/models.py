"""Typed pipeline configuration: one schema for HOCON, JSON, YAML and plain dicts.

The field names are those of pyspark-pipeline-framework's HOCON files, so such a file loads unchanged
apart from its class paths. Every model validates itself when built and reports *all* problems at once
through :class:`~airflow_ppf.config.errors.ConfigError`, each with the exact place it was found.
"""

from __future__ import annotations

import difflib
import functools
import logging
import types
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from enum import Enum, StrEnum
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

from airflow_ppf.config.errors import ConfigError, ConfigProblem
from airflow_ppf.config.graph import ancestors, descendants, find_cycle, topological_order
from airflow_ppf.config.rules import FrozenList, at_least, coerce_enum, is_number
from airflow_ppf.config.rules import raise_if as _raise_if
from airflow_ppf.config.sections import HooksConfig, SecretsConfig, describe_unused_sections, section_dict
from airflow_ppf.config.variables import escape_literals, substitute_variables

__all__ = [
    "CircuitBreakerConfig",
    "ComponentConfig",
    "ComponentType",
    "Environment",
    "MaterializePolicy",
    "PipelineConfig",
    "PipelineMode",
    "ResiliencePolicy",
    "RetryConfig",
    "SparkConfig",
    "SparkDeployMode",
]

log = logging.getLogger(__name__)

T = TypeVar("T")


class ComponentType(StrEnum):
    """The role of a component in a pipeline (informational; it does not change how it runs)."""

    SOURCE = "source"
    TRANSFORMATION = "transformation"
    SINK = "sink"


class MaterializePolicy(StrEnum):
    """Whether the temp views a component produces are saved so that a resume in a new process finds them.

    ``auto`` saves only views that a component downstream still needs, ``always`` saves every view the
    component produces, ``never`` saves nothing (a resume then reruns the producer).
    """

    AUTO = "auto"
    ALWAYS = "always"
    NEVER = "never"


class Environment(StrEnum):
    """Where a pipeline runs. Components read it as ``self.context["environment"]``."""

    DEV = "dev"
    STAGING = "staging"
    PROD = "prod"
    TEST = "test"


class PipelineMode(StrEnum):
    """How a pipeline runs. Only ``batch`` runs here: a streaming query never finishes, so it has no
    place in an Airflow task whose components finish one after the other."""

    BATCH = "batch"
    STREAMING = "streaming"


class SparkDeployMode(StrEnum):
    """``spark.deploy_mode``: where the driver runs."""

    CLIENT = "client"
    CLUSTER = "cluster"


# --------------------------------------------------------------------------------------------------
# A small schema reader: typed field access that records problems instead of raising on the first one.
# --------------------------------------------------------------------------------------------------


class _Missing:
    def __repr__(self) -> str:
        return "<missing>"


MISSING: Any = _Missing()


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def _join(path: str, key: str | int) -> str:
    if key == "":
        return path
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else key


class _Reader:
    """Read typed fields from one mapping, collecting problems with their locations."""

    def __init__(self, data: Any, path: str, problems: list[ConfigProblem], what: str) -> None:
        self.path = path
        self.problems = problems
        if not isinstance(data, Mapping):
            self.problem("", f"{what} must be an object, got {_type_name(data)}")
            data = {}
        self.data: Mapping[str, Any] = data
        self.used: set[str] = set()

    def problem(self, key: str | int, message: str) -> None:
        self.problems.append(ConfigProblem(_join(self.path, key), message))

    def _get(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key, MISSING)

    def require(self, key: str) -> Any:
        value = self._get(key)
        if value is MISSING:
            self.problem(key, "is required")
        return value

    def text(self, key: str, default: Any = MISSING, *, allow_empty: bool = False) -> Any:
        value = self._get(key)
        if value is MISSING or value is None:
            if default is MISSING:
                self.problem(key, "is required")
            return default
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.problem(key, f"must be a string, got {_type_name(value)}")
            return default
        text = str(value)
        if not allow_empty and not text.strip():
            self.problem(key, "must not be empty")
            return default
        return text

    def flag(self, key: str, default: Any) -> Any:
        value = self._get(key)
        if value is MISSING or value is None:
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.strip().lower() in ("true", "yes", "on")
        self.problem(key, f"must be true or false, got {value!r}")
        return default

    def number(self, key: str, default: Any, *, integer: bool = False) -> Any:
        """Read a number (its value is the model's to check: :mod:`airflow_ppf.config.rules`)."""
        value = self._get(key)
        if value is MISSING or value is None:
            return default
        kind = "an integer" if integer else "a number"
        if isinstance(value, str):
            try:
                value = int(value) if integer else float(value)
            except ValueError:
                self.problem(key, f"must be {kind}, got {value!r}")
                return default
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.problem(key, f"must be {kind}, got {_type_name(value)}")
            return default
        if integer and isinstance(value, float):
            if not value.is_integer():
                self.problem(key, f"must be {kind}, got {value!r}")
                return default
            value = int(value)
        return value

    def str_list(self, key: str) -> tuple[str, ...]:
        value = self._get(key)
        if value is MISSING or value is None:
            return ()
        if isinstance(value, str):
            # A lone string is a common slip (``depends_on: read``); accept it as a one-item list.
            value = [value]
        if not isinstance(value, list | tuple):
            self.problem(key, f"must be a list of strings, got {_type_name(value)}")
            return ()
        out: list[str] = []
        for i, item in enumerate(value):
            if not isinstance(item, str) or not item.strip():
                self.problem(f"{key}[{i}]", f"must be a non-empty string, got {item!r}")
            else:
                out.append(item)
        return tuple(out)

    def mapping(self, key: str) -> dict[str, Any]:
        value = self._get(key)
        if value is MISSING or value is None:
            return {}
        if not isinstance(value, Mapping):
            self.problem(key, f"must be an object, got {_type_name(value)}")
            return {}
        plain: dict[str, Any] = _plain(value)
        return plain

    def nested(self, key: str, build: Callable[[Any, str, list[ConfigProblem]], T]) -> T | None:
        value = self._get(key)
        if value is MISSING or value is None:
            return None
        return build(value, _join(self.path, key), self.problems)

    def reject_unknown(self, allowed: Sequence[str]) -> None:
        for key in self.data:
            if key in self.used or key in allowed:
                continue
            hint = difflib.get_close_matches(str(key), list(allowed), n=1)
            suggestion = f"; did you mean '{hint[0]}'?" if hint else f"; allowed keys: {', '.join(allowed)}"
            self.problem(str(key), f"unknown key{suggestion}")


def _plain(value: Any) -> Any:
    """Turn mappings (including pyhocon's ConfigTree) and sequences into plain dicts and lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def _flatten_conf(value: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten nested Spark settings (``spark { sql { shuffle.partitions: 4 } }``) into dotted string keys."""
    flat: dict[str, str] = {}
    for key, item in value.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(item, Mapping):
            flat.update(_flatten_conf(item, full))
        elif isinstance(item, bool):
            flat[full] = "true" if item else "false"
        else:
            flat[full] = str(item)
    return flat


def _build(cls: Callable[..., T], values: dict[str, Any], path: str, problems: list[ConfigProblem]) -> T | None:
    """Build a model from values read so far; its own cross-field problems are recorded under ``path``."""
    try:
        return cls(**values)
    except ConfigError as exc:
        problems.extend(ConfigProblem(_join(path, p.location), p.message) for p in exc.problems)
        return None


def _section_reader(cls: type[T]) -> Callable[[Any, str, list[ConfigProblem]], T | None]:
    """How to read a section of model ``cls``: its own ``_read`` when it has one, else :func:`_read_section`."""
    read = getattr(cls, "_read", None)
    return read if read is not None else functools.partial(_read_section, cls)


def _read_section(cls: type[T], data: Any, path: str, problems: list[ConfigProblem]) -> T | None:
    """Read a model of plain fields (strings, numbers, flags, enums, nested models) by its type hints.

    Only types are checked here; the model's own ``__post_init__`` checks the values (one set of rules).
    A nested model is read by :func:`_section_reader`.
    """
    r = _Reader(data, path, problems, path.rsplit(".", 1)[-1] or "section")
    hints = get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in fields(cls):  # type: ignore[arg-type]
        kind = hints[f.name]
        if isinstance(kind, types.UnionType):
            kind = next(a for a in kind.__args__ if a is not type(None))
        value: Any
        if hasattr(kind, "__dataclass_fields__"):
            value = r.nested(f.name, _section_reader(kind))
        elif kind is bool:
            value = r.flag(f.name, None)
        elif kind is int or kind is float:
            value = r.number(f.name, None, integer=kind is int)
        else:  # str and enums (an enum's value is checked by the model)
            value = r.text(f.name, None)
        if value is not None:
            values[f.name] = value
    r.reject_unknown([f.name for f in fields(cls)])  # type: ignore[arg-type]
    return _build(cls, values, path, problems)


# --------------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryConfig:
    """In-process retry of one component: exponential backoff with jitter.

    The delay before retry ``n`` (1-based) is ``min(max_delay_seconds, initial_delay_seconds *
    backoff_multiplier ** (n - 1))`` scaled by a random factor in ``[1 - jitter, 1 + jitter]``.
    ``retry_on_exceptions`` names exception classes (``ValueError``, ``pyspark.errors.AnalysisException``);
    subclasses match too.
    """

    max_attempts: int = 3
    initial_delay_seconds: float = 1.0
    max_delay_seconds: float = 60.0
    backoff_multiplier: float = 2.0
    jitter: float = 0.1
    retry_on_exceptions: tuple[str, ...] = ("Exception",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "retry_on_exceptions", FrozenList(self.retry_on_exceptions))
        out: list[ConfigProblem] = []
        if is_number(self.max_attempts) and not float(self.max_attempts).is_integer():
            out.append(ConfigProblem("max_attempts", f"must be an integer, got {self.max_attempts!r}"))
        else:
            at_least(out, "max_attempts", self.max_attempts, 1)
        delays_ok = at_least(out, "initial_delay_seconds", self.initial_delay_seconds, 0)
        delays_ok &= at_least(out, "max_delay_seconds", self.max_delay_seconds, 0)
        if delays_ok and self.max_delay_seconds < self.initial_delay_seconds:
            out.append(
                ConfigProblem("max_delay_seconds", f"must be >= initial_delay_seconds ({self.initial_delay_seconds:g})")
            )
        at_least(out, "backoff_multiplier", self.backoff_multiplier, 1)
        if at_least(out, "jitter", self.jitter, 0) and self.jitter > 1.0:
            out.append(ConfigProblem("jitter", "must be between 0 and 1"))
        _raise_if(out)

    @classmethod
    def _read(cls, data: Any, path: str, problems: list[ConfigProblem]) -> RetryConfig:
        r = _Reader(data, path, problems, "retry")
        d = cls()
        values = {
            "max_attempts": r.number("max_attempts", d.max_attempts, integer=True),
            "initial_delay_seconds": r.number("initial_delay_seconds", d.initial_delay_seconds),
            "max_delay_seconds": r.number("max_delay_seconds", d.max_delay_seconds),
            "backoff_multiplier": r.number("backoff_multiplier", d.backoff_multiplier),
            "jitter": r.number("jitter", d.jitter),
            "retry_on_exceptions": r.str_list("retry_on_exceptions") or d.retry_on_exceptions,
        }
        r.reject_unknown([f.name for f in fields(cls)])
        return _build(cls, values, path, problems) or d


@dataclass(frozen=True)
class CircuitBreakerConfig:
    """Circuit breaker of one component.

    After ``failure_threshold`` consecutive failures the circuit opens and further attempts are refused
    for ``timeout_seconds``; then up to ``half_open_max_calls`` trial calls are let through and
    ``success_threshold`` successes close the circuit again.
    """

    failure_threshold: int = 5
    success_threshold: int = 2
    timeout_seconds: float = 60.0
    half_open_max_calls: int = 1

    def __post_init__(self) -> None:
        problems: list[ConfigProblem] = []
        for name in ("failure_threshold", "success_threshold", "half_open_max_calls"):
            at_least(problems, name, getattr(self, name), 1)
        at_least(problems, "timeout_seconds", self.timeout_seconds, 0)
        _raise_if(problems)

    @classmethod
    def _read(cls, data: Any, path: str, problems: list[ConfigProblem]) -> CircuitBreakerConfig:
        r = _Reader(data, path, problems, "circuit_breaker")
        d = cls()
        values = {
            "failure_threshold": r.number("failure_threshold", d.failure_threshold, integer=True),
            "success_threshold": r.number("success_threshold", d.success_threshold, integer=True),
            "timeout_seconds": r.number("timeout_seconds", d.timeout_seconds),
            "half_open_max_calls": r.number("half_open_max_calls", d.half_open_max_calls, integer=True),
        }
        r.reject_unknown([f.name for f in fields(cls)])
        return _build(cls, values, path, problems) or d


@dataclass(frozen=True)
class ResiliencePolicy:
    """A component's retry and circuit breaker as one value (``resilience { retry {...} circuit_breaker {...} }``).

    Setting ``resilience`` on a component fills its ``retry`` and ``circuit_breaker``; presets are in
    :mod:`airflow_ppf.config.presets` (``ResiliencePolicies.DEFAULT``...).
    """

    retry: RetryConfig | None = None
    circuit_breaker: CircuitBreakerConfig | None = None


@dataclass(frozen=True)
class SparkConfig:
    """How to get a SparkSession. Every field is optional; unset fields leave Spark's own defaults.

    ``master`` is a master URL (``local[*]``, ``spark://host:7077``, ``yarn``, ``k8s://...``);
    ``remote`` a Spark Connect URL (``sc://host:15002``), also read as ``connect_string`` (the name
    pyspark-pipeline-framework gives it; both attributes hold the same URL). ``spark_conf`` may be nested
    in HOCON (``spark_conf { spark.sql.shuffle.partitions: 8 }``) and is flattened to dotted keys.
    These settings never invalidate a checkpoint: they tune *how* a pipeline runs, not what it computes.
    """

    app_name: str | None = None
    master: str | None = None
    remote: str | None = None
    deploy_mode: SparkDeployMode | None = None
    driver_memory: str | None = None
    driver_cores: int | None = None
    executor_memory: str | None = None
    executor_cores: int | None = None
    num_executors: int | None = None
    dynamic_allocation: bool | None = None
    log_level: str | None = None
    spark_conf: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "spark_conf", _flatten_conf(self.spark_conf))
        problems: list[ConfigProblem] = []
        if self.deploy_mode is not None:
            mode = coerce_enum(SparkDeployMode, self.deploy_mode, "deploy_mode", problems, SparkDeployMode.CLIENT)
            object.__setattr__(self, "deploy_mode", mode)
        if self.master and self.remote:
            problems.append(ConfigProblem("remote", "set either 'master' or 'remote' (Spark Connect), not both"))
        for name in ("driver_cores", "executor_cores"):
            if getattr(self, name) is not None:
                at_least(problems, name, getattr(self, name), 1)
        if self.num_executors is not None:
            # With dynamic allocation the executor count is Spark's to decide; 0 is its usual floor.
            at_least(problems, "num_executors", self.num_executors, 0 if self.dynamic_allocation else 1)
        _raise_if(problems)

    @classmethod
    def _read(cls, data: Any, path: str, problems: list[ConfigProblem]) -> SparkConfig:
        r = _Reader(data, path, problems, "spark")
        values: dict[str, Any] = {}
        for name in ("app_name", "master", "remote", "connect_string", "driver_memory", "executor_memory"):
            values[name] = r.text(name, None)
        values["log_level"] = r.text("log_level", None)
        values["deploy_mode"] = r.text("deploy_mode", None)
        for name in ("driver_cores", "executor_cores", "num_executors"):
            values[name] = r.number(name, None, integer=True)
        values["dynamic_allocation"] = r.flag("dynamic_allocation", None)
        values["spark_conf"] = r.mapping("spark_conf")
        r.reject_unknown([*(f.name for f in fields(cls)), "connect_string"])
        return _build(cls, values, path, problems) or cls()

    def to_spark_conf_dict(self) -> dict[str, str]:
        """:meth:`to_spark_conf` plus ``spark.app.name`` and ``spark.master`` when they are set.

        pyspark-pipeline-framework's name for the properties of a session.
        """
        conf = {"spark.app.name": self.app_name, "spark.master": self.master}
        return {**{k: v for k, v in conf.items() if v is not None}, **self.to_spark_conf()}

    def to_spark_conf(self) -> dict[str, str]:
        """Return the Spark properties these settings stand for (only the ones that were set)."""
        conf: dict[str, str] = {}
        simple = {
            "deploy_mode": "spark.submit.deployMode",
            "driver_memory": "spark.driver.memory",
            "driver_cores": "spark.driver.cores",
            "executor_memory": "spark.executor.memory",
            "executor_cores": "spark.executor.cores",
            "num_executors": "spark.executor.instances",
        }
        for attr, key in simple.items():
            value = getattr(self, attr)
            if value is not None:
                conf[key] = str(value)
        if self.dynamic_allocation is not None:
            conf["spark.dynamicAllocation.enabled"] = "true" if self.dynamic_allocation else "false"
        conf.update(self.spark_conf)
        return conf


def _accept_connect_string(init: Callable[..., None]) -> Callable[..., None]:
    """Let ``SparkConfig(connect_string=...)`` stand for ``remote=...``.

    The URL is kept in ``remote`` alone (no second field), so equality and ``dataclasses.replace(spark,
    remote=...)`` see one value; ``connect_string`` reads it back.
    """

    @functools.wraps(init)
    def __init__(self: SparkConfig, *args: Any, connect_string: str | None = None, **kwargs: Any) -> None:
        if connect_string is not None:
            given = args[2] if len(args) > 2 else kwargs.get("remote")
            if given is not None and given != connect_string:
                raise ConfigError.single("connect_string", "is another name for 'remote': set only one of them")
            if len(args) > 2:
                args = (*args[:2], connect_string, *args[3:])
            else:
                kwargs["remote"] = connect_string
        init(self, *args, **kwargs)

    return __init__


def _connect_string(self: SparkConfig) -> str | None:
    """The Spark Connect URL, by pyspark-pipeline-framework's name (the same as ``remote``)."""
    return self.remote


SparkConfig.__init__ = _accept_connect_string(SparkConfig.__init__)  # type: ignore[method-assign]
SparkConfig.connect_string = property(_connect_string)  # type: ignore[attr-defined]

_NAME_MAX = 200


def _name_problem(name: str) -> str | None:
    if name != name.strip():
        return "must not start or end with whitespace"
    if len(name) > _NAME_MAX:
        return f"must be at most {_NAME_MAX} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "must not contain control characters"
    return None


@dataclass(frozen=True)
class ComponentConfig:
    """One component of a pipeline.

    ``class_path`` names the class to build (``package.module.ClassName``); it is built with
    ``cls.from_config(config)`` when the class defines that classmethod, else ``cls(**config)``.
    ``depends_on`` names components that must finish first. A component with ``enabled = false`` is not
    run, and components that depend on it run as if that dependency were satisfied.
    ``materialize`` overrides the pipeline's materialization policy for the views this component produces.
    ``resilience`` (a :class:`ResiliencePolicy`) is another way to set ``retry`` and ``circuit_breaker``
    together; it fills them and cannot be combined with them.
    """

    name: str
    class_path: str
    component_type: ComponentType = ComponentType.TRANSFORMATION
    config: Mapping[str, Any] = field(default_factory=dict)
    depends_on: tuple[str, ...] = ()
    enabled: bool = True
    retry: RetryConfig | None = None
    circuit_breaker: CircuitBreakerConfig | None = None
    materialize: MaterializePolicy | None = None
    description: str | None = None
    # Not compared: it only fills retry and circuit_breaker, which are.
    resilience: ResiliencePolicy | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "depends_on", FrozenList(self.depends_on))
        object.__setattr__(self, "config", _plain(self.config))
        problems: list[ConfigProblem] = []
        ctype = coerce_enum(
            ComponentType, self.component_type, "component_type", problems, ComponentType.TRANSFORMATION
        )
        object.__setattr__(self, "component_type", ctype)
        if self.materialize is not None:
            policy = coerce_enum(MaterializePolicy, self.materialize, "materialize", problems, MaterializePolicy.AUTO)
            object.__setattr__(self, "materialize", policy)
        if not isinstance(self.name, str) or not self.name:
            problems.append(ConfigProblem("name", "must be a non-empty string"))
        elif msg := _name_problem(self.name):
            problems.append(ConfigProblem("name", msg))
        if not isinstance(self.class_path, str) or not self.class_path.strip():
            problems.append(ConfigProblem("class_path", "must be a non-empty string"))
        elif not _looks_like_class_path(self.class_path):
            problems.append(
                ConfigProblem(
                    "class_path", f"{self.class_path!r} is not a class path; write it as 'package.module.ClassName'"
                )
            )
        else:
            object.__setattr__(self, "class_path", self.class_path.strip())
        if self.resilience is not None:
            if self.retry is not None or self.circuit_breaker is not None:
                problems.append(
                    ConfigProblem("resilience", "set either 'resilience' or 'retry' / 'circuit_breaker', not both")
                )
            else:
                object.__setattr__(self, "retry", self.resilience.retry)
                object.__setattr__(self, "circuit_breaker", self.resilience.circuit_breaker)
        _raise_if(problems)

    @classmethod
    def _read(cls, data: Any, path: str, problems: list[ConfigProblem]) -> ComponentConfig | None:
        before = len(problems)
        r = _Reader(data, path, problems, "a component")
        values = {
            "name": r.text("name"),
            "class_path": r.text("class_path"),
            "component_type": r.text("component_type", ComponentType.TRANSFORMATION.value),
            "config": r.mapping("config"),
            "depends_on": r.str_list("depends_on"),
            "enabled": r.flag("enabled", True),
            "retry": r.nested("retry", RetryConfig._read),
            "circuit_breaker": r.nested("circuit_breaker", CircuitBreakerConfig._read),
            "resilience": r.nested("resilience", _section_reader(ResiliencePolicy)),
            "materialize": r.text("materialize", None),
            "description": r.text("description", None, allow_empty=True),
        }
        r.reject_unknown([f.name for f in fields(cls)])
        if not all(isinstance(values[key], str) for key in ("name", "class_path")):
            return None
        # Built even after type problems (their fields fell back to defaults) so the value rules report too.
        component = _build(cls, values, path, problems)
        return component if len(problems) == before else None

    def to_dict(self) -> dict[str, Any]:
        """Return a plain dict that :meth:`PipelineConfig.from_dict` reads back to an equal config."""
        out: dict[str, Any] = {
            "name": self.name,
            "component_type": self.component_type.value,
            "class_path": self.class_path,
            "config": _plain(self.config),
            "depends_on": list(self.depends_on),
            "enabled": self.enabled,
        }
        if self.retry is not None:
            out["retry"] = {**_dataclass_dict(self.retry)}
            out["retry"]["retry_on_exceptions"] = list(self.retry.retry_on_exceptions)
        if self.circuit_breaker is not None:
            out["circuit_breaker"] = _dataclass_dict(self.circuit_breaker)
        if self.materialize is not None:
            out["materialize"] = self.materialize.value
        if self.description is not None:
            out["description"] = self.description
        return out


def _looks_like_class_path(text: str) -> bool:
    parts = text.strip().split(".")
    return len(parts) >= 2 and all(p.isidentifier() for p in parts)


def _dataclass_dict(obj: Any) -> dict[str, Any]:
    return {f.name: getattr(obj, f.name) for f in fields(obj)}


@dataclass(frozen=True)
class PipelineConfig:
    """A whole pipeline: its name, optional Spark settings and its components.

    Build one with :meth:`from_dict`, :meth:`from_file` or :meth:`from_string`; all of them report every
    problem at once through :class:`ConfigError`.
    """

    name: str
    components: tuple[ComponentConfig, ...]
    version: str = "1.0.0"
    spark: SparkConfig = field(default_factory=SparkConfig)
    environment: Environment = Environment.DEV
    mode: PipelineMode = PipelineMode.BATCH
    materialize: MaterializePolicy = MaterializePolicy.AUTO
    tags: Mapping[str, str] = field(default_factory=dict)
    hooks: HooksConfig = field(default_factory=HooksConfig)
    secrets: SecretsConfig | None = None
    description: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "components", FrozenList(self.components))
        object.__setattr__(self, "spark", self.spark or SparkConfig())
        object.__setattr__(self, "hooks", self.hooks or HooksConfig())
        object.__setattr__(self, "tags", {str(k): str(v) for k, v in (self.tags or {}).items()})
        problems: list[ConfigProblem] = []
        policy = coerce_enum(MaterializePolicy, self.materialize, "materialize", problems, MaterializePolicy.AUTO)
        object.__setattr__(self, "materialize", policy)
        env = coerce_enum(Environment, self.environment, "environment", problems, Environment.DEV)
        object.__setattr__(self, "environment", env)
        mode = coerce_enum(PipelineMode, self.mode, "mode", problems, PipelineMode.BATCH)
        object.__setattr__(self, "mode", mode)
        if mode is PipelineMode.STREAMING:
            problems.append(
                ConfigProblem(
                    "mode",
                    "streaming pipelines are not supported: airflow-ppf runs batch components one after the "
                    "other inside an Airflow task and resumes them by checkpoint; remove 'mode' or set it to batch",
                )
            )
        if not isinstance(self.name, str) or not self.name.strip():
            problems.append(ConfigProblem("name", "must be a non-empty string"))
        if not isinstance(self.version, str) or not self.version.strip():
            problems.append(ConfigProblem("version", "must be a non-empty string"))
        problems.extend(_graph_problems([(c.name, c.depends_on) for c in self.components]))
        _raise_if(problems)

    # -- loading -------------------------------------------------------------------------------------

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, source: str | None = None, variables: Mapping[str, str] | None = None
    ) -> PipelineConfig:
        """Build and validate a config from a plain mapping.

        ``${NAME}`` in string values becomes the value of ``variables[NAME]``; ``$${`` is a literal ``${``
        (:mod:`airflow_ppf.config.variables`, the rule of every loader).

        Raises:
            ConfigError: listing every problem, each with its location (an unknown ``${NAME}`` is one).
        """
        data, problems = substitute_variables(data, variables)
        r = _Reader(data, "", problems, "a pipeline config")
        name = r.text("name")
        version = r.text("version", "1.0.0")
        spark = r.nested("spark", SparkConfig._read) or SparkConfig()
        environment = r.text("environment", Environment.DEV.value)
        mode = r.text("mode", PipelineMode.BATCH.value)
        materialize = r.text("materialize", MaterializePolicy.AUTO.value)
        tags = r.mapping("tags")  # values become strings in __post_init__
        hooks = r.nested("hooks", lambda d, p, pr: _read_section(HooksConfig, d, p, pr)) or HooksConfig()
        secrets = r.nested("secrets", lambda d, p, pr: _read_section(SecretsConfig, d, p, pr))
        description = r.text("description", None, allow_empty=True)
        raw_components = r.require("components")
        components: list[ComponentConfig] = []
        if raw_components is not MISSING:
            if not isinstance(raw_components, list | tuple):
                r.problem("components", f"must be a list of components, got {_type_name(raw_components)}")
            else:
                for i, raw in enumerate(raw_components):
                    comp = ComponentConfig._read(raw, f"components[{i}]", problems)
                    if comp is not None:
                        components.append(comp)
                problems.extend(_graph_problems([_raw_node(raw) for raw in raw_components]))
        r.reject_unknown([f.name for f in fields(cls)])
        if problems:
            raise ConfigError(problems, source=source)
        values = dict(
            name=name,
            version=version,
            spark=spark,
            components=tuple(components),
            environment=environment,
            mode=mode,
            materialize=materialize,
            tags=tags,
            hooks=hooks,
            secrets=secrets,
            description=description,
        )
        pipeline = _build(cls, values, "", problems)
        if pipeline is None:
            raise ConfigError(problems, source=source)
        unused = describe_unused_sections(pipeline.hooks, pipeline.secrets)
        if unused:
            log.warning("Pipeline %r%s: %s", pipeline.name, f" ({source})" if source else "", unused)
        return pipeline

    @classmethod
    def from_string(
        cls,
        text: str,
        format: str = "hocon",
        *,
        source: str | None = None,
        variables: Mapping[str, str] | None = None,
    ) -> PipelineConfig:
        """Parse ``text`` as ``hocon`` (the default, a superset of JSON), ``json`` or ``yaml`` and validate it.

        ``variables`` are substituted as ``${NAME}``, in string values too (in HOCON they win over
        environment variables); see :meth:`from_dict`.
        """
        from airflow_ppf.config.loading import parse_text

        data = parse_text(text, format, source=source, variables=variables)
        return cls.from_dict(data, source=source, variables=variables)

    @classmethod
    def from_file(cls, path: str | Path, *, variables: Mapping[str, str] | None = None) -> PipelineConfig:
        """Load a config file; the format follows the extension (``.conf``/``.hocon``, ``.json``, ``.yaml``).

        ``variables`` are substituted as ``${NAME}``, in string values too (in HOCON they win over
        environment variables); see :meth:`from_dict`.
        """
        from airflow_ppf.config.loading import parse_file

        return cls.from_dict(parse_file(path, variables=variables), source=str(path), variables=variables)

    def to_dict(self) -> dict[str, Any]:
        """Return a plain dict that :meth:`from_dict` reads back to an equal config."""
        spark = {
            k: v.value if isinstance(v, Enum) else v
            for k, v in _dataclass_dict(self.spark).items()
            if v is not None and not (k == "spark_conf" and not v)
        }
        if "spark_conf" in spark:
            spark["spark_conf"] = dict(self.spark.spark_conf)
        out: dict[str, Any] = {
            "name": self.name,
            "version": self.version,
            "spark": spark,
            "environment": self.environment.value,
            "mode": self.mode.value,
            "materialize": self.materialize.value,
            "components": [c.to_dict() for c in self.components],
        }
        if self.tags:
            out["tags"] = dict(self.tags)
        if self.hooks != HooksConfig():
            out["hooks"] = section_dict(self.hooks)
        if self.secrets is not None:
            out["secrets"] = section_dict(self.secrets)
        if self.description is not None:
            out["description"] = self.description
        escaped: dict[str, Any] = escape_literals(out)  # a literal ``${`` reads back as itself
        return escaped

    # -- graph helpers -------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[ComponentConfig]:
        return iter(self.components)

    @property
    def component_names(self) -> list[str]:
        """Component names in declaration order."""
        return [c.name for c in self.components]

    def get_component(self, name: str) -> ComponentConfig | None:
        """Return the component called ``name``, or ``None``."""
        for comp in self.components:
            if comp.name == name:
                return comp
        return None

    def dependency_graph(self) -> dict[str, tuple[str, ...]]:
        """Return ``name -> depends_on`` in declaration order."""
        return {c.name: c.depends_on for c in self.components}

    def get_execution_order(self) -> list[str]:
        """Return every component name (enabled or not) in a deterministic topological order."""
        return topological_order(self.dependency_graph())

    def downstream_of(self, names: Sequence[str] | set[str]) -> set[str]:
        """Return all components that depend, directly or not, on any of ``names``."""
        return descendants(self.dependency_graph(), names)

    def upstream_of(self, names: Sequence[str] | set[str]) -> set[str]:
        """Return all components that any of ``names`` depends on, directly or not."""
        return ancestors(self.dependency_graph(), names)


def _graph_problems(nodes: Sequence[tuple[str | None, Sequence[str | None]]]) -> list[ConfigProblem]:
    """Check names and dependencies: ``nodes[i]`` is ``(name, depends_on)`` of ``components[i]``.

    A ``None`` name (a component that failed to parse) takes part in nothing, so one bad component does
    not hide the graph problems of the others. A ``None`` dependency (not a name; reported by the reader)
    is skipped but keeps its place, so ``depends_on[j]`` locations stay right.
    """
    problems: list[ConfigProblem] = []
    if not nodes:
        return [ConfigProblem("components", "the pipeline has no components; add at least one")]
    seen: dict[str, int] = {}
    for i, (name, _) in enumerate(nodes):
        if name is None:
            continue
        if name in seen:
            problems.append(
                ConfigProblem(
                    f"components[{i}].name",
                    f"duplicate component name '{name}' (also components[{seen[name]}])",
                )
            )
        else:
            seen[name] = i
    for i, (name, deps) in enumerate(nodes):
        for j, dep in enumerate(deps):
            where = f"components[{i}].depends_on[{j}]"
            if dep is None:
                continue
            if dep == name:
                problems.append(ConfigProblem(where, f"component '{name}' cannot depend on itself"))
            elif dep not in seen:
                hint = difflib.get_close_matches(dep, list(seen), n=1)
                extra = f"; did you mean '{hint[0]}'?" if hint else ""
                problems.append(ConfigProblem(where, f"unknown component '{dep}'{extra}"))
        named = [d for d in deps if d is not None]
        if len(set(named)) != len(named):
            problems.append(ConfigProblem(f"components[{i}].depends_on", "lists a component more than once"))
    graph: dict[str, tuple[str, ...]] = {}
    for name, deps in nodes:
        if name is not None and name not in graph:
            graph[name] = tuple(d for d in deps if d is not None and d != name)
    cycle = find_cycle(graph)
    if cycle:
        problems.append(
            ConfigProblem(
                f"components[{seen[cycle[0]]}].depends_on",
                f"dependency cycle: {' -> '.join(cycle)}; remove one of these dependencies",
            )
        )
    return problems


def _raw_node(raw: Any) -> tuple[str | None, tuple[str | None, ...]]:
    """Best-effort ``(name, depends_on)`` of a component entry that may itself be invalid."""
    if not isinstance(raw, Mapping):
        return None, ()
    name = raw.get("name")
    deps = raw.get("depends_on") or ()
    if isinstance(deps, str):
        deps = (deps,)
    if not isinstance(deps, list | tuple):
        deps = ()
    return (
        str(name) if isinstance(name, str | int) and not isinstance(name, bool) else None,
        tuple(d if isinstance(d, str) and d.strip() else None for d in deps),
    )
