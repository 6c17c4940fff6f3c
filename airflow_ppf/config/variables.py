"""Pipeline variables inside string values: the one rule every loader (file, text, dict) applies.

HOCON substitutes ``${NAME}`` only outside quotes, and every SQL string of a config is quoted; JSON, YAML
and dicts have no substitution at all. So after parsing, in every string value of the document:

* ``${NAME}`` (or ``${?NAME}``) becomes the value of the pipeline variable ``NAME`` (``variables=``,
  ``PipelineOperator(pipeline_vars=...)``, ``ppf run --var NAME=VALUE``);
* ``${?NAME}`` of an unknown variable becomes the empty string (optional, as in HOCON);
* ``$${`` is a literal ``${`` (e.g. ``"$${hivevar:day}"`` keeps ``${hivevar:day}`` for Spark SQL);
* any other ``${...}`` is a :class:`~airflow_ppf.config.errors.ConfigError` naming the variable and the
  value's place (``components[2].config.sql: unknown variable 'REGION' ...``): a typo or a forgotten
  variable never reaches Spark as literal text.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from typing import Any

from airflow_ppf.config.errors import ConfigProblem

__all__ = ["escape_literals", "substitute_variables"]

# ``$${`` (an escaped ``${``) or a reference ``${NAME}`` / ``${?NAME}`` (NAME up to the first ``}``).
_TOKEN = re.compile(r"\$\$\{|\$\{(\?)?([^}]*)\}")


def substitute_variables(data: Any, variables: Mapping[str, str] | None) -> tuple[Any, list[ConfigProblem]]:
    """Apply the rule above to every string value of ``data`` (a parsed document).

    Returns:
        The document with its string values substituted, and one problem per unresolved reference.
    """
    known = {str(k): str(v) for k, v in (variables or {}).items()}
    problems: list[ConfigProblem] = []
    return _walk(data, "", known, problems), problems


def _walk(value: Any, path: str, known: dict[str, str], problems: list[ConfigProblem]) -> Any:
    if isinstance(value, str):
        return _substitute(value, path, known, problems) if "${" in value else value
    if isinstance(value, Mapping):
        return {k: _walk(v, f"{path}.{k}" if path else str(k), known, problems) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_walk(v, f"{path}[{i}]", known, problems) for i, v in enumerate(value)]
    return value


def _substitute(text: str, path: str, known: dict[str, str], problems: list[ConfigProblem]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        optional, name = match.group(1), match.group(2).strip()
        if name in known:
            return known[name]
        if optional:
            return ""
        problems.append(ConfigProblem(path, _unknown(name, known)))
        return match.group(0)

    return _TOKEN.sub(replace, text)


def _unknown(name: str, known: Mapping[str, str]) -> str:
    hint = difflib.get_close_matches(name, list(known), n=1)
    given = f"; did you mean '{hint[0]}'?" if hint else f" (variables given: {', '.join(sorted(known)) or 'none'})"
    return (
        f"unknown variable '{name}' in a string value{given}. Pass it as a pipeline variable "
        f"(PipelineOperator(pipeline_vars={{'{name}': ...}}), ppf --var {name}=..., or variables=), "
        f"or write $${{{name}}} for a literal '${{{name}}}'"
    )


def escape_literals(data: Any) -> Any:
    """Write every ``${`` in string values as ``$${``: the inverse of :func:`substitute_variables`."""
    if isinstance(data, str):
        return data.replace("${", "$${")
    if isinstance(data, Mapping):
        return {k: escape_literals(v) for k, v in data.items()}
    if isinstance(data, list):
        return [escape_literals(v) for v in data]
    if isinstance(data, tuple):
        return tuple(escape_literals(v) for v in data)
    return data
