"""Drive Debian's headless Chromium over the DevTools protocol (no Node, no downloaded browser).

Started with the flags this offline machine needs (no background networking, no component updates, a new
empty profile). Tests call ``require(CHROMIUM)`` (:mod:`tests.helpers.system_packages`) first, so that a
machine without Chromium skips them.

Chromium never outlives its caller: it runs in a process group of its own (its renderers and zygotes join
it), and that whole group is killed by :meth:`HeadlessChromium.close` (call it in a ``finally``), at
interpreter exit (``atexit``) for browsers left open, and, when the caller dies without running either (a
``timeout`` sending SIGTERM, or SIGKILL), by the kernel: the browser is started with a parent-death signal,
and its helpers exit when the browser goes.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from websockets.sync.client import ClientConnection, connect

from tests.helpers.system_packages import chromium_binary

CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--window-size=1440,1000",
]


#: ``prctl(2)`` option: the signal the kernel sends this process when its parent dies.
_PR_SET_PDEATHSIG = 1
#: Browsers not closed yet (closed at interpreter exit).
_OPEN: set[HeadlessChromium] = set()


def _die_with_parent() -> None:
    """In the child before exec: get SIGKILL when the process that started the browser dies."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@atexit.register
def _close_all() -> None:
    for browser in list(_OPEN):
        browser.close()


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class HeadlessChromium:
    """One headless Chromium with one page, controlled through CDP."""

    def __init__(self) -> None:
        binary = chromium_binary()
        if binary is None:
            raise RuntimeError("chromium is not installed (apt-get install chromium; .ci/run does it)")
        self.profile = Path(tempfile.mkdtemp(prefix="ppf-chromium-"))
        self.port = _free_port()
        self.process = subprocess.Popen(
            [binary, *CHROMIUM_FLAGS, f"--remote-debugging-port={self.port}", f"--user-data-dir={self.profile}"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # a process group of its own: close() kills all of it
            preexec_fn=_die_with_parent,
        )
        self.pgid = self.process.pid  # the session leader's pid is the group id
        _OPEN.add(self)
        self._id = 0
        self.ws = self._connect()
        self.cdp("Page.enable")
        self.cdp("Network.enable")

    def _connect(self) -> ClientConnection:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=2) as resp:
                    targets = json.load(resp)
                page = next(t for t in targets if t["type"] == "page")
                connection = connect(page["webSocketDebuggerUrl"], max_size=64_000_000, legacy=True)
                assert isinstance(connection, ClientConnection)
                return connection
            except (OSError, StopIteration, ValueError):
                time.sleep(0.2)
        self.close()
        raise RuntimeError("headless Chromium did not open its DevTools port within 30 s")

    def cdp(self, method: str, **params: Any) -> dict[str, Any]:
        """Send one DevTools command and return its result."""
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv(timeout=60))
            if message.get("id") == self._id:
                if "error" in message:
                    raise RuntimeError(f"{method} failed: {message['error']}")
                return dict(message.get("result", {}))

    def set_cookie(self, url: str, name: str, value: str) -> None:
        self.cdp("Network.setCookie", name=name, value=value, url=url, path="/")

    def navigate(self, url: str) -> None:
        self.cdp("Page.navigate", url=url)

    def evaluate(self, expression: str) -> Any:
        """Evaluate JavaScript in the page and return its (JSON-able) value."""
        result = self.cdp("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript error: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def wait_for(self, expression: str, timeout: float = 60) -> Any:
        """Poll a JavaScript expression until it is truthy; return its value."""
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            try:
                last = self.evaluate(expression)
            except RuntimeError:
                last = None
            if last:
                return last
            time.sleep(0.5)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for: {expression}")

    def screenshot(self, path: Path) -> Path:
        data = self.cdp("Page.captureScreenshot", format="png", captureBeyondViewport=True)["data"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        """Stop the browser and every process of its group (SIGTERM, then SIGKILL); idempotent."""
        _OPEN.discard(self)
        if hasattr(self, "ws"):
            with contextlib.suppress(Exception):  # a broken connection must not keep the browser alive
                self.ws.close()
        self._kill_group()
        shutil.rmtree(self.profile, ignore_errors=True)

    def _kill_group(self) -> None:
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(self.pgid, sig)
            except ProcessLookupError:
                break
            if self._group_gone(timeout=10.0):
                break
        self.process.wait(10)

    def _group_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None and not _group_alive(self.pgid):
                return True
            time.sleep(0.1)
        return False
