"""Errors about components: building one from its config, or running it (pyspark-pipeline-framework's names)."""

from __future__ import annotations

__all__ = ["ComponentError", "ComponentExecutionError", "ComponentInstantiationError"]


class ComponentError(Exception):
    """Base class of component errors."""


class ComponentInstantiationError(ComponentError):
    """A component could not be imported or built from its config.

    ``class_path`` names the class; ``cause`` is the underlying error (also ``__cause__``).
    """

    def __init__(self, class_path: str, cause: BaseException | None) -> None:
        self.class_path = class_path
        super().__init__(f"Failed to instantiate '{class_path}': {cause}")
        self.__cause__ = cause

    @property
    def cause(self) -> BaseException | None:
        """The underlying error, if any."""
        return self.__cause__


class ComponentExecutionError(ComponentError):
    """A component's ``run()`` raised; ``cause`` is what it raised (also ``__cause__``)."""

    def __init__(self, component_name: str, cause: BaseException) -> None:
        self.component_name = component_name
        self.cause = cause
        super().__init__(f"Component '{component_name}' failed: {cause}")
        self.__cause__ = cause
