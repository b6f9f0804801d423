"""Lambda's Invoke API on loopback, so ``aws lambda invoke --endpoint-url`` and boto3 work unchanged.

Only ``POST /2015-03-31/functions/<name>/invocations`` is served: the one call
people rehearse before deploying. Status codes, headers and error bodies are
the ones the real API returns, because that is what the AWS CLI and botocore
parse (``x-amzn-ErrorType`` names the exception, the body carries the message).
Each function owns an :class:`EnvironmentPool`, so concurrent requests scale
out to new environments exactly as Lambda does.

HTTP itself is aiohttp's web server, not hand-written parsing: it validates
``Content-Length``, decodes chunked bodies, refuses malformed requests (in
Lambda's error shape here, see :class:`_LambdaShapedErrors`), and after an
early answer (404, 413) it reads and discards what is left of the body for a
bounded time or closes the connection, so a keep-alive client's next request is
never parsed out of the previous one's body. Only HTTP/1.0 and 1.1 are served
(:func:`_http1_only`). This module adds what
Lambda adds on top: payload limits checked before a byte of the body is read,
JSON and client contexts checked before an environment sees them, function
names and qualifiers checked the way the service checks them, a cap on open
connections with an idle timeout, and a shutdown that answers or closes every
client and ends every environment.

Environments block while they run, so each invocation runs on a worker thread;
the event loop only parses, validates and writes.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import re
import signal
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from aiohttp import web
from aiohttp.http import HttpVersion, HttpVersion10, HttpVersion11, RawRequestMessage
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.web_protocol import RequestHandler

from local_runtime import logs
from local_runtime.api_errors import (
    AccessDeniedException,
    ApiError,
    ExpectationFailed,
    HttpVersionNotSupportedException,
    InvalidParameterValueException,
    InvalidRequestContentException,
    RequestEntityTooLargeException,
    RequestTimeoutException,
    ResourceNotFoundException,
    ServiceException,
    TooManyRequestsException,
    UnknownOperationException,
    ValidationException,
)
from local_runtime.config import ACCOUNT_ID
from local_runtime.display import shown
from local_runtime.environment import Invocation
from local_runtime.http_guard import allowed_hosts, log_refusal, refusal
from local_runtime.pool import EnvironmentPool, PoolClosedError, TooManyRequestsError
from local_runtime.strict_json import SYNC_PAYLOAD_LIMIT, parse_json_document

ASYNC_PAYLOAD_LIMIT = 1_048_576  # 1 MB, Event (raised from 256 KB in 2025)
CLIENT_CONTEXT_LIMIT = 3583  # bytes of base64, as the Invoke API documents for ClientContext
MAX_CONNECTIONS = 128  # open client connections; more are answered 503 and closed
IDLE_TIMEOUT_S = 60.0  # a connection with no request in progress for this long is closed
REQUEST_READ_S = 30.0  # a request's head and body must arrive whole within this long of its first byte
LINGER_S = 10.0  # after an early answer, unread body is discarded for at most this long, then the connection closes
EVENT_QUEUE_MAX = 1000  # accepted Event invocations waiting for an environment, per function; more are 429
EVENT_QUEUE_BYTES = 128 * 1024 * 1024  # and at most this much of their payloads, per function
SHUTDOWN_GRACE_S = 3.0  # on SIGTERM, running invocations get this long before their environments are ended
SHOWN_CHARS = 64  # how much of a hostile value an error message echoes

_PREFIX = "/2015-03-31/functions/"
_SUFFIX = "/invocations"
# The routing table's patterns match any character, so that every name (empty, with a slash, with a
# control character) reaches the service's own name check, and every other request the catch-all.
_INVOCATIONS_ROUTE = _PREFIX + r"{name:[\s\S]*}" + _SUFFIX
_ANY_OTHER_ROUTE = r"/{tail:[\s\S]*}"
# Botocore's model of the Invoke API: FunctionName and Qualifier (service-2.json).
_FUNCTION_NAME_PATTERN = (
    r"(arn:(aws[a-zA-Z-]*)?:lambda:)?([a-z]{2}(-gov)?-[a-z]+-\d{1}:)?(\d{12}:)?(function:)?"
    r"([a-zA-Z0-9-_\.]+)(:(\$LATEST|[a-zA-Z0-9-_]+))?"
)
_FUNCTION_NAME = re.compile(_FUNCTION_NAME_PATTERN)
_QUALIFIER_PATTERN = "(|[a-zA-Z0-9$_-]+)"
_QUALIFIER = re.compile(_QUALIFIER_PATTERN)
_INVOCATION_TYPES = ("RequestResponse", "Event", "DryRun")


class _QuietMalformedRequests(logging.Filter):
    """aiohttp answers a malformed request with 400 and logs its traceback: the client's fault, not news."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], HttpProcessingError))


