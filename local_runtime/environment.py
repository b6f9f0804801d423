"""One execution environment: its lifecycle as the Lambda service runs it.

The service side only. Inside the environment runs what Lambda runs: AWS's
runtime client (``python3.13 -m awslambdaric <handler>``) or, for
``provided.al2023``, the task root's executable ``bootstrap``. They talk to this
environment's own Runtime API (:mod:`local_runtime.runtime_api`); results,
error payloads, log records and the context object are theirs.

What the service does here, as Lambda does it:

* **Init**: spawn the runtime with Lambda's reserved variables; init ends at
  its first ``GET /next`` (timed as Init Duration). At most as many inits run
  at once as there are cores: the others wait *before* their init clock starts,
  so a local CPU shortage does not look like a slow init. Init is limited to
  10 s; past that the environment is reset and init runs again inside the
  first invocation, under the function timeout (a "suppressed init").
* **Invoke**: hand the event to ``/next`` with its deadline; the invocation
  ends when the runtime asks for the next one. Past the function timeout the
  process group is killed (``Sandbox.Timedout``); a runtime that dies is
  ``Runtime.ExitError``. Either way the next invocation is a cold start.
* **Measure and log**: peak memory from outside the process, START / END /
  REPORT around the function's own output.
"""

from __future__ import annotations

import collections
import contextlib
import enum
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from local_runtime import logs, sandbox
from local_runtime.config import FunctionConfig, new_log_stream_name, process_environment
from local_runtime.debugger import DebugClock
from local_runtime.lambda_python import check_runtime_installed, find_interpreter
from local_runtime.memory_watch import MemoryWatch, make_cgroup, remove_cgroup
from local_runtime.runtime_api import (
    ANSWERS,
    MAX_RESPONSE_BYTES,
    EventKind,
    InvocationRequest,
    RuntimeApi,
    RuntimeEvent,
)

LogSink = Callable[[str], None]
# Inits that may run at once: one per core. Shared by every pool in the process.
INIT_SLOTS = threading.BoundedSemaphore(os.cpu_count() or 1)
_POLL_S = 0.05  # how often memory is sampled and the process checked while waiting


def stderr_sink(line: str) -> None:
    """Default log destination: the runner's stderr, where CloudWatch would be."""
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


@dataclass
class Invocation:
    """What the service knows after one invocation: the response and the REPORT figures."""

    request_id: str
    payload: bytes  # the response body: the runtime's result or error JSON, or the platform's error
    report: logs.Report
    log: str  # the end of this invocation's log (at least its last 4 KB), platform lines included: LogType=Tail
    error_type: str | None = None
    environment_id: str = ""

    @property
    def function_error(self) -> bool:
        return self.error_type is not None

    @property
    def cold_start(self) -> bool:
        return self.report.init_duration_ms is not None or self.report.suppressed_init


@dataclass(frozen=True)
class ErrorPayload:
    """An error an invocation is answered with: Lambda's ``{"errorType", "errorMessage"}`` object.

    ``posted`` is the runtime's own error object (an init error), answered as
    the runtime posted it, extra keys and all.
    """

    error_type: str
    message: str
    posted: dict[str, Any] | None = None

    @classmethod
    def from_runtime(cls, body: bytes, header: str | None) -> ErrorPayload:
        """An error the runtime posted; Lambda builds one from the header when the body is no JSON object."""
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if not isinstance(parsed, dict):
            return cls(header or "Runtime.Unknown", body.decode("utf-8", "replace"))
        error_type, message = parsed.get("errorType"), parsed.get("errorMessage")
        return cls(
            error_type if isinstance(error_type, str) and error_type else "Runtime.Unknown",
            message if isinstance(message, str) else "",
            parsed,
        )

    def json(self) -> bytes:
        error = self.posted if self.posted is not None else {"errorType": self.error_type, "errorMessage": self.message}
        return json.dumps(error).encode("utf-8")


class InitStatus(enum.Enum):
    READY = "ready"  # the runtime asked for its first event
    TIMEOUT = "timeout"  # past the init limit
    FAILED = "failed"  # the runtime reported an init error, exited, or could not start


@dataclass(frozen=True)
class InitOutcome:
    status: InitStatus
    error: ErrorPayload | None = None  # FAILED: what the invocation is answered with

    @classmethod
    def failed(cls, error: ErrorPayload) -> InitOutcome:
        return cls(InitStatus.FAILED, error)


