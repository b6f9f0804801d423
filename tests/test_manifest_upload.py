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

from manifest_upload import ManifestUpload
from tests import verifying_s3

verifier = verifying_s3.verifier
verifier_s3 = verifying_s3.verifier_s3
verifier_bucket = verifying_s3.verifier_bucket

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


# --- two writers of one key ---------------------------------------------------
# An async event delivered twice runs twice with one request id, so two
# ManifestUploads write the same key. Each S3 call of either writer is one step;
# the schedule runs the second writer for k steps, the first to its end, then
# the second to its end, for every k. After each schedule: no pending upload is
# left, and the key holds what the last writer to store it returned, or nothing
# if that writer failed.


class Interleaving:
    """Hand out S3 calls to named writers in scripted phases, one call at a time."""

    def __init__(self, phases: list[tuple[str, int | None]]) -> None:
        self.phases = list(phases)  # (writer, calls or None for "until it ends")
        self.finished: set[str] = set()
        self.condition = asyncio.Condition()
        self.steps: list[str] = []
        self.stored: list[str] = []  # writers whose put/complete reached S3, in order

    def _turn(self) -> str | None:
        while self.phases:
            who, left = self.phases[0]
            if who in self.finished or left == 0:
                self.phases.pop(0)
                continue
            return who
        return None

    async def call(self, who: str, name: str, action: Any) -> Any:
        async with self.condition:
            await self.condition.wait_for(lambda: self._turn() in (who, None))
        try:
            return await action()
        finally:
            async with self.condition:
                if self.phases and self.phases[0][0] == who and self.phases[0][1] is not None:
                    self.phases[0] = (who, self.phases[0][1] - 1)
                self.steps.append(f"{who}:{name}")
                self.condition.notify_all()

    async def finish(self, who: str) -> None:
        async with self.condition:
            self.finished.add(who)
            self.condition.notify_all()


class GatedClient:
    """An S3 client whose every call waits for its writer's turn; ``lose_ack`` drops the final answer."""

    def __init__(self, s3: Any, turns: Interleaving, who: str, lose_ack: bool) -> None:
        self._s3, self._turns, self._who, self._lose_ack = s3, turns, who, lose_ack

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._s3, name)

        async def gated(**kwargs: Any) -> Any:
            async def action() -> Any:
                result = await method(**kwargs)
                if name in ("put_object", "complete_multipart_upload"):
                    self._turns.stored.append(self._who)
                    if self._lose_ack:
                        raise ConnectionResetError(f"{name}: the answer was lost")
                return result

            return await self._turns.call(self._who, name, action)

        return gated


def two_writer_texts() -> dict[str, str]:
    return {who: "".join(f'{{"writer": "{who}", "n": {i:05d}}}\n' for i in range(300)) for who in ("a", "b")}


async def write_as(
    s3: Any, turns: Interleaving, who: str, bucket: str, key: str, tmp: Path, text: str, part_bytes: int, mode: str
) -> bool:
    """One writer's whole job; True if finish() returned (its caller would hand out the URL)."""
    client = GatedClient(s3, turns, who, lose_ack=mode == "lost-ack")
    try:
        async with ManifestUpload(
            client, bucket, key, tmp / f"{who}.jsonl", part_bytes=part_bytes, content_type="application/x-ndjson"
        ) as upload:
            for start in range(0, len(text), 1000):
                await upload.write(text[start : start + 1000])
            if mode == "scan-fails":
                raise RuntimeError("the scan failed")
            await upload.finish()
        return True
    except (RuntimeError, ConnectionResetError):
        return False
    finally:
        await turns.finish(who)


def run_two_writers(
    endpoint: str,
    bucket: str,
    key: str,
    tmp: Path,
    phases: list[tuple[str, int | None]],
    setup: dict[str, Any],
    **credentials: str,
) -> tuple[Interleaving, dict[str, bool]]:
    texts = two_writer_texts()

    async def go() -> tuple[Interleaving, dict[str, bool]]:
        turns = Interleaving(phases)
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1})
        async with aioboto3.Session().client(
            "s3", endpoint_url=endpoint, region_name="us-east-1", config=config, **credentials
        ) as s3:
            jobs = {
                who: write_as(s3, turns, who, bucket, key, tmp, texts[who], *setup[who])
                for who in sorted(setup)
                if who in {w for w, _ in phases}
            }
            results = await asyncio.gather(*jobs.values())
        return turns, dict(zip(jobs, results, strict=True))

    return asyncio.run(go())


