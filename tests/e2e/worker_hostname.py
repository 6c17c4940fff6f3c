"""``[core] hostname_callable`` of the end-to-end Celery workers: each worker is a "machine" of its own.

All workers run on this one host; each gets its name from ``PPF_E2E_HOSTNAME`` in its environment, so that
a task instance's ``hostname`` (and the checkpoint's record of each attempt) says which worker ran a try.
"""

from __future__ import annotations

import os
import socket

__all__ = ["HOSTNAME_VAR", "hostname"]

#: The variable a worker's environment names it with.
HOSTNAME_VAR = "PPF_E2E_HOSTNAME"


def hostname() -> str:
    """This worker's name (the machine's name when unset)."""
    return os.environ.get(HOSTNAME_VAR) or socket.getfqdn()
