"""The local S3 trigger end to end: versitygw's real webhook, the bridge, the Invoke API, the real function.

versitygw posts each upload to the bridge (local_dev/s3_bridge.py), which keeps
what the trigger's rules take, queues it with Lambda's async semantics
(local_runtime/async_invoke.py) and invokes through a running Invoke API. The
waits between retries are scaled down (Lambda's 60 s and 120 s become 0.3 s and
0.6 s); their count and order are Lambda's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from local_dev.s3_bridge import Bridge, parse_webhook, running_bridge, s3_key_encoding
from local_dev.s3_trigger import OBJECT_CREATED, TriggerRules, trigger_rules
from local_runtime.api_server import running_api
from local_runtime.async_invoke import AsyncQueue, AsyncSettings, QueuedEvent
from local_runtime.config import FunctionConfig
from local_runtime.pool import EnvironmentPool
from tests.conftest import ROOT
from tests.verifying_s3 import ACCESS_KEY, REGION, SECRET_KEY, binary_path, free_port, signing_client, stop_verifier

PREFIX = "2026/04/"
SCALE = 0.005  # 60 s -> 0.3 s, 120 s -> 0.6 s
ARN = "arn:aws:lambda:us-east-1:123456789012:function:pdf-manifest"


def wait_for(condition: Callable[[], bool], timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@dataclass
class Loop:
    """Everything of one run: the S3 client, the bucket, the bridge and its queue, the on-failure file."""

    s3: Any
    bucket: str
    bridge: Bridge
    on_failure: Path
    log: list[str]

    @property
    def counts(self) -> dict[str, int]:
        return dict(self.bridge.queue.counts)

    def manifests(self) -> list[str]:
        listed = self.s3.list_objects_v2(Bucket=self.bucket, Prefix="manifests/")
        return [item["Key"] for item in listed.get("Contents", [])]

    def failures(self) -> list[dict[str, Any]]:
        if not self.on_failure.exists():
            return []
        return [json.loads(line) for line in self.on_failure.read_text().splitlines()]


class _Lines(logging.Handler):
    def __init__(self, into: list[str]) -> None:
        super().__init__(logging.INFO)
        self.into = into

    def emit(self, record: logging.LogRecord) -> None:
        self.into.append(record.getMessage())


@contextlib.contextmanager
def captured_logs() -> Iterator[list[str]]:
    lines: list[str] = []
    handler = _Lines(lines)
    loggers = [logging.getLogger("s3-bridge"), logging.getLogger("local_runtime.async_invoke")]
    for logger in loggers:
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    try:
        yield lines
    finally:
        for logger in loggers:
            logger.removeHandler(handler)


@contextlib.contextmanager
def versitygw_with_webhook(webhook: str, root: Path) -> Iterator[str]:
    """versitygw with --event-webhook-url: it posts its test event at start and exits if nobody answers."""
    data = root / "buckets"
    data.mkdir(parents=True)
    port = free_port()
    log = (root / "versitygw.log").open("ab")
    process = subprocess.Popen(
        [
            str(binary_path()),
            "--port",
            f"127.0.0.1:{port}",
            "--health",
            "/health",
            "--quiet",
            "--event-webhook-url",
            webhook,
            "posix",
            str(data),
        ],
        env={**os.environ, "ROOT_ACCESS_KEY": ACCESS_KEY, "ROOT_SECRET_KEY": SECRET_KEY},
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"

    def healthy() -> bool:
        assert process.poll() is None, (root / "versitygw.log").read_text()
        try:
            return requests.get(f"{endpoint}/health", timeout=1).status_code == 200
        except requests.ConnectionError:
            return False

    try:
        wait_for(healthy, 30, "versitygw")
        yield endpoint
    finally:
        stop_verifier(process)
        log.close()


@pytest.fixture
def local_loop(tmp_path: Path) -> Iterator[Callable[..., Any]]:
    """Start the chain for one test: bridge (first), versitygw pointed at it, the Invoke API with the function."""
    if not binary_path().exists():
        pytest.skip(f"needs versitygw: run make s3-verifier (expected at {binary_path()})")
    stack = contextlib.ExitStack()

    def start(handler: str = "lambda_function.handler", rules: TriggerRules | None = None, **settings: Any) -> Loop:
        bucket = f"trigger-{uuid.uuid4().hex[:12]}"
        on_failure = tmp_path / "on-failure.jsonl"
        log = stack.enter_context(captured_logs())
        holder: dict[str, str] = {}
        queue = AsyncQueue(
            AsyncSettings(function_arn=ARN, on_failure=on_failure, time_scale=SCALE, **settings),
            lambda event: deliver(holder["url"], event),
        )
        stack.callback(queue.close)
        bridge = Bridge(rules or trigger_rules(PREFIX), bucket, queue, function_principal=ACCESS_KEY)
        webhook = stack.enter_context(running_bridge(bridge))
        endpoint = stack.enter_context(versitygw_with_webhook(webhook, tmp_path / "s3"))
        s3 = signing_client(endpoint, ACCESS_KEY, SECRET_KEY)
        s3.create_bucket(Bucket=bucket)
        config = FunctionConfig(
            name="pdf-manifest",
            task_root=ROOT,
            handler=handler,
            timeout_s=60,
            memory_mb=512,
            env={
                "S3_ENDPOINT_URL": endpoint,
                "AWS_ACCESS_KEY_ID": ACCESS_KEY,
                "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
                "AWS_REGION": REGION,
                "BUCKET_NAME": bucket,
                "PREFIX": PREFIX,
            },
        )
        api = stack.enter_context(running_api({"pdf-manifest": EnvironmentPool(config, max_environments=2)}))
        holder["url"] = api.url
        return Loop(s3=s3, bucket=bucket, bridge=bridge, on_failure=on_failure, log=log)

    with stack:
        yield start


def deliver(url: str, event: QueuedEvent) -> Any:
    from local_dev.s3_bridge import invoke_through_api

    return invoke_through_api(url, "pdf-manifest")(event)


def put(loop: Loop, key: str, body: bytes = b"%PDF-1.4\n%%EOF\n") -> None:
    loop.s3.put_object(Bucket=loop.bucket, Key=key, Body=body)


@pytest.mark.s3verify
def test_a_pdf_upload_makes_a_manifest_and_nothing_else_invokes(local_loop):
    loop = local_loop()
    put(loop, f"{PREFIX}notes.txt", b"not a pdf")
    put(loop, f"{PREFIX}decoy.pdf.txt", b"not a pdf")
    put(loop, "elsewhere/report.pdf")
    put(loop, f"{PREFIX}quarterly report+1.pdf")

    wait_for(lambda: loop.counts["succeeded"] == 1 and loop.manifests(), what="the manifest")
    time.sleep(1.5)  # the manifest's own upload, and anything late, has had time to arrive
    assert loop.counts["succeeded"] == 1, loop.log
    assert len(loop.manifests()) == 1
    body = loop.s3.get_object(Bucket=loop.bucket, Key=loop.manifests()[0])["Body"].read().decode()
    assert [json.loads(line)["key"] for line in body.splitlines()] == [f"{PREFIX}quarterly report+1.pdf"]
    skipped = [line for line in loop.log if line.startswith("no invocation for")]
    assert len(skipped) == 4, loop.log  # .txt, decoy, outside the prefix, and the manifest itself
    assert any("manifests/" in line for line in skipped)
    assert loop.failures() == []


@pytest.mark.s3verify
def test_a_trigger_that_loops_stops_after_16_invocations(local_loop):
    loop = local_loop(rules=TriggerRules(events=(OBJECT_CREATED,)))  # every key: the manifest triggers it again
    put(loop, f"{PREFIX}seed.pdf")

    wait_for(lambda: loop.counts["recursion_stopped"] == 1, timeout=100, what="the loop to be stopped")
    loop.bridge.queue.wait_idle(10)
    time.sleep(1)
    assert loop.counts["succeeded"] == 16, loop.log
    assert len(loop.manifests()) == 16
    (failure,) = loop.failures()
    assert failure["requestContext"]["condition"] == "RecursiveInvocationDetected"
    assert failure["requestPayload"]["Records"][0]["s3"]["object"]["key"].startswith("manifests/")
    assert sum("stopped a recursive invocation" in line for line in loop.log) == 1


@pytest.mark.s3verify
def test_a_raising_function_is_retried_twice_then_lands_in_the_on_failure_file(local_loop):
    loop = local_loop(handler="tests.fixtures.handlers.raising")
    started = time.monotonic()
    put(loop, f"{PREFIX}a b.pdf")

    wait_for(lambda: loop.failures() != [], timeout=60, what="the on-failure record")
    elapsed = time.monotonic() - started
    (failure,) = loop.failures()
    assert failure["requestContext"]["condition"] == "RetriesExhausted"
    assert failure["requestContext"]["approximateInvokeCount"] == 3
    assert failure["requestContext"]["functionArn"] == f"{ARN}:$LATEST"
    assert failure["responseContext"]["functionError"] == "Unhandled"
    assert failure["responsePayload"]["errorType"]
    assert failure["requestPayload"]["Records"][0]["s3"]["object"]["key"] == f"{PREFIX}a+b.pdf"
    assert elapsed >= 0.9  # 0.3 s + 0.6 s: Lambda's 1 and 2 minutes, scaled
    retries = [line for line in loop.log if "retry in" in line]
    assert [line.split("retry in ")[1].split("s")[0] for line in retries] == ["0.3", "0.6"]


# -- bad input straight at the bridge (no S3 server needed) ------------------------------------------


@pytest.fixture
def bare_bridge(tmp_path: Path) -> Iterator[tuple[str, Bridge, list[str], list[QueuedEvent]]]:
    seen: list[QueuedEvent] = []

    def slow(event: QueuedEvent) -> Any:
        from local_runtime.async_invoke import Outcome

        seen.append(event)
        time.sleep(0.01)
        return Outcome("ok")

    queue = AsyncQueue(
        AsyncSettings(function_arn=ARN, on_failure=tmp_path / "failed.jsonl", time_scale=SCALE, queue_limit=100),
        slow,
    )
    # The function writes as "lambda-role"; these records come from "minioadmin", someone else.
    bridge = Bridge(trigger_rules(PREFIX), "the-bucket", queue, function_principal="lambda-role")
    with captured_logs() as log, running_bridge(bridge) as url:
        yield url, bridge, log, seen
    queue.close()


def record(key: str, bucket: str = "the-bucket", name: str = "s3:ObjectCreated:Put") -> dict[str, Any]:
    """A record as versitygw v1.8.0 sends it (raw key, malformed ARN, PrincipalId)."""
    return {
        "eventVersion": "2.2",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2026-12-06T10:00:00Z",
        "eventName": name,
        "userIdentity": {"PrincipalId": "minioadmin"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "", "x-amz-id-2": ""},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "webhook-global",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"PrincipalId": "minioadmin"},
                "arn": f"arn:aws:s3:::/{bucket}/x",
            },
            "object": {"key": key, "size": 3, "eTag": '"abc"', "versionId": None, "sequencer": "1"},
        },
    }


def test_versitygw_records_become_the_s3_shape_lambda_receives():
    (event,) = parse_webhook(json.dumps({"Records": [record("2026/04/my report+1 %.pdf")]}).encode())
    shaped = event.record
    assert shaped["eventVersion"] == "2.1" and shaped["eventName"] == "ObjectCreated:Put"
    assert shaped["s3"]["object"]["key"] == "2026/04/my+report%2B1+%25.pdf"
    assert shaped["s3"]["bucket"]["arn"] == "arn:aws:s3:::the-bucket"
    assert shaped["userIdentity"] == {"principalId": "AWS:minioadmin"}
    assert shaped["eventTime"] == "2026-12-06T10:00:00.000Z"
    assert event.key == "2026/04/my report+1 %.pdf"
    assert s3_key_encoding("a b+c/d~e") == "a+b%2Bc/d~e"
    assert parse_webhook(b'{"Bucket":"Test-Bucket","Event":"s3:TestEvent","Service":"S3"}') is None
    # MinIO's body: S3-shaped records with the key already encoded, wrapped with EventName and Key.
    minio = {"EventName": "s3:ObjectCreated:Put", "Key": "b/k", "Records": [record("2026/04/my+report%2B1.pdf")]}
    (from_minio,) = parse_webhook(json.dumps(minio).encode())
    assert from_minio.key == "2026/04/my report+1.pdf"


def post(url: str, body: bytes | str, **headers: str) -> requests.Response:
    return requests.post(url, data=body, headers={"Content-Type": "application/json", **headers}, timeout=10)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"\xff\xfe not json", "not JSON"),
        (b"[1, 2]", "JSON list"),
        (b'{"hello": "world"}', "no Records"),
        (b'{"Records": [{"eventSource": "aws:sqs"}]}', "not an aws:s3 record"),
        (b'{"Records": [{"eventSource": "aws:s3", "s3": {}}]}', "lacks"),
        (json.dumps({"EventName": "x", "Records": [record("2026/04/%FF.pdf")]}).encode(), "does not URL-decode"),
        (b'{"Records": [' + json.dumps(record("x")).replace('"x"', '"\\udc80.pdf"').encode() + b"]}", "lone surrogate"),
        (json.dumps({"Records": [record("k" * 1025)]}).encode(), "1 to 1024 bytes"),
    ],
)
def test_what_is_not_an_s3_object_event_is_one_line_and_no_invocation(bare_bridge, body, says):
    url, bridge, log, seen = bare_bridge
    answer = post(url, body)
    assert answer.status_code == 400
    assert len(log) == 1 and says in log[0], log
    assert bridge.queue.pending == 0 and not seen


def test_a_record_for_another_bucket_is_ignored_in_one_line(bare_bridge):
    url, _bridge, log, seen = bare_bridge
    assert post(url, json.dumps({"Records": [record(f"{PREFIX}x.pdf", bucket="other")]})).status_code == 200
    assert len(log) == 1 and "bucket the-bucket only" in log[0]
    time.sleep(0.2)
    assert not seen


def test_the_bridge_answers_only_the_s3_server_host_it_listens_on(bare_bridge):
    url, _, log, seen = bare_bridge
    body = json.dumps({"Records": [record(f"{PREFIX}x.pdf")]})
    assert post(url, body, Host="rebind.example:9010").status_code == 403
    assert post(url, body, Origin="https://evil.example").status_code == 403
    assert len(log) == 0 or all("refused" in line for line in log)
    port = url.split(":")[2].split("/")[0]
    assert post(url, body, Host=f"127.0.0.1:{port}").status_code == 200  # what versitygw's Go client sends
    wait_for(lambda: len(seen) == 1, 5, "the one accepted event")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_a_flood_of_10000_events_is_bounded_logged_once_and_nothing_is_silently_lost(bare_bridge):
    from concurrent.futures import ThreadPoolExecutor

    url, bridge, log, _seen = bare_bridge

    def send(numbers: range) -> set[int]:
        with requests.Session() as session:
            return {
                session.post(
                    url, data=json.dumps({"Records": [record(f"{PREFIX}flood-{n}.pdf")]}), timeout=10
                ).status_code
                for n in numbers
            }

    with ThreadPoolExecutor(4) as pool:
        statuses = set().union(*pool.map(send, [range(start, 10_000, 4) for start in range(4)]))
    assert statuses == {200}
    bridge.queue.wait_idle(60)
    counts = bridge.queue.counts
    assert counts["dropped"] > 0
    assert counts["succeeded"] + counts["dropped"] == 10_000
    full = [line for line in log if "queue" in line and "is full" in line]
    assert len(full) >= 1 and len(full) <= counts["dropped"]
    assert len(full) < 50, full[:3]  # one line per overflow, not one per event
    failed = (Path(bridge.queue.settings.on_failure or "")).read_text().splitlines()
    assert len(failed) == counts["dropped"]
    assert {json.loads(line)["requestContext"]["condition"] for line in failed} == {"EventAgeExceeded"}
    assert post(url, b'{"Bucket":"Test-Bucket","Event":"s3:TestEvent"}').status_code == 200  # still answering
