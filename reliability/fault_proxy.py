"""An HTTP/1.1 proxy on loopback that breaks S3 requests on purpose.

It sits between the real client (the handler's aiobotocore) and a real S3
endpoint (moto server), so every fault travels the same code path a
production fault would: sockets, aiohttp, botocore's retry handler, the
handler's cleanup. A raw asyncio stream proxy (rather than an aiohttp server)
is what gives byte-level control: a reset can land before or after the
response headers, a body can stop half-way, a response can stall.

Requests are forwarded byte for byte, the ``Host`` header included: SigV4
signs it, and a rewriting proxy would be testing itself rather than the
client. One client connection maps to one upstream connection, so keep-alive
and connection reuse behave as they would against S3.

Which fault hits which request is decided by a callback (see
``reliability.schedules``), given the request's S3 operation and how many
requests of that operation came before it, so a seeded schedule replays the
same faults even though listing and part uploads run concurrently.

A ``latency`` model (``testkit/latency_model.py``) adds S3's per-operation
response time to every request on top of the schedule's faults, so a fault
run can also show how the handler behaves when every LIST page costs 0.3 s.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from testkit.latency_model import ZERO, LatencyModel
from testkit.s3_operations import s3_operation


class Fault(enum.StrEnum):
    """What the proxy does to one request."""

    NONE = "none"
    LATENCY = "latency"  # forwarded normally after an added delay
    SLOWDOWN_503 = "503-slowdown"  # answered by the proxy, never reaches S3
    INTERNAL_500 = "500-internal"  # answered by the proxy, never reaches S3
    RESET_BEFORE_HEADERS = "reset-before-headers"  # S3 did the work; the client sees a reset
    RESET_AFTER_HEADERS = "reset-after-headers"  # status line and headers, then a reset
    TRUNCATED_BODY = "truncated-body"  # half the response, then the connection closes
    STALL = "stall"  # S3 answered, the proxy holds it past the client's read timeout


@dataclass(frozen=True)
class Action:
    fault: Fault = Fault.NONE
    delay_s: float = 0.0  # added before the request is handled, whatever the fault


@dataclass(frozen=True)
class RequestInfo:
    """Enough of a request to decide its fault and to report it."""

    operation: str  # S3 API name, e.g. ListObjectsV2, UploadPart
    nth: int  # how many requests of this operation the proxy saw before this one
    method: str
    target: str


Decider = Callable[[RequestInfo], Action]


def _error_response(status: int, reason: str, code: str, message: str) -> bytes:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{message}</Message><RequestId>FAULTPROXY</RequestId></Error>"
    ).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/xml\r\n"
        f"Content-Length: {len(body)}\r\nx-amz-request-id: FAULTPROXY\r\n\r\n"
    ).encode()
    return head + body


CANNED = {
    Fault.SLOWDOWN_503: _error_response(503, "Slow Down", "SlowDown", "Please reduce your request rate."),
    Fault.INTERNAL_500: _error_response(
        500, "Internal Server Error", "InternalError", "We encountered an internal error. Please try again."
    ),
}
MAX_HEAD_BYTES = 64 * 1024


class _Closed(Exception):
    """The peer went away between messages: the normal end of a keep-alive connection."""


@dataclass
class _Message:
    head: bytes
    start_line: str
    headers: dict[str, str]
    body: bytes = b""

    @property
    def raw(self) -> bytes:
        return self.head + self.body

    def wants_close(self) -> bool:
        return "close" in self.headers.get("connection", "").lower() or self.start_line.startswith("HTTP/1.0")


async def _read_head(reader: asyncio.StreamReader) -> _Message:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        raise _Closed from exc
    except asyncio.LimitOverrunError as exc:
        raise ConnectionError("header block too large") from exc
    if len(head) > MAX_HEAD_BYTES:
        raise ConnectionError("header block too large")
    lines = head.decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return _Message(head=head, start_line=lines[0], headers=headers)


async def _read_body(reader: asyncio.StreamReader, message: _Message, *, until_eof: bool) -> None:
    """Read the message body raw (chunk framing kept), so it can be forwarded or cut as is."""
    if "chunked" in message.headers.get("transfer-encoding", "").lower():
        raw = bytearray()
        while True:
            size_line = await reader.readuntil(b"\r\n")
            raw += size_line
            size = int(size_line.split(b";")[0].strip() or b"0", 16)
            if size == 0:
                while True:  # trailers, then the blank line
                    trailer = await reader.readuntil(b"\r\n")
                    raw += trailer
                    if trailer == b"\r\n":
                        break
                break
            raw += await reader.readexactly(size + 2)
        message.body = bytes(raw)
    elif "content-length" in message.headers:
        message.body = await reader.readexactly(int(message.headers["content-length"]))
    elif until_eof:
        message.body = await reader.read()
        message.headers["connection"] = "close"


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP RST (SO_LINGER 0), which is what a dropped connection looks like to the client."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@dataclass
class FaultProxy:
    """Forward to ``upstream`` (``http://host:port``), injecting what ``decide`` says."""

    upstream: str
    decide: Decider = field(default=lambda info: Action())
    stall_s: float = 2.0
    log: list[tuple[RequestInfo, Action]] = field(default_factory=list)
    latency: LatencyModel = ZERO  # S3's own response time, added to every request

    def __post_init__(self) -> None:
        parts = urlsplit(self.upstream)
        self._up_host = parts.hostname or "127.0.0.1"
        self._up_port = parts.port or 80
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def reset_schedule(self, decide: Decider) -> None:
        """Start a new schedule: new decider, request counters and log back to zero."""
        with self._lock:
            self.decide = decide
            self._counts = {}
            self.log = []

    def _next(self, method: str, target: str) -> tuple[RequestInfo, Action]:
        operation = s3_operation(method, target)
        with self._lock:
            nth = self._counts.get(operation, 0)
            self._counts[operation] = nth + 1
            info = RequestInfo(operation=operation, nth=nth, method=method, target=target)
            action = self.decide(info)
            self.log.append((info, action))
        return info, action

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        self._server = await asyncio.start_server(self._serve, host, port, limit=MAX_HEAD_BYTES)
        bound = self._server.sockets[0].getsockname()
        return f"http://{bound[0]}:{bound[1]}"

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None = None
        try:
            while True:
                request = await _read_head(reader)
                if request.headers.get("expect", "").lower() == "100-continue":
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                    await writer.drain()
                await _read_body(reader, request, until_eof=False)
                method, _, rest = request.start_line.partition(" ")
                info, action = self._next(method, rest.rpartition(" ")[0])
                delay = action.delay_s + self.latency.delay(info.operation, len(request.body))
                if delay:
                    await asyncio.sleep(delay)
                if action.fault in CANNED:
                    writer.write(CANNED[action.fault])
                    await writer.drain()
                    continue
                upstream, response = await self._exchange(upstream, request)
                up_reader, up_writer = upstream
                while response.start_line.split(" ")[1:2] and response.start_line.split(" ")[1].startswith("1"):
                    response = await _read_head(up_reader)  # an interim 100 Continue: the client already had one
                if method != "HEAD" and not response.start_line.split(" ")[1].startswith(("204", "304")):
                    await _read_body(up_reader, response, until_eof=True)
                if response.wants_close():
                    up_writer.close()
                    upstream = None
                if await self._misbehave(action.fault, writer, response):
                    return
                writer.write(response.raw)
                await writer.drain()
                if request.wants_close() or response.wants_close():
                    break
        except (_Closed, ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass  # the client or S3 hung up, or sent something unparsable: end this connection only
        except asyncio.CancelledError:
            pass  # stop(): the connection task ends quietly rather than failing the server callback
        finally:
            if upstream is not None:
                upstream[1].close()
            if not writer.transport.is_closing():
                writer.close()
            self._tasks.discard(task)

    async def _exchange(
        self, upstream: tuple[asyncio.StreamReader, asyncio.StreamWriter] | None, request: _Message
    ) -> tuple[tuple[asyncio.StreamReader, asyncio.StreamWriter], _Message]:
        """Send the request upstream and read the response head.

        A kept-alive upstream connection that the server closed while idle is
        replaced once, as any proxy does; a fresh connection failing is real
        and propagates (the client then sees its connection close).
        """
        for _ in range(2):
            fresh = upstream is None
            if upstream is None:
                upstream = await asyncio.open_connection(self._up_host, self._up_port, limit=MAX_HEAD_BYTES)
            try:
                upstream[1].write(request.raw)
                await upstream[1].drain()
                return upstream, await _read_head(upstream[0])
            except (_Closed, ConnectionError):
                upstream[1].close()
                upstream = None
                if fresh:
                    raise
        raise ConnectionError("upstream closed twice")

    async def _misbehave(self, fault: Fault, writer: asyncio.StreamWriter, response: _Message) -> bool:
        """Apply a fault that needs S3's real answer; True when the connection is finished."""
        if fault is Fault.RESET_BEFORE_HEADERS:
            _reset(writer)
            return True
        if fault is Fault.RESET_AFTER_HEADERS:
            writer.write(response.head)
            await writer.drain()
            _reset(writer)
            return True
        if fault is Fault.TRUNCATED_BODY:
            # Half the body; an empty body gets half its headers, which is just as incomplete.
            writer.write(
                response.head + response.body[: len(response.body) // 2]
                if response.body
                else response.head[: len(response.head) // 2]
            )
            await writer.drain()
            writer.close()
            return True
        if fault is Fault.STALL:
            await asyncio.sleep(self.stall_s)
            _reset(writer)
            return True
        return False


@contextlib.contextmanager
def running_proxy(
    upstream: str, stall_s: float = 2.0, latency: LatencyModel = ZERO
) -> Iterator[tuple[FaultProxy, str]]:
    """Run a FaultProxy on its own event loop in a daemon thread; yield it and its URL.

    Its own thread and loop, because the handler under test runs ``asyncio.run``
    on the caller's thread and must not share a loop with the thing breaking it.
    """
    proxy = FaultProxy(upstream, stall_s=stall_s, latency=latency)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="fault-proxy", daemon=True)
    thread.start()
    url = asyncio.run_coroutine_threadsafe(proxy.start(), loop).result(timeout=10)
    try:
        yield proxy, url
    finally:
        asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(timeout=10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