logging.getLogger("aiohttp.server").addFilter(_QuietMalformedRequests())
_log = logging.getLogger(__name__)


def log_tail(log: str, limit: int = logs.TAIL_BYTES) -> str:
    """``X-Amz-Log-Result``: base64 of the last 4 KB of the invocation's log."""
    return base64.b64encode(log.encode("utf-8", "replace")[-limit:]).decode("ascii")


def _validation_error(value: str, field: str, constraint: str) -> ValidationException:
    return ValidationException(
        f"1 validation error detected: Value '{shown(value, SHOWN_CHARS)}' at '{field}' "
        f"failed to satisfy constraint: {constraint}",
    )


def parse_function_name(raw: str) -> tuple[str, str | None, str | None, str | None]:
    """Name, or full / partial ARN, with an optional ``:qualifier``: (name, qualifier, region, account).

    The same pattern the service validates against; anything else (``a:b:name``,
    ``name:``, a name over 170 characters) is a ``ValidationException``.
    """
    match = _FUNCTION_NAME.fullmatch(raw)
    if match is None or not 1 <= len(raw) <= 170:
        raise _validation_error(
            raw, "functionName", f"Member must satisfy regular expression pattern: {_FUNCTION_NAME_PATTERN}"
        )
    region = match.group(3)[:-1] if match.group(3) else None
    account = match.group(5)[:-1] if match.group(5) else None
    return match.group(7), match.group(9), region, account


def check_qualifier(raw: str) -> str:
    """The ``Qualifier`` query parameter: 1-128 characters of ``[a-zA-Z0-9$_-]``."""
    if not 1 <= len(raw) <= 128:
        raise _validation_error(raw, "qualifier", "Member must have length between 1 and 128")
    if _QUALIFIER.fullmatch(raw) is None:
        raise _validation_error(
            raw, "qualifier", f"Member must satisfy regular expression pattern: {_QUALIFIER_PATTERN}"
        )
    return raw


