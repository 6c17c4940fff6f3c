"""Check the config keys of the built-in Spark components; every error names the key and what is allowed."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "READ_FORMATS",
    "WRITE_FORMATS",
    "WRITE_MODES",
    "OptionValue",
    "check_choice",
    "check_columns",
    "check_options",
    "check_table_name",
    "check_text",
    "check_view_name",
    "check_view_names",
    "check_write_mode",
    "quote_table_name",
]

#: File formats the readers accept (all built into Spark; no extra packages needed).
READ_FORMATS = ("csv", "json", "orc", "parquet", "text")
#: File formats the writers accept.
WRITE_FORMATS = ("csv", "json", "orc", "parquet", "text")
#: Save modes of the writers; ``errorifexists`` is an alias of ``error``.
WRITE_MODES = ("overwrite", "append", "error", "errorifexists", "ignore")

#: A reader or writer option value as HOCON/JSON/YAML gives it (Spark receives it as a string).
OptionValue = str | int | float | bool

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_TABLE_PART = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|`(?:[^`]|``)+`")


def _type_name(value: object) -> str:
    return type(value).__name__


def check_text(key: str, value: object) -> str:
    """Return ``value`` if it is a non-empty string.

    Raises:
        ValueError: naming ``key``.
    """
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{key}' must be a non-empty string, got {value!r}")
    return value


def check_view_name(key: str, value: object) -> str:
    """Return ``value`` if it is a valid temp view name (letters, digits and ``_``, not starting with a digit).

    Raises:
        ValueError: naming ``key``.
    """
    name = check_text(key, value)
    if not _IDENTIFIER.match(name):
        raise ValueError(
            f"'{key}' must be a temp view name made of letters, digits and '_' (not starting with a digit), "
            f"got {name!r}"
        )
    return name


def check_view_names(key: str, value: object) -> tuple[str, ...]:
    """Return ``value`` as a tuple of view names; a single string counts as a list of one.

    Raises:
        ValueError: naming ``key``.
    """
    items: Sequence[object]
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ValueError(f"'{key}' must be a list of temp view names, got {_type_name(value)}")
    return tuple(check_view_name(f"{key}[{i}]", item) for i, item in enumerate(items))


def check_table_name(key: str, value: object) -> str:
    """Return ``value`` if it is a table name of one to three dot-separated parts (``db.table``).

    Parts are plain identifiers or back-quoted (```my table```).

    Raises:
        ValueError: naming ``key``.
    """
    name = check_text(key, value).strip()
    parts = _split_table_name(name)
    if parts is None or not 1 <= len(parts) <= 3:
        raise ValueError(
            f"'{key}' must be a table name like 'table', 'db.table' or 'catalog.db.table' (parts made of "
            f"letters, digits and '_', or back-quoted), got {value!r}"
        )
    return name


def quote_table_name(name: str) -> str:
    """Return a checked table name with every part back-quoted, safe to put into SQL text."""
    parts = _split_table_name(name)
    if parts is None:  # pragma: no cover - names are checked in __init__
        raise ValueError(f"not a table name: {name!r}")
    quoted = []
    for part in parts:
        if part.startswith("`"):
            quoted.append(part)
        else:
            quoted.append(f"`{part}`")
    return ".".join(quoted)


def _split_table_name(name: str) -> list[str] | None:
    parts: list[str] = []
    pos = 0
    while True:
        match = _TABLE_PART.match(name, pos)
        if match is None:
            return None
        parts.append(match.group(0))
        pos = match.end()
        if pos == len(name):
            return parts
        if name[pos] != ".":
            return None
        pos += 1


def check_choice(key: str, value: object, allowed: Sequence[str]) -> str:
    """Return ``value`` lower-cased if it is one of ``allowed``.

    Raises:
        ValueError: naming ``key`` and the allowed values.
    """
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise ValueError(f"unsupported '{key}' {value!r}; use one of: {', '.join(allowed)}")
    return value.strip().lower()


def check_write_mode(value: object) -> str:
    """Return the save mode for the ``mode`` key, with ``errorifexists`` spelled ``error``.

    Raises:
        ValueError: naming ``mode`` and the allowed modes.
    """
    mode = check_choice("mode", value, WRITE_MODES)
    return "error" if mode == "errorifexists" else mode


def check_options(key: str, value: object) -> dict[str, OptionValue]:
    """Return reader/writer options as a dict of option name to a scalar value; ``None`` means no options.

    Raises:
        ValueError: naming ``key`` (or ``key.option``) when it is not a mapping of scalars.
    """
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"'{key}' must be a mapping of option name to value, got {_type_name(value)}")
    options: dict[str, OptionValue] = {}
    for name, item in value.items():
        if not isinstance(name, str) or not name:
            raise ValueError(f"'{key}' option names must be non-empty strings, got {name!r}")
        if not isinstance(item, str | int | float | bool):
            raise ValueError(f"'{key}.{name}' must be a string, number or boolean, got {_type_name(item)}: {item!r}")
        options[name] = item
    return options


def check_columns(key: str, value: object) -> tuple[str, ...]:
    """Return partition columns as a tuple; ``None`` means none, a single string counts as a list of one.

    Raises:
        ValueError: naming ``key``.
    """
    if value is None:
        return ()
    items: Sequence[Any]
    if isinstance(value, str):
        items = [value]
    elif isinstance(value, list | tuple):
        items = value
    else:
        raise ValueError(f"'{key}' must be a list of column names, got {_type_name(value)}")
    columns = tuple(check_text(f"{key}[{i}]", item) for i, item in enumerate(items))
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise ValueError(f"'{key}' names a column more than once: {', '.join(duplicates)}")
    return columns
