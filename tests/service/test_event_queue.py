"""Event invocations: a bounded FIFO served by workers that wait for an environment.

Accepted (202) means it will run, in the order accepted, as soon as an
environment is free; nothing polls while it waits, so a long queue costs no
CPU; a full queue is answered 429 ``TooManyRequestsException``; and a server
stopped with events still queued says how many in one line, promptly, even
under SIGTERM with the queue full.
"""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
from collections.abc import Iterator

import psutil
import pytest

from local_runtime.api_server import InvokeApi, running_api
from local_runtime.config import FunctionConfig
from local_runtime.pool import EnvironmentPool
from tests.conftest import ROOT, Captured, start_serve

FIXTURES = "tests.fixtures.handlers"
PATH = "/2015-03-31/functions/{}/invocations"


def post(
    connection: http.client.HTTPConnection, name: str, body: bytes, invocation_type: str = "Event"
) -> tuple[int, dict[str, str]]:
    connection.request(
        "POST",
        PATH.format(name),
        body=body,
        headers={"X-Amz-Invocation-Type": invocation_type, "Content-Type": "application/json"},
    )
    answer = connection.getresponse()
    answer.read()
    return answer.status, {k.lower(): v for k, v in answer.getheaders()}


def client(api: InvokeApi) -> http.client.HTTPConnection:
    host, port = api.server_address[:2]
    return http.client.HTTPConnection(host, port, timeout=30)  # sends Host: 127.0.0.1:port


@pytest.fixture
def one_environment(sink: Captured) -> Iterator[InvokeApi]:
    pools = {
        "sleepy": EnvironmentPool(
            FunctionConfig(task_root=ROOT, name="sleepy", handler=f"{FIXTURES}.sleepy", timeout_s=30),
            sink,
            max_environments=1,
        ),
    }
    with running_api(pools, event_queue_max=3, shutdown_grace_s=0.5) as server:
        yield server


def test_a_full_event_queue_is_answered_429_too_many_requests(one_environment, sink):
    connection = client(one_environment)
    first, _ = post(connection, "sleepy", b'{"seconds": 3}')
    time.sleep(0.5)  # the worker took it: the one environment is busy
    queued = [post(connection, "sleepy", b'{"seconds": 0}')[0] for _ in range(3)]
    refused, headers = post(connection, "sleepy", b'{"seconds": 0}')
    connection.close()
    one_environment.wait_for_async(20)

    assert first == 202 and queued == [202, 202, 202]
    assert refused == 429 and headers["x-amzn-errortype"] == "TooManyRequestsException"
    assert sink.starts() == 4  # every accepted event ran; the refused one did not


def test_events_run_in_the_order_accepted_and_waiting_costs_no_cpu(sink):
    pools = {
        "sleepy": EnvironmentPool(
            FunctionConfig(task_root=ROOT, name="sleepy", handler=f"{FIXTURES}.sleepy", timeout_s=30),
            sink,
            max_environments=1,
        ),
    }
    with running_api(pools) as server:
        connection = client(server)
        post(connection, "sleepy", b'{"seconds": 2.5}')
        time.sleep(0.3)
        ids = [post(connection, "sleepy", b'{"seconds": 0}')[1]["x-amzn-requestid"] for _ in range(200)]
        me = psutil.Process()
        before = sum(me.cpu_times()[:2])
        time.sleep(1.5)  # 200 events wait for the one environment
        used = sum(me.cpu_times()[:2]) - before
        server.wait_for_async(60)
        connection.close()

    started = [line.split()[2] for line in sink if line.startswith("START RequestId")]
    assert started[1:] == ids  # first in, first out
    assert used < 0.5, f"waiting events used {used:.2f} s of CPU in 1.5 s"


def test_sigterm_with_a_full_queue_stops_promptly_and_says_how_many_were_not_run(tmp_path):
    process, url = start_serve(
        *("--env-file", os.devnull, "--handler", f"{FIXTURES}.sleepy", "--function-name", "sleepy"),
        *("--timeout", "60", "--max-concurrency", "1"),
        env={**os.environ, "TMPDIR": str(tmp_path)},
        stderr=subprocess.PIPE,
    )
    try:
        port = int(url.rsplit(":", 1)[1])
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        statuses = [post(connection, "sleepy", b'{"seconds": 60}')[0]]
        while statuses[-1] == 202 and len(statuses) < 1500:
            statuses.append(post(connection, "sleepy", b'{"seconds": 60}')[0])
        connection.close()
        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        took = time.monotonic() - stopping
        _, stderr = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()

    assert statuses[-1] == 429 and statuses.count(202) == len(statuses) - 1
    assert code == 0 and took < 15
    [line] = [line for line in stderr.splitlines() if "not run" in line]
    # One running when the signal came (ended by the shutdown), the rest never started.
    assert f"stopped with {statuses.count(202) - 1} accepted Event invocation(s) not run" in line
    assert "Exception ignored" not in stderr
    assert list(tmp_path.glob("lambda-env-*")) == []
