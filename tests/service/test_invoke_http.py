"""The Invoke API at the HTTP level: what a raw socket, boto3 and the AWS CLI can send it.

Each test sends something an HTTP server easily gets wrong: a body
left unread after an early answer (the next keep-alive request was parsed out
of it), lengths it did not validate, chunked bodies it ignored, requests cut
off by EOF that still ran, JSON and client contexts that reached the
environment, names and ARNs Lambda refuses, connections without limits, and a
SIGTERM that left clients unanswered and environments' files behind.

The property test at the end sends random sequences of valid and hostile
requests over one keep-alive connection and checks every answer equals what a
fresh connection gets for the same request; the same sequences go through
boto3 (one client, so one pooled connection). ``FUZZ_HTTP_EXAMPLES`` raises the
number of sequences (``make stress``).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from local_runtime.api_server import ASYNC_PAYLOAD_LIMIT, InvokeApi, running_api
from local_runtime.config import FunctionConfig
from local_runtime.pool import EnvironmentPool
from tests.conftest import ROOT, Captured, aws_cli_env, lambda_client, start_serve

FIXTURES = "tests.fixtures.handlers"
EXAMPLES = int(os.environ.get("FUZZ_HTTP_EXAMPLES") or 15)
DERANDOMIZE = os.environ.get("FUZZ_DERANDOMIZE", "1") == "1"  # make test: the same sequences every run
PATH = "/2015-03-31/functions/{}/invocations"


@pytest.fixture(scope="module")
def logs() -> Captured:
    return Captured()


@pytest.fixture(scope="module")
def api(logs: Captured) -> Iterator[InvokeApi]:
    pools = {
        "whoami": EnvironmentPool(
            FunctionConfig(task_root=ROOT, name="whoami", handler=f"{FIXTURES}.whoami"), log_sink=logs
        ),
    }
    with running_api(pools, linger_s=2.0) as server:
        yield server


# --- a raw HTTP/1.1 client: exactly the bytes we choose -----------------------


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    version: str = "HTTP/1.1"

    @property
    def error_type(self) -> str | None:
        return self.headers.get("x-amzn-errortype")

    @property
    def closes(self) -> bool:
        """The server ends the connection after this answer (an HTTP/1.0 answer does unless it says keep-alive)."""
        connection = self.headers.get("connection", "").lower()
        return connection == "close" or (self.version == "HTTP/1.0" and connection != "keep-alive")

    def json(self) -> Any:
        return json.loads(self.body)


class RawConnection:
    """A socket whose requests name the server as a real client does.

    Requests are built before the port is known, with ``Host: localhost``; this
    fills in the port the server listens on (the API refuses a Host without it).
    """

    def __init__(self, sock: socket.socket, port: int) -> None:
        self._sock = sock
        self._host = b"Host: localhost:%d\r\n" % port

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(data.replace(b"Host: localhost\r\n", self._host))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)

    def __enter__(self) -> RawConnection:
        return self

    def __exit__(self, *exc: object) -> None:
        self._sock.close()


def connect(api: InvokeApi) -> Any:
    sock = socket.create_connection(api.server_address[:2], timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return RawConnection(sock, api.server_address[1])


def read_answer(sock: socket.socket, buffer: bytearray | None = None) -> Answer | None:
    """One response (1xx skipped); None if the server closed without answering."""
    data = buffer if buffer is not None else bytearray()
    while True:
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        head, _, rest = bytes(data).partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        version, status = lines[0].split()[0], int(lines[0].split()[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        data[:] = rest
        if 100 <= status < 200:
            continue
        length = int(headers.get("content-length", "0"))
        while len(data) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return None
            data += chunk
        body = bytes(data[:length])
        data[:] = data[length:]
        return Answer(status, headers, body, version)


def request(
    path: str = PATH.format("whoami"), body: bytes = b"{}", headers: dict[str, str] | None = None, method: str = "POST"
) -> bytes:
    fields = {"Host": "localhost", "Content-Length": str(len(body)), **(headers or {})}
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in fields.items() if v is not None)
    return head.encode("latin-1") + b"\r\n" + body


def exchange(api: InvokeApi, raw: bytes) -> Answer | None:
    with connect(api) as sock:
        sock.sendall(raw)
        return read_answer(sock)


def is_closed(sock: socket.socket, wait: float = 5.0) -> bool:
    sock.settimeout(wait)
    try:
        return sock.recv(1) == b""
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False


# --- keep-alive after early answers -----------------------------------------


def test_boto3_invoke_after_a_404_on_the_same_connection_succeeds(api):
    client = lambda_client(api.url)
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="whoamii", Payload=b'{"x": 1}')

    response = client.invoke(FunctionName="whoami", Payload=b'{"y": 2}')

    assert response["StatusCode"] == 200
    assert json.loads(response["Payload"].read())["event"] == {"y": 2}


@pytest.mark.parametrize(
    "early",
    [
        request(PATH.format("nope"), b'{"a": 1}'),
        request("/not/the/api", b'{"a": 1}'),
        request(PATH.format("whoami"), b'{"a": 1}', method="PUT"),
        request(PATH.format("a:b:whoami"), b'{"a": 1}'),
        request(PATH.format("whoami"), b'{"a": 1}', {"X-Amz-Invocation-Type": "Nope"}),
    ],
    ids=["unknown-function", "unknown-path", "other-method", "bad-name", "bad-invocation-type"],
)
def test_an_early_answer_never_leaves_its_body_to_be_read_as_the_next_request(api, early):
    with connect(api) as sock:
        sock.sendall(early)
        first = read_answer(sock)
        sock.sendall(request(body=b'{"next": true}'))
        second = read_answer(sock)

    assert first is not None and 400 <= first.status < 500
    assert second is not None and second.status == 200, second
    assert second.json()["event"] == {"next": True}


# --- lengths and bodies -----------------------------------------------------------


@pytest.mark.parametrize("length", ["-1", "abc", "1e3", "2, 2", "+2", " 0x10"])
def test_an_invalid_content_length_is_400_and_closes(api, logs, length):
    starts = logs.starts()
    with connect(api) as sock:
        sock.sendall(request(body=b"{}", headers={"Content-Length": length}) + b"x" * 1000)
        answer = read_answer(sock)
        assert answer is not None and answer.status == 400
        assert is_closed(sock)
    assert logs.starts() == starts


def test_a_negative_length_cannot_smuggle_a_body_past_the_limit(api, logs):
    starts = logs.starts()
    body = json.dumps({"blob": "x" * (2 * ASYNC_PAYLOAD_LIMIT)}).encode()
    with connect(api) as sock:
        sock.sendall(request(body=b"", headers={"Content-Length": "-1", "X-Amz-Invocation-Type": "Event"}))
        with_body = read_answer(sock)
        with contextlib.suppress(OSError):
            sock.sendall(body)

    assert with_body is not None and with_body.status == 400
    assert logs.starts() == starts


def test_a_huge_declared_length_is_413_before_any_byte_of_it_is_sent(api):
    started = time.monotonic()
    with connect(api) as sock:
        sock.sendall(request(body=b"", headers={"Content-Length": "99999999999999"}))
        answer = read_answer(sock)
        assert is_closed(sock, wait=10)  # lingering gives up: nothing more was sent

    assert answer is not None and answer.status == 413
    assert answer.error_type == "RequestEntityTooLargeException"
    assert time.monotonic() - started < 10


def test_a_big_body_to_an_unknown_path_is_answered_without_reading_it(api):
    with connect(api) as sock:
        sock.sendall(request("/2015-03-31/functions/x/elsewhere", b"", headers={"Content-Length": str(300 << 20)}))
        answer = read_answer(sock)

    assert answer is not None and answer.status == 404


def test_a_chunked_body_is_decoded_and_the_connection_stays_in_step(api):
    event = b'{"chunked": [1, 2, 3]}'
    chunks = (
        b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (event[:5], event[5:12], event[12:])) + b"0\r\n\r\n"
    )
    with connect(api) as sock:
        sock.sendall(request(body=chunks, headers={"Content-Length": None, "Transfer-Encoding": "chunked"}))
        first = read_answer(sock)
        sock.sendall(request(body=b'{"after": 1}'))
        second = read_answer(sock)

    assert first is not None and first.status == 200 and first.json()["event"] == {"chunked": [1, 2, 3]}
    assert second is not None and second.json()["event"] == {"after": 1}


def test_a_chunked_body_over_the_limit_is_413(api, logs):
    starts = logs.starts()
    chunk = b"x" * 65536
    with connect(api) as sock:
        sock.sendall(
            request(
                body=b"",
                headers={"Content-Length": None, "Transfer-Encoding": "chunked", "X-Amz-Invocation-Type": "Event"},
            )
        )
        with contextlib.suppress(OSError):
            for _ in range(ASYNC_PAYLOAD_LIMIT // len(chunk) + 4):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = read_answer(sock)

    assert answer is not None and answer.status == 413
    assert logs.starts() == starts


@pytest.mark.parametrize(
    "cut",
    [
        b"POST " + PATH.format("whoami").encode() + b" HTTP/1.1\r\nHost: localhost\r\nContent-Length: 2\r\n",
        b"POST " + PATH.format("whoami").encode() + b" HTTP/1.1\r\nHost: localhost\r\nContent-Length: 20\r\n\r\n{}",
        b"POST "
        + PATH.format("whoami").encode()
        + b" HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}",
    ],
    ids=["headers-end-at-eof", "body-shorter-than-length", "chunked-without-last-chunk"],
)
def test_a_request_cut_off_by_eof_never_invokes(api, logs, cut):
    starts = logs.starts()
    with connect(api) as sock:
        sock.sendall(cut)
        sock.shutdown(socket.SHUT_WR)
        answer = read_answer(sock)

    time.sleep(0.3)
    assert answer is None or answer.status >= 400
    assert logs.starts() == starts


_INVOCATIONS = PATH.format("whoami").encode()


@pytest.mark.parametrize(
    ("raw", "status", "error_type"),
    [
        (b"POST " + _INVOCATIONS + b"\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}", 400, None),
        (b"POST " + _INVOCATIONS + b" HTTP/2.0\r\nHost: localhost\r\nContent-Length: 2\r\n\r\n{}", 505, None),
        (b"POST " + _INVOCATIONS + b" HTTP/1.0\r\nHost: localhost\r\n\r\n", 400, "InvalidRequestContentException"),
        (b"POST " + _INVOCATIONS + b" HTTP/1.0\r\nHost: localhost\r\n\r\n{}", 400, "InvalidRequestContentException"),
        (b"POST " + _INVOCATIONS + b" HTTP/3.1\r\nHost: localhost\r\n\r\n", 400, "InvalidRequestContentException"),
        (b"GARBAGE\r\n\r\n", 400, "InvalidRequestContentException"),
    ],
    ids=["no-version", "http-2.0", "http-1.0-no-length", "http-1.0-no-length-with-body", "http-3.1", "no-method"],
)
def test_a_request_line_or_length_that_is_not_http_1_is_answered_in_lambdas_shape_and_never_runs(
    api, logs, raw, status, error_type
):
    starts = logs.starts()
    with connect(api) as sock:
        sock.sendall(raw)
        answer = read_answer(sock)
        closed = is_closed(sock)

    time.sleep(0.3)
    assert answer is not None and answer.status == status, answer
    assert answer.version in ("HTTP/1.0", "HTTP/1.1")  # HTTP/1 framing, whatever version the request claimed
    assert answer.headers["content-type"].startswith("application/json") and "message" in answer.json()
    assert answer.error_type is not None and (error_type is None or answer.error_type == error_type)
    assert closed and logs.starts() == starts


@pytest.mark.parametrize("character", ["%0a", "%0d", "%00", "%09", "%7f", "%0a%0d"])
def test_a_control_character_in_the_function_name_is_a_lambda_shaped_400(api, logs, character):
    starts = logs.starts()
    answer = exchange(api, request(PATH.format(f"who{character}ami")))

    assert answer is not None and answer.status == 400, answer
    assert answer.error_type == "ValidationException" and answer.json()["Type"] == "User"
    assert logs.starts() == starts


# --- JSON bodies and client contexts --------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 5000 + b"]" * 5000,
        b'{"a": ' + b"[" * 600 + b"]" * 600 + b"}",
        b'{"n": ' + b"9" * 100_000 + b"}",
        '{"utf16": true}'.encode("utf-16"),
        '{"utf16": true}'.encode("utf-16-le"),
        '{"utf32": true}'.encode("utf-32"),
        b'\xef\xbb\xbf{"bom": true}',
        b'{"nan": NaN}',
        b'{"x": "\xff"}',
    ],
    ids=["nested-5000", "nested-600", "100k-digits", "utf16", "utf16le", "utf32", "bom", "nan", "latin1"],
)
def test_a_body_the_runtime_could_not_decode_is_400(api, logs, body):
    starts = logs.starts()
    answer = exchange(api, request(body=body))

    assert answer is not None and answer.status == 400, answer
    assert answer.error_type == "InvalidRequestContentException"
    assert len(answer.body) < 2000
    assert logs.starts() == starts


def client_context(value: Any) -> str:
    return base64.b64encode(json.dumps(value).encode()).decode()


@pytest.mark.parametrize(
    "header",
    [
        client_context([1]),
        client_context("x"),
        client_context(5),
        client_context(None),
        base64.b64encode(b'{"a": ' + b"[" * 1500 + b"]" * 1500 + b"}").decode(),
        client_context({"custom": "x" * 4000}),
        "not base64!",
        base64.b64encode(b"\xff\xfe").decode(),
    ],
    ids=["list", "string", "number", "null", "nested", "too-long", "not-base64", "not-utf8"],
)
def test_a_client_context_that_is_not_a_base64_json_object_is_400_and_the_environment_stays_warm(api, header):
    before = exchange(api, request(body=b"{}"))
    answer = exchange(api, request(body=b"{}", headers={"X-Amz-Client-Context": header}))
    after = exchange(api, request(body=b"{}"))

    assert answer is not None and answer.status == 400 and answer.error_type == "InvalidRequestContentException"
    assert before is not None and after is not None
    assert after.json()["pid"] == before.json()["pid"]  # the same environment: nothing crashed it


# --- names, ARNs, qualifiers --------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "query", "status", "error_type"),
    [
        ("arn:aws:lambda:us-east-1:123456789012:function:whoami", "", 200, None),
        ("123456789012:function:whoami", "", 200, None),
        ("whoami:$LATEST", "", 200, None),
        ("whoami", "?Qualifier=$LATEST", 200, None),
        ("arn:aws:lambda:eu-west-1:123456789012:function:whoami", "", 404, "ResourceNotFoundException"),
        ("arn:aws:lambda:us-east-1:210987654321:function:whoami", "", 403, "AccessDeniedException"),
        ("a:b:whoami", "", 400, "ValidationException"),
        ("whoami:", "", 400, "ValidationException"),
        ("whoami", "?Qualifier=", 400, "ValidationException"),
        ("whoami", "?Qualifier=a%20b", 400, "ValidationException"),
        ("whoami:7", "?Qualifier=8", 400, "InvalidParameterValueException"),
        ("whoami:7", "", 404, "ResourceNotFoundException"),
        ("x" * 171, "", 400, "ValidationException"),
        ("%FF%FE", "", 400, "ValidationException"),
    ],
)
def test_names_arns_and_qualifiers_are_checked_as_lambda_checks_them(api, name, query, status, error_type):
    answer = exchange(api, request(PATH.format(name.replace(":", "%3A")) + query))

    assert answer is not None and answer.status == status, answer
    assert answer.error_type == error_type
    assert status == 200 or len(answer.body) < 1200  # a hostile name is not echoed whole


def test_expect_100_continue_with_an_oversize_length_gets_413_not_100(api):
    with connect(api) as sock:
        sock.sendall(request(body=b"", headers={"Content-Length": str(7 << 20), "Expect": "100-continue"}))
        sock.settimeout(10)
        first = sock.recv(65536)

    assert first.startswith(b"HTTP/1.1 413 "), first[:100]


def test_expect_100_continue_within_the_limit_gets_100_then_the_answer(api):
    with connect(api) as sock:
        sock.sendall(request(body=b"", headers={"Content-Length": "2", "Expect": "100-continue"}))
        sock.settimeout(10)
        assert sock.recv(65536).startswith(b"HTTP/1.1 100 ")
        sock.sendall(b"{}")
        answer = read_answer(sock)

    assert answer is not None and answer.status == 200


# --- connections: cap and idle timeout --------------------------------------------


def test_connections_are_capped_and_idle_ones_closed():
    """At the cap, the connection idle the longest makes room for a new one; idle ones close on their own."""
    pools = {"whoami": EnvironmentPool(FunctionConfig(task_root=ROOT, name="whoami", handler=f"{FIXTURES}.whoami"))}
    with running_api(pools, max_connections=4, idle_timeout_s=1.0) as server:
        held = [connect(server) for _ in range(4)]
        time.sleep(0.2)
        oldest_closed = is_closed(held[0], wait=0.1)
        extra = connect(server)
        served = exchange_on(extra, request("/nowhere"))
        extra.close()
        evicted = is_closed(held[0], wait=5)
        closed = [is_closed(sock, wait=5) for sock in held[1:]]  # sent nothing: idle
        after = exchange(server, request("/nowhere"))
        for sock in held:
            sock.close()

    assert not oldest_closed and evicted
    assert served is not None and served.status == 404
    assert closed == [True] * 3
    assert after is not None and after.status == 404


def exchange_on(sock: Any, raw: bytes) -> Answer | None:
    sock.sendall(raw)
    return read_answer(sock)


# --- SIGTERM ---------------------------------------------------------------------------


def test_sigterm_answers_every_client_and_removes_every_environments_files(tmp_path):
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    process, url = start_serve(
        *("--env-file", os.devnull, "--handler", f"{FIXTURES}.sleepy", "--function-name", "sleepy"),
        "--timeout",
        "60",
        # Host temp dirs (what this test counts) exist only without the sandbox; with it each /tmp is a
        # tmpfs in the environment's own mount namespace, gone with it (tests/service/test_sandbox.py).
        "--sandbox",
        "off",
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        port = int(url.rsplit(":", 1)[1])
        answers: list[Answer | None] = []

        def call() -> None:
            with RawConnection(socket.create_connection(("127.0.0.1", port), timeout=60), port) as sock:
                sock.sendall(request(PATH.format("sleepy"), b'{"seconds": 60}'))
                answers.append(read_answer(sock))

        idle = socket.create_connection(("127.0.0.1", port), timeout=60)  # a keep-alive client between requests
        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 60
        while len(list(tmp_path.glob("lambda-env-*"))) < 4 and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(1.0)  # all four handlers asleep
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
        for thread in threads:
            thread.join(timeout=30)
        idle_closed = is_closed(idle, wait=5)
        idle.close()
    finally:
        if process.poll() is None:
            process.kill()

    assert code == 0
    assert len(answers) == 4 and all(a is not None for a in answers), answers
    assert all(a.status == 200 and a.headers.get("x-amz-function-error") == "Unhandled" for a in answers if a), answers
    assert list(tmp_path.glob("lambda-env-*")) == []
    assert idle_closed


# --- property: one keep-alive connection answers like fresh ones ----------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)


@dataclass(frozen=True)
class Step:
    """One request; ``boto`` is the same request as boto3 kwargs (None where boto3 cannot send it)."""

    raw: bytes = field(repr=False)
    expect: int
    boto: dict[str, Any] | None = field(default=None, repr=False)
    name: str = ""


def _describe(raw: bytes) -> str:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = [line for line in lines[1:] if not line.startswith("Host:")]
    return f"{lines[0].rsplit(' ', 1)[0]} {headers} body[{len(body)}]={body[:40]!r}"


def _valid(value: Any) -> Step:
    body = json.dumps(value).encode()
    return Step(request(body=body), 200, {"FunctionName": "whoami", "Payload": body}, name=f"valid {body[:60]!r}")


def _chunked(value: Any) -> Step:
    body = json.dumps(value).encode()
    half = len(body) // 2
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:half], body[half:]) if p) + b"0\r\n\r\n"
    raw = request(body=chunks, headers={"Content-Length": None, "Transfer-Encoding": "chunked"})
    return Step(raw, 200, name=f"chunked {body[:60]!r}")


FIXED_STEPS_UNNAMED = [
    Step(request(PATH.format("nope"), b'{"a": 1}'), 404, {"FunctionName": "nope", "Payload": b'{"a": 1}'}),
    Step(request("/2015-03-31/functions", b"[]"), 404),
    Step(request(method="GET", body=b""), 404),
    Step(request(body=b"{bad"), 400, {"FunctionName": "whoami", "Payload": b"{bad"}),
    Step(
        request(body=b"[" * 2000 + b"]" * 2000), 400, {"FunctionName": "whoami", "Payload": b"[" * 2000 + b"]" * 2000}
    ),
    Step(
        request(body='{"u": 1}'.encode("utf-16")),
        400,
        {"FunctionName": "whoami", "Payload": '{"u": 1}'.encode("utf-16")},
    ),
    Step(
        request(body=b"{}", headers={"X-Amz-Client-Context": client_context([1])}),
        400,
        {"FunctionName": "whoami", "Payload": b"{}", "ClientContext": client_context([1])},
    ),
    Step(
        request(body=b"{}", headers={"X-Amz-Client-Context": client_context({"custom": {"k": "v"}})}),
        200,
        {"FunctionName": "whoami", "Payload": b"{}", "ClientContext": client_context({"custom": {"k": "v"}})},
    ),
    Step(
        request(PATH.format("whoami") + "?Qualifier=7"),
        404,
        {"FunctionName": "whoami", "Qualifier": "7", "Payload": b"{}"},
    ),
    Step(request(PATH.format("whoami%3A")), 400, {"FunctionName": "whoami:", "Payload": b"{}"}),
    Step(
        request(PATH.format("arn%3Aaws%3Alambda%3Aeu-west-1%3A123456789012%3Afunction%3Awhoami")),
        404,
        {"FunctionName": "arn:aws:lambda:eu-west-1:123456789012:function:whoami", "Payload": b"{}"},
    ),
    Step(
        request(body=b"x" * (ASYNC_PAYLOAD_LIMIT + 1), headers={"X-Amz-Invocation-Type": "Event"}),
        413,
        {"FunctionName": "whoami", "InvocationType": "Event", "Payload": b"x" * (ASYNC_PAYLOAD_LIMIT + 1)},
    ),
    Step(
        request(body=b"{}", headers={"X-Amz-Invocation-Type": "DryRun"}),
        204,
        {"FunctionName": "whoami", "InvocationType": "DryRun", "Payload": b"{}"},
    ),
    Step(
        request(body=b"{}", headers={"X-Amz-Invocation-Type": "Nope"}),
        400,
        {"FunctionName": "whoami", "InvocationType": "Nope", "Payload": b"{}"},
    ),
    Step(
        request(body=b'\xef\xbb\xbf{"bom": 1}'), 400, {"FunctionName": "whoami", "Payload": b'\xef\xbb\xbf{"bom": 1}'}
    ),
    Step(request(body=b'{"latin1": "caf\xe9"}'), 400, {"FunctionName": "whoami", "Payload": b'{"latin1": "caf\xe9"}'}),
    Step(
        request(body=b'{"n": ' + b"7" * 5000 + b"}"),
        400,
        {"FunctionName": "whoami", "Payload": b'{"n": ' + b"7" * 5000 + b"}"},
    ),
    Step(
        request(body=b'{"async": true}', headers={"X-Amz-Invocation-Type": "Event"}),
        202,
        {"FunctionName": "whoami", "InvocationType": "Event", "Payload": b'{"async": true}'},
    ),
    Step(request(body=b'{"expect": 1}', headers={"Expect": "100-continue"}), 200),
    Step(request(body=b"{}", headers={"Content-Length": "-1"}), 400),
    Step(request(body=b"{}", headers={"Content-Length": "2, 2"}), 400),
    Step(request(body=b"2\r\n{}\r\n0\r\n\r\n", headers={"Transfer-Encoding": "chunked"}), 400),  # both: smuggling
    Step(request(body=b"", headers={"Content-Length": str(7 << 20), "Expect": "100-continue"}), 413),
]
FIXED_STEPS = [Step(step.raw, step.expect, step.boto, name=_describe(step.raw)) for step in FIXED_STEPS_UNNAMED]
steps = st.one_of(
    json_values.map(_valid), json_values.map(_chunked), st.sampled_from(FIXED_STEPS), st.sampled_from(FIXED_STEPS)
)


def _comparable(answer: Answer | None) -> Any:
    if answer is None:
        return None
    if answer.status == 200:
        body = answer.json()["event"]
    elif answer.error_type and answer.error_type != "ValidationException":
        body = answer.json().get("message")
    else:
        body = None  # aiohttp's own 400s and validation messages: the status is the contract
    return answer.status, answer.error_type, answer.closes, body


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(sequence=st.lists(steps, min_size=1, max_size=8))
def test_one_keep_alive_connection_answers_each_request_as_a_fresh_connection_does(api, sequence):
    sock = connect(api)
    buffer = bytearray()
    try:
        for step in sequence:
            fresh = exchange(api, step.raw)
            sock.sendall(step.raw)
            kept = read_answer(sock, buffer)
            assert _comparable(kept) == _comparable(fresh), step.name
            assert fresh is not None and fresh.status == step.expect
            if kept is None or kept.closes:
                sock.close()
                sock, buffer = connect(api), bytearray()
    finally:
        sock.close()


@settings(
    max_examples=max(3, EXAMPLES // 3), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=st.lists(steps, min_size=1, max_size=8))
def test_the_same_sequences_through_boto3_succeed_where_they_should(api, sequence):
    client = lambda_client(api.url, max_pool_connections=1)
    for step in sequence:
        if step.boto is None:
            continue
        try:
            response = client.invoke(**step.boto)
        except ClientError as exc:
            status = exc.response["ResponseMetadata"]["HTTPStatusCode"]
        else:
            status = response["StatusCode"]
            payload = response["Payload"].read()
            if status == 200:
                assert json.loads(payload)["event"] == json.loads(step.boto["Payload"])
        assert status == step.expect, step.name


AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")


CLI_EXAMPLES = int(os.environ.get("FUZZ_HTTP_CLI_EXAMPLES") or 2)  # each step is an `aws` process (~1 s)
boto_steps = steps.filter(lambda step: step.boto is not None)


@pytest.mark.skipif(AWS is None, reason="the AWS CLI is not installed (pip install awscli)")
@settings(
    max_examples=CLI_EXAMPLES,
    deadline=None,
    derandomize=DERANDOMIZE,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(sequence=st.lists(boto_steps, min_size=1, max_size=4))
@example(sequence=[_valid({"via": "cli"}), *[step for step in FIXED_STEPS if step.boto is not None]])
def test_the_same_sequences_through_the_aws_cli_succeed_where_they_should(api, tmp_path, sequence):
    env = aws_cli_env(AWS_MAX_ATTEMPTS="1")
    options = {"FunctionName": "--function-name", "InvocationType": "--invocation-type", "Qualifier": "--qualifier"}
    options["ClientContext"] = "--client-context"
    payload, out = tmp_path / "payload", tmp_path / "out.json"
    for step in sequence:
        assert step.boto is not None
        payload.write_bytes(step.boto.get("Payload", b"{}"))
        out.unlink(missing_ok=True)
        args = [arg for name, flag in options.items() if name in step.boto for arg in (flag, step.boto[name])]
        done = subprocess.run(
            [AWS, "lambda", "invoke", "--endpoint-url", api.url, *args, "--payload", f"fileb://{payload}", str(out)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if step.expect in (200, 202, 204):
            assert done.returncode == 0, (step.name, done.stderr[-1000:])
            assert json.loads(done.stdout)["StatusCode"] == step.expect
            if step.expect == 200:
                assert json.loads(out.read_text())["event"] == json.loads(step.boto["Payload"])
        else:
            assert done.returncode == 255, (step.name, done.stderr[-1000:])
            assert "An error occurred (" in done.stderr and "Traceback" not in done.stderr, done.stderr[-1000:]
