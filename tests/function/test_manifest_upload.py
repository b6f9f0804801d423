"""The streamed manifest: multipart once it outgrows a part, gzip, and nothing left on failure."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path
from typing import Any

import aioboto3
import pytest
import requests
from botocore.config import Config

from pdf_manifest.manifest_upload import ManifestUpload

SMALL_PART = 4096


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> int:
    """Let moto accept parts smaller than S3's 5 MiB so tests stay small."""
    monkeypatch.setattr("moto.s3.models.S3_UPLOAD_PART_MIN_SIZE", 1)
    return SMALL_PART


def run_upload(endpoint: str, bucket: str, key: str, tmp: Path, chunks: list[str], **options: Any) -> dict[str, Any]:
    """Write the chunks through a ManifestUpload; report size and the most part files seen at once."""

    async def go() -> dict[str, Any]:
        session = aioboto3.Session()
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
        async with session.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config) as s3:
            most_files = 0
            async with ManifestUpload(
                s3, bucket, key, tmp / "m.jsonl", content_type="application/x-ndjson", **options
            ) as upload:
                for chunk in chunks:
                    await upload.write(chunk)
                    most_files = max(most_files, len(list(tmp.iterdir())))
                size = await upload.finish()
        return {"size": size, "most_files": most_files}

    return asyncio.run(go())


def lines(count: int) -> list[str]:
    return [json.dumps({"key": f"k/{i:06d}.pdf", "url": f"http://x/{i}"}) + "\n" for i in range(count)]


def test_small_manifest_is_one_put(s3_endpoint, s3, bucket, tmp_path):
    text = lines(10)

    result = run_upload(s3_endpoint, bucket, "manifests/a.jsonl", tmp_path, text, part_bytes=1 << 20)

    stored = s3.get_object(Bucket=bucket, Key="manifests/a.jsonl")
    assert stored["Body"].read().decode() == "".join(text)
    assert stored["ContentType"] == "application/x-ndjson"
    assert result["size"] == len("".join(text).encode())
    assert "-" not in stored["ETag"]  # single-part ETag
    assert list(tmp_path.iterdir()) == []


def test_large_manifest_streams_as_multipart_with_bounded_tmp(s3_endpoint, s3, bucket, tmp_path, small_parts):
    text = lines(2000)  # ~100 KB in 4 KB parts

    result = run_upload(s3_endpoint, bucket, "manifests/b.jsonl", tmp_path, text, part_bytes=small_parts)

    stored = s3.get_object(Bucket=bucket, Key="manifests/b.jsonl")
    assert stored["Body"].read().decode() == "".join(text)
    assert stored["ETag"].strip('"').split("-")[1].isdigit()  # multipart ETag: "<md5>-<parts>"
    assert int(stored["ETag"].strip('"').split("-")[1]) > 10
    assert result["most_files"] <= 2
    assert list(tmp_path.iterdir()) == []


def test_gzip_manifest_decodes_to_the_same_jsonl(s3_endpoint, s3, bucket, tmp_path, small_parts):
    text = lines(3000)

    result = run_upload(s3_endpoint, bucket, "manifests/c.jsonl.gz", tmp_path, text, part_bytes=small_parts, gzip=True)

    stored = s3.get_object(Bucket=bucket, Key="manifests/c.jsonl.gz")
    assert stored["ContentEncoding"] == "gzip"
    raw = stored["Body"].read()
    assert gzip.decompress(raw).decode() == "".join(text)
    assert result["size"] == len(raw) < len("".join(text).encode()) / 3


def test_failure_mid_stream_aborts_and_leaves_nothing(s3_endpoint, s3, bucket, tmp_path, small_parts):
    async def go() -> None:
        session = aioboto3.Session()
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
        client = session.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", config=config)
        async with (
            client as s3c,
            ManifestUpload(
                s3c,
                bucket,
                "manifests/d.jsonl",
                tmp_path / "m.jsonl",
                content_type="application/x-ndjson",
                part_bytes=small_parts,
            ) as upload,
        ):
            for chunk in lines(1000):
                await upload.write(chunk)
            raise RuntimeError("scan failed half way")

    with pytest.raises(RuntimeError, match="half way"):
        asyncio.run(go())

    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="manifests/")
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
    assert list(tmp_path.iterdir()) == []


def test_handler_streams_a_multipart_gzip_manifest(
    load_handler, context_factory, bucket, moto_backend, small_parts, lambda_tmp
):
    keys = {f"2026/04/{i:05d}.pdf" for i in range(1500)}
    for key in keys:
        moto_backend.put_object(bucket, key, b"%PDF-")
    module = load_handler(BUCKET_NAME=bucket, MANIFEST_GZIP="true")
    module.MANIFEST_PART_BYTES = small_parts  # below S3's floor, for the test only

    body = json.loads(module.handler({}, context_factory())["body"])

    assert body["manifest_key"].endswith(".jsonl.gz")
    fetched = requests.get(body["manifest_url"], timeout=10)  # requests honours Content-Encoding
    assert {json.loads(line)["key"] for line in fetched.text.split("\n") if line} == keys
    assert list(lambda_tmp.iterdir()) == []


@pytest.mark.parametrize("value", ["maybe", "2"])
def test_manifest_gzip_setting_must_be_a_boolean(load_handler, value):
    with pytest.raises(Exception, match="MANIFEST_GZIP must be true or false"):
        load_handler(MANIFEST_GZIP=value)


def test_part_size_below_s3s_floor_is_refused(load_handler):
    with pytest.raises(Exception, match="MANIFEST_PART_BYTES must be between 5242880"):
        load_handler(MANIFEST_PART_BYTES=str(1 << 20))
