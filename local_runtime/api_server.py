"""Lambda's Invoke API on loopback, so ``aws lambda invoke --endpoint-url`` and boto3 work unchanged.

Only ``POST /2015-03-31/functions/<name>/invocations`` is served: the one call
people rehearse before deploying. Status codes, headers and error bodies are
the ones the real API returns, because that is what the AWS CLI and botocore
parse (``x-amzn-ErrorType`` names the exception, the body carries the message).
Each function owns an :class:`EnvironmentPool`, so concurrent requests scale
out to new environments exactly as Lambda does.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import socket
import threading
import uuid
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from local_runtime.environment import Invocation
from local_runtime.pool import EnvironmentPool, TooManyRequestsError

SYNC_PAYLOAD_LIMIT = 6_291_456  # 6 MB, RequestResponse
ASYNC_PAYLOAD_LIMIT = 1_048_576  # 1 MB, Event (raised from 256 KB in 2025)
LOG_TAIL_BYTES = 4096
_PREFIX = "/2015-03-31/functions/"
_SUFFIX = "/invocations"


class ApiError(Exception):
    """An error the Invoke API itself returns (not a function error)."""

    def __init__(self, status: int, error_type: str, message: str, **extra: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message
        self.extra = extra


def log_tail(log: str, limit: int = LOG_TAIL_BYTES) -> str:
    """``X-Amz-Log-Result``: base64 of the last 4 KB of the invocation's log."""
    return base64.b64encode(log.encode("utf-8")[-limit:]).decode("ascii")


def parse_function_name(raw: str) -> tuple[str, str | None]:
    """Name, or full / partial ARN, with an optional ``:qualifier``, as the API accepts them."""
    name = unquote(raw)
    if ":function:" in name:
        name = name.split(":function:", 1)[1]
    elif name.count(":") == 2:  # 123456789012:function:name style without the marker is invalid anyway
        name = name.split(":")[-1]
    function, _, qualifier = name.partition(":")
    return function, qualifier or None


