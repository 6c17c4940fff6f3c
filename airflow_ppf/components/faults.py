"""Deliberate failures, to rehearse and demonstrate resume (examples, tests, game days)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from airflow_ppf.components.base import Component

__all__ = ["FaultInjection", "InjectedFailure"]


class InjectedFailure(RuntimeError):
    """The failure a :class:`FaultInjection` component raises."""


class FaultInjection(Component):
    """Fail on purpose under a condition that does not change the pipeline's fingerprint.

    Args:
        fail_on_attempts: fail when the run's ``attempt`` (the Airflow try number, or the checkpoint
            attempt under ``ppf run``) is one of these, e.g. ``[1]`` to fail the first try only.
        fail_if_env: fail when this environment variable is set to a true value (``1``, ``true``, ``yes``).
        message: the error message.

    With neither condition set it always fails.
    """

    def __init__(
        self,
        fail_on_attempts: Sequence[int] | None = None,
        fail_if_env: str | None = None,
        message: str = "injected failure",
    ) -> None:
        if fail_on_attempts is not None and not all(
            isinstance(n, int) and not isinstance(n, bool) for n in fail_on_attempts
        ):
            raise ValueError(f"fail_on_attempts must be a list of integers, got {fail_on_attempts!r}")
        self.fail_on_attempts = list(fail_on_attempts) if fail_on_attempts is not None else None
        self.fail_if_env = fail_if_env
        self.message = message

    def should_fail(self) -> bool:
        """Whether :meth:`run` will raise in the current context."""
        conditions = []
        if self.fail_on_attempts is not None:
            conditions.append(self.context.get("attempt") in self.fail_on_attempts)
        if self.fail_if_env:
            conditions.append(os.environ.get(self.fail_if_env, "").strip().lower() in ("1", "true", "yes", "on"))
        return any(conditions) if conditions else True

    def run(self) -> None:
        if self.should_fail():
            attempt = self.context.get("attempt")
            raise InjectedFailure(f"{self.message}" + (f" (attempt {attempt})" if attempt is not None else ""))
        self.logger.info("Fault injection %s: not failing this time", self.name)
