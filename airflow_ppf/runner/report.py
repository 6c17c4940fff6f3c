"""Plain-text rendering shared by logs, the CLI and the operator: durations and aligned tables."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["describe_error", "first_line", "format_seconds", "format_table"]


def first_line(error: BaseException, limit: int = 300) -> str:
    """The first line of an exception's message (its class name when empty), cut to ``limit`` characters."""
    text = (str(error).strip() or type(error).__name__).splitlines()[0]
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_error(error: BaseException, limit: int = 300) -> str:
    """``ValueError: bad input`` – class name and first line of the message."""
    return f"{type(error).__name__}: {first_line(error, limit)}"


def format_seconds(seconds: float) -> str:
    """Format a duration for people: ``0.42 s``, ``2.1 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds < 1:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]], indent: str = "  ") -> str:
    """Render rows as a left-aligned text table with a header rule."""
    cells = [[str(h) for h in headers], *[["" if c is None else str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: list[str]) -> str:
        return (indent + "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row))).rstrip()

    rule = indent + "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), rule, *(line(r) for r in cells[1:])])