class InvokeApi(ThreadingHTTPServer):
    """The HTTP server; ``pools`` maps function names to their environments."""

    daemon_threads = True

    def __init__(self, pools: dict[str, EnvironmentPool], host: str = "127.0.0.1", port: int = 0) -> None:
        self.pools = pools
        self._async_jobs: set[threading.Thread] = set()
        self._async_lock = threading.Lock()
        self._closing = threading.Event()
        super().__init__((host, port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def pool_for(self, raw_name: str, query: str) -> EnvironmentPool:
        name, qualifier = parse_function_name(raw_name)
        qualifier = parse_qs(query).get("Qualifier", [qualifier])[0]
        pool = self.pools.get(name)
        if pool is None or qualifier not in (None, "$LATEST"):
            arn = pool.config.arn if pool else f"arn:aws:lambda:us-east-1:123456789012:function:{name}"
            suffix = f":{qualifier}" if qualifier else ""
            raise ApiError(404, "ResourceNotFoundException", f"Function not found: {arn}{suffix}", Type="User")
        return pool

    def invoke_async(self, pool: EnvironmentPool, payload: bytes, request_id: str) -> None:
        """Event invocations run after the 202, queued until an environment is free."""

        def run() -> None:
            try:
                while not self._closing.is_set():
                    try:
                        pool.invoke(payload, request_id=request_id)
                        return
                    except TooManyRequestsError:
                        self._closing.wait(0.05)
                    except RuntimeError:  # pool closed while queued
                        return
            finally:
                with self._async_lock:
                    self._async_jobs.discard(threading.current_thread())

        thread = threading.Thread(target=run, daemon=True, name=f"event-{request_id}")
        with self._async_lock:
            self._async_jobs.add(thread)
        thread.start()

    def wait_for_async(self, timeout: float = 10.0) -> None:
        """Let queued Event invocations finish (tests and shutdown use it)."""
        with self._async_lock:
            jobs = list(self._async_jobs)
        for job in jobs:
            job.join(timeout)

    def close(self) -> None:
        """Stop serving (call from another thread than ``serve_forever``), then end every environment."""
        self.shutdown()
        self.release()

    def release(self) -> None:
        """Close the socket, let queued Event invocations finish briefly, end every environment."""
        self.server_close()
        self._closing.set()
        self.wait_for_async(timeout=5)
        for pool in self.pools.values():
            pool.close()


class _Handler(BaseHTTPRequestHandler):
    server: InvokeApi
    protocol_version = "HTTP/1.1"

    def setup(self) -> None:
        """No Nagle: headers and body go out as separate writes, and delayed ACKs would add 40 ms."""
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the platform lines on stderr already say what ran."""

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body:
            self.wfile.write(body)

    def _send_api_error(self, error: ApiError, request_id: str) -> None:
        body = {"Type": error.extra.get("Type", "User"), "message": error.message, **error.extra}
        headers = {
            "Content-Type": "application/json",
            "x-amzn-ErrorType": error.error_type,
            "x-amzn-RequestId": request_id,
        }
        self._send(error.status, json.dumps(body).encode("utf-8"), headers)

    def _read_body(self, limit: int) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        if length > limit:
            remaining = length
            while remaining > 0:  # drain, so the client reads our 413 instead of a reset
                chunk = self.rfile.read(min(remaining, 1 << 16))
                if not chunk:
                    break
                remaining -= len(chunk)
            raise ApiError(
                413,
                "RequestEntityTooLargeException",
                f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
            )
        return self.rfile.read(length) if length else b""

    def do_POST(self) -> None:
        request_id = str(uuid.uuid4())
        parts = urlsplit(self.path)
        try:
            if not (parts.path.startswith(_PREFIX) and parts.path.endswith(_SUFFIX)):
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                raise ApiError(404, "UnknownOperationException", "Unknown operation", Type="User")
            pool = self.server.pool_for(parts.path[len(_PREFIX) : -len(_SUFFIX)], parts.query)
            invocation_type = self.headers.get("X-Amz-Invocation-Type", "RequestResponse")
            if invocation_type not in ("RequestResponse", "Event", "DryRun"):
                raise ApiError(400, "InvalidParameterValueException", f"Unsupported invocation type {invocation_type}")
            body = self._read_body(ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT)
            payload = body if body.strip() else b"{}"
            try:
                json.loads(payload)
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise ApiError(
                    400,
                    "InvalidRequestContentException",
                    f"Could not parse request body into json: Could not parse payload into json: {exc}",
                ) from None
            client_context = self._client_context()
            if invocation_type == "DryRun":
                self._send(204, headers={"x-amzn-RequestId": request_id})
                return
            if invocation_type == "Event":
                self.server.invoke_async(pool, payload, request_id)
                self._send(202, headers={"x-amzn-RequestId": request_id})
                return
            try:
                invocation = pool.invoke(payload, request_id=request_id, client_context=client_context)
            except TooManyRequestsError:
                raise ApiError(
                    429, "TooManyRequestsException", "Rate Exceeded.", Reason="ConcurrentInvocationLimitExceeded"
                ) from None
            self._send_invocation(invocation)
        except ApiError as error:
            self._send_api_error(error, request_id)

    def _client_context(self) -> Any:
        raw = self.headers.get("X-Amz-Client-Context")
        if not raw:
            return None
        try:
            return json.loads(base64.b64decode(raw, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ApiError(
                400, "InvalidRequestContentException", f"Client context must be base64 JSON: {exc}"
            ) from None

    def _send_invocation(self, invocation: Invocation) -> None:
        headers = {
            "Content-Type": "application/json",
            "X-Amz-Executed-Version": "$LATEST",
            "x-amzn-RequestId": invocation.request_id,
        }
        if invocation.function_error:
            headers["X-Amz-Function-Error"] = "Unhandled"
        if self.headers.get("X-Amz-Log-Type") == "Tail":
            headers["X-Amz-Log-Result"] = log_tail(invocation.log)
        self._send(HTTPStatus.OK, invocation.payload, headers)


@contextlib.contextmanager
def running_api(pools: dict[str, EnvironmentPool], host: str = "127.0.0.1", port: int = 0) -> Iterator[InvokeApi]:
    """Serve in a background thread for the duration of a ``with`` block."""
    server = InvokeApi(pools, host, port)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True, name="invoke-api")
    thread.start()
    try:
        yield server
    finally:
        server.close()
        thread.join(timeout=5)
