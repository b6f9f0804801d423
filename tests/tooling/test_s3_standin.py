"""The benchmark S3 stand-in speaks enough S3 for boto3 and aiobotocore.

The scan benchmark's numbers are only worth something if the stand-in answers
like S3: pagination with continuation tokens, prefixes, URL-encoded keys,
multipart uploads whose bytes add up. These tests drive it with the real
clients, so a mismatch shows up here and not as a silently wrong benchmark.
"""

from __future__ import annotations

import asyncio
import http.client
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from bench.s3_standin import GeneratedBucket, StandIn

ROOT = Path(__file__).resolve().parents[2]
CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1})


@pytest.fixture(scope="module")
def standin() -> Iterator[StandIn]:
    buckets = {
        "bench": GeneratedBucket(2_500),
        "out": GeneratedBucket(0),
        "flat": GeneratedBucket(30, root="", decoy_every=0),
        "folders": GeneratedBucket(2_500, layout="folders"),
    }
    with StandIn(buckets, keep=True) as server:
        yield server


def _client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=CONFIG,
    )


@pytest.fixture(scope="module")
def s3(standin: StandIn) -> Any:
    return _client(standin.endpoint)


def test_generated_keys_are_sorted_with_decoys() -> None:
    bucket = GeneratedBucket(25)
    keys = [bucket.key(i) for i in range(25)]
    assert keys == sorted(keys)
    assert keys[0] == "2026/04/doc-0000000.pdf"
    assert keys[9] == "2026/04/doc-0000009.txt"
    assert bucket.pdf_count == 23 == len(list(bucket.pdf_keys()))


def test_paginated_listing_returns_every_key_once(s3: Any) -> None:
    pages = list(s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix="2026/04/"))
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    assert [page["KeyCount"] for page in pages] == [1000, 1000, 500]
    assert keys == [GeneratedBucket(2_500).key(i) for i in range(2_500)]
    assert sum(key.endswith(".pdf") for key in keys) == 2_250


@pytest.mark.parametrize(
    ("prefix", "count"),
    [("", 2_500), ("2026/", 2_500), ("2026/04/doc-00012", 100), ("2026/04/doc-0002499.pdf", 0), ("2026/05/", 0)],
)
def test_prefix_selects_a_contiguous_range(s3: Any, prefix: str, count: int) -> None:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="bench", Prefix=prefix)
    keys = [obj["Key"] for page in pages for obj in page.get("Contents", [])]
    assert len(keys) == count
    assert all(key.startswith(prefix) for key in keys)


def test_start_after_and_max_keys(s3: Any) -> None:
    page = s3.list_objects_v2(Bucket="bench", StartAfter="2026/04/doc-0002490.pdf", MaxKeys=5)
    assert [obj["Key"] for obj in page["Contents"]] == [
        f"2026/04/doc-000249{i}.{'txt' if i == 9 else 'pdf'}" for i in range(1, 6)
    ]
    assert page["IsTruncated"] is True


def test_unknown_bucket_is_no_such_bucket(s3: Any) -> None:
    with pytest.raises(ClientError) as caught:
        s3.list_objects_v2(Bucket="missing")
    assert caught.value.response["Error"]["Code"] == "NoSuchBucket"


def test_put_object_is_counted_and_kept(s3: Any, standin: StandIn) -> None:
    s3.put_object(
        Bucket="out", Key="manifests/a b.jsonl", Body=b'{"k": 1}\n{"k": 2}\n', ContentType="application/x-ndjson"
    )
    stored = standin.state.objects["out", "manifests/a b.jsonl"]
    assert (stored.size, stored.lines, stored.parts) == (18, 2, 0)
    assert stored.content_type == "application/x-ndjson"
    assert s3.get_object(Bucket="out", Key="manifests/a b.jsonl")["Body"].read() == b'{"k": 1}\n{"k": 2}\n'


