"""One execution environment: a child interpreter that imports the handler once and is reused.

The parent side plays the Lambda service: it starts the environment (cold
start, timed as Init Duration), hands it one invocation at a time, enforces the
deadline by killing the process (the next invocation is cold again, as on
Lambda), measures peak memory from outside, and writes the platform's
START / END / REPORT lines around the handler's own log output.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_runtime import logs
from local_runtime.config import INIT_TIMEOUT_S, FunctionConfig, new_log_stream_name, process_environment

RUNNER_ROOT = Path(__file__).resolve().parent.parent
MAX_RESPONSE_BYTES = 6_291_556  # the synchronous response limit Lambda enforces
LogSink = Callable[[str], None]


def stderr_sink(line: str) -> None:
    """Default log destination: the runner's stderr, where CloudWatch would be."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def peak_rss_mb(pid: int) -> int | None:
    """The process's peak resident set size (VmHWM) in MB, read from outside the process.

    Falls back to the current RSS via psutil where /proc is missing (macOS).
    """
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return max(1, round(int(line.split()[1]) / 1024))
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil

        return max(1, round(psutil.Process(pid).memory_info().rss / 1024 / 1024))
    except Exception:  # noqa: BLE001 - the process may be gone; the caller keeps its last figure
        return None


@dataclass
class Invocation:
    """What the service knows after one invocation: the response and the REPORT figures."""

    request_id: str
    payload: bytes  # the response body: handler result or Lambda's error JSON
    report: logs.Report
    log: str  # this invocation's log, platform lines included (LogType=Tail shows its end)
    error_type: str | None = None
    environment_id: str = ""

    @property
    def function_error(self) -> bool:
        return self.error_type is not None

    @property
    def cold_start(self) -> bool:
        return self.report.init_duration_ms is not None


@dataclass
class _LogCapture:
    lines: list[str] = field(default_factory=list)
    flushed: threading.Event = field(default_factory=threading.Event)


