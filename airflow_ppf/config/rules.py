"""The value rules of config models, in one home: models built in Python and models loaded from a file
are checked by the same code (the loader only checks types, then builds the model).

Each helper appends a :class:`ConfigProblem` located at the field's name; the model raises them all at
once with :func:`raise_if` and the loader relocates them under the model's place in the document.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from enum import Enum
from typing import Any, TypeVar

from airflow_ppf.config.errors import ConfigError, ConfigProblem

__all__ = ["FrozenList", "at_least", "coerce_enum", "is_number", "raise_if"]

E = TypeVar("E", bound=Enum)


class FrozenList(tuple[Any, ...]):
    """An immutable list (``components``, ``depends_on``, ``retry_on_exceptions``) that also equals the same list.

    Configs are frozen, so their list fields are tuples; code written for pyspark-pipeline-framework
    compares them with lists (``comp.depends_on == ["read"]``), which holds here too.
    """

    __slots__ = ()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list):
            return list(self) == other
        return tuple.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__

    def __repr__(self) -> str:
        return repr(list(self))


def is_number(value: object) -> bool:
    """Whether ``value`` is an int or float (a bool is not a number here)."""
    return isinstance(value, int | float) and not isinstance(value, bool)


def at_least(problems: list[ConfigProblem], name: str, value: Any, minimum: float) -> bool:
    """Check ``value >= minimum`` (and that it is a finite number); return whether it holds."""
    if not is_number(value):
        problems.append(ConfigProblem(name, f"must be a number, got {value!r}"))
        return False
    if isinstance(value, float) and not math.isfinite(value):
        problems.append(ConfigProblem(name, f"must be a finite number, got {value!r}"))
        return False
    if value < minimum:
        problems.append(ConfigProblem(name, f"must be at least {minimum:g}, got {value!r}"))
        return False
    return True


def coerce_enum(cls: type[E], value: Any, name: str, problems: list[ConfigProblem], default: E) -> E:
    """Turn ``value`` (a member or its value, any case) into a member of ``cls``; ``default`` on a problem."""
    if isinstance(value, cls):
        return value
    if isinstance(value, str):
        wanted = value.strip().lower()
        for member in cls:
            if str(member.value).lower() == wanted:
                return member
    choices = ", ".join(str(m.value) for m in cls)
    problems.append(ConfigProblem(name, f"must be one of {choices}; got {value!r}"))
    return default


def raise_if(problems: Sequence[ConfigProblem]) -> None:
    """Raise every problem at once, if there is any."""
    if problems:
        raise ConfigError(list(problems))
