"""The fast subset of make stress: the handler through the fault-injecting proxy, judged by the rule.

Every invocation must end as a success with a complete, correct manifest or
as a clean failure (error reported, no manifest, no pending upload, empty
/tmp); never a hang. ``make stress`` runs 200 schedules over 2,500 keys; these
20 run over 1,100 keys (still a multi-page listing) in two chunks of five
harnesses side by side, so ``pytest -n 2`` spreads them over both cores.

Two gaps this harness found in manifest_upload.py (an orphaned multipart
upload after a lost CreateMultipartUpload response, and a manifest left behind
after a lost PutObject acknowledgement) are fixed; the two tests at the end
pin them, and the subset tolerates no dirty failure at all.
"""

from __future__ import annotations

import asyncio
import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from reliability.fault_proxy import Fault, FaultProxy, RequestInfo
from reliability.fault_run import (
    DEFAULT_SEED,
    FaultHarness,
    run_schedules,
)
from reliability.schedules import Schedule, make_schedule
from testkit.s3_operations import s3_operation
from tests.conftest import ROOT

FAST_SCHEDULES = 20
CHUNKS = 2
FAST_KEYS = 1100  # two ListObjectsV2 pages
SMALL_KEYS = 400  # one page, but enough lines to go multipart in 64 KiB parts


@pytest.fixture(scope="module")
def harness(s3_endpoint: str) -> Iterator[FaultHarness]:
    """One bucket, proxy and handler module for the single-scenario tests of this worker."""
    with FaultHarness(keys=SMALL_KEYS, endpoint=s3_endpoint) as running:
        yield running


@pytest.fixture(autouse=True)
def _quiet_powertools(recwarn: pytest.WarningsRecorder) -> None:
    """A failed invocation has no metrics to flush; Powertools warns, which is expected here."""


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_fast_fault_schedules_end_in_success_or_clean_failure(s3_endpoint: str, chunk: int) -> None:
    indices = list(range(chunk, FAST_SCHEDULES, CHUNKS))
    report = io.StringIO()

    summary = run_schedules(DEFAULT_SEED, indices, keys=FAST_KEYS, endpoint=s3_endpoint, out=report, parallel=5)

    counts = summary.counts()
    assert counts["hang"] == 0, report.getvalue()
    assert counts["bad-manifest"] == 0, report.getvalue()
    assert counts["over-budget"] == 0, report.getvalue()
    assert counts["dirty-failure"] == 0, report.getvalue()
    assert len(summary.outcomes) == len(indices)


def test_the_fast_subset_covers_both_outcomes_and_every_fault_kind() -> None:
    """The 20 schedules are not all easy: some must be built to fail, and every fault kind must be drawn."""
    schedules = [make_schedule(DEFAULT_SEED, i) for i in range(FAST_SCHEDULES)]

    kinds = {s.kind for s in schedules}
    assert kinds == {"transient", "burst", "persistent"}
    assert any(s.multipart for s in schedules) and not all(s.multipart for s in schedules)


def test_schedules_replay_identically_from_their_seed() -> None:
    info = RequestInfo("UploadPart", 3, "PUT", "/b/k?partNumber=4&uploadId=x")
    for index in range(50):
        first, again = make_schedule(7, index), make_schedule(7, index)
        assert first == again
        assert first.decider()(info) == again.decider()(info)
    assert make_schedule(7, 1) != make_schedule(8, 1)


@pytest.mark.parametrize(
    ("method", "target", "operation"),
    [
        ("GET", "/bkt?list-type=2&prefix=a%2F", "ListObjectsV2"),
        ("PUT", "/bkt/manifests/x.jsonl", "PutObject"),
        ("POST", "/bkt/manifests/x.jsonl?uploads", "CreateMultipartUpload"),
        ("PUT", "/bkt/manifests/x.jsonl?partNumber=2&uploadId=abc", "UploadPart"),
        ("POST", "/bkt/manifests/x.jsonl?uploadId=abc", "CompleteMultipartUpload"),
        ("DELETE", "/bkt/manifests/x.jsonl?uploadId=abc", "AbortMultipartUpload"),
    ],
)
def test_proxy_names_the_s3_operation(method: str, target: str, operation: str) -> None:
    assert s3_operation(method, target) == operation