def test_multipart_upload_joins_parts_in_order(s3: Any, standin: StandIn) -> None:
    upload = s3.create_multipart_upload(Bucket="out", Key="manifests/big.jsonl", ContentEncoding="gzip")
    parts = []
    bodies = {1: b"one\n" * 1000, 2: b"two\n" * 10, 3: b"three"}
    for number in (2, 1, 3):  # parts may arrive out of order
        response = s3.upload_part(
            Bucket="out",
            Key="manifests/big.jsonl",
            UploadId=upload["UploadId"],
            PartNumber=number,
            Body=io.BytesIO(bodies[number]),
        )
        parts.append({"PartNumber": number, "ETag": response["ETag"]})
    done = s3.complete_multipart_upload(
        Bucket="out",
        Key="manifests/big.jsonl",
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": sorted(parts, key=lambda p: p["PartNumber"])},
    )
    assert done["ETag"].endswith('-3"')
    stored = standin.state.objects["out", "manifests/big.jsonl"]
    assert stored.body == bodies[1] + bodies[2] + bodies[3]
    assert (stored.lines, stored.parts, stored.content_encoding) == (1010, 3, "gzip")
    assert s3.head_object(Bucket="out", Key="manifests/big.jsonl")["ContentLength"] == len(stored.body)


def test_aborted_upload_leaves_nothing(s3: Any, standin: StandIn) -> None:
    upload = s3.create_multipart_upload(Bucket="out", Key="manifests/aborted.jsonl")
    s3.upload_part(Bucket="out", Key="manifests/aborted.jsonl", UploadId=upload["UploadId"], PartNumber=1, Body=b"x")
    s3.abort_multipart_upload(Bucket="out", Key="manifests/aborted.jsonl", UploadId=upload["UploadId"])
    assert ("out", "manifests/aborted.jsonl") not in standin.state.objects
    with pytest.raises(ClientError) as caught:
        s3.abort_multipart_upload(Bucket="out", Key="manifests/aborted.jsonl", UploadId=upload["UploadId"])
    assert caught.value.response["Error"]["Code"] == "NoSuchUpload"


def test_aws_chunked_body_is_decoded(standin: StandIn) -> None:
    """botocore sends aws-chunked bodies with trailing checksums over https; the framing is not data."""
    body = b"5;chunk-signature=abc\r\nhello\r\n3\r\n\n!\n\r\n0\r\nx-amz-checksum-crc32:AAAAAA==\r\n\r\n"
    netloc = urlsplit(standin.endpoint).netloc
    connection = http.client.HTTPConnection(netloc, timeout=10)
    connection.request(
        "PUT",
        "/out/chunked.txt",
        body=body,
        headers={
            "Content-Encoding": "aws-chunked",
            "x-amz-content-sha256": "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
            "x-amz-decoded-content-length": "8",
            "x-amz-trailer": "x-amz-checksum-crc32",
        },
    )
    assert connection.getresponse().status == 200
    connection.close()
    stored = standin.state.objects["out", "chunked.txt"]
    assert stored.body == b"hello\n!\n"
    assert stored.content_encoding is None


def test_aiobotocore_paginates_it(standin: StandIn) -> None:
    from aiobotocore.session import get_session

    async def count() -> int:
        async with get_session().create_client(
            "s3",
            endpoint_url=standin.endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=CONFIG,
        ) as client:
            total = 0
            async for page in client.get_paginator("list_objects_v2").paginate(Bucket="flat"):
                total += len(page.get("Contents", []))
            return total

    assert asyncio.run(count()) == 30