class InvokeApi:
    """The Invoke API server; ``pools`` maps function names to their environments.

    The listening socket is bound in the constructor (an unusable address
    raises ``OSError`` there); :meth:`serve_forever` runs the event loop in the
    calling thread until :meth:`close` (from another thread) or, with
    ``handle_signals``, SIGTERM / SIGINT.
    """

    def __init__(
        self,
        pools: dict[str, EnvironmentPool],
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_connections: int = MAX_CONNECTIONS,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        shutdown_grace_s: float = SHUTDOWN_GRACE_S,
        linger_s: float = LINGER_S,
        request_read_s: float = REQUEST_READ_S,
        event_queue_max: int = EVENT_QUEUE_MAX,
        event_queue_bytes: int = EVENT_QUEUE_BYTES,
    ) -> None:
        self.pools = pools
        self.max_connections = max_connections
        self.request_read_s = request_read_s
        self.event_queue_max = event_queue_max
        self.event_queue_bytes = event_queue_bytes
        self.idle_timeout_s = idle_timeout_s
        self.shutdown_grace_s = shutdown_grace_s
        self.linger_s = linger_s
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._sock.bind((host, port))
            self._sock.listen(max_connections)
        except BaseException:
            self._sock.close()
            raise
        self._sock.setblocking(False)
        self.server_address = self._sock.getsockname()
        self.allowed_hosts = allowed_hosts(self.server_address[1], host, self.server_address[0])
        workers = sum(pool.max_environments for pool in pools.values()) + 4  # a busy pool still answers 429 promptly
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="invoke")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._finished = threading.Event()
        self._closing = False
        self._in_flight = 0
        # Event invocations: one bounded FIFO per function, served by workers that wait for an environment.
        self._event_executor = ThreadPoolExecutor(
            max_workers=sum(pool.max_environments for pool in pools.values()), thread_name_prefix="event"
        )
        self._event_queues: dict[str, _EventQueue] = {}
        self._connections: dict[asyncio.BaseTransport, _Connection] = {}

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    # -- running -------------------------------------------------------------

    def serve_forever(self, handle_signals: bool = False) -> None:
        """Serve until :meth:`close` or (``handle_signals``) SIGTERM/SIGINT, then shut down cleanly."""
        try:
            asyncio.run(self._serve(handle_signals))
        finally:
            self._sock.close()
            self._executor.shutdown(wait=True)
            self._event_executor.shutdown(wait=True)
            self._ready.set()
            self._finished.set()

    def close(self, timeout: float = 30.0) -> None:
        """Stop serving from another thread and wait until every client and environment is done."""
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                loop.call_soon_threadsafe(stop.set)
            self._finished.wait(timeout)
        else:  # never served: nothing but the socket and the pools to release
            self._sock.close()
            self._executor.shutdown(wait=False)
            self._event_executor.shutdown(wait=False)
            for pool in self.pools.values():
                pool.close()

    def wait_for_async(self, timeout: float = 10.0) -> None:
        """Let accepted Event invocations finish (tests use it)."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        future = asyncio.run_coroutine_threadsafe(self._drain_async(timeout), loop)
        with contextlib.suppress(TimeoutError, RuntimeError):
            future.result(timeout + 1)

    async def _drain_async(self, timeout: float) -> None:
        queues = [queue.join() for queue in self._event_queues.values()]
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*queues), timeout)

    async def _serve(self, handle_signals: bool) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        self._stop = asyncio.Event()
        if handle_signals:
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signum, self._stop.set)
        for name, pool in self.pools.items():
            self._event_queues[name] = _EventQueue(pool, self)
        app = web.Application(client_max_size=SYNC_PAYLOAD_LIMIT + 1, middlewares=[self._lambda_shaped])
        app.add_routes(
            [
                web.post(_INVOCATIONS_ROUTE, self._invoke, expect_handler=self._expect),
                web.route("*", _ANY_OTHER_ROUTE, _unknown_operation, expect_handler=self._expect),
            ]
        )
        connection_options: dict[str, Any] = {
            "access_log": None,
            "keepalive_timeout": self.idle_timeout_s,  # also closes a connection that never sends a whole request
            "lingering_time": self.linger_s,
        }
        runner = web.AppRunner(app, handle_signals=False, **connection_options)
        await runner.setup()
        factory = runner.server
        assert factory is not None
        factory.request_factory = _http1_only(factory.request_factory)

        def capped() -> asyncio.Protocol:
            if self._closing:
                return _Refused()
            if len(factory.connections) >= self.max_connections and not self._evict():
                return _Refused()
            return _Connection(_LambdaShapedErrors(factory, loop=loop, **connection_options), self)

        server = await loop.create_server(capped, sock=self._sock, backlog=self.max_connections)
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await self._shutdown(server, runner)

    async def _shutdown(self, server: asyncio.Server, runner: web.AppRunner) -> None:
        """Answer or close every client, then end every environment (and its /tmp).

        Accepted Event invocations that have not started are not run: one line
        says how many (Lambda would still run them; a local server that stops
        cannot), so none is dropped silently.
        """
        self._closing = True
        server.close()  # no new connections
        factory = runner.server
        assert factory is not None
        factory.pre_shutdown()  # idle keep-alive connections close now, busy ones right after their answer
        loop = asyncio.get_running_loop()
        for queue in self._event_queues.values():
            queue.stop()  # no new starts; workers waiting for an environment are woken by the pools' close
        await loop.run_in_executor(None, self._close_pools)  # idle environments end, busy ones when released
        deadline = loop.time() + self.shutdown_grace_s
        while self._in_flight and loop.time() < deadline:
            await asyncio.sleep(0.05)
        if self._in_flight:
            # Still running: end their environments, so each returns (as a runtime exit) and is answered.
            await asyncio.gather(
                *(loop.run_in_executor(None, _terminate, pool) for pool in self.pools.values()),
                return_exceptions=True,
            )
        await asyncio.gather(*(queue.stopped() for queue in self._event_queues.values()), return_exceptions=True)
        await loop.run_in_executor(None, self._event_executor.shutdown, True)
        await factory.shutdown(5.0)  # answers written; anything still open is closed
        await runner.cleanup()
        await loop.run_in_executor(None, self._close_pools)
        unrun = {name: queue.unrun for name, queue in self._event_queues.items() if queue.unrun}
        if unrun:
            counts = ", ".join(f"{count} for {name}" for name, count in unrun.items())
            _log.warning(
                "Invoke API stopped with %d accepted Event invocation(s) not run (%s)", sum(unrun.values()), counts
            )
        with contextlib.suppress(Exception):
            await server.wait_closed()

    def _evict(self) -> bool:
        """At the cap, make room: close the connection that has waited longest without a request being run.

        A connection that trickles its request (slowloris) or sits idle holds a
        slot but no invocation; one running an invocation is never closed.
        """
        candidates = [c for c in self._connections.values() if c.phase != _Connection.HANDLING]
        if not candidates:
            return False
        min(candidates, key=lambda connection: connection.since).expire()
        return True

    def _connection(self, request: web.BaseRequest) -> _Connection | None:
        transport = request.transport
        return self._connections.get(transport) if transport is not None else None

    def _close_pools(self) -> None:
        for pool in self.pools.values():
            pool.close()

    # -- requests ------------------------------------------------------------

    def _guard(self, request: web.Request) -> None:
        """Refuse what no SDK sends: another HTTP than 1.x, an HTTP/1.0 body of unknown length, a browser's
        request or a foreign Host (see :mod:`local_runtime.http_guard`)."""
        claimed = request.get(_CLAIMED_VERSION, request.version)
        if claimed < HttpVersion10:  # a request line without a version (HTTP/0.9): no headers can be trusted
            raise InvalidRequestContentException("The request line names no HTTP version", close=True)
        if claimed > HttpVersion11:
            raise HttpVersionNotSupportedException(
                f"HTTP/{claimed.major}.{claimed.minor} is not supported: the Invoke API speaks HTTP/1.1",
                close=True,
            )
        if claimed == HttpVersion10 and request.method == "POST" and request.content_length is None:
            # HTTP/1.0 has no chunked bodies: without a length the body runs to a close the client may never send.
            raise InvalidRequestContentException("An HTTP/1.0 request must declare its Content-Length", close=True)
        reason = refusal(request, self.allowed_hosts)
        if reason is not None:
            log_refusal("Invoke API", request, reason)
            raise AccessDeniedException(
                f"The local Invoke API refused {reason}: it answers only SDK and CLI clients on its own address"
            )

    async def _expect(self, request: web.Request) -> web.StreamResponse | None:
        """``Expect: 100-continue``: refuse an oversize body before the client sends it."""
        connection = self._connection(request)
        if connection is not None:
            connection.head_read()
        try:
            self._guard(request)
        except ApiError as error:
            return _error_response(error, str(uuid.uuid4()))
        if request.headers.get("Expect", "").lower() != "100-continue":
            return _error_response(ExpectationFailed("Unsupported Expect header", close=True), "")
        limit = _limit_for(request.headers.get("X-Amz-Invocation-Type", "RequestResponse"))
        if request.content_length is not None and request.content_length > limit:
            return _error_response(_too_large(limit, close=True), str(uuid.uuid4()))
        await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return None

    @web.middleware
    async def _lambda_shaped(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Around every route: the guard first, and any error answered in Lambda's shape."""
        request_id = str(uuid.uuid4())
        request[_REQUEST_ID] = request_id
        connection = self._connection(request)
        if connection is not None:
            connection.head_read()
        try:
            self._guard(request)
            answer: web.StreamResponse = await handler(request)
            return answer
        except ApiError as error:
            return _error_response(error, request_id)
        except Exception:  # noqa: BLE001 - a bug here must still answer in Lambda's shape, the next request in step
            _log.exception("Invoke API failed on request %s", request_id)
            return _error_response(ServiceException("The local Invoke API failed; see its log"), request_id)
        finally:
            if connection is not None:
                connection.answered()

    async def _invoke(self, request: web.Request) -> web.StreamResponse:
        """``POST /2015-03-31/functions/{name}/invocations``: Invoke."""
        request_id = request[_REQUEST_ID]
        if self._closing:
            raise _shutting_down()
        # The name as sent, decoded once here: %2F and bytes that are no UTF-8 reach the name check.
        path = request.rel_url.raw_path
        pool = self.pool_for(unquote(path[len(_PREFIX) : -len(_SUFFIX)]), request.query)
        invocation_type = request.headers.get("X-Amz-Invocation-Type", "RequestResponse")
        if invocation_type not in _INVOCATION_TYPES:
            raise InvalidParameterValueException(f"Unsupported invocation type {shown(invocation_type, SHOWN_CHARS)}")
        connection = self._connection(request)
        deadline = connection.deadline + 1.0 if connection else None  # the connection answers first; a backstop
        body = await _read_body(request, _limit_for(invocation_type), deadline)
        if connection is not None:
            connection.body_read()
        try:
            if body.strip():
                parse_json_document(body, "payload")
        except ValueError as exc:
            raise InvalidRequestContentException(
                f"Could not parse request body into json: Could not parse payload into json: {shown(str(exc), 200)}",
            ) from None
        payload = body if body.strip() else b"{}"
        client_context = _client_context(request.headers.get("X-Amz-Client-Context"))
        tenant_id = _tenant_id(request.headers.get("X-Amz-Tenant-Id"))
        if invocation_type == "DryRun":
            return web.Response(status=204, headers={"x-amzn-RequestId": request_id})
        if invocation_type == "Event":
            self._event_queues[pool.config.name].put(_Event(payload, request_id, client_context, tenant_id))
            return web.Response(status=202, headers={"x-amzn-RequestId": request_id})
        loop = asyncio.get_running_loop()
        self._in_flight += 1
        try:
            invocation = await loop.run_in_executor(
                self._executor,
                lambda: pool.invoke(payload, request_id=request_id, client_context=client_context, tenant_id=tenant_id),
            )
        except TooManyRequestsError:
            raise TooManyRequestsException("Rate Exceeded.", Reason="ConcurrentInvocationLimitExceeded") from None
        except RuntimeError:  # the pool closed under it: the server is shutting down
            raise _shutting_down() from None
        finally:
            self._in_flight -= 1
        return _invocation_response(invocation, request.headers.get("X-Amz-Log-Type") == "Tail")

    def pool_for(self, raw_name: str, query: Any) -> EnvironmentPool:
        """The function's pool, after the checks the service makes on the name, ARN and qualifier."""
        name, qualifier, region, account = parse_function_name(raw_name)
        if "Qualifier" in query:
            from_query = check_qualifier(query.get("Qualifier", ""))
            if qualifier is not None and qualifier != from_query:
                raise InvalidParameterValueException(
                    "The derived qualifier from the function name does not match the specified qualifier.",
                )
            qualifier = from_query
        pool = self.pools.get(name)
        home_region = pool.config.region if pool else next(iter(self.pools.values())).config.region
        if region is not None and region != home_region:
            raise ResourceNotFoundException(
                f"Functions from '{region}' are not reachable in this region ('{home_region}')"
            )
        arn = f"arn:aws:lambda:{home_region}:{account or ACCOUNT_ID}:function:{name}"
        if account is not None and account != ACCOUNT_ID:
            raise AccessDeniedException(
                f"User: arn:aws:iam::{ACCOUNT_ID}:user/local is not authorized to perform: "
                f"lambda:InvokeFunction on resource: {arn} because no resource-based policy allows "
                "the lambda:InvokeFunction action"
            )
        if pool is None or qualifier not in (None, "$LATEST"):
            suffix = f":{qualifier}" if qualifier else ""
            raise ResourceNotFoundException(f"Function not found: {arn}{suffix}")
        return pool


