"""The Invoke API's limits on slow clients, over real sockets.

A request's head and body must arrive within a deadline of its first byte
(``request_read_s``, short here); a connection that trickles its request, or
idles, is closed to make room for a new one when the connection cap is
reached, so slow clients cannot lock others out; only connections running an
invocation count against the cap for good.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from local_runtime.api_server import InvokeApi, running_api
from local_runtime.config import FunctionConfig
from local_runtime.pool import EnvironmentPool
from tests.conftest import ROOT
from tests.service.test_invoke_http import connect, exchange, is_closed, read_answer, request

FIXTURES = "tests.fixtures.handlers"
READ_S = 1.5


def ends(sock: socket.socket, wait: float) -> bool:
    """The server closes the connection within ``wait`` seconds (whatever it answered first)."""
    sock.settimeout(wait)
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


@pytest.fixture(scope="module")
def api() -> Iterator[InvokeApi]:
    pools = {
        "whoami": EnvironmentPool(FunctionConfig(task_root=ROOT, name="whoami", handler=f"{FIXTURES}.whoami")),
        "sleepy": EnvironmentPool(FunctionConfig(task_root=ROOT, name="sleepy", handler=f"{FIXTURES}.sleepy")),
    }
    with running_api(pools, max_connections=8, request_read_s=READ_S) as server:
        yield server


def test_a_declared_body_never_sent_is_answered_408_and_closed_in_bounded_time(api):
    with connect(api) as sock:
        started = time.monotonic()
        sock.sendall(request(body=b"{}", headers={"Content-Length": "100"}))
        answer = read_answer(sock)
        elapsed = time.monotonic() - started
        closed = is_closed(sock)

    assert answer is not None and answer.status == 408 and answer.error_type == "RequestTimeoutException"
    assert answer.closes and closed
    assert elapsed < READ_S + 5


def test_a_head_that_never_ends_is_answered_408_and_closed(api):
    with connect(api) as sock:
        sock.sendall(b"POST /2015-03-31/functions/whoami/invocations HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
        answer = read_answer(sock)

    assert answer is not None and answer.status == 408 and answer.closes


def test_a_head_trickled_a_byte_at_a_time_still_ends_at_the_deadline(api):
    raw = request(body=b"{}")
    with connect(api) as sock:
        started = time.monotonic()
        sock.settimeout(0.2)
        answer = None
        for byte in raw[:-10]:
            sock.sendall(bytes([byte]))
            try:
                answer = read_answer(sock)
                break
            except TimeoutError:
                continue
            except (BrokenPipeError, ConnectionResetError):
                break
        elapsed = time.monotonic() - started

    assert answer is None or answer.status == 408
    assert elapsed < READ_S + 5


def test_slow_clients_over_the_cap_do_not_lock_others_out(api):
    """Twelve connections (the cap is 8) trickle a body a byte every 0.3 s; others are served meanwhile."""
    slow = [connect(api) for _ in range(12)]
    stop = threading.Event()

    def trickle() -> None:
        for sock in slow:
            with contextlib.suppress(OSError):
                sock.sendall(request(body=b"", headers={"Content-Length": "1000"}))
        while not stop.wait(0.3):
            for sock in slow:
                try:
                    sock.sendall(b" ")
                except OSError:
                    continue

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)
        answers = [exchange(api, request(body=b'{"n": %d}' % n)) for n in range(6)]
        closed = [ends(sock, wait=READ_S + 5) for sock in slow]
    finally:
        stop.set()
        thread.join(5)
        for sock in slow:
            sock.close()

    assert [a.status if a else None for a in answers] == [200] * 6
    assert closed == [True] * 12


def test_connections_running_invocations_are_never_closed_to_make_room(api):
    """Only when every slot runs an invocation is a new connection refused (503, which SDKs retry)."""
    busy = [connect(api) for _ in range(8)]
    try:
        for sock in busy:
            sock.sendall(request("/2015-03-31/functions/sleepy/invocations", body=b'{"seconds": 4}'))
        time.sleep(1.0)
        refused = exchange(api, request())
        answers = [read_answer(sock) for sock in busy]
    finally:
        for sock in busy:
            sock.close()

    assert refused is not None and refused.status == 503 and refused.closes
    assert [a.status if a else None for a in answers] == [200] * 8