def test_command_line_serves_until_terminated() -> None:
    process = subprocess.Popen(
        [sys.executable, str(ROOT / "bench" / "s3_standin.py"), "--bucket", "cli=10"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        assert line.startswith("S3_ENDPOINT_URL=http://127.0.0.1:")
        client = boto3.client(
            "s3",
            endpoint_url=line.split("=", 1)[1],
            region_name="us-east-1",
            aws_access_key_id="t",
            aws_secret_access_key="t",
            config=CONFIG,
        )
        assert client.list_objects_v2(Bucket="cli")["KeyCount"] == 10
    finally:
        process.terminate()
        assert process.wait(10) == 0


def test_scan_bench_runs_every_mode_end_to_end(tmp_path: Path) -> None:
    """A tiny scan benchmark (one child process per mode) still runs against today's handler.

    Every scan runs twice, at zero latency and under a (shortened) latency
    model, on a flat and a folder layout. The naive and s5cmd modes are left to
    ``make bench``: they are bench-only, and each child is a cold start that
    costs seconds on a busy 2-core machine.
    """
    results = tmp_path / "scan.json"
    completed = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "scan_bench.py"),
            "--sizes",
            "8000",
            "--modes",
            "list",
            "handler",
            "--layouts",
            "flat",
            "folders",
            "--latency",
            "off",
            "list=0.03,other=0.01",
            "--cap",
            "60",
            "--json",
            str(results),
            "--graphs",
            str(tmp_path / "graphs"),
        ],
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
        env={**os.environ, "MANIFEST_PART_BYTES": str(5 * 1024 * 1024)},  # two parts: the multipart path
    )
    assert completed.returncode == 0, completed.stdout + completed.stderr
    rows = {(row["mode"], row["layout"], row["latency"]): row for row in json.loads(results.read_text())["rows"]}
    assert set(rows) == {
        (mode, layout, latency)
        for mode in ("list", "handler")
        for layout in ("flat", "folders")
        for latency in ("off", "list=0.03,other=0.01")
    }
    assert all(row["completed"] and not row.get("error") for row in rows.values())
    for row in rows.values():
        assert row.get("manifest_lines", row["count"]) == 7200
        assert row["cpu_seconds"] > 0
    assert rows["handler", "flat", "off"]["manifest_parts"] >= 2
    # Under the model a sequential LIST of 8 pages waits 8 x 30 ms at least.
    assert rows["list", "flat", "list=0.03,other=0.01"]["seconds"] >= 8 * 0.03
    assert sorted(path.name for path in (tmp_path / "graphs").iterdir()) == [
        "bench-scan-rss.svg",
        "bench-scan-throughput.svg",
        "bench-scan-tmp.svg",
    ]
    assert results.with_suffix(".svg").exists()  # the latency plot, next to the JSON


def test_delimiter_rolls_folders_up_like_s3(s3: Any) -> None:
    """The folder layout answers ``Delimiter="/"`` with one common prefix per folder, paged by 1,000 entries."""
    page = s3.list_objects_v2(Bucket="folders", Prefix="2026/04/", Delimiter="/")
    assert [c["Prefix"] for c in page["CommonPrefixes"]] == [f"2026/04/batch-{i:05d}/" for i in range(3)]
    assert "Contents" not in page and not page["IsTruncated"]
    inside = s3.list_objects_v2(Bucket="folders", Prefix="2026/04/batch-00001/", Delimiter="/")
    assert inside["KeyCount"] == 1000 and inside["Contents"][0]["Key"] == "2026/04/batch-00001/doc-0001000.pdf"


def test_latency_model_holds_each_request(standin: StandIn) -> None:
    """A LIST waits the model's LIST time, anything else its ``other`` time (lower bounds: sleeps never end early)."""
    from testkit.latency_model import parse

    standin.state.latency = parse("list=0.2,other=0.05")
    try:
        client = _client(standin.endpoint)
        started = time.perf_counter()
        client.list_objects_v2(Bucket="bench", MaxKeys=1)
        listed = time.perf_counter() - started
        started = time.perf_counter()
        client.head_bucket(Bucket="bench")
        headed = time.perf_counter() - started
    finally:
        standin.state.latency = parse("off")
    assert listed >= 0.2 and headed >= 0.05


def test_open_uploads_are_listed_and_objects_deleted(s3: Any, standin: StandIn) -> None:
    """ManifestUpload lists open uploads for its key (to abort strays) and deletes failed manifests."""
    first = s3.create_multipart_upload(Bucket="out", Key="manifests/stray.jsonl")["UploadId"]
    s3.create_multipart_upload(Bucket="out", Key="elsewhere/x.jsonl")
    s3.upload_part(Bucket="out", Key="manifests/stray.jsonl", UploadId=first, PartNumber=1, Body=b"abc")
    listed = s3.list_multipart_uploads(Bucket="out", Prefix="manifests/stray")
    assert [(u["Key"], u["UploadId"]) for u in listed["Uploads"]] == [("manifests/stray.jsonl", first)]
    parts = s3.list_parts(Bucket="out", Key="manifests/stray.jsonl", UploadId=first)["Parts"]
    assert [(p["PartNumber"], p["Size"]) for p in parts] == [(1, 3)]
    s3.put_object(Bucket="out", Key="manifests/gone.jsonl", Body=b"x")
    s3.delete_object(Bucket="out", Key="manifests/gone.jsonl")
    assert ("out", "manifests/gone.jsonl") not in standin.state.objects


