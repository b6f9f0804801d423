"""Logs as the Lambda service writes them: platform lines (START / END / REPORT) and the function's output.

The platform lines are written by the service, not by the runtime inside the
environment, so the runner's parent process writes them around whatever the
function logged, which :class:`FunctionLogReader` collects from outside. The
REPORT figures are the ones people compare against CloudWatch, so the rounding
rules live here, next to the format.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import selectors
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Report:
    """The numbers of one invocation, as the REPORT line shows them."""

    request_id: str
    duration_ms: float
    memory_size_mb: int
    max_memory_used_mb: int
    init_duration_ms: float | None = None
    status: str = "success"  # success | error | timeout | failure, as platform.report
    error_type: str | None = None
    platform_failure: bool = False  # init failure, timeout or crash: the text REPORT line names a status
    suppressed_init: bool = False  # init overran 10 s and ran again inside this invocation (in Duration)

    @property
    def billed_duration_ms(self) -> int:
        """Rounded up to the next millisecond (per-ms billing since December 2020).

        Since August 2025 the init phase of on-demand functions is billed too,
        so a cold start bills Init Duration + Duration.
        """
        return max(1, math.ceil(self.duration_ms + (self.init_duration_ms or 0.0)))


def iso_now(now: float | None = None) -> str:
    """``2026-11-25T12:00:00.123Z``: the timestamp shape Lambda uses everywhere."""
    now = time.time() if now is None else now
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now * 1000) % 1000:03d}Z"


def _json_record(kind: str, record: dict[str, Any]) -> str:
    return json.dumps({"time": iso_now(), "type": kind, "record": record})


def init_start_line(log_format: str, runtime_version: str) -> str:
    if log_format == "json":
        return _json_record(
            "platform.initStart",
            {"initializationType": "on-demand", "phase": "init", "runtimeVersion": runtime_version},
        )
    return f"INIT_START Runtime Version: {runtime_version}"


def init_report_line(log_format: str, duration_ms: float, status: str) -> str:
    """Written when an init phase did not succeed (Lambda prints nothing for a good one in text)."""
    if log_format == "json":
        return _json_record(
            "platform.initReport",
            {
                "initializationType": "on-demand",
                "phase": "init",
                "status": status,
                "metrics": {"durationMs": round(duration_ms, 3)},
            },
        )
    return f"INIT_REPORT Init Duration: {duration_ms:.2f} ms\tPhase: init\tStatus: {status}"


def start_line(log_format: str, request_id: str) -> str:
    if log_format == "json":
        return _json_record("platform.start", {"requestId": request_id, "version": "$LATEST"})
    return f"START RequestId: {request_id} Version: $LATEST"


def end_line(log_format: str, request_id: str) -> str | None:
    """Text logs end each invocation with END; the JSON format has no such record."""
    return None if log_format == "json" else f"END RequestId: {request_id}"


def report_line(log_format: str, report: Report) -> str:
    if log_format == "json":
        metrics: dict[str, Any] = {
            "durationMs": round(report.duration_ms, 3),
            "billedDurationMs": report.billed_duration_ms,
            "memorySizeMB": report.memory_size_mb,
            "maxMemoryUsedMB": report.max_memory_used_mb,
        }
        if report.init_duration_ms is not None:
            metrics["initDurationMs"] = round(report.init_duration_ms, 3)
        record: dict[str, Any] = {"requestId": report.request_id, "metrics": metrics, "status": report.status}
        if report.error_type:
            record["errorType"] = report.error_type
        return _json_record("platform.report", record)
    fields = [
        f"REPORT RequestId: {report.request_id}",
        f"Duration: {report.duration_ms:.2f} ms",
        f"Billed Duration: {report.billed_duration_ms} ms",
        f"Memory Size: {report.memory_size_mb} MB",
        f"Max Memory Used: {report.max_memory_used_mb} MB",
    ]
    if report.init_duration_ms is not None:
        fields.append(f"Init Duration: {report.init_duration_ms:.2f} ms")
    if report.platform_failure:
        # Text REPORT lines name a status only when the environment, not just the handler, failed.
        fields.append(f"Status: {report.status}")
        if report.error_type:
            fields.append(f"Error Type: {report.error_type}")
    return "\t".join(fields)


# ---------------------------------------------------------------------------
# The function's own output, read from outside the environment.
# ---------------------------------------------------------------------------

_FRAME_HEADER = struct.Struct(">IIQ")  # record type, payload length, timestamp (µs)
# CloudWatch Logs' PutLogEvents: "Each log event can be no larger than 1 MB", counted as its UTF-8
# message plus 26 bytes (the API reference; 256 KB before 2025). A longer line or record is cut
# into events of at most this many bytes, as it arrives.
EVENT_MAX_BYTES = 1_048_576 - 26
TAIL_BYTES = 4096  # LogType=Tail returns the last 4 KB of an invocation's log
_READ_BYTES = 1 << 16


def cut_point(data: bytes | bytearray | memoryview, limit: int) -> int:
    """Where to cut ``data`` (longer than ``limit``): the first piece is at most ``limit`` bytes of whole characters."""
    cut = limit
    while cut > limit - 3 and data[cut] & 0xC0 == 0x80:  # a UTF-8 continuation byte: back off to its start
        cut -= 1
    return cut if data[cut] & 0xC0 != 0x80 else limit


class FunctionLogReader:
    """Turns an environment's output into log events, as Lambda's log collection does.

    Two sources: the process's stdout+stderr pipe (``print``, tracebacks,
    anything a custom runtime writes), split into lines; and the telemetry
    pipe whose descriptor the runtime gets as ``_LAMBDA_TELEMETRY_LOG_FD``,
    where awslambdaric writes each log record as one frame, so a multi-line
    record (an error with its stack trace) stays one event. A line still
    without its newline is flushed when the service asks (end of an
    invocation) or at EOF, so nothing written before a crash is lost.

    One thread owns both pipes; :meth:`drain` returns once everything that
    was already written has been handed to ``emit``. Reading is linear in
    what is written: each read is searched for newlines once, and a line or
    record longer than CloudWatch's event size limit is emitted in pieces of
    at most ``event_max_bytes`` as it arrives, so nothing larger is held.
    """

    def __init__(
        self,
        stdout_fd: int,
        telemetry_fd: int,
        emit: Callable[[str], None],
        name: str,
        event_max_bytes: int = EVENT_MAX_BYTES,
    ) -> None:
        self._emit_line = emit
        self._event_max = event_max_bytes
        self._selector = selectors.DefaultSelector()
        self._buffers: dict[int, bytearray] = {stdout_fd: bytearray(), telemetry_fd: bytearray()}
        self._telemetry_fd = telemetry_fd
        self._open = {stdout_fd, telemetry_fd}
        self._wake_read, self._wake_write = os.pipe()  # a drain request wakes the thread at once
        for fd in (stdout_fd, telemetry_fd, self._wake_read):
            os.set_blocking(fd, False)
            self._selector.register(fd, selectors.EVENT_READ)
        self._lock = threading.Lock()
        self._drains: list[threading.Event] = []
        self._done = threading.Event()
        threading.Thread(target=self._run, daemon=True, name=f"logs-{name}").start()

    def drain(self, timeout: float = 2.0) -> None:
        """Wait until what the process wrote so far has been emitted."""
        waiter = threading.Event()
        with self._lock:
            if self._done.is_set():
                return
            self._drains.append(waiter)
        with contextlib.suppress(OSError):
            os.write(self._wake_write, b"x")
        waiter.wait(timeout)

    def wait_closed(self, timeout: float) -> None:
        self._done.wait(timeout)

    def _run(self) -> None:
        try:
            while self._open:
                with self._lock:
                    draining = bool(self._drains)
                # Sleep until output arrives; while a drain waits, only look at what is already there.
                ready = [key.fd for key, _ in self._selector.select(timeout=0 if draining else None)]
                if self._wake_read in ready:
                    with contextlib.suppress(BlockingIOError):
                        os.read(self._wake_read, 4096)
                data = [fd for fd in ready if fd != self._wake_read]
                for fd in data:
                    self._read(fd)
                if draining and not data:  # everything written before the request has been emitted
                    self._flush_partial()  # the invocation is over: a line left without its newline is its own event
                    self._release_drains()
        finally:
            self._flush_partial()
            with self._lock:
                self._done.set()
            self._release_drains()
            self._selector.close()
            for fd in (self._wake_read, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def _release_drains(self) -> None:
        with self._lock:
            drains, self._drains = self._drains, []
        for waiter in drains:
            waiter.set()

    def _emit(self, data: bytes | bytearray) -> None:
        """One event, or several when it is over CloudWatch's size limit."""
        view = memoryview(data)
        while len(view) > self._event_max:
            cut = cut_point(view, self._event_max)
            self._emit_line(bytes(view[:cut]).decode("utf-8", "replace"))
            view = view[cut:]
        self._emit_line(bytes(view).decode("utf-8", "replace"))

    def _read(self, fd: int) -> None:
        try:
            data = os.read(fd, _READ_BYTES)
        except BlockingIOError:
            return
        if not data:
            self._selector.unregister(fd)
            self._open.discard(fd)
            os.close(fd)
            return
        buffer = self._buffers[fd]
        scanned = len(buffer)  # what is already buffered holds no newline
        buffer += data
        if fd == self._telemetry_fd:
            self._frames()
            return
        start = 0
        newline = buffer.find(b"\n", scanned)
        while newline >= 0:
            self._emit(buffer[start:newline])
            start = newline + 1
            newline = buffer.find(b"\n", start)
        del buffer[:start]  # a bytearray drops its head without copying the rest
        while len(buffer) > self._event_max:  # a line too long for one event: emit what is here
            cut = cut_point(buffer, self._event_max)
            self._emit(buffer[:cut])
            del buffer[:cut]

    def _frames(self) -> None:
        buffer = self._buffers[self._telemetry_fd]
        start = 0
        while len(buffer) - start >= _FRAME_HEADER.size:
            _kind, length, _micros = _FRAME_HEADER.unpack_from(buffer, start)
            end = start + _FRAME_HEADER.size + length
            if len(buffer) < end:
                break
            record = buffer[start + _FRAME_HEADER.size : end]
            self._emit(record[:-1] if record.endswith(b"\n") else record)
            start = end
        del buffer[:start]

    def _flush_partial(self) -> None:
        """Output without a final newline becomes an event of its own (stdout only)."""
        for fd, pending in self._buffers.items():
            if fd != self._telemetry_fd and pending:
                self._emit(pending)
                pending.clear()
