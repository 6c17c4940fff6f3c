"""What a component may offer besides :meth:`~airflow_ppf.components.Component.run`, as structural protocols.

``Resource``: components holding connections or files implement ``open()`` and ``close()``; the runner
calls ``open()`` before the first attempt and ``close()`` once after the last one, whether the component
succeeded or failed. ``ConfigurableInstance``: a ``from_config(config)`` classmethod builds the component
from its config block. The names are pyspark-pipeline-framework's.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

__all__ = ["ConfigurableInstance", "Resource", "SchemaContract"]


@runtime_checkable
class Resource(Protocol):
    """A component that acquires something before running and releases it after (``open`` / ``close``)."""

    def open(self) -> None:
        """Acquire the resources (called once, before the first attempt)."""

    def close(self) -> None:
        """Release them (called once after the last attempt, also when the component failed)."""


@runtime_checkable
class ConfigurableInstance(Protocol):
    """A component class built with ``cls.from_config(config)`` instead of ``cls(**config)``."""

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Any:
        """Build the component from its config block."""


class SchemaContract(Protocol):
    """A component that declares the schemas it reads and writes (informational)."""

    @property
    def input_schema(self) -> Any | None:
        """The schema the component expects, or ``None``."""

    @property
    def output_schema(self) -> Any | None:
        """The schema the component produces, or ``None``."""