MULTIPART, ONE_PUT = SMALL_PART, 1 << 20


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((MULTIPART, "ok"), (MULTIPART, "ok")),
        ((MULTIPART, "ok"), (MULTIPART, "scan-fails")),
        ((MULTIPART, "ok"), (MULTIPART, "lost-ack")),
        ((MULTIPART, "lost-ack"), (MULTIPART, "ok")),
        ((ONE_PUT, "ok"), (MULTIPART, "lost-ack")),
        ((MULTIPART, "ok"), (ONE_PUT, "lost-ack")),
        ((ONE_PUT, "lost-ack"), (ONE_PUT, "ok")),
    ],
    ids=lambda setup: f"{'multipart' if setup[0] == MULTIPART else 'one-put'}-{setup[1]}",
)
def test_two_writers_of_one_key_never_lose_the_manifest_one_returned(
    s3_endpoint, s3, bucket, tmp_path, small_parts, first, second
):
    sweep_two_writers(s3_endpoint, s3, bucket, tmp_path, {"a": first, "b": second})


@pytest.mark.s3verify
@pytest.mark.parametrize("modes", [("ok", "ok"), ("ok", "lost-ack"), ("lost-ack", "ok")], ids="-".join)
def test_two_writers_of_one_key_on_versitygw(verifier, verifier_s3, verifier_bucket, tmp_path, modes):
    """The same sweep where a real S3 implementation judges If-Match (one PutObject each: parts need 5 MiB)."""
    credentials = {"aws_access_key_id": verifier.access_key, "aws_secret_access_key": verifier.secret_key}
    setup = {"a": (ONE_PUT, modes[0]), "b": (ONE_PUT, modes[1])}
    sweep_two_writers(verifier.endpoint, verifier_s3, verifier_bucket, tmp_path, setup, **credentials)


def sweep_two_writers(endpoint: str, s3: Any, bucket: str, tmp_path: Path, setup: dict[str, Any], **credentials: str):
    texts = two_writer_texts()
    alone, _ = run_two_writers(endpoint, bucket, "manifests/alone.jsonl", tmp_path, [("b", None)], setup, **credentials)
    assert alone.steps

    for k in range(len(alone.steps) + 1):
        key = f"manifests/dup-{k}.jsonl"
        phases: list[tuple[str, int | None]] = [("b", k), ("a", None), ("b", None)]
        turns, succeeded = run_two_writers(endpoint, bucket, key, tmp_path, phases, setup, **credentials)
        schedule = f"b×{k} then a then b: {' '.join(turns.steps)}"

        pending = s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])
        assert pending == [], schedule
        listed = s3.list_objects_v2(Bucket=bucket, Prefix=key).get("Contents", [])
        last = turns.stored[-1] if turns.stored else None
        if last is not None and succeeded[last]:
            assert s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode() == texts[last], schedule
        else:
            assert listed == [], schedule
        assert list(tmp_path.iterdir()) == []


def test_a_failed_writer_leaves_an_object_it_did_not_store(s3_endpoint, s3, bucket, tmp_path):
    """A lost PutObject answer, but another writer's object replaced ours before the cleanup: it stays."""
    key = "manifests/replaced.jsonl"

    async def go() -> None:
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
        async with aioboto3.Session().client(
            "s3", endpoint_url=s3_endpoint, region_name="us-east-1", config=config
        ) as client:

            class ReplacedAfterPut:
                def __getattr__(self, name: str) -> Any:
                    return getattr(client, name)

                async def put_object(self, **kwargs: Any) -> Any:
                    await client.put_object(**kwargs)
                    await client.put_object(Bucket=bucket, Key=key, Body=b"the other writer's manifest\n")
                    raise ConnectionResetError("the answer was lost")

            async with ManifestUpload(
                ReplacedAfterPut(), bucket, key, tmp_path / "m.jsonl", part_bytes=1 << 20, content_type="x"
            ) as upload:
                await upload.write("ours\n")
                await upload.finish()

    with pytest.raises(ConnectionResetError):
        asyncio.run(go())

    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"the other writer's manifest\n"