def test_listing_report_memory_estimate() -> None:
    """Lambda's CPU share grows with memory (1 vCPU at 1,769 MB); only the CPU part of a run stretches."""
    from bench.listing_report import smallest_memory_mb

    assert smallest_memory_mb(cpu_s=100, wall_s=100) == 197  # 100 s of pure CPU fits 898.5 s at ~0.11 vCPU
    assert smallest_memory_mb(cpu_s=100, wall_s=500) == 355  # waits do not stretch: 400 s of them leave less room
    assert smallest_memory_mb(cpu_s=10, wall_s=950) is None  # already over the limit with a whole core
    assert smallest_memory_mb(cpu_s=1, wall_s=1) == 128  # Lambda's floor


def test_listing_matrix_lists_every_pdf_of_the_stand_in_under_latency(tmp_path: Path) -> None:
    """The matrix's S3-like column: the handler and a sequential LIST each find every PDF, with the
    stand-in holding each LIST page itself (no proxy), and the row says what the handler received."""
    out = tmp_path / "matrix.json"
    command = [sys.executable, "bench/listing_matrix.py", "--servers", "standin", "--layouts", "folders"]
    command += ["--sizes", "3000", "--latency-ms", "20", "--cap", "120", "--json", str(out)]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [row["mode"] for row in rows] == ["list", "handler"]
    for row in rows:
        assert row["server"] == "standin" and row["count"] == 2700 and "error" not in row, row
        assert row["seconds"] >= 3 * 0.02, row  # at least three pages, each held 20 ms
    assert 3000 <= rows[1]["keys_received"] <= 3300, rows[1]  # every key, at most ~1.1 keys a key


def test_listing_report_names_each_ten_million_run_by_its_latency() -> None:
    from bench.listing_report import table_10m

    def run(spec: str, model: str, seconds: float) -> dict[str, Any]:
        return {
            "mode": "handler",
            "completed": True,
            "keys": 10_000_000,
            "count": 9_000_000,
            "seconds": seconds,
            "cpu_seconds": 180.0,
            "cpu_us_per_pdf": 20.0,
            "peak_rss_bytes": 120 * 2**20,
            "peak_tmp_bytes": 17 * 2**20,
            "latency": spec,
            "latency_model": model,
        }

    rows = [run("list=0.075,other=0.1", "LIST page 75 ms", 250), run("published", "LIST 300", 309)]
    lines = table_10m({"rows": rows})
    text = "\n".join(lines)
    assert "in **250 s** at LIST page 75 ms" in text and "in **309 s** at LIST 300" in text
    assert "at least 750 s" in text and "at least 3000 s" in text  # 10,000 pages, one after another


def test_listing_matrix_prints_several_recorded_runs_as_one_table(tmp_path: Path) -> None:
    def run(server: str, keys: int, ms: int, handler_s: float, list_s: float) -> dict[str, Any]:
        rows = [
            {"server": server, "layout": "flat", "keys": keys, "latency_ms": ms, "mode": "list", "seconds": list_s},
            {"server": server, "layout": "flat", "keys": keys, "latency_ms": ms, "mode": "handler"}
            | {"seconds": handler_s, "keys_received": keys, "pages": keys // 1000},
        ]
        machine = {"cpus": 2, "load_average_before": [1.0], "load_average_after": [2.0]}
        return {"when": "2026-12-06", "command": f"run {server}", "machine": machine, "rows": rows}

    paths = []
    for name, report in {"a": run("moto", 10_000, 0, 5, 10), "b": run("standin", 1_000_000, 300, 30, 300)}.items():
        paths.append(tmp_path / f"{name}.json")
        paths[-1].write_text(json.dumps(report))
    done = subprocess.run(
        [sys.executable, "bench/listing_matrix.py", "--report", *map(str, paths)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "| moto | flat | 10,000 | **0.50×**" in done.stdout
    assert "| standin | flat | 1,000,000 | not run | not run | not run | **0.10×**" in done.stdout
    assert "run moto" in done.stdout and "run standin" in done.stdout
