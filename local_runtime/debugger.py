"""An execution environment under a debugger: debugpy, on 127.0.0.1 only.

``invoke.py --debug-port N`` (and ``serve --debug-port N``) starts the runtime
as ``python -m debugpy --listen 127.0.0.1:N [--wait-for-client] -m awslambdaric
<handler>``: any Debug Adapter Protocol client (VS Code's "attach", PyCharm,
nvim-dap) connects to that port. debugpy is installed for Lambda's Python into
``.lambda313/debug`` (``make lambda-python``, requirements-lambda-debug.txt),
which joins the environment's import path only in a debug run, as one more
layer: it is never in the deployment zip, and a normal run cannot import it.

As with ``sam local invoke --debug-port``, the function's timeout does not
fire while a debugger holds the function: the clock stops while a client is
connected, and, with ``--debug-wait``, while the runtime waits for the first
client before anything of the function runs (the init timeout included).
Whether a client is connected is read from the kernel's socket table
(an established connection to the port), so it needs nothing from debugpy.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass

import psutil

from local_runtime.lambda_python import HOME

DEBUG_DIR = HOME / "debug"  # debugpy for Lambda's Python (make lambda-python)
HOST = "127.0.0.1"
_CHECK_EVERY_S = 0.2


class DebuggerError(RuntimeError):
    """The debugger cannot be set up as asked (one line, exit status 2)."""


@dataclass(frozen=True)
class DebugOptions:
    port: int
    wait: bool = False

    def launcher(self) -> list[str]:
        """What goes between the interpreter and ``-m awslambdaric``."""
        return ["-m", "debugpy", "--listen", f"{HOST}:{self.port}", *(["--wait-for-client"] if self.wait else [])]


def check_ready(options: DebugOptions) -> None:
    """debugpy installed and the port free, or DebuggerError saying which."""
    if not (DEBUG_DIR / "debugpy" / "__main__.py").is_file():
        raise DebuggerError(f"debugpy is not installed for Lambda's Python in {DEBUG_DIR}: run make lambda-python")
    if not 0 < options.port < 65536:
        raise DebuggerError(f"--debug-port must be 1-65535, got {options.port}")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((HOST, options.port))
        except OSError as exc:
            raise DebuggerError(
                f"--debug-port {options.port}: {HOST}:{options.port} is in use ({exc.strerror}); "
                "another debug session or program holds it: pick another port"
            ) from None


def client_attached(port: int) -> bool:
    """True while some client holds an established TCP connection to the debug port."""
    try:
        connections = psutil.net_connections(kind="tcp")
    except (psutil.Error, OSError):
        return False
    return any(
        conn.status == psutil.CONN_ESTABLISHED and conn.laddr and conn.laddr.port == port for conn in connections
    )


class DebugClock:
    """How long the function's clock has stood still for the debugger (added to its deadlines)."""

    def __init__(self, options: DebugOptions) -> None:
        self.options = options
        self.held_s = 0.0
        self._seen_client = False
        self._last = time.monotonic()
        self._paused = options.wait
        self._checked = 0.0

    def restart(self) -> None:
        """A new process: it waits for a client again when --debug-wait asks."""
        self.held_s = 0.0
        self._seen_client = False
        self._paused = self.options.wait
        self._last = time.monotonic()

    def tick(self) -> float:
        """Account for the time since the last tick; the seconds the deadline moves in all."""
        now = time.monotonic()
        if now - self._checked >= _CHECK_EVERY_S:
            self._checked = now
            attached = client_attached(self.options.port)
            self._seen_client = self._seen_client or attached
            self._paused = attached or (self.options.wait and not self._seen_client)
        if self._paused:
            self.held_s += now - self._last
        self._last = now
        return self.held_s