@dataclass(frozen=True)
class _Event:
    """An accepted Event invocation, waiting for an environment."""

    payload: bytes
    request_id: str
    client_context: Any
    tenant_id: str | None


class _EventQueue:
    """One function's Event invocations: a bounded FIFO served by one worker per allowed environment.

    Lambda's asynchronous invocation: the 202 means the event will run. Here
    it runs as soon as an environment is free (a worker blocks in the pool
    until one is released; nothing polls), in the order accepted. Past
    ``event_queue_max`` events or ``event_queue_bytes`` of payload the Invoke
    API answers 429 instead of accepting more; what is still queued when the
    server stops is counted in :attr:`unrun`.
    """

    def __init__(self, pool: EnvironmentPool, api: InvokeApi) -> None:
        self._pool = pool
        self._api = api
        self._queue: asyncio.Queue[_Event] = asyncio.Queue()
        self._bytes = 0
        self._lock = threading.Lock()  # unrun is counted from worker threads too
        self.unrun = 0
        self._stopping = False
        self._running: set[asyncio.Task[Any] | None] = set()  # workers with an event in hand
        self._workers = [
            asyncio.get_running_loop().create_task(self._work(), name=f"event-worker-{pool.config.name}-{number}")
            for number in range(pool.max_environments)
        ]

    def put(self, event: _Event) -> None:
        """Accept the event, or 429 when the queue is full."""
        if (
            self._queue.qsize() >= self._api.event_queue_max
            or self._bytes + len(event.payload) > self._api.event_queue_bytes
        ):
            raise TooManyRequestsException(
                f"Rate Exceeded. The function's queue of Event invocations is full "
                f"({self._queue.qsize()} waiting, {self._bytes} bytes)",
                Reason="FunctionInvocationRateLimitExceeded",
            )
        self._bytes += len(event.payload)
        self._queue.put_nowait(event)

    async def join(self) -> None:
        await self._queue.join()

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        me = asyncio.current_task()
        while not self._stopping:
            event = await self._queue.get()
            self._bytes -= len(event.payload)
            self._api._in_flight += 1
            self._running.add(me)
            try:
                await loop.run_in_executor(self._api._event_executor, self._run, event)
            finally:
                self._running.discard(me)
                self._api._in_flight -= 1
                self._queue.task_done()

    def _run(self, event: _Event) -> None:
        try:
            self._pool.invoke(
                event.payload,
                wait=True,
                request_id=event.request_id,
                client_context=event.client_context,
                tenant_id=event.tenant_id,
            )
        except PoolClosedError:  # the server stopped before an environment was free
            with self._lock:
                self.unrun += 1
        except Exception:  # noqa: BLE001 - one event's failure must not stop its worker
            _log.exception("Event invocation %s failed in the service", event.request_id)

    def stop(self) -> None:
        """Start nothing more: what is still queued is counted as not run; running events go on."""
        self._stopping = True
        for worker in self._workers:
            if worker not in self._running:
                worker.cancel()
        with self._lock:
            self.unrun += self._queue.qsize()
        while not self._queue.empty():
            self._queue.get_nowait()
            self._queue.task_done()

    async def stopped(self) -> None:
        await asyncio.gather(*self._workers, return_exceptions=True)


