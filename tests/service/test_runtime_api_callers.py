"""An environment's Runtime API serves its own runtime, not whoever asks.

Any local process could GET ``/next`` on an environment's port and take the
next event (the runtime never sees it, the caller gets ``Sandbox.Timedout``),
or post a forged ``/response``. The API now serves only the environment's
process and its descendants (found through the kernel's connection table on
Linux), refuses a second ``/next`` while one waits, and logs each refused
caller in one line with its pid and command.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from local_runtime import peers, runtime_api
from local_runtime.config import FunctionConfig
from local_runtime.pool import EnvironmentPool
from local_runtime.runtime_api import InvocationRequest, RuntimeApi
from tests.conftest import ROOT, Captured

linux_only = pytest.mark.skipif(not os.path.exists("/proc/net/tcp"), reason="needs Linux's /proc/net/tcp")
NEXT = "/2018-06-01/runtime/invocation/next"


def _call(address: str, path: str = NEXT, data: bytes | None = None, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://{address}{path}", data=data)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.fixture
def warm(sink: Captured) -> Iterator[tuple[EnvironmentPool, Any]]:
    """A pool whose one environment is warm: its runtime waits in ``GET /next``."""
    pool = EnvironmentPool(
        FunctionConfig(task_root=ROOT, name="whoami", handler="tests.fixtures.handlers.whoami"), sink
    )
    pool.invoke(b'{"n": 1}')
    [environment] = pool._idle
    yield pool, environment
    pool.close()


@linux_only
def _me() -> str:
    """This process's command line as the log names it (a pytest run, or an xdist worker's python -c)."""
    return " ".join(psutil.Process().cmdline())


def test_another_local_process_cannot_take_the_next_event(warm, caplog, sink):
    pool, environment = warm
    address = environment._api.address
    with caplog.at_level(logging.WARNING, logger="local_runtime.http_guard"):
        status, body = _call(address)

    assert status == 403 and json.loads(body)["errorType"] == "AccessDeniedException"
    [line] = [r.getMessage() for r in caplog.records if "refused GET" in r.getMessage()]
    assert f"pid {os.getpid()} ({_me()[:20]}" in line  # the caller, named by pid and command
    assert f"pid {environment._process.pid}" in line and "\n" not in line
    assert not any(line.startswith("Runtime API rejected") for line in sink)  # not the runtime's doing
    # A forged answer is refused too, and the runtime still gets and answers the next event.
    status, _ = _call(address, "/2018-06-01/runtime/invocation/forged/response", data=b'"forged"')
    assert status == 403
    invocation = pool.invoke(b'{"n": 2}')
    assert json.loads(invocation.payload)["event"] == {"n": 2} and not invocation.cold_start


@linux_only
def test_a_descendant_of_the_environments_process_is_served(tmp_path, sink):
    """A custom runtime that is a shell script calling curl: curl is the environment process's child."""
    bootstrap = tmp_path / "bootstrap"
    bootstrap.write_text(
        "#!/bin/sh\nAPI=http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime\n"
        "while true; do\n"
        '  H=$(mktemp); BODY=$(curl -sS -D "$H" "$API/invocation/next")\n'
        "  ID=$(grep -i '^lambda-runtime-aws-request-id:' \"$H\" | cut -d' ' -f2 | tr -d '\\r')\n"
        '  (curl -sS -o /dev/null -X POST -d "$BODY" "$API/invocation/$ID/response")\n'
        "done\n"
    )
    bootstrap.chmod(0o755)
    with EnvironmentPool(FunctionConfig(name="custom", runtime="provided", task_root=tmp_path), sink) as pool:
        first, second = pool.invoke(b'{"a": 1}'), pool.invoke(b'{"a": 2}')

    assert (first.payload, second.payload) == (b'{"a": 1}', b'{"a": 2}')


def test_a_second_next_while_one_waits_is_refused_and_the_first_gets_the_event():
    server = RuntimeApi()
    server.start()
    try:
        first: list[tuple[int, bytes]] = []
        waiter = threading.Thread(target=lambda: first.append(_call(server.address)))
        waiter.start()
        while server.events.empty():  # the first /next has arrived and waits
            time.sleep(0.01)
        status, body = _call(server.address)
        server.dispatch(InvocationRequest("req-1", b'{"secret": 1}', deadline_ms=2**42, function_arn="arn:x"))
        waiter.join(10)
    finally:
        server.close()

    assert status == 403 and json.loads(body)["errorType"] == "InvalidStateTransition"
    assert first == [(200, b'{"secret": 1}')]


@linux_only
def test_identify_names_the_process_holding_the_other_end():
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        accepted, peer = listener.accept()
        unrelated = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            mine = peers.identify(peer, listener.getsockname(), os.getpid())
            foreign = peers.identify(peer, listener.getsockname(), unrelated.pid)
        finally:
            unrelated.kill()
            unrelated.wait()
            client.close()
            accepted.close()

    assert mine.allowed is True and mine.pid == os.getpid()
    assert foreign.allowed is False and foreign.pid == os.getpid() and foreign.command.startswith(_me()[:20])
    assert foreign.describe().startswith(f"pid {os.getpid()} (")


def test_where_the_platform_cannot_tell_calls_are_served_and_that_is_said_once(monkeypatch, caplog):
    monkeypatch.setattr(peers, "socket_inode", lambda peer, server: None)
    monkeypatch.setattr(runtime_api, "_unchecked_said", False)
    server = RuntimeApi(only_its_process=True)
    server.start()
    server.set_process(os.getpid() + 10_000_000)  # nobody: only the platform's silence lets the call through
    server.dispatch(InvocationRequest("req-1", b"{}", deadline_ms=2**42, function_arn="arn:x"))
    try:
        with caplog.at_level(logging.WARNING, logger="local_runtime.runtime_api"):
            answers = [_call(server.address)[0], _call(server.address)[0]]
    finally:
        server.close()

    assert answers == [200, 200]
    said = [r.getMessage() for r in caplog.records if "cannot tell which local process" in r.getMessage()]
    assert len(said) == 1 and "/proc/net" in said[0]