@dataclass(frozen=True)
class _Attempt:
    """One invocation in an environment, from its START: what every way it ends reports."""

    request_id: str
    started: float  # time.perf_counter() at START: Duration
    deadline: float  # time.monotonic() at which it times out (a debugger's pauses extend it)
    init_ms: float | None  # Init Duration, on a cold start whose init finished in time
    suppressed: bool  # init timed out and runs again inside this invocation


class ExecutionEnvironment:
    """A single environment; not thread-safe by design: Lambda runs one invocation at a time in it."""

    def __init__(self, config: FunctionConfig, log_sink: LogSink = stderr_sink) -> None:
        self.config = config
        self.id = secrets.token_hex(4)
        self.log_stream_name = new_log_stream_name()
        self._sink = log_sink
        self._process: subprocess.Popen[bytes] | None = None
        self._api: RuntimeApi | None = None
        self._logs: logs.FunctionLogReader | None = None
        # The end of the current invocation's log, for LogType=Tail; the whole log only streams to the sink.
        self._tail: collections.deque[str] = collections.deque()
        self._tail_chars = 0
        self._lines_lock = threading.Lock()
        self._peak_mb = 0
        self._reset_by_service = False  # killed on purpose: not worth a log line
        self.tmp_dir: str | None = None
        self.invocations = 0
        self._debug_clock = DebugClock(config.debug) if config.debug else None  # the timeout stops for a debugger
        self.sandboxed = sandbox.enabled(config)  # bubblewrap's namespaces (local_runtime/sandbox.py)
        self._watch: MemoryWatch | None = None  # MemorySize, Max Memory Used, the freeze
        self._cgroup: Path | None = None

    # -- lifecycle ---------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def _command(self) -> list[str]:
        if self.config.runtime == "provided.al2023":
            return [str(Path(self.config.task_root) / "bootstrap")]
        check_runtime_installed()
        debug = self.config.debug.launcher() if self.config.debug else []
        return [find_interpreter(), *debug, "-m", "awslambdaric", self.config.handler]

    def _spawn(self) -> ErrorPayload | None:
        """Start the runtime against a fresh Runtime API; an error payload if it cannot start."""
        self._close_api()
        if self.tmp_dir is None and self.config.tmp_per_environment and not self.sandboxed:
            self.tmp_dir = tempfile.mkdtemp(prefix=f"lambda-env-{self.id}-")  # kept across resets, as /tmp is
        self._api = RuntimeApi(only_its_process=True)
        env = process_environment(self.config, self.log_stream_name, self.tmp_dir)
        env["AWS_LAMBDA_RUNTIME_API"] = self._api.start()
        output_read, output_write = os.pipe()
        telemetry_read, telemetry_write = os.pipe()
        env["_LAMBDA_TELEMETRY_LOG_FD"] = str(telemetry_write)
        self._reset_by_service = False
        if self._debug_clock is not None:
            self._debug_clock.restart()
        try:
            if self._cgroup is None:
                self._cgroup = make_cgroup(self.id, self.config.memory_mb, self.config.ephemeral_storage_mb)
            procs = str(self._cgroup / "cgroup.procs") if self._cgroup else None
            launch = sandbox.launch(self.config, self._command(), env, self.sandboxed, procs)
            self._process = subprocess.Popen(
                launch.argv,
                cwd=launch.cwd,
                env=launch.env,
                stdin=subprocess.DEVNULL,
                stdout=output_write,
                stderr=output_write,
                pass_fds=(telemetry_write,),
                start_new_session=True,  # its own process group: a kill takes the handler's children too
            )
        except OSError as exc:
            for fd in (output_read, telemetry_read):
                os.close(fd)
            return ErrorPayload("Runtime.InvalidEntrypoint", _entrypoint_message(exc))
        finally:
            os.close(output_write)
            os.close(telemetry_write)
        self._api.set_process(self._process.pid)
        self._logs = logs.FunctionLogReader(output_read, telemetry_read, self._emit, self.id)
        self._watch = MemoryWatch(self._process.pid, self.config.memory_mb, self._cgroup)
        return None

    def _init(self, deadline: float) -> InitOutcome:
        """Spawn and wait for the first ``/next``: ready, timed out, or failed with the error to answer."""
        error = self._spawn()
        if error is not None:
            return InitOutcome.failed(error)
        while True:
            event = self._next_event(deadline)
            if event is None:
                return InitOutcome(InitStatus.TIMEOUT)
            if event.kind is EventKind.NEXT:
                return InitOutcome(InitStatus.READY)
            if event.kind is EventKind.INIT_ERROR:
                self._drain_logs()
                return InitOutcome.failed(ErrorPayload.from_runtime(event.body, event.error_type))
            if event.kind is EventKind.EXIT:
                self._drain_logs()
                return InitOutcome.failed(self._exit_error(""))
            self._note_rejected(event)

    def shutdown(self) -> None:
        """End the environment. With no extensions Lambda's shutdown is an immediate SIGKILL."""
        if self._process is not None and self._process.poll() is not None and not self._reset_by_service:
            self._emit(
                f"Runtime exited between invocations ({_exit_status(self._returncode(self._process.returncode))}); "
                "the next invocation starts a new execution environment"
            )
        self._kill()
        self._close_api()
        if self._cgroup is not None:
            remove_cgroup(self._cgroup)
            self._cgroup = None
        if self.tmp_dir:
            shutil.rmtree(self.tmp_dir, ignore_errors=True)

    def _kill(self) -> None:
        if self._process is None:
            return
        self._reset_by_service = True
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._process.pid, signal.SIGKILL)  # stopped (frozen) processes die of SIGKILL too
        self._process.wait()
        if self._watch is not None:
            self._watch.close()
        if self._logs is not None:
            self._logs.wait_closed(2)

    def _close_api(self) -> None:
        if self._api is not None:
            self._api.close()
            self._api = None

    # -- plumbing ------------------------------------------------------------

    def _emit(self, line: str) -> None:
        kept = line if len(line) <= logs.TAIL_BYTES else line[-logs.TAIL_BYTES :]
        with self._lines_lock:
            self._tail.append(kept)
            self._tail_chars += len(kept) + 1
            # A character is at least a byte: lines holding TAIL_BYTES characters hold the last TAIL_BYTES bytes.
            while self._tail_chars - len(self._tail[0]) - 1 >= logs.TAIL_BYTES:
                self._tail_chars -= len(self._tail.popleft()) + 1
        self._sink(line)

    def _drain_logs(self) -> None:
        if self._logs is not None:
            self._logs.drain()

    def _take_lines(self) -> list[str]:
        with self._lines_lock:
            lines, self._tail, self._tail_chars = list(self._tail), collections.deque(), 0
        return lines

    def _sample_memory(self) -> int:
        """Max Memory Used: every process of the environment (the watch), MemorySize after an OOM kill."""
        if self._watch is not None:
            self._watch.sample(None)
            if self._watch.oom_killed:
                return self.config.memory_mb
            self._peak_mb = max(self._peak_mb, self._watch.peak_mb)
        return self._peak_mb

    def _returncode(self, code: int) -> int:
        return sandbox.exit_code(code, self.sandboxed)

    def _next_event(self, deadline: float) -> RuntimeEvent | None:
        """The runtime's next move; ``exit`` once the process is gone, None at the deadline."""
        # Held here: a shutdown from another thread (server stopping) drops self._api.
        api, process = self._api, self._process
        assert api is not None and process is not None
        while True:
            held = self._debug_clock.tick() if self._debug_clock is not None else 0.0
            remaining = deadline + held - time.monotonic()
            if remaining <= 0:
                return None
            self._sample_memory()  # sampled while it runs: a crash leaves no /proc entry to read after
            try:
                return api.events.get(timeout=min(remaining, _POLL_S))
            except queue.Empty:
                pass
            if process.poll() is not None:
                try:  # anything it posted before exiting is already queued
                    return api.events.get_nowait()
                except queue.Empty:
                    return RuntimeEvent(EventKind.EXIT)

    def _note_rejected(self, event: RuntimeEvent) -> None:
        """A call the Runtime API refused: one line in the log, the invocation goes on."""
        self._emit(f"Runtime API rejected a call from the runtime: {event.detail}")

    def _exit_error(self, request_id: str) -> ErrorPayload:
        """Runtime.ExitError, phrased as the service phrases Go's exit status."""
        assert self._process is not None
        try:
            code = self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:  # closed its pipes but lingers: end it as the service would
            self._kill()
            code = self._process.returncode
        code = self._returncode(code)
        if self._watch is not None and self._watch.oom_killed:  # as Lambda: the kernel's kill at MemorySize
            self._reset_by_service = True
            message = f"RequestId: {request_id} Error: Runtime exited with error: signal: killed"
            return ErrorPayload("Runtime.OutOfMemory", message)
        message = f"RequestId: {request_id} Error: Runtime exited with error: {_exit_status(code)}"
        if code == 0:
            message = f"RequestId: {request_id} Error: Runtime exited without providing a reason"
        self._reset_by_service = True
        return ErrorPayload("Runtime.ExitError", message)

    # -- invocation ----------------------------------------------------------

    def invoke(
        self,
        payload: bytes | str = b"{}",
        *,
        request_id: str | None = None,
        client_context: Any = None,
        identity: Any = None,
        tenant_id: str | None = None,
    ) -> Invocation:
        """Run one invocation, starting the environment first if this is its cold start."""
        request_id = request_id or str(uuid.uuid4())
        init_ms: float | None = None
        suppressed = False
        if self._process is None:
            outcome, init_ms = self._cold_init()
            if outcome.error is not None:
                return self._finish_failed_init(request_id, init_ms, outcome.error)
            if outcome.status is InitStatus.TIMEOUT:
                self._kill()
                self._drain_logs()
                self._emit(logs.init_report_line(self.config.log_format, init_ms, "timeout"))
                init_ms, suppressed = None, True
        elif not self.alive:
            raise RuntimeError("this execution environment has ended; start a new one")
        attempt = self._start(request_id, init_ms, suppressed)
        request = InvocationRequest(
            request_id=request_id,
            payload=payload.encode("utf-8") if isinstance(payload, str) else payload,
            deadline_ms=int(time.time() * 1000 + self.config.timeout_s * 1000),
            function_arn=self.config.arn,
            trace_id=_trace_id(),
            client_context=client_context,
            identity=identity,
            tenant_id=tenant_id,
        )
        if suppressed:  # init again, inside this invocation and under its timeout
            outcome = self._init(attempt.deadline)
            if outcome.status is InitStatus.TIMEOUT:
                return self._timed_out(attempt)
            if outcome.error is not None:
                return self._failed(attempt, outcome.error)
        assert self._api is not None
        if self._watch is not None:
            self._watch.thaw()  # frozen since its last answer: timers and threads resume late, as on Lambda
        self._api.dispatch(request)
        answer = self._wait_for_answer(attempt)
        if isinstance(answer, Invocation):
            return answer
        return self._answered(attempt, answer)

    def _cold_init(self) -> tuple[InitOutcome, float]:
        """Init under Lambda's init limit, once a core is free: the outcome and the Init Duration (ms)."""
        with INIT_SLOTS:  # wait for a core before the init clock starts
            self._emit(logs.init_start_line(self.config.log_format, self._runtime_version()))
            started = time.perf_counter()
            outcome = self._init(time.monotonic() + self.config.init_timeout_s)
            return outcome, (time.perf_counter() - started) * 1000

    def _start(self, request_id: str, init_ms: float | None, suppressed: bool) -> _Attempt:
        """START, and the invocation's clock and deadline."""
        self._emit(logs.start_line(self.config.log_format, request_id))
        started = time.perf_counter()
        if self._debug_clock is not None:
            self._debug_clock.held_s = 0.0  # a fresh deadline: only what the debugger holds from now on moves it
        return _Attempt(request_id, started, time.monotonic() + self.config.timeout_s, init_ms, suppressed)

    def _wait_for_answer(self, attempt: _Attempt) -> RuntimeEvent | Invocation:
        """The runtime's answer, once it asks for the next event (or exits after answering); else how it failed."""
        answer: RuntimeEvent | None = None
        while True:
            event = self._next_event(attempt.deadline)
            if event is None:
                return self._timed_out(attempt)
            if event.kind in ANSWERS:
                answer = event
            elif event.kind is EventKind.NEXT and answer is not None:
                return answer  # the runtime asks for more work: this invocation is over
            elif event.kind is EventKind.EXIT:
                if answer is None:
                    self._drain_logs()
                    error = self._exit_error(attempt.request_id)
                    self._emit(f"{error.message}\n{error.error_type}")
                    return self._failed(attempt, error)
                assert self._process is not None
                self._emit(
                    f"RequestId: {attempt.request_id} Runtime exited after answering "
                    f"({_exit_status(self._returncode(self._process.wait()))}); the next invocation is a cold start"
                )
                self._reset_by_service = True
                return answer
            else:
                self._note_rejected(event)

    def _answered(self, attempt: _Attempt, answer: RuntimeEvent) -> Invocation:
        """The runtime answered: its response or error (or the platform's, for one too large), and REPORT."""
        duration_ms = (time.perf_counter() - attempt.started) * 1000
        self.invocations += 1
        self._drain_logs()
        if self._watch is not None and self.alive and self.config.debug is None:
            # It asked for the next event: nothing in it runs until that arrives. Not under a
            # debugger, whose adapter thread must keep answering the editor between invocations.
            self._watch.freeze()
        body, error_type = answer.body, None
        if answer.kind is EventKind.TOO_LARGE:
            error_type = "Function.ResponseSizeTooLarge"
            body = ErrorPayload(
                error_type,
                f"Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes).",
            ).json()
        elif answer.kind is EventKind.ERROR:
            error_type = _error_type(answer.body, answer.error_type)
        report = logs.Report(
            request_id=attempt.request_id,
            duration_ms=duration_ms,
            memory_size_mb=self.config.memory_mb,
            max_memory_used_mb=self._sample_memory(),
            init_duration_ms=attempt.init_ms,
            status="success" if error_type is None else "error",
            error_type=error_type,
            platform_failure=answer.kind is EventKind.TOO_LARGE,
            suppressed_init=attempt.suppressed,
        )
        return self._finish(attempt.request_id, body, report)

    def _runtime_version(self) -> str:
        if self.config.runtime == "provided.al2023":
            return "provided:al2023.local"
        return f"python:{self.config.python_version}.local"

    def _timed_out(self, attempt: _Attempt) -> Invocation:
        self._kill()
        self._drain_logs()  # what it printed before the kill belongs before the timeout line
        timeout = f"Task timed out after {self.config.timeout_s:.2f} seconds"
        self._emit(f"{logs.iso_now()} {attempt.request_id} {timeout}")
        error = ErrorPayload("Sandbox.Timedout", f"RequestId: {attempt.request_id} Error: {timeout}")
        return self._failed(attempt, error, status="timeout")

    def _failed(self, attempt: _Attempt, error: ErrorPayload, status: str = "error") -> Invocation:
        """The environment, not just the handler, failed: report it and leave the environment dead."""
        duration_ms = (time.perf_counter() - attempt.started) * 1000
        self.invocations += 1
        memory = self._sample_memory()
        self._kill()
        report = logs.Report(
            request_id=attempt.request_id,
            duration_ms=duration_ms,
            memory_size_mb=self.config.memory_mb,
            max_memory_used_mb=memory,
            init_duration_ms=attempt.init_ms,
            status=status,
            error_type=error.error_type,
            platform_failure=True,
            suppressed_init=attempt.suppressed,
        )
        return self._finish(attempt.request_id, error.json(), report)

    def _finish(self, request_id: str, body: bytes, report: logs.Report) -> Invocation:
        end = logs.end_line(self.config.log_format, request_id)
        if end:
            self._emit(end)
        self._emit(logs.report_line(self.config.log_format, report))
        lines = self._take_lines()
        return Invocation(
            request_id=request_id,
            payload=body,
            report=report,
            log="\n".join(lines) + "\n",
            error_type=report.error_type,
            environment_id=self.id,
        )

    def _finish_failed_init(self, request_id: str, init_ms: float, error: ErrorPayload) -> Invocation:
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
            status="error",
            error_type=error.error_type,
            platform_failure=True,
        )
        return self._finish(request_id, error.json(), report)


def _exit_status(code: int) -> str:
    """Go's wording, which Lambda's messages use: ``exit status 3`` or ``signal: kill``."""
    if code < 0:
        return f"signal: {signal.Signals(-code).name.removeprefix('SIG').lower()}"
    return f"exit status {code}"


def _entrypoint_message(exc: OSError) -> str:
    if isinstance(exc, FileNotFoundError):
        return f"RequestId:  Error: Couldn't find valid bootstrap(s): [{exc.filename}]"
    return f"RequestId:  Error: fork/exec {exc.filename}: {exc.strerror.lower() if exc.strerror else exc}"


def _error_type(body: bytes, header: str | None) -> str:
    """The header if the runtime sent one (awslambdaric does not), else the body's errorType."""
    if header:
        return header
    return ErrorPayload.from_runtime(body, None).error_type


def _trace_id() -> str:
    """An X-Ray trace header of the shape Lambda puts in ``_X_AMZN_TRACE_ID``."""
    return f"Root=1-{int(time.time()):08x}-{secrets.token_hex(12)};Parent={secrets.token_hex(8)};Sampled=0"
