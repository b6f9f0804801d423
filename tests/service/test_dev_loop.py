"""Reload on save (serve --watch) and the debugger (--debug-port), each through the real CLI and runtime.

The reload test edits a handler in a scratch task root while ``invoke.py
serve --watch`` runs, and the next invocation must return the new value. The
debugger test is a Debug Adapter Protocol client of its own (a socket and JSON
messages, as VS Code speaks it): it attaches to ``invoke.py --debug-port``,
sets a breakpoint in the handler, receives ``stopped``, continues, and the
invocation completes.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from local_dev.reload import Reloader
from local_runtime.api_server import running_api
from local_runtime.config import FunctionConfig
from local_runtime.debugger import DEBUG_DIR
from local_runtime.pool import EnvironmentPool
from tests.conftest import ROOT
from tests.verifying_s3 import free_port

HANDLER = """\
VALUE = {value!r}


def handler(event, context):
    answer = {{"value": VALUE}}
    return answer
"""
BREAK_LINE = 5  # `answer = ...` in HANDLER


def write_handler(root: Path, value: str) -> None:
    (root / "app.py").write_text(HANDLER.format(value=value))


def invoke(url: str) -> Any:
    response = requests.post(f"{url}/2015-03-31/functions/scratch/invocations", data=b"{}", timeout=60)
    assert response.status_code == 200, response.text
    return response.json()


@pytest.fixture
def scratch_root(tmp_path: Path) -> Path:
    root = tmp_path / "task"
    root.mkdir()
    write_handler(root, "one")
    return root


def test_a_saved_handler_is_served_by_the_next_invocation(scratch_root: Path):
    config = FunctionConfig(name="scratch", task_root=scratch_root, handler="app.handler", layers=())
    lines: list[str] = []
    pool = EnvironmentPool(config, log_sink=lambda line: None, max_environments=2)
    with running_api({"scratch": pool}) as api:
        reloader = Reloader(scratch_root, [pool], say=lines.append).start()
        try:
            time.sleep(0.3)  # the watcher is set up
            assert invoke(api.url) == {"value": "one"}
            assert invoke(api.url) == {"value": "one"}  # warm
            write_handler(scratch_root, "two")
            deadline = time.monotonic() + 10
            while not lines and time.monotonic() < deadline:
                time.sleep(0.02)
            assert invoke(api.url) == {"value": "two"}
        finally:
            reloader.stop()
    assert len(lines) == 1, lines
    assert lines[0].startswith("app.py changed: 1 idle environment(s) ended, 0 busy"), lines


def test_a_busy_environment_finishes_on_the_old_code_then_ends(scratch_root: Path):
    (scratch_root / "app.py").write_text(
        "import time\nVALUE = 'old'\n\ndef handler(event, context):\n    time.sleep(1.0)\n    return VALUE\n"
    )
    config = FunctionConfig(name="scratch", task_root=scratch_root, handler="app.handler", layers=())
    pool = EnvironmentPool(config, log_sink=lambda line: None, max_environments=2)
    lines: list[str] = []
    reloader = Reloader(scratch_root, [pool], say=lines.append).start()
    try:
        with pool:
            assert json.loads(pool.invoke(b"{}").payload) == "old"  # cold, then idle
            import threading

            result: list[bytes] = []
            busy = threading.Thread(target=lambda: result.append(pool.invoke(b"{}").payload))
            busy.start()
            time.sleep(0.3)
            write_handler(scratch_root, "new")
            busy.join()
            assert json.loads(result[0]) == "old"  # the running invocation is not cut short
            assert json.loads(pool.invoke(b"{}").payload) == {"value": "new"}
            assert pool.environment_count == 1
    finally:
        reloader.stop()
    assert any("1 busy one(s) end after their invocation" in line for line in lines), lines


def test_serve_watch_through_the_cli_names_the_file(scratch_root: Path):
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "invoke.py",
            "serve",
            "--port",
            str(port),
            "--watch",
            *scratch_function(scratch_root),
            "--function-name",
            "scratch",
        ],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                assert invoke(url) == {"value": "one"}
                break
            except requests.ConnectionError:
                assert time.monotonic() < deadline and process.poll() is None
                time.sleep(0.1)
        write_handler(scratch_root, "two")
        deadline = time.monotonic() + 10
        while invoke(url) != {"value": "two"}:
            assert time.monotonic() < deadline, "the new code was never served"
            time.sleep(0.05)
    finally:
        process.terminate()
        _, err = process.communicate(timeout=30)
    changed = [line for line in err.splitlines() if "changed:" in line]
    assert changed and changed[0].startswith("invoke.py serve: app.py changed:"), err


# -- the debugger ------------------------------------------------------------------------------------


class DapClient:
    """The Debug Adapter Protocol over TCP: Content-Length framed JSON, requests answered by responses."""

    def __init__(self, port: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        self.sock.settimeout(timeout)
        self.buffer = b""
        self.seq = 0
        self.events: list[dict[str, Any]] = []

    def send(self, command: str, **arguments: Any) -> int:
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command, "arguments": arguments}).encode()
        self.sock.sendall(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        return self.seq

    def receive(self) -> dict[str, Any]:
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        header, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        length = int(
            next(line for line in header.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[1]
        )
        while len(self.buffer) < length:
            self._fill()
        message, self.buffer = self.buffer[:length], self.buffer[length:]
        return json.loads(message)

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the debug adapter closed the connection")
        self.buffer += chunk

    def wait(self, kind: str, name: str) -> dict[str, Any]:
        """The next response to ``name`` (type response) or event ``name``, keeping the events seen meanwhile."""
        while True:
            message = self.receive()
            if message["type"] == "event":
                self.events.append(message)
            if kind == "response" and message["type"] == "response" and message["command"] == name:
                assert message["success"], message
                return message
            if kind == "event" and message["type"] == "event" and message["event"] == name:
                return message

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def remote_root(task_root: Path) -> str:
    """Where the debuggee sees the task root: /var/task inside the sandbox, else the path itself."""
    with contextlib.suppress(ImportError):
        from local_runtime import sandbox  # type: ignore[attr-defined]

        config = FunctionConfig(name="scratch", task_root=task_root, handler="app.handler")
        if sandbox.enabled(config):
            return "/var/task"
    return str(task_root)


def scratch_function(root: Path) -> list[str]:
    """invoke.py's options for the scratch task root's ``app.handler``, with no template or .env."""
    return ["--template", "", "--task-root", str(root), "--handler", "app.handler", "--env-file", ""]


@contextlib.contextmanager
def one_shot(args: list[str], root: Path) -> Iterator[subprocess.Popen[str]]:
    process = subprocess.Popen(
        [sys.executable, "invoke.py", *scratch_function(root), *args],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


needs_debugpy = pytest.mark.skipif(
    not (DEBUG_DIR / "debugpy").is_dir(), reason=f"debugpy not installed in {DEBUG_DIR}: run make lambda-python"
)


@needs_debugpy
def test_a_dap_client_stops_at_a_breakpoint_in_the_handler_and_the_invocation_completes(scratch_root: Path):
    port = free_port()
    # A 1 s timeout: the breakpoint holds the function far longer, and the timeout must not fire meanwhile.
    with one_shot(["--debug-port", str(port), "--debug-wait", "--timeout", "1"], scratch_root) as process:
        client = DapClient(port)
        try:
            client.send("initialize", clientID="test", adapterID="python", linesStartAt1=True, pathFormat="path")
            client.wait("response", "initialize")
            mapping = [{"localRoot": str(scratch_root), "remoteRoot": remote_root(scratch_root)}]
            client.send("attach", justMyCode=False, pathMappings=mapping)
            client.wait("event", "initialized")
            client.send(
                "setBreakpoints", source={"path": str(scratch_root / "app.py")}, breakpoints=[{"line": BREAK_LINE}]
            )
            breakpoints = client.wait("response", "setBreakpoints")["body"]["breakpoints"]
            assert breakpoints and breakpoints[0]["verified"], breakpoints
            client.send("configurationDone")
            client.wait("response", "configurationDone")
            stopped = client.wait("event", "stopped")
            assert stopped["body"]["reason"] == "breakpoint", stopped
            thread = stopped["body"]["threadId"]
            client.send("stackTrace", threadId=thread)
            frame = client.wait("response", "stackTrace")["body"]["stackFrames"][0]
            assert frame["line"] == BREAK_LINE and frame["name"] == "handler", frame
            time.sleep(1.5)  # past the 1 s timeout, held at the breakpoint
            client.send("continue", threadId=thread)
            # The handler may return and the one-shot process exit before debugpy's answer leaves it:
            # a closed connection here is the debuggee ending, and the invocation's output below decides.
            with contextlib.suppress(ConnectionError):
                client.wait("response", "continue")
            out, err = process.communicate(timeout=60)
        finally:
            client.close()
    assert process.returncode == 0, err
    assert json.loads(out) == {"value": "one"}
    assert "debugpy listens on 127.0.0.1:" in err


@needs_debugpy
def test_a_debug_port_in_use_is_one_line_and_exit_status_2(scratch_root: Path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        for args in (["--debug-port", str(port)], ["serve", "--port", "0", "--debug-port", str(port)]):
            if args[0] == "serve":
                command = [sys.executable, "invoke.py", *args, *scratch_function(scratch_root)]
            else:
                command = [sys.executable, "invoke.py", *scratch_function(scratch_root), *args]
            done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
            assert done.returncode == 2, done.stderr
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and f"--debug-port {port}" in lines[0] and "in use" in lines[0], done.stderr


def test_debug_wait_without_a_port_is_refused(scratch_root: Path):
    done = subprocess.run(
        [sys.executable, "invoke.py", *scratch_function(scratch_root), "--debug-wait"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ},
    )
    assert done.returncode == 2 and "--debug-wait needs --debug-port" in done.stderr