class ExecutionEnvironment:
    """A single environment; not thread-safe by design: Lambda runs one invocation at a time in it."""

    def __init__(self, config: FunctionConfig, log_sink: LogSink = stderr_sink) -> None:
        self.config = config
        self.id = secrets.token_hex(4)
        self.log_stream_name = new_log_stream_name()
        self._sink = log_sink
        self._marker = f"__lambda_local_runner_end_of_logs_{secrets.token_hex(8)}__"
        self._process: subprocess.Popen[bytes] | None = None
        self._responses: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._requests: Any = None
        self._capture = _LogCapture()
        self._capture_lock = threading.Lock()
        self._peak_mb = 0
        self.tmp_dir: str | None = None
        self.invocations = 0

    # -- lifecycle ---------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _start(self) -> tuple[float, dict[str, Any] | None]:
        """Spawn the runtime and wait for its import to finish: returns (init ms, init error)."""
        if self.config.tmp_per_environment:
            self.tmp_dir = tempfile.mkdtemp(prefix=f"lambda-env-{self.id}-")
        env = process_environment(self.config, self.log_stream_name, self.tmp_dir)
        if self.config.task_root != RUNNER_ROOT:  # the runtime itself must stay importable
            env["PYTHONPATH"] = os.pathsep.join(p for p in (str(RUNNER_ROOT), env.get("PYTHONPATH", "")) if p)
        request_read, request_write = os.pipe()
        response_read, response_write = os.pipe()
        self._emit(logs.init_start_line(self.config.log_format, f"python:{self.config.python_version}.local"))
        started = time.perf_counter()
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "local_runtime.worker", str(request_read), str(response_write), self._marker],
                cwd=self.config.task_root,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                pass_fds=(request_read, response_write),
                start_new_session=True,  # its own process group: a kill takes the handler's children too
            )
        finally:
            os.close(request_read)
            os.close(response_write)
        self._requests = os.fdopen(request_write, "wb", buffering=0)
        threading.Thread(target=self._read_logs, daemon=True, name=f"logs-{self.id}").start()
        threading.Thread(target=self._read_responses, args=(response_read,), daemon=True).start()
        # An on-demand init that overruns Lambda's 10 s limit is not fatal there:
        # init runs again inside the first invocation, under the function timeout.
        # Here the first attempt simply goes on for that long (on a loaded machine
        # fifty imports of aioboto3 at once can take more than 10 s).
        init_budget_s = INIT_TIMEOUT_S + self.config.timeout_s
        message = self._next_message(time.monotonic() + init_budget_s)
        init_ms = (time.perf_counter() - started) * 1000
        if message is None:
            self._kill()
            self._await_log_flush()
            return init_ms, _timeout_error("", init_budget_s)
        self._await_log_flush()
        if message["type"] == "exit":
            return init_ms, self._exit_error("")
        return init_ms, message.get("error")  # None when ready

    def shutdown(self) -> None:
        """End the environment: EOF lets the runtime exit; a kill follows if it lingers."""
        if self._requests is not None:
            with contextlib.suppress(OSError):
                self._requests.close()
        if self._process is not None:
            try:
                self._process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                self._kill()
        if self.tmp_dir:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def _kill(self) -> None:
        if self._process is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait()

    # -- plumbing ------------------------------------------------------------

    def _emit(self, line: str) -> None:
        # The runtime joins a multi-line error into one log event with "\r"; show it as lines.
        line = line.replace("\r", "\n")
        with self._capture_lock:
            self._capture.lines.append(line)
        self._sink(line)

    def _read_logs(self) -> None:
        """Forward the runtime's stdout/stderr line by line; the marker closes one message's logs."""
        assert self._process is not None and self._process.stdout is not None
        marker = self._marker.encode("ascii")
        for raw in self._process.stdout:
            text = raw.rstrip(b"\n")
            if text.endswith(marker):
                text = text[: -len(marker)]
                if text:
                    self._emit(text.decode("utf-8", "replace"))
                with self._capture_lock:
                    self._capture.flushed.set()
                continue
            self._emit(text.decode("utf-8", "replace"))
        with self._capture_lock:
            self._capture.flushed.set()

    def _read_responses(self, fd: int) -> None:
        with os.fdopen(fd, "rb") as responses:
            for line in responses:
                self._responses.put(json.loads(line))
        self._responses.put(None)

    def _next_message(self, deadline: float) -> dict[str, Any] | None:
        """The runtime's next message; ``{"type": "exit"}`` if it died, None at the deadline."""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            self._sample_memory()  # sampled while it runs: a crash leaves no /proc entry to read after
            try:
                message = self._responses.get(timeout=min(remaining, 0.05))
            except queue.Empty:
                continue
            if message is None:  # the response pipe closed: the process is exiting
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self._process.wait(timeout=2)  # type: ignore[union-attr]
                return {"type": "exit"}
            return message

    def _await_log_flush(self) -> None:
        self._capture.flushed.wait(timeout=2)

    def _new_capture(self) -> list[str]:
        """Start a new log capture and return the previous one's lines."""
        with self._capture_lock:
            previous = self._capture.lines
            self._capture = _LogCapture()
        return previous

    def _sample_memory(self) -> int:
        if self._process is not None:
            self._peak_mb = max(self._peak_mb, peak_rss_mb(self._process.pid) or 0)
        return self._peak_mb

    def _exit_error(self, request_id: str) -> dict[str, Any]:
        """Runtime.ExitError, phrased as the service phrases Go's exit status."""
        assert self._process is not None
        try:
            code = self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:  # closed its pipes but lingers: end it as the service would
            self._kill()
            code = self._process.returncode
        status = (
            f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}" if code < 0 else f"exit status {code}"
        )
        message = f"RequestId: {request_id} Error: Runtime exited with error: {status}"
        return {"errorType": "Runtime.ExitError", "errorMessage": message}

    # -- invocation ----------------------------------------------------------

    def invoke(
        self,
        payload: bytes | str = b"{}",
        *,
        request_id: str | None = None,
        client_context: Any = None,
        identity: Any = None,
    ) -> Invocation:
        """Run one invocation, starting the environment first if this is its cold start."""
        request_id = request_id or str(uuid.uuid4())
        fmt = self.config.log_format
        init_ms: float | None = None
        if self._process is None:
            init_ms, init_error = self._start()
            if init_error is not None:
                return self._finish_failed_init(request_id, init_ms, init_error)
        elif not self.alive:
            raise RuntimeError("this execution environment has ended; start a new one")
        self._emit(logs.start_line(fmt, request_id))
        started = time.perf_counter()
        deadline = time.monotonic() + self.config.timeout_s
        self._capture.flushed.clear()
        request = {
            "request_id": request_id,
            "payload": payload.decode("utf-8") if isinstance(payload, bytes) else payload,
            "deadline_ms": int(time.time() * 1000 + self.config.timeout_s * 1000),
            "invoked_function_arn": self.config.arn,
            "client_context": client_context,
            "identity": identity,
            "trace_id": _trace_id(),
        }
        try:
            self._requests.write(json.dumps(request).encode("utf-8") + b"\n")
            message = self._next_message(deadline)
        except BrokenPipeError:  # it died between invocations: report it as the crash it was
            message = {"type": "exit"}
        duration_ms = (time.perf_counter() - started) * 1000
        self.invocations += 1
        memory = self._sample_memory()
        status, error, body = "success", None, b""
        platform_failure = message is None or message["type"] == "exit"
        if message is None:
            self._kill()
            self._await_log_flush()  # what it printed before the kill belongs before the timeout line
            error = _timeout_error(request_id, self.config.timeout_s)
            status = "timeout"
            self._emit(f"{logs.iso_now()} {request_id} Task timed out after {self.config.timeout_s:.2f} seconds")
        elif message["type"] == "exit":
            self._await_log_flush()
            error = self._exit_error(request_id)
            status = "error"
            self._emit(f"{error['errorMessage']}\nRuntime.ExitError")
        else:
            self._await_log_flush()
            if message["type"] == "result":
                body = message["payload"].encode("utf-8")
                if len(body) > MAX_RESPONSE_BYTES:
                    error = {
                        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
                        "errorType": "Function.ResponseSizeTooLarge",
                    }
            else:
                error = message["error"]
            status = "success" if error is None else "error"
        if error is not None:
            body = json.dumps(error).encode("utf-8")
        report = logs.Report(
            request_id=request_id,
            duration_ms=duration_ms,
            memory_size_mb=self.config.memory_mb,
            max_memory_used_mb=memory,
            init_duration_ms=init_ms,
            status=status,
            error_type=error["errorType"] if error else None,
            platform_failure=platform_failure,
        )
        return self._finish(request_id, body, report)

    def _finish(self, request_id: str, body: bytes, report: logs.Report) -> Invocation:
        end = logs.end_line(self.config.log_format, request_id)
        if end:
            self._emit(end)
        self._emit(logs.report_line(self.config.log_format, report))
        lines = self._new_capture()
        return Invocation(
            request_id=request_id,
            payload=body,
            report=report,
            log="\n".join(lines) + "\n",
            error_type=report.error_type,
            environment_id=self.id,
        )

    def _finish_failed_init(self, request_id: str, init_ms: float, error: dict[str, Any]) -> Invocation:
        """Init failed: Lambda answers the invocation with the init error and discards the environment."""
        memory = self._sample_memory()
        self._kill()
        self._emit(logs.start_line(self.config.log_format, request_id))
        report = logs.Report(
            request_id=request_id,
            duration_ms=0.0,
            memory_size_mb=self.config.memory_mb,
            max_memory_used_mb=memory,
            init_duration_ms=init_ms,
            status="error" if error["errorType"] != "Sandbox.Timedout" else "timeout",
            error_type=error["errorType"],
            platform_failure=True,
        )
        return self._finish(request_id, json.dumps(error).encode("utf-8"), report)


def _timeout_error(request_id: str, timeout_s: float) -> dict[str, Any]:
    return {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {request_id} Error: Task timed out after {timeout_s:.2f} seconds",
    }


def _trace_id() -> str:
    """An X-Ray trace header of the shape Lambda puts in ``_X_AMZN_TRACE_ID``."""
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"
