"""Errors raised while loading and validating pipeline configuration."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConfigProblem:
    """One problem found in a pipeline configuration.

    ``location`` is a path into the document such as ``components[2].depends_on`` (empty for the whole
    document); ``message`` says what is wrong and, where possible, how to fix it.
    """

    location: str
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigError(ValueError):
    """A pipeline configuration is malformed or invalid.

    Carries every problem found, not only the first, so a user can fix them all in one go.
    """

    def __init__(self, problems: list[ConfigProblem], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        where = f" ({source})" if source else ""
        count = len(self.problems)
        header = f"Invalid pipeline config{where}: {count} problem{'s' if count != 1 else ''}"
        super().__init__(header + "".join(f"\n  - {p}" for p in self.problems))

    @classmethod
    def single(cls, location: str, message: str, source: str | None = None) -> ConfigError:
        """Build an error holding one problem."""
        return cls([ConfigProblem(location, message)], source=source)
