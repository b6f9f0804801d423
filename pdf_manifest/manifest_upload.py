"""Stream the manifest through /tmp to S3 in parts, so neither memory nor /tmp grows with it.

A manifest line is 0.4 to 2 KB once a session token is in the URL, so a
million PDFs make a manifest bigger than Lambda's default 512 MB of /tmp, and
reading it whole for ``put_object`` would need as much memory. Instead the
JSONL is written to a file in /tmp until it reaches ``part_bytes``; that file
is then uploaded as one part of a multipart upload while the next one fills.
At most two part files exist at any time.

A manifest that fits in the first part is sent with one ``put_object``. An
upload that fails or is abandoned is aborted, so S3 never shows a manifest
that looks complete, and every part file is deleted.

Two invocations may write the same key at once (an async event delivered
twice keeps its request id), so cleanup touches only what this writer made:

* it aborts the upload ids S3 gave it, and nothing another writer holds. The
  response to ``CreateMultipartUpload`` can be lost and botocore retries it,
  leaving an upload whose id never reached us. Only when the create was
  retried (or failed) are uploads for the key that were not pending just
  before it aborted as ours; one a duplicate opened in that same instant is
  indistinguishable, and losing it makes that duplicate fail, never delete.
* ``PutObject`` or ``CompleteMultipartUpload`` can reach S3 while every
  response is lost: the call raises although the object exists. Every
  object is written with a random ``x-amz-meta-manifest-writer`` token; a
  failed finish deletes the key only if HEAD shows its own token, and then
  with ``If-Match`` on that ETag, so an object another writer has put since
  is never deleted.

With ``gzip=True`` the bytes are one gzip stream (split across parts, which
S3 joins back) stored with ``Content-Encoding: gzip``: clients that honour the
header still read plain JSONL.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any

import aiofiles

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's floor for every part but the last
WRITER_METADATA = "manifest-writer"  # user metadata naming the writer of an object


class ManifestUpload:
    """Write JSONL text in; get one S3 object out, or nothing at all."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        tmp_path: Path,
        *,
        part_bytes: int,
        content_type: str,
        gzip: bool = False,
    ) -> None:
        self._s3 = s3
        self._bucket = bucket
        self._key = key
        self._tmp_path = tmp_path
        self._part_bytes = part_bytes
        self._writer = uuid.uuid4().hex
        self._object_args: dict[str, Any] = {"ContentType": content_type, "Metadata": {WRITER_METADATA: self._writer}}
        if gzip:
            self._object_args["ContentEncoding"] = "gzip"
        self._gzip = zlib.compressobj(6, zlib.DEFLATED, 31) if gzip else None
        self._file: Any = None
        self._file_bytes = 0
        self._part_number = 0
        self._upload_id: str | None = None
        self._parts: list[dict[str, Any]] = []
        self._in_flight: asyncio.Task[None] | None = None
        self._part_paths: set[Path] = set()
        self._finished = False
        self._object_may_exist = False
        self._pending_before: set[str] | None = None  # upload ids for the key just before our create
        self._create_uncertain = False  # the create was retried or failed: an upload of ours may be unknown
        self.total_bytes = 0

    async def __aenter__(self) -> ManifestUpload:
        self._file = await aiofiles.open(self._tmp_path, "wb")
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _traceback: TracebackType | None
    ) -> None:
        if exc_type is not None or not self._finished:
            await self._abort()
        await self._close_file()
        for path in (self._tmp_path, *self._part_paths):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    async def write(self, text: str) -> None:
        data = text.encode("utf-8")
        if self._gzip is not None:
            data = self._gzip.compress(data)
        if data:
            await self._file.write(data)
            self._file_bytes += len(data)
        if self._file_bytes >= self._part_bytes:
            await self._ship_current_file()
            self._file = await aiofiles.open(self._tmp_path, "wb")

    async def finish(self) -> int:
        """Send what is left and make the object visible; return its stored size."""
        if self._gzip is not None:
            tail = self._gzip.flush()
            await self._file.write(tail)
            self._file_bytes += len(tail)
        if self._upload_id is None:  # small manifest: one request
            await self._close_file()
            async with aiofiles.open(self._tmp_path, "rb") as whole:
                body = await whole.read()
            self._object_may_exist = True
            await self._s3.put_object(Bucket=self._bucket, Key=self._key, Body=body, **self._object_args)
            self.total_bytes = len(body)
            self._finished = True
            return self.total_bytes
        await self._ship_current_file()
        await self._wait_for_upload()
        self._object_may_exist = True
        await self._s3.complete_multipart_upload(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, MultipartUpload={"Parts": self._parts}
        )
        self._upload_id = None
        self._finished = True
        with contextlib.suppress(Exception):  # the manifest is complete: tidying cannot undo it
            await self._abort_stray_uploads()
        return self.total_bytes

    async def _ship_current_file(self) -> None:
        """Hand the full file to a background part upload; one upload in flight at most."""
        await self._close_file()
        await self._wait_for_upload()
        if self._upload_id is None:
            self._pending_before = {upload["UploadId"] for upload in await self._pending_uploads()}
            self._create_uncertain = True
            created = await self._s3.create_multipart_upload(Bucket=self._bucket, Key=self._key, **self._object_args)
            self._upload_id = created["UploadId"]
            self._create_uncertain = created.get("ResponseMetadata", {}).get("RetryAttempts", 0) > 0
        self._part_number += 1
        part_path = self._tmp_path.with_name(f"{self._tmp_path.name}.part{self._part_number:05d}")
        self._tmp_path.rename(part_path)
        self._part_paths.add(part_path)
        self.total_bytes += self._file_bytes
        self._file_bytes = 0
        self._in_flight = asyncio.create_task(self._upload_part(self._part_number, part_path))

    async def _upload_part(self, number: int, path: Path) -> None:
        async with aiofiles.open(path, "rb") as part:
            body = await part.read()
        response = await self._s3.upload_part(
            Bucket=self._bucket, Key=self._key, UploadId=self._upload_id, PartNumber=number, Body=body
        )
        self._parts.append({"PartNumber": number, "ETag": response["ETag"]})
        path.unlink()
        self._part_paths.discard(path)

    async def _wait_for_upload(self) -> None:
        if self._in_flight is not None:
            task, self._in_flight = self._in_flight, None
            await task

    async def _close_file(self) -> None:
        if self._file is not None:
            handle, self._file = self._file, None
            await handle.close()

    async def _abort(self) -> None:
        if self._in_flight is not None:
            self._in_flight.cancel()
            with contextlib.suppress(BaseException):
                await self._in_flight
            self._in_flight = None
        # Cleanup is best effort: the error that brought us here matters more.
        with contextlib.suppress(Exception):
            if self._upload_id is not None:
                upload_id, self._upload_id = self._upload_id, None
                await self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)
        with contextlib.suppress(Exception):
            await self._abort_stray_uploads()
        with contextlib.suppress(Exception):
            if self._object_may_exist:
                await self._delete_own_object()

    async def _pending_uploads(self) -> list[dict[str, Any]]:
        listed = await self._s3.list_multipart_uploads(Bucket=self._bucket, Prefix=self._key)
        return [upload for upload in listed.get("Uploads", []) if upload["Key"] == self._key]

    async def _abort_stray_uploads(self) -> None:
        """Abort the uploads a retried or failed create may have opened for us (their ids never arrived)."""
        if not self._create_uncertain or self._pending_before is None:
            return
        for upload in await self._pending_uploads():
            upload_id = upload["UploadId"]
            if upload_id not in self._pending_before and upload_id != self._upload_id:
                await self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload_id)
        self._create_uncertain = False

    async def _delete_own_object(self) -> None:
        """Delete the key only while it still holds the object this writer stored."""
        try:
            head = await self._s3.head_object(Bucket=self._bucket, Key=self._key)
        except Exception as error:  # a missing object is the usual answer here
            if getattr(error, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return
            raise
        if head.get("Metadata", {}).get(WRITER_METADATA) != self._writer:
            return  # never written, or another writer's object has replaced ours since
        await self._s3.delete_object(Bucket=self._bucket, Key=self._key, IfMatch=head["ETag"])
