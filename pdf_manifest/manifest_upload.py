"""Stream the manifest through /tmp to S3 in parts, so neither memory nor /tmp grows with it.

A manifest line is 0.4 to 2 KB once a session token is in the URL, so a
million PDFs make a manifest bigger than Lambda's default 512 MB of /tmp, and
reading it whole for ``put_object`` would need as much memory. Instead the
JSONL is written to a file in /tmp until it reaches ``part_bytes``; that file
is then uploaded as one part of a multipart upload while the next one fills.
At most two part files exist at any time.

A manifest that fits in the first part is sent with one ``put_object``. An
upload that fails or is abandoned is aborted, so S3 never shows a manifest
that looks complete, and every part file is deleted. Two faults need more than
that (the fault-injection harness in reliability/ found both):

* the response to ``CreateMultipartUpload`` is lost and botocore retries it:
  S3 now holds a second, orphaned upload for the key. Every pending upload for
  the exact key is aborted when the manifest is done or abandoned.
* ``PutObject`` or ``CompleteMultipartUpload`` reached S3 but every response
  was lost: the call raises although the object exists. A failed finish
  deletes the key, best effort, so a failure never leaves a manifest behind.

With ``gzip=True`` the bytes are one gzip stream (split across parts, which
S3 joins back) stored with ``Content-Encoding: gzip``: clients that honour the
header still read plain JSONL.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from pathlib import Path
from types import TracebackType
from typing import Any

import aiofiles

MIN_PART_BYTES = 5 * 1024 * 1024  # S3's floor for every part but the last


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
        self._object_args: dict[str, str] = {"ContentType": content_type}
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
        self._multipart_requested = False
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
        await self._abort_stray_uploads()
        self._finished = True
        return self.total_bytes

    async def _ship_current_file(self) -> None:
        """Hand the full file to a background part upload; one upload in flight at most."""
        await self._close_file()
        await self._wait_for_upload()
        if self._upload_id is None:
            self._multipart_requested = True
            created = await self._s3.create_multipart_upload(Bucket=self._bucket, Key=self._key, **self._object_args)
            self._upload_id = created["UploadId"]
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
            if self._multipart_requested:
                await self._abort_stray_uploads()
        with contextlib.suppress(Exception):
            if self._object_may_exist:
                await self._s3.delete_object(Bucket=self._bucket, Key=self._key)

    async def _abort_stray_uploads(self) -> None:
        """Abort every pending upload for this exact key (a retried create leaves one behind)."""
        listed = await self._s3.list_multipart_uploads(Bucket=self._bucket, Prefix=self._key)
        for upload in listed.get("Uploads", []):
            if upload["Key"] == self._key:
                await self._s3.abort_multipart_upload(Bucket=self._bucket, Key=self._key, UploadId=upload["UploadId"])