def _terminate(pool: EnvironmentPool) -> None:
    """Shutdown: end busy environments too (their invocations return as runtime exits)."""
    pool.terminate()


def _limit_for(invocation_type: str) -> int:
    return ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT


def _too_large(limit: int, close: bool = False) -> RequestEntityTooLargeException:
    return RequestEntityTooLargeException(
        f"Request must be smaller than {limit} bytes for the InvokeFunction operation",
        close=close,
    )


async def _read_body(request: web.Request, limit: int, deadline: float | None = None) -> bytes:
    """The whole body, or an ApiError before more than ``limit`` bytes are held.

    A declared length over the limit is refused unread (aiohttp discards the
    rest for a bounded time, then closes); a chunked body is read until it
    passes the limit, then the connection is closed. A body cut short by the
    client never reaches an environment, nor one still arriving at the
    request's ``deadline`` (event loop time): 408, and the connection is closed.
    """
    if request.content_length is not None and request.content_length > limit:
        raise _too_large(limit)
    body = bytearray()
    try:
        async with asyncio.timeout_at(deadline):
            async for chunk in request.content.iter_any():
                body += chunk
                if len(body) > limit:
                    raise _too_large(limit, close=True)
    except TimeoutError:
        raise _read_timeout(len(body)) from None
    except (HttpProcessingError, ConnectionError, asyncio.IncompleteReadError, RuntimeError) as exc:
        # RuntimeError: aiohttp's "Connection closed." once the connection is gone (closed at its deadline)
        raise InvalidRequestContentException(f"Incomplete request body: {exc}", close=True) from None
    return bytes(body)


