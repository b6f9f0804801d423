"""Two writers of one manifest key (a duplicate invocation): neither loses the manifest the other returned.

An async event delivered twice runs twice with one request id, so two
ManifestUploads write the same key. Each S3 call of either writer is one step;
the schedule runs the second writer for k steps, the first to its end, then the
second to its end, for every k. After each schedule no pending upload is left,
and the key holds what the last writer to store it returned, or nothing if that
writer failed. The same sweep runs on moto and, where a real implementation
judges If-Match, on versitygw.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aioboto3
import pytest
from botocore.config import Config

from pdf_manifest.manifest_upload import ManifestUpload
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


@pytest.mark.slow
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


@pytest.mark.slow
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
