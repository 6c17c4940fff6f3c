"""Bounds on the shape of documents read from files: pipeline configs and checkpoints.

Parsers recurse (Python's JSON parser, PyYAML's composer, pyhocon's parser, ``copy.deepcopy``), so a
document nested thousands of levels deep would end in a ``RecursionError`` far from the file that caused
it; YAML aliases and HOCON substitutions let a few hundred bytes expand to billions of values ("billion
laughs"). Documents are checked against these bounds before they are used (YAML and HOCON before they are
expanded), so either mistake, or an attack through an untrusted config, ends in one clear error that names
the file. The bounds are far above anything a pipeline needs: the largest configs in the test suite have
a nesting depth under 10 and a 1,000-component pipeline has about 30,000 values.
"""

from __future__ import annotations

from typing import Any

__all__ = ["MAX_NESTING", "MAX_VALUES", "nesting_problem", "shape_problem", "too_deep", "too_many_values"]

#: Lists and objects inside each other, at most (the top-level object counts as level 1).
MAX_NESTING = 100
#: Values (objects, lists, scalars and object keys) a config may hold once aliases and substitutions
#: are expanded.
MAX_VALUES = 100_000


def too_deep(limit: int = MAX_NESTING) -> str:
    """The problem text of a document nested deeper than ``limit``."""
    return f"nested more than {limit} levels deep (lists and objects inside each other); refusing to read it"


def too_many_values(limit: int = MAX_VALUES, how: str = "") -> str:
    """The problem text of a document of more than ``limit`` values (``how``: what made it so large)."""
    return f"expands to more than {limit:,} values{how}; refusing to build it"


def nesting_problem(document: Any, limit: int = MAX_NESTING) -> str | None:
    """Say whether ``document`` (plain dicts and lists) is nested deeper than ``limit``; ``None`` when not.

    Iterative, so any depth is checked without recursion.
    """
    return _walk(document, limit, None)


def shape_problem(document: Any, max_nesting: int = MAX_NESTING, max_values: int = MAX_VALUES) -> str | None:
    """Say whether ``document`` is nested deeper than ``max_nesting`` or holds more than ``max_values`` values.

    Shared objects (from YAML aliases) count each time they are reachable, as users of the document see
    them. Iterative, and stops at the first bound exceeded.
    """
    return _walk(document, max_nesting, max_values)


def _walk(document: Any, max_nesting: int, max_values: int | None) -> str | None:
    # Level by level: no recursion, and a tight loop (a 750 KB checkpoint takes a few milliseconds).
    level = [document] if isinstance(document, (dict, list)) else []
    depth, values = 1, 1
    while level:
        if depth > max_nesting:
            return too_deep(max_nesting)
        deeper: list[Any] = []
        for node in level:
            if type(node) is dict:
                children: Any = node.values()
                values += 2 * len(node)  # a key and a value each
            else:
                children = node
                values += len(node)
            deeper += [child for child in children if type(child) is dict or type(child) is list]
        if max_values is not None and values > max_values:
            return too_many_values(max_values)
        level, depth = deeper, depth + 1
    return None