def _read_timeout(received: int) -> RequestTimeoutException:
    return RequestTimeoutException(
        f"The request was not received in time (its body stopped after {received} bytes); send it again",
        close=True,
    )


# Invoke's TenantId parameter (tenant isolation mode): 1-256 characters of this set.
_TENANT_ID = re.compile(r"[a-zA-Z0-9._:/=+\-@ ]{1,256}")


def _tenant_id(raw: str | None) -> str | None:
    """``X-Amz-Tenant-Id``, which the runtime hands the handler as ``context.tenant_id``."""
    if raw is None:
        return None
    if not _TENANT_ID.fullmatch(raw):
        raise InvalidParameterValueException(f"Invalid tenant id {shown(raw, SHOWN_CHARS)}")
    return raw


def _client_context(raw: str | None) -> dict[str, Any] | None:
    """``X-Amz-Client-Context``: base64 of a JSON object, at most 3583 characters."""
    if not raw:
        return None
    if len(raw) > CLIENT_CONTEXT_LIMIT:
        raise InvalidRequestContentException(
            f"Client context must be at most {CLIENT_CONTEXT_LIMIT} bytes of base64, got {len(raw)}",
        )
    try:
        value = parse_json_document(base64.b64decode(raw, validate=True), "client context")
    except (binascii.Error, ValueError) as exc:
        raise InvalidRequestContentException(
            f"Client context must be a valid Base64-encoded JSON object: {shown(str(exc), 200)}",
        ) from None
    if not isinstance(value, dict):
        raise InvalidRequestContentException(
            f"Client context must be a valid Base64-encoded JSON object, got a JSON {type(value).__name__}",
        )
    return value


