"""The local servers answer only their real clients: no browser, no foreign Host.

Real Lambda demands SigV4; the loopback Invoke API and the Runtime APIs check
no signature, so what keeps a web page from running the function is that a
browser marks its requests (``Origin``, ``Sec-Fetch-*``) and a rebinding page
names its own host. Raw requests show each rule with the function's START count
unchanged; boto3 and the runtimes keep working (the rest of the suite).
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator

import pytest

from local_runtime.api_server import InvokeApi, running_api
from local_runtime.config import FunctionConfig
from local_runtime.http_guard import allowed_hosts, is_loopback
from local_runtime.pool import EnvironmentPool
from local_runtime.runtime_api import InvocationRequest, RuntimeApi
from tests.conftest import ROOT, Captured, lambda_client

PATH = "/2015-03-31/functions/whoami/invocations"


@pytest.fixture(scope="module")
def logs() -> Captured:
    return Captured()


@pytest.fixture(scope="module")
def api(logs: Captured) -> Iterator[InvokeApi]:
    pools = {
        "whoami": EnvironmentPool(
            FunctionConfig(name="whoami", handler="tests.fixtures.handlers.whoami", task_root=ROOT), logs
        )
    }
    with running_api(pools) as server:
        yield server


def raw(port: int, headers: dict[str, str], body: bytes = b"{}", path: str = PATH) -> tuple[int, dict[str, str], bytes]:
    """POST exactly these headers (and a Content-Length); the status, headers and body of the answer."""
    fields = {**headers, "Content-Length": str(len(body))}
    head = f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode("latin-1") + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        answer_headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(answer_headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return int(lines[0].split()[1]), answer_headers, rest


def test_an_sdk_shaped_request_runs_the_function(api, logs):
    port = api.server_address[1]
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        starts = logs.starts()
        status, _, body = raw(port, {"Host": host})
        assert status == 200, body
        assert logs.starts() == starts + 1


@pytest.mark.parametrize(
    ("extra", "why"),
    [
        ({"Origin": "http://127.0.0.1:8000"}, "Origin"),
        ({"Origin": "null"}, "Origin"),  # a file:// page, a sandboxed iframe
        ({"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}, "Sec-Fetch-"),
        ({"sec-fetch-dest": "document"}, "Sec-Fetch-Dest"),
    ],
    ids=["other-origin", "null-origin", "fetch-metadata", "form-navigation"],
)
def test_a_browser_request_is_403_access_denied_and_never_runs(api, logs, caplog, extra, why):
    port = api.server_address[1]
    starts = logs.starts()
    with caplog.at_level(logging.WARNING, logger="local_runtime.http_guard"):
        status, headers, body = raw(port, {"Host": f"127.0.0.1:{port}", **extra})

    assert status == 403
    assert headers["x-amzn-errortype"] == "AccessDeniedException"
    assert why in json.loads(body)["message"]
    assert logs.starts() == starts
    assert any("Invoke API refused POST" in r.getMessage() and why in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "host",
    ["rebind.example:{port}", "127.0.0.1", "localhost", "127.0.0.1:1", "127.0.0.2:{port}", "evil.localhost:{port}"],
    ids=["rebinding-name", "no-port", "localhost-no-port", "other-port", "other-loopback", "sub-localhost"],
)
def test_a_host_that_is_not_the_servers_own_address_is_refused(api, logs, host):
    port = api.server_address[1]
    starts = logs.starts()
    status, headers, body = raw(port, {"Host": host.format(port=port)})

    assert status == 403, body
    assert headers["x-amzn-errortype"] == "AccessDeniedException"
    assert "is not an address this server listens on" in json.loads(body)["message"]
    assert logs.starts() == starts


def test_no_host_at_all_is_refused(api, logs):
    starts = logs.starts()
    status, _, _ = raw(api.server_address[1], {})
    assert status in (400, 403)  # aiohttp itself refuses an HTTP/1.1 request without Host
    assert logs.starts() == starts


def test_expect_100_continue_from_a_browser_is_refused_before_the_body_is_sent(api):
    port = api.server_address[1]
    head = (
        f"POST {PATH} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nOrigin: http://evil.example\r\n"
        "Content-Length: 2\r\nExpect: 100-continue\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head.encode())
        first = sock.recv(65536)
    assert first.startswith(b"HTTP/1.1 403 "), first
    assert b"AccessDeniedException" in first


def test_boto3_still_runs_the_function(api):
    response = lambda_client(api.url).invoke(FunctionName="whoami", Payload=b'{"ok": 1}')
    assert response["StatusCode"] == 200
    assert json.loads(response["Payload"].read())["event"] == {"ok": 1}


def test_allowed_hosts_name_the_bound_address_with_its_port():
    assert allowed_hosts(9009, "127.0.0.1") == {"127.0.0.1:9009", "localhost:9009"}
    assert allowed_hosts(9009, "::1") == {"[::1]:9009", "localhost:9009"}
    assert allowed_hosts(80, "127.0.0.1") >= {"127.0.0.1", "localhost"}
    wildcard = allowed_hosts(9009, "0.0.0.0")
    assert {"127.0.0.1:9009", "localhost:9009", "[::1]:9009"} <= wildcard
    assert "rebind.example:9009" not in wildcard


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        *[("127.0.0.1", True), ("localhost", True), ("::1", True), ("[::1]", True), ("127.3.4.5", True)],
        *[("0.0.0.0", False), ("::", False), ("192.168.1.10", False), ("myhost.local", False)],
    ],
)
def test_is_loopback(host, loopback):
    assert is_loopback(host) is loopback


# --- the Runtime API: only the runtime takes the next event ----------------------------------


@pytest.fixture
def runtime_api() -> Iterator[RuntimeApi]:
    server = RuntimeApi()
    server.start()
    server.dispatch(InvocationRequest("req-1", b'{"secret": 1}', deadline_ms=2**42, function_arn="arn:x"))
    yield server
    server.close()


def _next(address: str, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(f"http://{address}/2018-06-01/runtime/invocation/next", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://127.0.0.1:8000"},
        {"Sec-Fetch-Mode": "no-cors"},
        {"Host": "rebind.example:{port}"},
    ],
    ids=["origin", "fetch-metadata", "rebinding-host"],
)
def test_the_runtime_api_refuses_a_browser_and_keeps_the_event_for_the_runtime(runtime_api, caplog, headers):
    port = runtime_api.address.rsplit(":", 1)[1]
    with caplog.at_level(logging.WARNING, logger="local_runtime.http_guard"):
        status, body = _next(runtime_api.address, {k: v.format(port=port) for k, v in headers.items()})

    assert status == 403
    assert json.loads(body)["errorType"] == "AccessDeniedException"
    assert any(r.getMessage().startswith(f"Runtime API {runtime_api.address} refused GET") for r in caplog.records)
    status, body = _next(runtime_api.address, {})  # urllib names the server as the runtime does
    assert status == 200 and json.loads(body) == {"secret": 1}


# --- invoke.py serve: loopback unless told otherwise ---------------------------------------


def test_serve_on_a_non_loopback_address_needs_allow_remote():
    done = subprocess.run(
        [sys.executable, "invoke.py", "serve", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--allow-remote" in lines[0] and "credentials" in lines[0], done.stderr


def test_serve_with_allow_remote_warns_that_anyone_on_the_network_can_run_it():
    process = subprocess.Popen(
        [sys.executable, "invoke.py", "serve", "--host", "0.0.0.0", "--port", "0", "--allow-remote"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None and process.stderr is not None
        banner = process.stdout.readline()
        warning = process.stderr.readline()
    finally:
        process.terminate()
        process.wait(timeout=30)
    assert "Invoke API for function" in banner
    assert "WARNING" in warning and "anyone on that network can run the function" in warning
