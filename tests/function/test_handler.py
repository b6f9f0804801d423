"""The handler against a real HTTP S3 endpoint (moto server)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from hypothesis import given, settings
from hypothesis import strategies as st

AWKWARD_KEYS = [
    "2026/04/with space.pdf",
    "2026/04/plus+sign.pdf",
    "2026/04/percent%20literal.pdf",
    "2026/04/ünïcødé-報告.pdf",
    "2026/04//double-slash.pdf",
    "2026/04/semi;colon&amp=equals?.pdf",
    "2026/04/tilde~quote'paren(1).pdf",
]


def invoke(module: Any, context: Any, event: dict[str, Any] | None = None) -> dict[str, Any]:
    response = module.handler(event if event is not None else {}, context)
    assert response["statusCode"] == 200
    return json.loads(response["body"])


def manifest_lines(body: dict[str, Any]) -> list[dict[str, str]]:
    response = requests.get(body["manifest_url"], timeout=10)
    response.raise_for_status()
    return [json.loads(line) for line in response.text.split("\n") if line]


def put(s3: Any, bucket: str, key: str, body: bytes | None = None) -> bytes:
    data = body if body is not None else f"%PDF-1.4 fake body of {key}".encode()
    s3.put_object(Bucket=bucket, Key=key, Body=data)
    return data


def test_handler_lists_every_pdf_across_pages(load_handler, context_factory, bucket, moto_backend):
    expected = {f"2026/04/doc-{i:05d}.pdf" for i in range(2345)}
    for key in expected:
        moto_backend.put_object(bucket, key, b"%PDF-")
    for i in range(300):
        moto_backend.put_object(bucket, f"2026/04/other-{i}.txt", b"x")
    module = load_handler(BUCKET_NAME=bucket, PREFIX="2026/04/")

    body = invoke(module, context_factory())

    assert body["count"] == len(expected)
    assert {line["key"] for line in manifest_lines(body)} == expected


def test_handler_filter_is_case_insensitive_and_skips_decoys(load_handler, context_factory, bucket, s3):
    pdfs = ["2026/04/a.pdf", "2026/04/b.PDF", "2026/04/c.Pdf", "2026/04/sub/d.pdf"]
    decoys = ["2026/04/a.pdf.bak", "2026/04/pdf", "2026/04/notes.txt", "2026/04/x.pdfx"]
    for key in pdfs + decoys:
        put(s3, bucket, key)
    module = load_handler(BUCKET_NAME=bucket, PREFIX="2026/04/")

    body = invoke(module, context_factory())

    assert sorted(line["key"] for line in manifest_lines(body)) == sorted(pdfs)


def test_handler_prefix_is_a_string_prefix_not_a_neighbour(load_handler, context_factory, bucket, s3):
    put(s3, bucket, "2026/04/in.pdf")
    put(s3, bucket, "2026/040/out.pdf")
    put(s3, bucket, "2026/05/out.pdf")
    module = load_handler(BUCKET_NAME=bucket, PREFIX="2026/04/")

    body = invoke(module, context_factory())

    assert [line["key"] for line in manifest_lines(body)] == ["2026/04/in.pdf"]


def test_handler_empty_prefix_is_success_with_empty_manifest(load_handler, context_factory, bucket, s3):
    module = load_handler(BUCKET_NAME=bucket, PREFIX="nothing/here/")

    body = invoke(module, context_factory())

    assert body["count"] == 0
    assert requests.get(body["manifest_url"], timeout=10).content == b""


def test_handler_queue_of_one_still_lists_everything(load_handler, context_factory, bucket, moto_backend):
    keys = {f"p/{i}.pdf" for i in range(1200)}
    for key in keys:
        moto_backend.put_object(bucket, key, b"%PDF-")
    module = load_handler(BUCKET_NAME=bucket, PREFIX="p/", QUEUE_MAX=1)

    body = invoke(module, context_factory())

    assert {line["key"] for line in manifest_lines(body)} == keys


@pytest.mark.parametrize(("queue_max", "most_waiting"), [(2500, 2000), (1, 1), (700, 700)])
def test_backpressure_keeps_at_most_queue_max_keys_waiting(load_handler, monkeypatch, queue_max, most_waiting):
    """Keys travel the queue in batches, and the producer still stops at QUEUE_MAX keys waiting."""
    module = load_handler(QUEUE_MAX=queue_max)
    keys = tuple(f"p/{i}.pdf" for i in range(5000))
    waiting: list[int] = []

    async def slow_consumer(bucket: str, queue: asyncio.Queue, upload: Any) -> int:
        count = 0
        while True:
            for _ in range(5):  # let the producer run ahead as far as the queue lets it
                await asyncio.sleep(0)
            waiting.append(sum(len(item) for item in queue._queue if item is not module._END_OF_LISTING))
            batch = await queue.get()
            if batch is module._END_OF_LISTING:
                return count
            count += len(batch)

    monkeypatch.setattr(module, "write_presigned_lines", slow_consumer)
    request = module.ScanRequest(bucket="b", prefix="p/", source="test", keys=keys)
    count = asyncio.run(module.scan_to_file(None, request, None, module.ScanStats(), module._no_deadline))

    assert count == len(keys)
    assert max(waiting) == most_waiting <= queue_max


def test_manifest_urls_download_the_exact_bytes_of_awkward_keys(load_handler, context_factory, bucket, s3):
    originals = {key: put(s3, bucket, key, f"%PDF- body of {key} {i}".encode()) for i, key in enumerate(AWKWARD_KEYS)}
    module = load_handler(BUCKET_NAME=bucket, PREFIX="2026/04/")

    lines = manifest_lines(invoke(module, context_factory()))

    assert {line["key"] for line in lines} == set(originals)
    for line in lines:
        assert requests.get(line["url"], timeout=10).content == originals[line["key"]], line["key"]


def test_manifest_url_downloads_leading_slash_key(load_handler, context_factory, bucket, s3):
    data = put(s3, bucket, "/rooted/file.pdf", b"%PDF- rooted")
    module = load_handler(BUCKET_NAME=bucket, PREFIX="/rooted/")

    [line] = manifest_lines(invoke(module, context_factory()))

    assert line["key"] == "/rooted/file.pdf"
    assert requests.get(line["url"], timeout=10).content == data


def test_manifest_is_stored_as_ndjson_under_manifests(load_handler, context_factory, bucket, s3):
    put(s3, bucket, "2026/04/a.pdf")
    module = load_handler(BUCKET_NAME=bucket, PREFIX="2026/04/")

    body = invoke(module, context_factory(request_id="2b4c6d8e-0000-4000-8000-000000000001"))

    assert body["manifest_key"] == "manifests/2b4c6d8e-0000-4000-8000-000000000001.jsonl"
    head = s3.head_object(Bucket=bucket, Key=body["manifest_key"])
    assert head["ContentType"] == "application/x-ndjson"
    assert requests.get(body["manifest_url"], timeout=10).headers["Content-Type"] == "application/x-ndjson"


@pytest.mark.parametrize("expiry", [1, 900, 604800])
def test_urls_are_sigv4_with_the_configured_expiry(load_handler, context_factory, bucket, s3, expiry):
    # moto serves tampered and expired URLs alike, so the signature's shape is
    # asserted here; the verifying server checks that it is also accepted.
    put(s3, bucket, "2026/04/a.pdf")
    module = load_handler(BUCKET_NAME=bucket, PREFIX="2026/04/", URL_EXPIRY_SECONDS=expiry)

    body = invoke(module, context_factory())
    urls = [body["manifest_url"]] + [line["url"] for line in manifest_lines(body)]

    for url in urls:
        query = {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}
        assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
        assert query["X-Amz-Expires"] == str(expiry)
        assert query["X-Amz-SignedHeaders"] == "host"
        assert query["X-Amz-Credential"].endswith("/us-east-1/s3/aws4_request")
        assert query["X-Amz-Credential"].startswith("testing/")
        assert len(query["X-Amz-Signature"]) == 64
        assert "Signature" not in query and "AWSAccessKeyId" not in query  # no SigV2


def test_public_endpoint_setting_changes_only_the_url_host(load_handler, context_factory, bucket, s3, s3_endpoint):
    put(s3, bucket, "2026/04/a.pdf")
    module = load_handler(
        BUCKET_NAME=bucket, PREFIX="2026/04/", S3_PUBLIC_ENDPOINT_URL="http://files.example.test:9000"
    )

    body = invoke(module, context_factory())

    assert body["manifest_url"].startswith(f"http://files.example.test:9000/{bucket}/manifests/")
    assert s3.head_object(Bucket=bucket, Key=body["manifest_key"])["ContentLength"] > 0


def test_tmp_file_is_removed_after_success(load_handler, context_factory, bucket, s3, lambda_tmp):
    put(s3, bucket, "2026/04/a.pdf")
    module = load_handler(BUCKET_NAME=bucket, PREFIX="2026/04/")

    invoke(module, context_factory())

    assert list(lambda_tmp.iterdir()) == []


def test_missing_bucket_is_a_fast_404_with_clean_tmp(load_handler, context_factory, lambda_tmp):
    module = load_handler(BUCKET_NAME="no-such-bucket-here", PREFIX="2026/04/")
    started = time.monotonic()

    response = module.handler({}, context_factory())

    assert response["statusCode"] == 404
    assert "does not exist" in json.loads(response["body"])["error"]
    assert time.monotonic() - started < 10
    assert list(lambda_tmp.iterdir()) == []


def test_unreachable_endpoint_fails_fast(load_handler, context_factory, lambda_tmp):
    module = load_handler(S3_ENDPOINT_URL="http://127.0.0.1:9", BUCKET_NAME="b", S3_MAX_ATTEMPTS=2)
    started = time.monotonic()

    with pytest.raises(Exception, match="Could not connect"):
        module.handler({}, context_factory())

    assert time.monotonic() - started < 20
    assert list(lambda_tmp.iterdir()) == []


def test_presign_failure_stops_the_producer_and_uploads_nothing(
    load_handler, context_factory, bucket, moto_backend, s3, lambda_tmp, monkeypatch
):
    for i in range(3000):
        moto_backend.put_object(bucket, f"p/{i}.pdf", b"%PDF-")
    module = load_handler(BUCKET_NAME=bucket, PREFIX="p/", QUEUE_MAX=1)
    real = module.PRESIGNER

    class BreaksOnFifthBatch:
        calls = 0

        def presign_many(self, *args: Any, **kwargs: Any) -> list[str]:
            self.calls += 1
            if self.calls == 5:
                raise RuntimeError("signing broke")
            return real.presign_many(*args, **kwargs)

    monkeypatch.setattr(module, "PRESIGNER", BreaksOnFifthBatch())
    started = time.monotonic()

    with pytest.raises(RuntimeError, match="signing broke"):
        module.handler({}, context_factory())

    assert time.monotonic() - started < 10
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="manifests/")
    assert list(lambda_tmp.iterdir()) == []


def test_listing_failure_mid_scan_reaches_the_caller(
    load_handler, context_factory, bucket, moto_backend, s3, lambda_tmp, monkeypatch
):
    for i in range(10):
        moto_backend.put_object(bucket, f"p/{i}.pdf", b"%PDF-")
    module = load_handler(BUCKET_NAME=bucket, PREFIX="p/", QUEUE_MAX=2)
    real_lister = module.list_pdf_keys

    async def lister_that_dies(s3_client: Any, bucket_name: str, prefix: str, queue: asyncio.Queue, *_: Any) -> None:
        await queue.put(["p/0.pdf"])  # a batch of keys, as list_pdf_keys queues them
        raise ConnectionResetError("listing connection reset")

    assert real_lister is not None
    monkeypatch.setattr(module, "list_pdf_keys", lister_that_dies)

    with pytest.raises(ConnectionResetError):
        request = module.ScanRequest(bucket=bucket, prefix="p/", source="test")
        asyncio.run(asyncio.wait_for(module.build_manifest(request, "abc"), timeout=10))

    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="manifests/")
    assert list(lambda_tmp.iterdir()) == []


def test_two_invocations_in_one_environment_do_not_collide(load_handler, context_factory, bucket, s3):
    put(s3, bucket, "2026/04/a.pdf")
    module = load_handler(BUCKET_NAME=bucket, PREFIX="2026/04/")

    first = invoke(module, context_factory())
    second = invoke(module, context_factory())

    assert first["manifest_key"] != second["manifest_key"]
    assert manifest_lines(first)[0]["key"] == manifest_lines(second)[0]["key"] == "2026/04/a.pdf"


@pytest.mark.parametrize("request_id", ["../../etc/passwd", "a/b", "", "x" * 65, "id with space"])
def test_manifest_id_never_comes_from_an_unsafe_request_id(load_handler, request_id):
    module = load_handler()

    class Context:
        aws_request_id = request_id

    manifest_id = module._manifest_id(Context())

    assert manifest_id != request_id
    assert module._SAFE_ID.match(manifest_id)


def test_handler_urls_are_byte_identical_to_botocores(load_handler, context_factory, bucket, s3, s3_endpoint):
    """The fast presigner, wired as the handler wires it, against botocore as the oracle."""
    import datetime
    from unittest import mock

    import boto3
    from botocore.config import Config

    for key in AWKWARD_KEYS:
        put(s3, bucket, key)
    module = load_handler(BUCKET_NAME=bucket, PREFIX="2026/04/", URL_EXPIRY_SECONDS=1234)
    body = invoke(module, context_factory())
    oracle = boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )

    for line in [*manifest_lines(body), {"key": body["manifest_key"], "url": body["manifest_url"]}]:
        signed_at = parse_qs(urlsplit(line["url"]).query)["X-Amz-Date"][0]
        pinned = datetime.datetime.strptime(signed_at, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.UTC)
        with mock.patch("botocore.auth.get_current_datetime", return_value=pinned.replace(tzinfo=None)):
            expected = oracle.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": line["key"]}, ExpiresIn=1234
            )
        assert line["url"] == expected, line["key"]


LINE_BREAKS_JSON_KEEPS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


@settings(max_examples=300, deadline=None)
@given(
    key=st.text(min_size=1) | st.text(st.sampled_from('a\u2028\u2029\x85\n\r\x0b\x1c"\\'), min_size=1),
    url=st.text(),
)
def test_manifest_line_equals_json_dumps_and_is_one_line_for_any_reader(key, url):
    import lambda_function

    line = lambda_function._manifest_line(key, url)

    expected = json.dumps({"key": key, "url": url}, ensure_ascii=False)
    for raw, escaped in LINE_BREAKS_JSON_KEEPS.items():
        expected = expected.replace(raw, escaped)  # json.dumps leaves them raw: same value, escaped
    assert line == expected + "\n"
    assert json.loads(line) == {"key": key, "url": url}
    assert line.splitlines() == [line[:-1]]  # str.splitlines() sees exactly one line
