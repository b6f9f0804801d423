"""The platform's own log lines (START / END / REPORT), text or JSON.

These are written by the Lambda service, not by the runtime inside the
environment, so the runner's parent process writes them around whatever the
handler logged. The REPORT figures are the ones people compare against
CloudWatch, so the rounding rules live here, next to the format.
"""

from __future__ import annotations

import json
import math
import time
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


def parse_report_line(line: str) -> dict[str, str]:
    """Split a text REPORT line into its fields; tests and tools read figures with it."""
    fields: dict[str, str] = {}
    for part in line.strip().split("\t"):
        name, _, value = part.partition(": ")
        fields[name.removeprefix("REPORT ")] = value
    return fields
