"""Parse HOCON, JSON and YAML text into plain dicts, turning parser errors into :class:`ConfigError`.

HOCON is parsed with pyhocon: ``${VAR}`` falls back to the environment variable ``VAR`` and
``${?VAR}`` leaves the key out when it is unset; ``include "other.conf"`` resolves next to the file.

``variables`` (e.g. ``{"RUN_DATE": "2026-11-27"}``) take part in HOCON's own substitution (unquoted
``${RUN_DATE}``), where they take precedence over environment variables of the same name. Inside string
values, in all three formats and dicts, ``PipelineConfig.from_dict`` substitutes them
(:mod:`airflow_ppf.config.variables`).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from airflow_ppf.config.errors import ConfigError
from airflow_ppf.config.limits import MAX_NESTING, MAX_VALUES, shape_problem, too_deep, too_many_values

__all__ = ["FORMATS", "format_for_path", "parse_file", "parse_text"]

FORMATS = ("hocon", "json", "yaml")
_EXTENSIONS = {".conf": "hocon", ".hocon": "hocon", ".json": "json", ".yaml": "yaml", ".yml": "yaml"}


def format_for_path(path: str | Path) -> str:
    """Return the config format for a file name (HOCON for unknown extensions: it also reads JSON)."""
    return _EXTENSIONS.get(Path(path).suffix.lower(), "hocon")


_ENV_LOCK = threading.Lock()


@contextlib.contextmanager
def _environment(variables: Mapping[str, str] | None) -> Iterator[None]:
    """Expose ``variables`` as environment variables while pyhocon resolves substitutions."""
    if not variables:
        yield
        return
    with _ENV_LOCK:
        saved = {k: os.environ.get(k) for k in variables}
        os.environ.update({k: str(v) for k, v in variables.items()})
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def parse_file(path: str | Path, variables: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Read and parse a config file.

    Raises:
        ConfigError: the file is missing, unreadable or malformed (the message names the file and line).
    """
    file = Path(path)
    source = str(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError.single("", f"config file not found: {source}", source=source) from None
    except IsADirectoryError:
        raise ConfigError.single("", f"expected a config file, got a directory: {source}", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError.single("", f"cannot read config file: {exc}", source=source) from None
    return parse_text(text, format_for_path(file), source=source, base_dir=file.parent, variables=variables)


def parse_text(
    text: str,
    format: str = "hocon",
    *,
    source: str | None = None,
    base_dir: Path | None = None,
    variables: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """Parse ``text`` in the given format into a plain dict.

    Raises:
        ConfigError: the text is malformed, or its top level is not an object.
    """
    fmt = (format or "hocon").lower()
    if fmt in ("conf", "hocon"):
        with _environment(variables):
            data = _parse_hocon(text, source, base_dir)
    elif fmt == "json":
        data = _parse_json(text, source)
    elif fmt in ("yaml", "yml"):
        data = _parse_yaml(text, source)
    else:
        raise ConfigError.single("", f"unknown config format {format!r}; use one of {', '.join(FORMATS)}")
    if not isinstance(data, dict):
        raise ConfigError.single(
            "", f"the top level of a pipeline config must be an object, got {type(data).__name__}", source
        )
    return data


def _parse_hocon(text: str, source: str | None, base_dir: Path | None) -> dict[str, Any]:
    from pyhocon import ConfigFactory, ConfigParser
    from pyhocon.exceptions import ConfigException

    try:
        tree = ConfigFactory.parse_string(text, basedir=str(base_dir) if base_dir else None, resolve=False)
        _check_hocon_expansion(tree, source)
        ConfigParser.resolve_substitutions(tree)
    except RecursionError:
        raise _too_deep(source) from None
    except ConfigError:
        raise
    except ConfigException as exc:
        message = str(exc)
        if "Cannot resolve variable" in message:
            match = re.search(r"\$\{\??([^}]+)\}", message)
            var = match.group(1) if match else "?"
            message += (
                f"; pass it as a pipeline variable (pipeline_vars / ppf --var {var}=...), set the "
                f"environment variable {var}, or define '{var}' in the config "
                f"(write ${{?{var}}} to make it optional)"
            )
        raise ConfigError.single("", f"HOCON error: {message}", source=source) from None
    except Exception as exc:  # pyparsing raises its own ParseException family
        raise ConfigError.single("", f"HOCON syntax error: {_one_line(exc)}", source=source) from None
    try:
        plain: dict[str, Any] = _to_builtin(tree.as_plain_ordered_dict())
    except RecursionError:
        raise _too_deep(source) from None
    _checked_shape(plain, source)
    return plain


def _parse_json(text: str, source: str | None) -> Any:
    try:
        return _checked_shape(json.loads(text), source)
    except RecursionError:
        raise _too_deep(source) from None
    except json.JSONDecodeError as exc:
        raise ConfigError.single(
            "", f"JSON syntax error at line {exc.lineno}, column {exc.colno}: {exc.msg}", source=source
        ) from None


def _parse_yaml(text: str, source: str | None) -> Any:
    import yaml

    try:
        _check_yaml_expansion(text, source)
        return _checked_shape(yaml.safe_load(text), source)
    except RecursionError:
        raise _too_deep(source) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or _one_line(exc)
        raise ConfigError.single("", f"YAML syntax error{where}: {problem}", source=source) from None


def _too_deep(source: str | None) -> ConfigError:
    return ConfigError.single("", f"the document is {too_deep()}", source=source)


def _checked_shape(data: Any, source: str | None) -> Any:
    """Return ``data`` if it is within the nesting and size bounds of :mod:`airflow_ppf.config.limits`."""
    problem = shape_problem(data)
    if problem is not None:
        raise ConfigError.single("", f"the document is {problem}", source=source)
    return data


def _check_yaml_expansion(text: str, source: str | None) -> None:
    """Refuse YAML nested too deep, or whose aliases expand past the value bound, before it is built.

    Reads the event stream (PyYAML's parser keeps its own stack: no recursion), counting each alias as
    the size of what its anchor holds, so a "billion laughs" document is refused after a few hundred
    events instead of being built.
    """
    import yaml

    sizes: dict[str, int] = {}  # anchor -> values it holds, once its node has ended
    frames: list[list[Any]] = []  # open lists and objects: [values so far, anchor]
    total = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark is not None else 0
        if isinstance(event, yaml.CollectionStartEvent):
            frames.append([1, event.anchor])
            if len(frames) > MAX_NESTING:
                raise ConfigError.single("", f"line {line}: the document is {too_deep()}", source)
            added = 1
        elif isinstance(event, yaml.CollectionEndEvent):
            count, anchor = frames.pop()
            if anchor is not None:
                sizes[anchor] = count
            if frames:
                frames[-1][0] += count
            continue
        elif isinstance(event, yaml.ScalarEvent):
            added = 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            added = sizes.get(event.anchor or "", 1)  # an unknown alias is PyYAML's error to report
        else:
            continue
        if frames and not isinstance(event, yaml.CollectionStartEvent):
            frames[-1][0] += added
        total += added
        if total > MAX_VALUES:
            how = " (YAML aliases repeat what their anchor holds each time they are used)"
            raise ConfigError.single("", f"line {line}: the document {too_many_values(how=how)}", source)


def _check_hocon_expansion(tree: Any, source: str | None) -> None:
    """Refuse HOCON whose substitutions expand past the value bound, before pyhocon resolves them.

    ``tree`` is parsed but not resolved: each ``${path}`` counts as the size of what ``path`` holds
    (itself counted the same way), so nested substitutions multiply as they would when resolved.
    """
    from pyhocon.config_tree import ConfigSubstitution, ConfigTree, ConfigValues

    sizes: dict[str, int] = {}
    resolving: set[str] = set()

    def size(node: Any) -> int:
        if isinstance(node, ConfigTree):
            return 1 + len(node) + sum(size(v) for v in node.values())
        if isinstance(node, list):
            return 1 + sum(size(v) for v in node)
        if isinstance(node, ConfigValues):
            return max(1, sum(size(t) for t in node.tokens))
        if isinstance(node, ConfigSubstitution):
            return target(node.variable)
        return 1

    def target(path: str) -> int:
        if path not in sizes:
            if path in resolving:  # a self-reference (``a: ${a} [1]``) appends to what came before
                return 1
            resolving.add(path)
            try:
                value = tree.get(path, None)
            except Exception:  # an environment variable, or a path through a value: one value
                value = None
            sizes[path] = 1 if value is None else size(value)
            resolving.discard(path)
        return sizes[path]

    if size(tree) > MAX_VALUES:
        how = " (HOCON substitutions repeat what they refer to each time they are used)"
        raise ConfigError.single("", f"the document {too_many_values(how=how)}", source)


def _to_builtin(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _to_builtin(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_builtin(v) for v in value]
    return value


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())