_CLAIMED_VERSION = web.RequestKey("claimed_version", HttpVersion)
_RequestFactory = Callable[[RawRequestMessage, Any, RequestHandler, Any, "asyncio.Task[None]"], web.BaseRequest]


def _http1_only(make_request: _RequestFactory) -> _RequestFactory:
    """Requests as aiohttp builds them, with any version but HTTP/1.0 and 1.1 answered as HTTP/1.1.

    aiohttp's parser takes a request line without a version as HTTP/0.9 and
    accepts ``HTTP/2.0``, and would answer each in its own framing. Here such a
    request is handled as an HTTP/1.1 one that closes the connection, and the
    version it claimed is kept on the request (``_CLAIMED_VERSION``), for
    :meth:`InvokeApi._guard` to refuse it (400 or 505) before anything runs.
    """

    def make(
        message: RawRequestMessage, payload: Any, protocol: RequestHandler, writer: Any, task: asyncio.Task[None]
    ) -> web.BaseRequest:
        claimed = message.version
        if claimed not in (HttpVersion10, HttpVersion11):
            message = message._replace(version=HttpVersion11, should_close=True)
        request = make_request(message, payload, protocol, writer, task)
        request[_CLAIMED_VERSION] = claimed
        return request

    return make


class _LambdaShapedErrors(RequestHandler):
    """aiohttp's connection handler, answering what its parser refuses in Lambda's error shape.

    A request aiohttp cannot parse (a bad request line, header or length, data
    after ``Connection: close``) never reaches the routes:
    aiohttp answers it from ``handle_error`` in plain text. Its own method
    still logs (or raises when an answer has begun); the answer becomes the
    same status as JSON with ``x-amzn-ErrorType``, and the connection closes.
    """

    __slots__ = ()

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        super().handle_error(request, status, exc, message)
        if status >= 500:
            error: ApiError = ServiceException("The local Invoke API failed; see its log", status=status)
        else:
            detail = shown(message or str(exc or "malformed request"), 200)
            error = InvalidRequestContentException(f"Malformed HTTP request: {detail}", status=status)
        answer = _error_response(error, str(uuid.uuid4()))
        answer.force_close()
        return answer


_REQUEST_ID = web.RequestKey("request_id", str)


async def _unknown_operation(request: web.Request) -> web.StreamResponse:
    """Any other path or method: Lambda's answer to an operation it does not know."""
    raise UnknownOperationException("Unknown operation")


def _shutting_down() -> ServiceException:
    return ServiceException("The local Invoke API is shutting down", status=503, close=True)


