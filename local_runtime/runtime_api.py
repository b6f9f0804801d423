"""Lambda's Runtime API, one server per execution environment, on loopback.

The runtime inside an environment (AWS's ``awslambdaric``, or any custom
``bootstrap``) finds it through ``AWS_LAMBDA_RUNTIME_API`` and drives it:
``GET /next`` to take an invocation (the first call ends init),
``POST /invocation/{id}/response`` or ``/error`` to answer it, ``POST
/init/error`` to report a failed init. Status codes and error bodies are the
ones Lambda's own Runtime API answers (see shared/reference/runtime-api.md);
the service side (:mod:`local_runtime.environment`) only sees what happened,
as :class:`RuntimeEvent` objects on a queue, and decides what it means.

All servers share one asyncio loop in a daemon thread; the environment code is
synchronous and talks to its server through thread-safe calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
import queue
import threading
import weakref
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError

from local_runtime import peers
from local_runtime.http_guard import allowed_hosts, log_refusal, refusal

_T = TypeVar("_T")

MAX_RESPONSE_BYTES = 6_291_556  # 6 MiB + 100 B: the buffered response limit of Lambda's Runtime API
_PREFIX = "/2018-06-01/runtime"
_ERROR_TYPE = "Lambda-Runtime-Function-Error-Type"
OWNER_WAIT_S = 5.0  # a call that arrives before the environment's process id is known waits this long for it
_log = logging.getLogger(__name__)
_unchecked_said = False  # "cannot tell who calls" is said once per process


@dataclass(frozen=True)
class InvocationRequest:
    """What ``/next`` hands the runtime: the event and Lambda-Runtime-* headers."""

    request_id: str
    payload: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str = ""
    client_context: Any = None
    identity: Any = None
    tenant_id: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {
            "Content-Type": "application/json",  # awslambdaric 4.2.2 crashes without one
            "Lambda-Runtime-Aws-Request-Id": self.request_id,
            "Lambda-Runtime-Deadline-Ms": str(self.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
        }
        if self.trace_id:
            headers["Lambda-Runtime-Trace-Id"] = self.trace_id
        if self.client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = json.dumps(self.client_context)
        if self.identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = json.dumps(self.identity)
        if self.tenant_id:
            headers["Lambda-Runtime-Aws-Tenant-Id"] = self.tenant_id
        return headers


class EventKind(enum.Enum):
    """What a :class:`RuntimeEvent` reports."""

    NEXT = "next"  # asked for work: init, or the previous invocation, is over
    RESPONSE = "response"
    ERROR = "error"  # the function's error, posted to /invocation/{id}/error
    TOO_LARGE = "too_large"  # a response over MAX_RESPONSE_BYTES
    INIT_ERROR = "init_error"
    REJECTED = "rejected"  # a call the API refused; the event's detail says why
    EXIT = "exit"  # the process is gone (the environment notices this, not the API)


ANSWERS = frozenset({EventKind.RESPONSE, EventKind.ERROR, EventKind.TOO_LARGE})  # what ends an invocation's wait


@dataclass(frozen=True)
class RuntimeEvent:
    """One thing the runtime did, for the service side."""

    kind: EventKind
    request_id: str = ""
    body: bytes = b""
    error_type: str | None = None
    detail: str = ""


def _say_unchecked(why: str) -> None:
    global _unchecked_said
    if not _unchecked_said:
        _unchecked_said = True
        _log.warning("Runtime API: cannot tell which local process is calling (%s); any local process may call", why)


def _error(status: int, error_type: str, message: str) -> web.Response:
    # No newline after the JSON: awslambdaric prints a refusal's body inside its own log line.
    body = json.dumps({"errorMessage": message, "errorType": error_type})
    return web.Response(status=status, text=body, content_type="application/json")


def _accepted() -> web.Response:
    return web.Response(status=202, text='{"status":"OK"}\n', content_type="application/json")


class _Loop:
    """The one event loop every Runtime API server runs on."""

    _lock = threading.Lock()
    _loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def run(cls, coroutine: Coroutine[Any, Any, _T], timeout: float = 10) -> _T:
        with cls._lock:
            if cls._loop is None:
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, daemon=True, name="runtime-api").start()
                cls._loop = loop
        return asyncio.run_coroutine_threadsafe(coroutine, cls._loop).result(timeout)

    @classmethod
    def call_soon(cls, callback: Any, *args: Any) -> None:
        assert cls._loop is not None
        cls._loop.call_soon_threadsafe(callback, *args)


class RuntimeApi:
    """The Runtime API of one environment: states Ready → Running → answered, one invocation at a time.

    With ``only_its_process``, calls are served only from the process given to
    :meth:`set_process` and its descendants (see :mod:`local_runtime.peers`),
    checked once per connection; without it (a test driving the API by hand)
    any loopback caller that passes the Host/Origin rule is served.
    """

    def __init__(self, *, only_its_process: bool = False) -> None:
        self.events: queue.Queue[RuntimeEvent] = queue.Queue()
        self._only_its_process = only_its_process
        self._owner: int | None = None
        self._owner_known: asyncio.Event | None = None
        self._callers: weakref.WeakKeyDictionary[Any, peers.Peer] = weakref.WeakKeyDictionary()
        self._waiting_transport: Any = None
        self._runner: web.AppRunner | None = None
        self.address = ""
        self._hosts: frozenset[str] = frozenset()
        self._initialised = False
        self._init_failed = False
        self._current: InvocationRequest | None = None  # dispatched and not answered
        self._answered: set[str] = set()
        self._waiting: asyncio.Future[InvocationRequest] | None = None
        self._pending: InvocationRequest | None = None  # dispatched before the runtime asked

    # -- called from the service side (any thread) ---------------------------------

    def start(self) -> str:
        """Listen on a free loopback port; returns ``host:port`` for ``AWS_LAMBDA_RUNTIME_API``."""
        return _Loop.run(self._start())

    def set_process(self, pid: int) -> None:
        """The environment's process: it and its descendants may call (with ``only_its_process``)."""
        _Loop.call_soon(self._set_owner, pid)

    def dispatch(self, request: InvocationRequest) -> None:
        """Hand the runtime its next invocation (it may already be waiting in ``/next``)."""
        _Loop.call_soon(self._dispatch, request)

    def close(self) -> None:
        if self._runner is not None:
            _Loop.run(self._close())
            self._runner = None

    async def _close(self) -> None:
        if self._waiting is not None and not self._waiting.done():
            self._waiting.cancel()  # a /next still waiting would hold the shutdown up
        assert self._runner is not None
        await self._runner.cleanup()

    # -- the server (event loop thread) ---------------------------------------------

    def _set_owner(self, pid: int) -> None:
        self._owner = pid
        if self._owner_known is not None:
            self._owner_known.set()

    async def _start(self) -> str:
        self._owner_known = asyncio.Event()
        app = web.Application(
            client_max_size=64 * 1024 * 1024,  # read big responses to answer them 413
            middlewares=[self._guard],
        )
        app.add_routes(
            [
                web.get(f"{_PREFIX}/invocation/next", self._next),
                web.post(f"{_PREFIX}/invocation/{{request_id}}/response", self._response),
                web.post(f"{_PREFIX}/invocation/{{request_id}}/error", self._invocation_error),
                web.post(f"{_PREFIX}/init/error", self._init_error),
            ]
        )
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.address = f"{host}:{port}"
        self._hosts = allowed_hosts(port, host)
        return self.address

    @web.middleware
    async def _guard(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """Only the runtime may call: no browser, no foreign Host (see :mod:`local_runtime.http_guard`)."""
        reason = refusal(request, self._hosts)
        if reason is not None:
            log_refusal(f"Runtime API {self.address}", request, reason)
            refused = _error(403, "AccessDeniedException", f"The Runtime API refused {reason}")
            refused.force_close()
            return refused
        caller = await self._caller(request)
        if caller.allowed is False:
            log_refusal(
                f"Runtime API {self.address}",
                request,
                f"not this environment's process (pid {self._owner}) or one of its children",
                who=caller.describe(),
            )
            refused = _error(
                403, "AccessDeniedException", "The Runtime API serves only its execution environment's processes"
            )
            refused.force_close()
            return refused
        answer: web.StreamResponse = await handler(request)
        return answer

    async def _caller(self, request: web.Request) -> peers.Peer:
        """Who is calling, decided once per connection."""
        if not self._only_its_process:
            return peers.Peer(True)
        transport = request.transport
        if transport is None:
            return peers.Peer(False, why="a closed connection")
        known = self._callers.get(transport)
        if known is not None:
            return known
        if self._owner is None:
            assert self._owner_known is not None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._owner_known.wait(), OWNER_WAIT_S)
        if self._owner is None:
            caller = peers.Peer(False, why="a caller that came before the environment's process")
        else:
            peer, server = transport.get_extra_info("peername"), transport.get_extra_info("sockname")
            caller = peers.identify(peer[:2], server[:2], self._owner)
            if caller.allowed is None:
                _say_unchecked(caller.why)
        self._callers[transport] = caller
        return caller

    def _dispatch(self, request: InvocationRequest) -> None:
        self._current = request
        if self._waiting is not None and not self._waiting.done():
            self._waiting.set_result(request)
            self._waiting = None
        else:
            self._pending = request

    def _reject(self, status: int, error_type: str, message: str, request_id: str = "") -> web.Response:
        self.events.put(RuntimeEvent(EventKind.REJECTED, request_id, detail=f"{status} {error_type}: {message}"))
        return _error(status, error_type, message)

    async def _next(self, request: web.Request) -> web.StreamResponse:
        waiting = self._waiting
        if waiting is not None and not waiting.done():
            if self._waiting_transport is not None and not self._waiting_transport.is_closing():
                return self._reject(
                    403,
                    "InvalidStateTransition",
                    "A runtime is already waiting for the next invocation: one GET /next at a time",
                )
            waiting.cancel()  # its caller hung up: this one takes its place
            self._waiting = None
        if self._init_failed:
            return self._reject(
                403,
                "InvalidStateTransition",
                "State transition from InitError to Ready failed for runtime. Error: State transition is not allowed",
            )
        current = self._current
        if current is not None and current.request_id not in self._answered:
            # Asking again before answering: Lambda hands out the same event again.
            return web.Response(body=current.payload, headers=current.headers())
        self._initialised = True
        self.events.put(RuntimeEvent(EventKind.NEXT))
        if self._pending is not None:
            invocation, self._pending = self._pending, None
        else:
            self._waiting = asyncio.get_running_loop().create_future()
            self._waiting_transport = request.transport
            invocation = await self._waiting  # no timeout: the environment may idle for long
        return web.Response(body=invocation.payload, headers=invocation.headers())

    async def _read(self, request: web.Request, request_id: str = "") -> bytes | web.Response:
        """The call's whole body, or the refusal of a body cut short.

        A runtime ended mid-post (the function timed out while it sent a slow
        ``/response``) cuts its connection: that is no news for the log.
        """
        try:
            return await request.read()
        except (ConnectionError, HttpProcessingError):
            return self._reject(400, "InvalidRequestContentException", "The body was cut short", request_id)

    def _check_answer(self, request_id: str) -> web.Response | None:
        """400 for an id that is not the current invocation's, 403 for a second answer."""
        current = self._current
        if current is None or request_id != current.request_id:
            return self._reject(400, "InvalidRequestID", "Invalid request ID", request_id)
        if request_id in self._answered:
            return self._reject(
                403,
                "InvalidStateTransition",
                "State transition from RuntimeResponseSentState to InvocationResponse failed for runtime. "
                "Error: State transition is not allowed",
                request_id,
            )
        return None

    async def _response(self, request: web.Request) -> web.StreamResponse:
        request_id = request.match_info["request_id"]
        refused = self._check_answer(request_id)
        if refused is not None:
            return refused
        try:
            body: bytes | web.Response | None = await self._read(request, request_id)
        except web.HTTPRequestEntityTooLarge:  # beyond what the server reads at all: too large either way
            body = None
        if isinstance(body, web.Response):
            return body
        self._answered.add(request_id)
        if body is None or len(body) > MAX_RESPONSE_BYTES:
            self.events.put(RuntimeEvent(EventKind.TOO_LARGE, request_id))
            return _error(
                413, "RequestEntityTooLarge", f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            )
        self.events.put(RuntimeEvent(EventKind.RESPONSE, request_id, body))
        return _accepted()

    async def _invocation_error(self, request: web.Request) -> web.StreamResponse:
        request_id = request.match_info["request_id"]
        refused = self._check_answer(request_id)
        if refused is not None:
            return refused
        body = await self._read(request, request_id)
        if isinstance(body, web.Response):
            return body
        self._answered.add(request_id)
        self.events.put(RuntimeEvent(EventKind.ERROR, request_id, body, request.headers.get(_ERROR_TYPE)))
        return _accepted()

    async def _init_error(self, request: web.Request) -> web.StreamResponse:
        if self._initialised:
            return self._reject(
                403,
                "InvalidStateTransition",
                "State transition from Ready to InitError failed for runtime. Error: State transition is not allowed",
            )
        body = await self._read(request)
        if isinstance(body, web.Response):
            return body
        self._init_failed = True
        self.events.put(RuntimeEvent(EventKind.INIT_ERROR, body=body, error_type=request.headers.get(_ERROR_TYPE)))
        return _accepted()
