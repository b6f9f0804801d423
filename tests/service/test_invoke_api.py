"""The Invoke API as the AWS SDK and CLI see it: boto3's lambda client and ``aws lambda invoke``.

The server runs in-process on a free loopback port with one pool per fixture
function; one test starts ``invoke.py serve`` itself and drives it with the
real AWS CLI.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from botocore.exceptions import ClientError

from local_runtime.api_server import InvokeApi, running_api
from local_runtime.config import FunctionConfig
from local_runtime.pool import EnvironmentPool
from tests.conftest import ROOT, Captured, aws_cli_env, lambda_client, start_serve

FIXTURES = "tests.fixtures.handlers"
FUNCTIONS = {
    "whoami": {},
    "sleepy": {"timeout_s": 0.5},
    "raising": {},
    "chatty": {},
    "exiting": {},
}


@pytest.fixture
def logs() -> Captured:
    return Captured()


@pytest.fixture
def api(logs: Captured) -> Iterator[InvokeApi]:
    pools = {
        name: EnvironmentPool(
            FunctionConfig(task_root=ROOT, name=name, handler=f"{FIXTURES}.{name}", **settings), log_sink=logs
        )
        for name, settings in FUNCTIONS.items()
    }
    pools["solo"] = EnvironmentPool(
        FunctionConfig(task_root=ROOT, name="solo", handler=f"{FIXTURES}.sleepy", timeout_s=5),
        log_sink=logs,
        max_environments=1,
    )
    with running_api(pools) as server:
        yield server


@pytest.fixture
def client(api: InvokeApi) -> Any:
    return lambda_client(api.url, read_timeout=30)


def invoke(client: Any, name: str, payload: Any = None, **kwargs: Any) -> tuple[dict[str, Any], Any]:
    if payload is not None:
        kwargs["Payload"] = json.dumps(payload).encode()
    response = client.invoke(FunctionName=name, **kwargs)
    raw = response["Payload"].read()
    return response, json.loads(raw) if raw else None


def test_request_response_returns_the_result_and_the_executed_version(client):
    response, result = invoke(client, "whoami", {"hello": "world"})

    assert response["StatusCode"] == 200
    assert response["ExecutedVersion"] == "$LATEST"
    assert "FunctionError" not in response
    assert result["event"] == {"hello": "world"}
    assert result["context"]["aws_request_id"] == response["ResponseMetadata"]["RequestId"]


def test_no_payload_is_the_empty_event(client):
    _, result = invoke(client, "whoami")

    assert result["event"] == {}


def test_function_error_is_200_with_the_unhandled_header(client):
    response, payload = invoke(client, "raising", {"value": 1})

    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    assert payload["errorType"] == "ValueError"
    assert payload["requestId"] == response["ResponseMetadata"]["RequestId"]
    assert isinstance(payload["stackTrace"], list)


def test_timeout_and_crash_are_unhandled_function_errors(client):
    timed_out, timeout_payload = invoke(client, "sleepy", {"seconds": 30})
    crashed, crash_payload = invoke(client, "exiting", {"code": 2})

    assert timed_out["FunctionError"] == crashed["FunctionError"] == "Unhandled"
    assert timeout_payload["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 0.50 seconds" in timeout_payload["errorMessage"]
    assert crash_payload["errorType"] == "Runtime.ExitError"


def test_event_invocation_is_accepted_with_202_and_runs_afterwards(api, client, logs):
    response, body = invoke(client, "whoami", {"async": True}, InvocationType="Event")

    assert response["StatusCode"] == 202 and body is None
    api.wait_for_async()
    request_id = response["ResponseMetadata"]["RequestId"]
    assert any(line.startswith(f"REPORT RequestId: {request_id}") for line in logs)


def test_dry_run_is_204(client):
    response, _ = invoke(client, "whoami", {}, InvocationType="DryRun")

    assert response["StatusCode"] == 204


def test_log_type_tail_returns_the_last_4_kb_of_the_log(client):
    response, result = invoke(client, "chatty", {"lines": 200}, LogType="Tail")

    tail = base64.b64decode(response["LogResult"])
    assert result == "done"
    assert 3500 < len(tail) <= 4096
    text = tail.decode()
    assert "LAST LINE" in text and "log line 0000" not in text
    assert re.search(r"END RequestId: \S+\nREPORT RequestId: \S+\tDuration: [\d.]+ ms", text)
    assert "LogResult" not in client.invoke(FunctionName="chatty", Payload=b"{}")


def test_unknown_function_is_404_resource_not_found(client):
    with pytest.raises(ClientError) as raised:
        client.invoke(FunctionName="no-such-function", Payload=b"{}")

    error = raised.value.response
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert error["Error"]["Code"] == "ResourceNotFoundException"
    assert "no-such-function" in error["Error"]["Message"]


def test_function_arn_and_latest_qualifier_are_accepted_others_are_not(client):
    arn = "arn:aws:lambda:us-east-1:123456789012:function:whoami"

    assert invoke(client, arn, {})[0]["StatusCode"] == 200
    assert invoke(client, "whoami", {}, Qualifier="$LATEST")[0]["StatusCode"] == 200
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.invoke(FunctionName="whoami", Qualifier="7", Payload=b"{}")


def test_payload_that_is_not_json_is_400_invalid_request_content(client):
    with pytest.raises(ClientError) as raised:
        client.invoke(FunctionName="whoami", Payload=b"{not json")

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert raised.value.response["Error"]["Code"] == "InvalidRequestContentException"


def test_payload_over_6_mb_is_413(client):
    too_big = json.dumps({"blob": "x" * (6 * 1024 * 1024)}).encode()

    with pytest.raises(ClientError) as raised:
        client.invoke(FunctionName="whoami", Payload=too_big)

    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 413
    assert raised.value.response["Error"]["Code"] == "RequestEntityTooLargeException"


def test_client_context_reaches_the_handler(client):
    context = base64.b64encode(json.dumps({"custom": {"tenant": "acme"}, "env": {}}).encode()).decode()

    _, result = invoke(client, "whoami", {}, ClientContext=context)

    assert result["context"]["client_context_custom"] == {"tenant": "acme"}


@pytest.mark.parametrize(
    ("header", "status", "tenant"), [("acme-eu:team/1", 200, "acme-eu:team/1"), ("a;b", 400, None)]
)
def test_tenant_id_header_reaches_the_handler_or_is_refused(api, header, status, tenant):
    url = f"{api.url}/2015-03-31/functions/whoami/invocations"

    response = requests.post(url, data=b"{}", headers={"X-Amz-Tenant-Id": header}, timeout=30)

    assert response.status_code == status
    if status == 200:
        assert response.json()["context"]["tenant_id"] == tenant
    else:
        assert response.headers["x-amzn-ErrorType"].startswith("InvalidParameterValueException")


def test_concurrent_requests_get_their_own_environments(api, logs):
    results: list[Any] = []

    def call() -> None:
        results.append(invoke(lambda_client(api.url, read_timeout=30), "sleepy", {"seconds": 0.3})[0])

    threads = [threading.Thread(target=call) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _, after = invoke(lambda_client(api.url, read_timeout=30), "whoami", {})

    assert [r["StatusCode"] for r in results] == [200, 200]
    reports = [line for line in logs if line.startswith("REPORT")]
    assert sum("Init Duration" in line for line in reports[:2]) == 2  # both cold: two environments
    assert api.pools["sleepy"].environment_count == 2
    _, warm = invoke(lambda_client(api.url, read_timeout=30), "whoami", {})
    assert warm["pid"] == after["pid"] and warm["invocations"] == 2


def test_over_the_concurrency_limit_is_429(api):
    url = f"{api.url}/2015-03-31/functions/solo/invocations"
    slow = threading.Thread(target=requests.post, args=(url,), kwargs={"data": b'{"seconds": 1}', "timeout": 10})
    slow.start()
    try:
        for _ in range(100):  # wait until the one environment is busy
            if api.pools["solo"].environment_count:
                break
            threading.Event().wait(0.02)
        throttled = requests.post(url, data=b"{}", timeout=10)
    finally:
        slow.join()

    assert throttled.status_code == 429
    assert throttled.headers["x-amzn-ErrorType"] == "TooManyRequestsException"


@pytest.fixture
def served() -> Iterator[str]:
    """``invoke.py serve --port 0`` as a user starts it; yields the URL it prints."""
    process, url = start_serve(
        *("--env-file", os.devnull, "--handler", f"{FIXTURES}.whoami", "--function-name", "whoami"),
        *("--log-format", "text"),
    )
    try:
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0


def test_serve_works_with_boto3(served):
    response, result = invoke(lambda_client(served, read_timeout=30), "whoami", {"via": "boto3"})

    assert response["StatusCode"] == 200 and result["event"] == {"via": "boto3"}


AWS = shutil.which("aws", path=str(Path(sys.executable).parent)) or shutil.which("aws")


def raw_payload_flag() -> list[str]:
    """AWS CLI v2 reads --payload as base64 unless told otherwise; v1 takes it raw and knows no such flag."""
    version = subprocess.run([AWS, "--version"], capture_output=True, text=True, timeout=30)
    return ["--cli-binary-format", "raw-in-base64-out"] if "aws-cli/2" in version.stdout + version.stderr else []


@pytest.mark.skipif(AWS is None, reason="the AWS CLI is not installed (pip install awscli)")
def test_serve_works_with_aws_lambda_invoke(served, tmp_path):
    out = tmp_path / "out.json"
    env = aws_cli_env()

    done = subprocess.run(
        [
            AWS,
            "lambda",
            "invoke",
            "--endpoint-url",
            served,
            "--function-name",
            "whoami",
            *raw_payload_flag(),
            "--payload",
            '{"via": "aws-cli"}',
            "--log-type",
            "Tail",
            str(out),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["StatusCode"] == 200 and summary["ExecutedVersion"] == "$LATEST"
    assert "REPORT RequestId" in base64.b64decode(summary["LogResult"]).decode()
    assert json.loads(out.read_text())["event"] == {"via": "aws-cli"}


def test_make_serve_runs_invoke_py_serve():
    done = subprocess.run(["make", "-n", "serve", "PORT=0"], cwd=ROOT, capture_output=True, text=True, timeout=30)

    assert done.returncode == 0, done.stderr
    assert 'invoke.py serve --port "$PORT"' in done.stdout  # the value travels as data (mk/runtime.mk)


def test_event_payload_over_1_mb_is_413(client):
    with pytest.raises(ClientError) as raised:
        client.invoke(FunctionName="whoami", InvocationType="Event", Payload=json.dumps("x" * 1_100_000).encode())

    assert raised.value.response["Error"]["Code"] == "RequestEntityTooLargeException"