def _error_response(error: ApiError, request_id: str) -> web.Response:
    response = web.Response(
        status=error.status,
        body=json.dumps(error.body()).encode("utf-8"),
        content_type="application/json",
        headers={"x-amzn-ErrorType": error.error_type, "x-amzn-RequestId": request_id},
    )
    if error.close:
        response.force_close()
    return response


def _invocation_response(invocation: Invocation, tail: bool) -> web.Response:
    headers = {"X-Amz-Executed-Version": "$LATEST", "x-amzn-RequestId": invocation.request_id}
    if invocation.function_error:
        headers["X-Amz-Function-Error"] = "Unhandled"
    if tail:
        headers["X-Amz-Log-Result"] = log_tail(invocation.log)
    return web.Response(status=200, body=invocation.payload, content_type="application/json", headers=headers)


class _Refused(asyncio.Protocol):
    """Over the connection cap: one 503 (which boto3 retries) and the connection is closed."""

    _BODY = json.dumps({"Type": "Service", "message": "Too many open connections"}).encode()
    _ANSWER = (
        b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
        b"x-amzn-ErrorType: ServiceException\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
    )

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        transport.write(self._ANSWER)
        transport.close()


class _Connection(asyncio.Protocol):
    """One client connection: aiohttp's protocol, with a deadline on reading each request.

    A request's head and body must arrive whole within ``request_read_s`` of
    its first byte. Past it, a request still arriving is answered 408 and the
    connection closed at once (no lingering over a body that is not coming).
    The phase also tells the connection cap which connection it may close to
    make room (:meth:`InvokeApi._evict`).
    """

    IDLE, READING, BODY, HANDLING = "idle", "reading", "body", "handling"
    _BODY = json.dumps({"Type": "User", "message": "The request was not received in time; send it again"}).encode()
    _TIMED_OUT = (
        b"HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\n"
        b"x-amzn-ErrorType: RequestTimeoutException\r\nConnection: close\r\n"
        b"Content-Length: " + str(len(_BODY)).encode() + b"\r\n\r\n" + _BODY
    )

    def __init__(self, inner: asyncio.Protocol, api: InvokeApi) -> None:
        self._inner = inner
        self._api = api
        self._loop = asyncio.get_running_loop()
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None
        self.phase = self.IDLE
        self.since = self._loop.time()

    @property
    def deadline(self) -> float:
        """When the request being read must be whole (event loop time)."""
        return self.since + self._api.request_read_s

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport
        self._api._connections[transport] = self
        self._inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.phase == self.IDLE:
            self.phase, self.since = self.READING, self._loop.time()
            self._timer = self._loop.call_at(self.deadline, self._overdue)
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._transport is not None:
            self._api._connections.pop(self._transport, None)
        self._inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self._inner.pause_writing()

    def resume_writing(self) -> None:
        self._inner.resume_writing()

    def head_read(self) -> None:
        """The handler has the request's head; the body, if any, must still arrive by :attr:`deadline`."""
        if self.phase == self.READING:
            self.phase = self.BODY

    def body_read(self) -> None:
        """The request is whole: what runs now (an invocation) is never closed to make room."""
        self._cancel_timer()
        self.phase = self.HANDLING

    def answered(self) -> None:
        self._cancel_timer()
        self.phase, self.since = self.IDLE, self._loop.time()

    def expire(self) -> None:
        """Close now: 408 if a request was arriving, silently if idle (as an idle timeout would)."""
        if self._transport is None or self._transport.is_closing():
            return
        if self.phase in (self.READING, self.BODY):
            self._transport.write(self._TIMED_OUT)
        self._transport.close()

    def _overdue(self) -> None:
        self._timer = None
        if self.phase in (self.READING, self.BODY):
            self.expire()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


@contextlib.contextmanager
def running_api(
    pools: dict[str, EnvironmentPool], host: str = "127.0.0.1", port: int = 0, **options: Any
) -> Iterator[InvokeApi]:
    """Serve in a background thread for the duration of a ``with`` block."""
    server = InvokeApi(pools, host, port, **options)
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="invoke-api")
    thread.start()
    server._ready.wait(10)
    try:
        yield server
    finally:
        server.close()
        thread.join(timeout=30)
