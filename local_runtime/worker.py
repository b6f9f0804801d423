"""The runtime inside one execution environment: import the handler once, then serve invocations.

Started by :mod:`local_runtime.environment` as ``python -m local_runtime.worker
<request fd> <response fd> <marker>`` in a fresh interpreter whose environment
already holds Lambda's reserved variables, so module-level code (the handler's
configuration) sees exactly what it would see on Lambda. It plays the part of
awslambdaric: same error shapes, same log format, same handler lookup rules.

Requests and responses are JSON lines on two private pipes, so whatever the
handler prints to stdout/stderr is log output only (as in CloudWatch), never
mixed with results.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any, BinaryIO

from local_runtime.context import LambdaContext, client_context_from_json, identity_from_json

_request_id = ""


class _Fault(Exception):
    """A runtime error (``Runtime.*``) rather than an exception of the function's own."""

    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.trace = trace or []


def make_error(message: str, error_type: str, trace: list[str], request_id: str) -> dict[str, Any]:
    return {"errorMessage": message, "errorType": error_type, "requestId": request_id, "stackTrace": trace}


def _user_frames(tb: Any) -> list[str]:
    """The traceback without this runtime's own frames, as awslambdaric drops bootstrap.py's."""
    frames = [f for f in traceback.extract_tb(tb) if f.filename != __file__]
    return traceback.format_list(frames)


class _RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        return True


class _JsonFormatter(logging.Formatter):
    """The runtime's JSON application log record (``AWS_LAMBDA_LOG_FORMAT=JSON``)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        if _request_id:
            entry["requestId"] = _request_id
        if record.exc_info:
            entry["errorType"] = record.exc_info[0].__name__ if record.exc_info[0] else None
            entry["stackTrace"] = traceback.format_exception(*record.exc_info)
        return json.dumps(entry, default=str) + "\n"


def _setup_logging(json_logs: bool) -> None:
    """Install the root handler the Python runtime installs, in its format."""
    logging.Formatter.converter = time.gmtime
    handler = logging.StreamHandler(sys.stdout)
    handler.terminator = ""
    if json_logs:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(
            logging.Formatter(
                "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
            )
        )
    handler.addFilter(_RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)
    level = os.environ.get("AWS_LAMBDA_LOG_LEVEL", "").upper()
    if level in logging.getLevelNamesMapping():
        root.setLevel(level)


def _log_error(error: dict[str, Any], json_logs: bool) -> None:
    """What the runtime writes to the log for a failed invocation or init."""
    if json_logs:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + "Z"
        sys.stdout.write(json.dumps({"timestamp": stamp, "level": "ERROR", **error}) + "\n")
        return
    lines = [f"[ERROR] {error['errorType']}: {error['errorMessage']}", "Traceback (most recent call last):"]
    for element in error["stackTrace"]:
        lines.extend(element.splitlines())
    sys.stdout.write("\r".join(lines) + "\n")


def load_handler(spec: str) -> Any:
    """awslambdaric's ``_get_handler``: same lookup, same fault types and messages."""
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as exc:
        raise _Fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {exc}") from None
    if module_name.split(".")[0] in sys.builtin_module_names:
        raise _Fault("Runtime.BuiltInModuleConflict", f"Cannot use built-in module {module_name} as a handler module")
    try:
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as exc:
        raise _Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {exc}") from None
    except SyntaxError as exc:
        trace = [f'  File "{exc.filename}" Line {exc.lineno}\n    {exc.text}']
        raise _Fault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {exc}", trace) from None
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise _Fault(
            "Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'"
        ) from None


def _json_default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _invoke(handler: Any, request: dict[str, Any]) -> dict[str, Any]:
    """Run one invocation and return the response message for the parent."""
    global _request_id
    _request_id = request_id = request["request_id"]
    if request.get("trace_id"):
        os.environ["_X_AMZN_TRACE_ID"] = request["trace_id"]
    context = LambdaContext(
        function_name=os.environ["AWS_LAMBDA_FUNCTION_NAME"],
        memory_limit_in_mb=os.environ["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"],
        invoked_function_arn=request["invoked_function_arn"],
        log_group_name=os.environ["AWS_LAMBDA_LOG_GROUP_NAME"],
        log_stream_name=os.environ["AWS_LAMBDA_LOG_STREAM_NAME"],
        deadline_ms=request["deadline_ms"],
        aws_request_id=request_id,
        identity=identity_from_json(request.get("identity")),
        client_context=client_context_from_json(request.get("client_context")),
    )
    try:
        event = json.loads(request["payload"] or "{}")
        result = handler(event, context)
        try:
            body = json.dumps(result, default=_json_default)
        except (TypeError, ValueError) as exc:
            raise _Fault("Runtime.MarshalError", f"Unable to marshal response: {exc}") from None
        return {"type": "result", "payload": body}
    except _Fault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace, request_id)
    except Exception as exc:  # noqa: BLE001 - every exception of the function is reported, as Lambda does
        error = make_error(str(exc), type(exc).__name__, _user_frames(exc.__traceback__), request_id)
    _log_error(error, os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON")
    return {"type": "error", "error": error}


def _send(out: BinaryIO, message: dict[str, Any], marker: bytes) -> None:
    """Flush the log streams, mark the end of this message's logs, then answer."""
    for stream in {sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__}:
        if stream is not None:
            stream.flush()
    os.write(1, marker + b"\n")
    out.write(json.dumps(message).encode("utf-8") + b"\n")


def main(argv: list[str]) -> int:
    request_fd, response_fd, marker = int(argv[0]), int(argv[1]), argv[2].encode("ascii")
    requests = os.fdopen(request_fd, "rb")
    responses = os.fdopen(response_fd, "wb", buffering=0)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    json_logs = os.environ.get("AWS_LAMBDA_LOG_FORMAT") == "JSON"
    _setup_logging(json_logs)
    try:
        handler = load_handler(os.environ["_HANDLER"])
    except _Fault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace, "")
    except Exception as exc:  # noqa: BLE001 - module-level code failed: reported as its own type, like awslambdaric
        error = make_error(str(exc), type(exc).__name__, _user_frames(exc.__traceback__), "")
    else:
        error = None
    if error is not None:
        _log_error(error, json_logs)
        _send(responses, {"type": "init_error", "error": error}, marker)
        return 0
    _send(responses, {"type": "ready"}, marker)
    for line in requests:
        _send(responses, _invoke(handler, json.loads(line)), marker)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
