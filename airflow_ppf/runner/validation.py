"""Check a pipeline without running it (pyspark-pipeline-framework's validation API).

:func:`validate_pipeline` imports every enabled component's class; :func:`dry_run` also builds each one
from its config. Neither starts Spark. Both report every problem at once, each naming its component; a
runner does the same before it runs anything (``SimplePipelineRunner(validate_before_run=True)``).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import StrEnum

from airflow_ppf.components.base import Component
from airflow_ppf.components.loading import ComponentLoadError, create_component, load_component_class
from airflow_ppf.config.models import ComponentConfig, PipelineConfig

__all__ = [
    "DryRunResult",
    "ValidationError",
    "ValidationPhase",
    "ValidationResult",
    "dry_run",
    "list_available_components",
    "validate_component_class",
    "validate_pipeline",
]


class ValidationPhase(StrEnum):
    """The kind of check a :class:`ValidationError` comes from."""

    CONFIG_SYNTAX = "config-syntax"
    REQUIRED_FIELDS = "required-fields"
    TYPE_RESOLUTION = "type-resolution"
    COMPONENT_CONFIG = "component-config"


@dataclass
class ValidationError:
    """One problem that would stop the pipeline from running."""

    phase: ValidationPhase
    message: str
    component_name: str | None = None

    def __str__(self) -> str:
        return f"{self.component_name}: {self.message}" if self.component_name else self.message


@dataclass
class ValidationResult:
    """What :func:`validate_pipeline` found: ``errors`` stop a run, ``warnings`` do not."""

    errors: list[ValidationError] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        """Whether no error was found."""
        return not self.errors


@dataclass
class DryRunResult:
    """What :func:`dry_run` found: the components that could not be built, and those that were."""

    errors: list[ValidationError] = field(default_factory=list)
    instantiated: list[str] = field(default_factory=list)

    @property
    def is_valid(self) -> bool:
        """Whether every enabled component was built."""
        return not self.errors


def validate_component_class(class_path: str) -> list[str]:
    """Import a component class and return notes about it (no ``from_config``: built with ``cls(**config)``).

    Raises:
        ComponentLoadError: the class cannot be imported, is not a component, or is abstract.
    """
    cls = load_component_class(class_path)
    if callable(getattr(cls, "from_config", None)):
        return []
    return [f"'{class_path}' does not implement from_config(); it is built with {cls.__name__}(**config)"]


def check_component_classes(config: PipelineConfig) -> Iterator[tuple[ComponentConfig, list[str], str | None]]:
    """Check each enabled component's class, in declaration order, with :func:`validate_component_class`.

    Yields ``(component, notes, problem)``: ``problem`` is ``Cannot load '<class_path>': <why>`` when the
    class does not load (and ``notes`` is then empty), else ``None``.
    """
    for comp in config.components:
        if not comp.enabled:
            continue
        try:
            notes = validate_component_class(comp.class_path)
        except ComponentLoadError as exc:
            yield comp, [], f"Cannot load '{comp.class_path}': {exc.reason}"
            continue
        yield comp, notes, None


def validate_pipeline(config: PipelineConfig) -> ValidationResult:
    """Check that every enabled component's class imports and can run, without building it.

    Config-level rules (names, dependencies, values) are checked when the config is built, so a
    :class:`PipelineConfig` that exists passes them; this adds what needs the components' code.
    """
    result = ValidationResult()
    if not config.components:
        result.errors.append(ValidationError(ValidationPhase.REQUIRED_FIELDS, "Pipeline has no components"))
    for comp, notes, problem in check_component_classes(config):
        if problem is not None:
            result.errors.append(ValidationError(ValidationPhase.TYPE_RESOLUTION, problem, comp.name))
        result.warnings.extend(f"[{comp.name}] {note}" for note in notes)
    return result


def dry_run(config: PipelineConfig) -> DryRunResult:
    """Build every enabled component from its config (imports, constructor arguments), running none."""
    result = DryRunResult()
    for comp in config.components:
        if not comp.enabled:
            continue
        try:
            create_component(comp)
        except ComponentLoadError as exc:
            result.errors.append(
                ValidationError(
                    ValidationPhase.COMPONENT_CONFIG,
                    f"Failed to instantiate '{comp.class_path}': {exc.reason}",
                    comp.name,
                )
            )
            continue
        result.instantiated.append(comp.name)
    return result


def list_available_components(package: str) -> list[str]:
    """Class paths of the component classes defined or imported in module ``package``, sorted.

    Raises:
        ComponentLoadError: the module cannot be imported.
    """
    try:
        module = importlib.import_module(package)
    except ImportError as exc:
        raise ComponentLoadError(f"cannot import '{package}': {exc}", class_path=package) from exc
    return sorted(
        f"{package}.{name}"
        for name, obj in vars(module).items()
        if inspect.isclass(obj) and issubclass(obj, Component) and obj is not Component
    )