@pytest.mark.parametrize("fault", [f for f in Fault if f is not Fault.NONE])
def test_every_single_fault_is_absorbed_by_retries(harness: FaultHarness, fault: Fault) -> None:
    """One fault on the first listing request: botocore's retries must hide it completely."""
    schedule = Schedule(0, 0, "persistent", False, operation="ListObjectsV2", start=0, length=1, fault=fault)

    outcome = harness.run(schedule)

    assert outcome.status == "success", outcome.line() + outcome.detail
    assert outcome.faults[fault.value] == 1


def test_a_persistent_fault_fails_cleanly_within_the_budget(harness: FaultHarness) -> None:
    schedule = Schedule(0, 0, "persistent", True, operation="UploadPart", start=0, fault=Fault.INTERNAL_500)

    outcome = harness.run(schedule)

    assert outcome.status == "clean-failure", outcome.line() + outcome.detail
    assert "InternalError" in outcome.error
    assert outcome.seconds < harness.function_timeout_s


def test_proxy_forwards_request_bytes_unchanged_host_included() -> None:
    """SigV4 signs Host: the proxy must forward the request exactly as the client sent it."""
    request = (
        b"PUT /bkt/k.pdf HTTP/1.1\r\nHost: s3.example:9000\r\nAuthorization: AWS4-HMAC-SHA256 x\r\n"
        b"Content-Length: 5\r\n\r\nhello"
    )

    async def scenario() -> tuple[bytes, bytes]:
        received = bytearray()

        async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            received.extend(await reader.readexactly(len(request)))
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            writer.close()

        server = await asyncio.start_server(upstream, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        proxy = FaultProxy(f"http://127.0.0.1:{port}")
        url = await proxy.start()
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        writer.write(request)
        await writer.drain()
        answer = await asyncio.wait_for(reader.readexactly(len(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")), 5)
        writer.close()
        await proxy.stop()
        server.close()
        return bytes(received), answer

    received, answer = asyncio.run(asyncio.wait_for(scenario(), timeout=15))

    assert received == request
    assert answer.endswith(b"\r\n\r\nok")


def test_lost_create_multipart_response_leaves_no_orphan_upload(harness: FaultHarness) -> None:
    schedule = Schedule(
        0, 0, "persistent", True, operation="CreateMultipartUpload", start=0, length=1, fault=Fault.RESET_AFTER_HEADERS
    )

    outcome = harness.run(schedule)

    assert outcome.status == "success", outcome.line()


def test_lost_put_acknowledgement_leaves_no_manifest_after_failure(harness: FaultHarness) -> None:
    schedule = Schedule(0, 0, "persistent", False, operation="PutObject", start=0, fault=Fault.RESET_BEFORE_HEADERS)

    outcome = harness.run(schedule)

    assert outcome.status == "clean-failure", outcome.line()


def test_lost_complete_acknowledgement_leaves_no_manifest_after_failure(harness: FaultHarness) -> None:
    """S3 completed the upload but the client never heard: the failure must not leave the manifest visible."""
    schedule = Schedule(
        0, 0, "persistent", True, operation="CompleteMultipartUpload", start=0, fault=Fault.RESET_AFTER_HEADERS
    )

    outcome = harness.run(schedule)

    assert outcome.status == "clean-failure", outcome.line()


def test_a_fault_run_whose_handler_cannot_import_ends_with_an_error_not_a_hang():
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reliability.fault_run",
            "--seed",
            "1",
            "--only",
            "3",
            "--keys",
            "10",
            "--parallel",
            "1",
        ],
        cwd=ROOT,
        env={**os.environ, "URL_EXPIRY_SECONDS": "0"},  # the handler refuses to import with it
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert done.returncode != 0
    assert "URL_EXPIRY_SECONDS must be between" in done.stderr
    assert time.monotonic() - started < 60
