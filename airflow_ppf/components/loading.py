"""Build components from their ``class_path`` with errors that name the component and say what to fix."""

from __future__ import annotations

import contextlib
import difflib
import importlib
import inspect
from typing import Any

from airflow_ppf.components.base import Component
from airflow_ppf.components.errors import ComponentInstantiationError
from airflow_ppf.config.models import ComponentConfig

__all__ = ["ComponentLoadError", "create_component", "instantiate_component", "load_component_class"]


class ComponentLoadError(ComponentInstantiationError):
    """A component could not be imported or built from its config.

    ``location`` is the place in the pipeline config (``components[2]``), ``component`` its name,
    ``class_path`` the class (when known) and ``cause`` the underlying error (when there is one).
    """

    def __init__(
        self,
        message: str,
        *,
        component: str | None = None,
        location: str | None = None,
        class_path: str = "",
    ) -> None:
        self.component = component
        self.location = location
        self.reason = message
        self.class_path = class_path
        prefix = ""
        if location and component:
            prefix = f"{location} ('{component}'): "
        elif component:
            prefix = f"component '{component}': "
        Exception.__init__(self, prefix + message)


def load_component_class(class_path: str) -> type[Any]:
    """Import the class named by ``class_path`` (``package.module.ClassName``).

    Raises:
        ComponentLoadError: the module does not import, the class is missing, or it has no ``run()``.
    """
    try:
        return _load_class(class_path)
    except ComponentLoadError as exc:
        exc.class_path = class_path
        raise


def _load_class(class_path: str) -> type[Any]:
    module_name, _, class_name = class_path.strip().rpartition(".")
    if not module_name or not class_name:
        raise ComponentLoadError(f"class_path {class_path!r} must look like 'package.module.ClassName'")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or module_name
        raise ComponentLoadError(
            f"cannot import module '{module_name}' for class_path '{class_path}': no module named "
            f"'{missing}' (is the package installed and on PYTHONPATH?)"
        ) from exc
    except Exception as exc:
        raise ComponentLoadError(
            f"importing module '{module_name}' for class_path '{class_path}' failed: {type(exc).__name__}: {exc}"
        ) from exc
    cls = getattr(module, class_name, None)
    if cls is None:
        names = [n for n, v in vars(module).items() if inspect.isclass(v) and not n.startswith("_")]
        hint = difflib.get_close_matches(class_name, names, n=1)
        extra = f"; did you mean '{module_name}.{hint[0]}'?" if hint else ""
        raise ComponentLoadError(f"module '{module_name}' has no class '{class_name}'{extra}")
    if not inspect.isclass(cls):
        raise ComponentLoadError(f"'{class_path}' is a {type(cls).__name__}, not a class")
    if not callable(getattr(cls, "run", None)):
        raise ComponentLoadError(
            f"class '{class_path}' has no run() method; subclass airflow_ppf.components.Component "
            "(or DataFlow for Spark code)"
        )
    if inspect.isabstract(cls):
        missing = ", ".join(sorted(getattr(cls, "__abstractmethods__", ())))
        raise ComponentLoadError(f"class '{class_path}' is abstract (implement: {missing})")
    return cls


def create_component(config: ComponentConfig, *, location: str | None = None) -> Component:
    """Build the component described by ``config``.

    Uses ``cls.from_config(config.config)`` when the class defines it, else ``cls(**config.config)``.
    Arguments are checked against the constructor's signature first, so a wrong key is reported as such
    and not confused with a ``TypeError`` raised inside the constructor.

    Raises:
        ComponentLoadError: naming the component, its place in the config and the problem.
    """
    try:
        cls = load_component_class(config.class_path)
        params = dict(config.config)
        factory = getattr(cls, "from_config", None)
        if callable(factory):
            component = factory(params)
        else:
            _check_arguments(cls, params)
            component = cls(**params)
    except ComponentLoadError as exc:
        raise ComponentLoadError(
            exc.reason, component=config.name, location=location, class_path=config.class_path
        ) from exc.__cause__
    except Exception as exc:
        raise ComponentLoadError(
            f"building {config.class_path} failed: {type(exc).__name__}: {exc}",
            component=config.name,
            location=location,
            class_path=config.class_path,
        ) from exc
    # Set the storage behind Component.name, not the attribute: a component may define `name` as a
    # read-only property (every pyspark-pipeline-framework component does); its own name then wins.
    with contextlib.suppress(AttributeError):
        component._ppf_name = config.name
    return component  # type: ignore[no-any-return]


#: pyspark-pipeline-framework's name of :func:`create_component`.
instantiate_component = create_component


def _check_arguments(cls: type[Any], params: dict[str, Any]) -> None:
    try:
        signature = inspect.signature(cls)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(**params)
    except TypeError as exc:
        accepted = [
            p.name
            for p in signature.parameters.values()
            if p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        ]
        unknown = sorted(set(params) - set(accepted))
        has_var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in signature.parameters.values())
        if unknown and not has_var_kw:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, accepted, n=1)
                hints.append(f"'{key}'" + (f" (did you mean '{close[0]}'?)" if close else ""))
            message = f"unknown config key{'s' if len(unknown) > 1 else ''} {', '.join(hints)}"
        else:
            message = str(exc)
        raise ComponentLoadError(
            f"bad config for {cls.__name__}: {message}; accepted keys: {', '.join(accepted) or 'none'}"
        ) from None
