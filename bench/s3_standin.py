"""A small, fast S3 stand-in for benchmarks: generated listings, counted uploads.

Why not moto or MinIO: moto lists ~1,500-2,000 keys/s and would need every
key stored first, so a million-key scan benchmark would measure moto; MinIO
needs Docker. This server *generates* the listing of a bucket from its index
(``2026/04/doc-0000001.pdf`` ..., every ``decoy_every``-th key a ``.txt``
decoy), so it stores nothing and serves a 1,000-key ListObjectsV2 page in a
couple of milliseconds. Uploads (PutObject and multipart) are streamed through
MD5 (for the ETag), a byte count and a line count; ``keep=True`` also keeps
the bytes, for tests that check what was written.

Three layouts of the same N keys: ``flat`` (``2026/04/doc-0000001.pdf``),
``folders`` (``2026/04/batch-00000/doc-0000001.pdf``, ``folder_size`` keys a
folder) and ``hex`` (``2026/04/3a9c...e1.pdf``: 32 hex digits spread evenly
over the whole range, the shape of hashed or UUID names).

With a latency model (``testkit/latency_model.py``: ``--latency published``) each
request is held for as long as real S3 would take to answer it (a LIST page,
an upload by its size, anything else), without using CPU.

It speaks just enough S3 XML for botocore/aiobotocore, path-style only:

* ``GET /{bucket}?list-type=2`` with ``prefix``, ``delimiter``,
  ``continuation-token``, ``start-after``, ``max-keys`` (≤ 1000) and
  ``encoding-type=url``;
* ``PUT /{bucket}/{key}`` (PutObject), ``POST ?uploads``, ``PUT
  ?partNumber&uploadId``, ``POST ?uploadId``, ``DELETE ?uploadId``, including
  ``aws-chunked`` bodies with trailing checksums (botocore ≥ 1.36 sends them);
  ``GET /{bucket}?uploads`` (ListMultipartUploads, one page), ``GET
  ?uploadId`` (ListParts), ``DELETE /{bucket}/{key}`` (DeleteObject);
* ``GET``/``HEAD /{bucket}/{key}`` of uploaded objects (body only if kept);
* ``GET /_standin/objects``: JSON of every uploaded object (size, lines, ETag,
  parts) and of the keys listed so far per bucket, so a benchmark in another
  process can check the manifest and follow a scan's progress.

No signature is checked (like moto). Run it in a thread (``StandIn``) or as a
process: ``python bench/s3_standin.py --bucket bench=1000000:2026/04/:10:folders``.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import contextlib
import hashlib
import signal
import socket
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, unquote
from xml.sax.saxutils import escape

from aiohttp import web

from testkit.latency_model import ZERO, LatencyModel, parse
from testkit.s3_operations import s3_operation

S3_NS = "http://s3.amazonaws.com/doc/2006-03-01/"
PAGE_MAX = 1000
LAST_MODIFIED = "2026-04-01T00:00:00.000Z"
XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n'


LAYOUTS = ("flat", "folders", "hex")


@dataclass(frozen=True)
class GeneratedBucket:
    """``count`` keys under ``root``, sorted as S3 sorts them (zero-padded indexes)."""

    count: int
    root: str = "2026/04/"
    decoy_every: int = 10  # every n-th key is a .txt decoy; 0 for none
    layout: str = "flat"  # flat | folders | hex (see the module docstring)
    folder_size: int = 1000

    def key(self, index: int) -> str:
        decoy = self.decoy_every and index % self.decoy_every == self.decoy_every - 1
        suffix = "txt" if decoy else "pdf"
        if self.layout == "folders":
            return f"{self.root}batch-{index // self.folder_size:05d}/doc-{index:07d}.{suffix}"
        if self.layout == "hex":  # evenly spread, strictly increasing 128-bit names
            return f"{self.root}{(index * ((1 << 128) - 1)) // max(1, self.count):032x}.{suffix}"
        return f"{self.root}doc-{index:07d}.{suffix}"

    @property
    def pdf_count(self) -> int:
        return self.count - (self.count // self.decoy_every if self.decoy_every else 0)

    def pdf_keys(self) -> Iterator[str]:
        return (key for key in map(self.key, range(self.count)) if key.endswith(".pdf"))

    def span(self, prefix: str, start_after: str = "") -> tuple[int, int]:
        """Index range [lo, hi) of keys that start with ``prefix`` and sort after ``start_after``."""
        indexes = range(self.count)
        lo = bisect.bisect_left(indexes, prefix, key=self.key)
        if start_after:
            lo = max(lo, bisect.bisect_right(indexes, start_after, key=self.key))
        # Keys with the prefix are contiguous: the first index past them is
        # the first key that neither sorts before the prefix nor starts with it.
        hi = bisect.bisect_left(indexes, True, lo=lo, key=lambda i: not self.key(i).startswith(prefix))
        return lo, hi

    def entries(
        self, prefix: str, delimiter: str, lo: int, hi: int, max_keys: int
    ) -> tuple[list[tuple[str, bool]], int]:
        """Up to ``max_keys`` listing entries from index ``lo``: ``(key, False)`` or ``(common prefix, True)``.

        Returns them in order and the index just past the last one (the keys a
        common prefix rolls up are skipped by bisection, not walked).
        """
        out: list[tuple[str, bool]] = []
        i = lo
        while i < hi and len(out) < max_keys:
            key = self.key(i)
            cut = key.find(delimiter, len(prefix)) if delimiter else -1
            if cut < 0:
                out.append((key, False))
                i += 1
                continue
            common = key[: cut + len(delimiter)]
            out.append((common, True))
            outside = lambda j: not self.key(j).startswith(common)  # noqa: E731, B023 -- used right here
            i = bisect.bisect_left(range(self.count), True, lo=i, hi=hi, key=outside)
        return out, i


@dataclass
class Sink:
    """Streams a body through MD5, a byte count and a newline count (and keeps it if asked)."""

    keep: bool
    size: int = 0
    lines: int = 0
    md5: Any = field(default_factory=hashlib.md5)
    chunks: list[bytes] = field(default_factory=list)

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        self.lines += data.count(b"\n")
        self.md5.update(data)
        if self.keep:
            self.chunks.append(data)


@dataclass
class StoredObject:
    size: int
    lines: int
    etag: str
    parts: int
    content_type: str
    content_encoding: str | None
    body: bytes | None


@dataclass
class Upload:
    bucket: str
    key: str
    content_type: str
    content_encoding: str | None
    parts: dict[int, Sink] = field(default_factory=dict)


class S3StandInApp:
    """The request handling; state lives here, the server around it is aiohttp's."""

    def __init__(
        self, buckets: dict[str, GeneratedBucket], *, keep: bool = False, latency: LatencyModel = ZERO
    ) -> None:
        self.buckets = buckets
        self.keep = keep
        self.latency = latency
        self.objects: dict[tuple[str, str], StoredObject] = {}
        self.uploads: dict[str, Upload] = {}
        self.requests = 0
        self.aborted = 0
        self.listed: dict[str, int] = {}  # keys served per bucket: a scan's progress, seen from outside

    def app(self) -> web.Application:
        app = web.Application(client_max_size=6 * 1024**3)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        return app

    async def handle(self, request: web.Request) -> web.StreamResponse:
        raw_path = request.raw_path.split("?", 1)[0]
        if raw_path == "/_standin/objects":
            return web.json_response(self.describe())
        self.requests += 1
        if not self.latency.is_zero:
            # Held before the work, as S3's time is mostly before the first byte.
            operation = s3_operation(request.method, request.raw_path)
            await asyncio.sleep(self.latency.delay(operation, request.content_length or 0))
        return await self._answer(request, raw_path)

    async def _answer(self, request: web.Request, raw_path: str) -> web.StreamResponse:
        bucket, _, raw_key = raw_path.lstrip("/").partition("/")
        bucket = unquote(bucket)
        key = unquote(raw_key)
        if bucket not in self.buckets:
            return _error(404, "NoSuchBucket", "The specified bucket does not exist", bucket)
        query = request.query
        method = request.method
        if not key:
            if method == "GET" and query.get("list-type") == "2":
                return self.list_objects_v2(bucket, query)
            if method == "GET" and "uploads" in query:
                return self.list_uploads(bucket, query)
            if method == "HEAD":
                return web.Response(status=200)
            return _error(501, "NotImplemented", f"{method} on a bucket is not implemented", bucket)
        if method == "PUT" and "uploadId" in query:
            return await self.upload_part(request, query["uploadId"], int(query["partNumber"]))
        if method == "PUT":
            return await self.put_object(request, bucket, key)
        if method == "POST" and "uploads" in query:
            return self.create_upload(request, bucket, key)
        if method == "POST" and "uploadId" in query:
            return await self.complete_upload(request, query["uploadId"])
        if method == "DELETE" and "uploadId" in query:
            return self.abort_upload(query["uploadId"])
        if method == "DELETE":
            self.objects.pop((bucket, key), None)
            return web.Response(status=204)
        if method == "GET" and "uploadId" in query:
            return self.list_parts(bucket, key, query["uploadId"])
        if method in ("GET", "HEAD"):
            return self.get_object(method, bucket, key)
        return _error(501, "NotImplemented", f"{method} is not implemented", key)

    # -- listing -------------------------------------------------------------

    def list_objects_v2(self, bucket: str, query: Any) -> web.Response:
        generated = self.buckets[bucket]
        prefix = query.get("prefix", "")
        start_after = query.get("start-after", "")
        max_keys = max(0, min(int(query.get("max-keys", PAGE_MAX)), PAGE_MAX))
        delimiter = query.get("delimiter", "")
        token = query.get("continuation-token")
        lo, hi = generated.span(prefix, start_after)
        if token is not None:
            lo = max(lo, int(token.removeprefix("i")))
        url = query.get("encoding-type") == "url"
        enc = (lambda s: quote(s, safe="/")) if url else escape
        if delimiter:
            found, end = generated.entries(prefix, delimiter, lo, hi, max_keys)
            keys = [text for text, common in found if not common]
            commons = [text for text, common in found if common]
            entries = "".join(
                f"<Contents><Key>{enc(k)}</Key><LastModified>{LAST_MODIFIED}</LastModified>"
                f'<ETag>"{0:032x}"</ETag><Size>1000</Size><StorageClass>STANDARD</StorageClass></Contents>'
                for k in keys
            ) + "".join(f"<CommonPrefixes><Prefix>{enc(c)}</Prefix></CommonPrefixes>" for c in commons)
            count = len(found)
        else:
            end = min(hi, lo + max_keys)
            entries = "".join(
                f"<Contents><Key>{enc(generated.key(i))}</Key><LastModified>{LAST_MODIFIED}</LastModified>"
                f'<ETag>"{i:032x}"</ETag><Size>{1000 + i % 5000}</Size><StorageClass>STANDARD</StorageClass></Contents>'
                for i in range(lo, end)
            )
            count = end - lo
        self.listed[bucket] = self.listed.get(bucket, 0) + count
        truncated = end < hi
        parts = [
            f'{XML_HEAD}<ListBucketResult xmlns="{S3_NS}"><Name>{escape(bucket)}</Name>',
            f"<Prefix>{enc(prefix)}</Prefix><KeyCount>{count}</KeyCount><MaxKeys>{max_keys}</MaxKeys>",
            f"<Delimiter>{enc(delimiter)}</Delimiter>" if delimiter else "",
            "<EncodingType>url</EncodingType>" if url else "",
            f"<IsTruncated>{'true' if truncated else 'false'}</IsTruncated>",
            f"<ContinuationToken>{escape(token)}</ContinuationToken>" if token is not None else "",
            f"<NextContinuationToken>i{end}</NextContinuationToken>" if truncated else "",
            f"<StartAfter>{enc(start_after)}</StartAfter>" if start_after else "",
            entries,
            "</ListBucketResult>",
        ]
        return web.Response(body="".join(parts).encode(), content_type="application/xml")

    # -- uploads -------------------------------------------------------------

    async def put_object(self, request: web.Request, bucket: str, key: str) -> web.Response:
        sink = Sink(self.keep)
        await _read_body(request, sink)
        etag = f'"{sink.md5.hexdigest()}"'
        self.objects[bucket, key] = StoredObject(
            size=sink.size,
            lines=sink.lines,
            etag=etag,
            parts=0,
            content_type=request.headers.get("Content-Type", "binary/octet-stream"),
            content_encoding=_content_encoding(request),
            body=b"".join(sink.chunks) if self.keep else None,
        )
        return web.Response(status=200, headers={"ETag": etag})

    def create_upload(self, request: web.Request, bucket: str, key: str) -> web.Response:
        upload_id = uuid.uuid4().hex
        self.uploads[upload_id] = Upload(
            bucket, key, request.headers.get("Content-Type", "binary/octet-stream"), _content_encoding(request)
        )
        body = (
            f'{XML_HEAD}<InitiateMultipartUploadResult xmlns="{S3_NS}"><Bucket>{escape(bucket)}</Bucket>'
            f"<Key>{escape(key)}</Key><UploadId>{upload_id}</UploadId></InitiateMultipartUploadResult>"
        )
        return web.Response(body=body.encode(), content_type="application/xml")

    async def upload_part(self, request: web.Request, upload_id: str, part_number: int) -> web.Response:
        upload = self.uploads.get(upload_id)
        if upload is None:
            return _error(404, "NoSuchUpload", "The specified upload does not exist", upload_id)
        sink = Sink(self.keep)
        await _read_body(request, sink)
        upload.parts[part_number] = sink
        return web.Response(status=200, headers={"ETag": f'"{sink.md5.hexdigest()}"'})

    async def complete_upload(self, request: web.Request, upload_id: str) -> web.Response:
        await request.read()  # the part list: every uploaded part is used, in order
        upload = self.uploads.pop(upload_id, None)
        if upload is None:
            return _error(404, "NoSuchUpload", "The specified upload does not exist", upload_id)
        numbers = sorted(upload.parts)
        sinks = [upload.parts[n] for n in numbers]
        digest = hashlib.md5(b"".join(s.md5.digest() for s in sinks)).hexdigest()  # noqa: S324 -- S3's ETag
        etag = f'"{digest}-{len(sinks)}"'
        self.objects[upload.bucket, upload.key] = StoredObject(
            size=sum(s.size for s in sinks),
            lines=sum(s.lines for s in sinks),
            etag=etag,
            parts=len(sinks),
            content_type=upload.content_type,
            content_encoding=upload.content_encoding,
            body=b"".join(c for s in sinks for c in s.chunks) if self.keep else None,
        )
        body = (
            f'{XML_HEAD}<CompleteMultipartUploadResult xmlns="{S3_NS}">'
            f"<Location>/{quote(upload.bucket)}/{quote(upload.key)}</Location><Bucket>{escape(upload.bucket)}</Bucket>"
            f"<Key>{escape(upload.key)}</Key><ETag>{escape(etag)}</ETag></CompleteMultipartUploadResult>"
        )
        return web.Response(body=body.encode(), content_type="application/xml")

    def list_uploads(self, bucket: str, query: Any) -> web.Response:
        """ListMultipartUploads: the open uploads under a prefix (one page; there are few)."""
        prefix = query.get("prefix", "")
        url = query.get("encoding-type") == "url"
        enc = (lambda s: quote(s, safe="/")) if url else escape
        uploads = sorted(
            (u.key, upload_id)
            for upload_id, u in self.uploads.items()
            if u.bucket == bucket and u.key.startswith(prefix)
        )
        entries = "".join(
            f"<Upload><Key>{enc(key)}</Key><UploadId>{upload_id}</UploadId>"
            f"<Initiated>{LAST_MODIFIED}</Initiated><StorageClass>STANDARD</StorageClass></Upload>"
            for key, upload_id in uploads
        )
        body = (
            f'{XML_HEAD}<ListMultipartUploadsResult xmlns="{S3_NS}"><Bucket>{escape(bucket)}</Bucket>'
            f"<KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>{enc(prefix)}</Prefix>"
            f"{'<EncodingType>url</EncodingType>' if url else ''}<MaxUploads>1000</MaxUploads>"
            f"<IsTruncated>false</IsTruncated>{entries}</ListMultipartUploadsResult>"
        )
        return web.Response(body=body.encode(), content_type="application/xml")

    def list_parts(self, bucket: str, key: str, upload_id: str) -> web.Response:
        upload = self.uploads.get(upload_id)
        if upload is None:
            return _error(404, "NoSuchUpload", "The specified upload does not exist", upload_id)
        entries = "".join(
            f"<Part><PartNumber>{n}</PartNumber><LastModified>{LAST_MODIFIED}</LastModified>"
            f'<ETag>"{sink.md5.hexdigest()}"</ETag><Size>{sink.size}</Size></Part>'
            for n, sink in sorted(upload.parts.items())
        )
        body = (
            f'{XML_HEAD}<ListPartsResult xmlns="{S3_NS}"><Bucket>{escape(bucket)}</Bucket><Key>{escape(key)}</Key>'
            f"<UploadId>{upload_id}</UploadId><IsTruncated>false</IsTruncated>{entries}</ListPartsResult>"
        )
        return web.Response(body=body.encode(), content_type="application/xml")

    def abort_upload(self, upload_id: str) -> web.Response:
        if self.uploads.pop(upload_id, None) is None:
            return _error(404, "NoSuchUpload", "The specified upload does not exist", upload_id)
        self.aborted += 1
        return web.Response(status=204)

    def get_object(self, method: str, bucket: str, key: str) -> web.Response:
        stored = self.objects.get((bucket, key))
        if stored is None:
            if method == "HEAD":
                return web.Response(status=404)
            return _error(404, "NoSuchKey", "The specified key does not exist.", key)
        headers = {"ETag": stored.etag, "Content-Type": stored.content_type, "Last-Modified": _HTTP_DATE}
        if stored.content_encoding:
            headers["Content-Encoding"] = stored.content_encoding
        if method == "HEAD" or stored.body is None:
            headers["Content-Length"] = str(stored.size)
            if method == "GET":  # counted, not kept: say so rather than send wrong bytes
                return _error(501, "NotImplemented", "object bodies are not kept (keep=False)", key)
            return web.Response(status=200, headers=headers)
        return web.Response(body=stored.body, headers=headers)

    def describe(self) -> dict[str, Any]:
        return {
            "objects": [
                {"bucket": b, "key": k, "size": o.size, "lines": o.lines, "etag": o.etag, "parts": o.parts}
                for (b, k), o in self.objects.items()
            ],
            "open_uploads": len(self.uploads),
            "aborted_uploads": self.aborted,
            "requests": self.requests,
            "listed_keys": dict(self.listed),
        }


_HTTP_DATE = "Wed, 01 Apr 2026 00:00:00 GMT"


def _content_encoding(request: web.Request) -> str | None:
    """The object's Content-Encoding, without the transfer-level ``aws-chunked``."""
    values = [v.strip() for v in request.headers.get("Content-Encoding", "").split(",") if v.strip()]
    kept = [v for v in values if v != "aws-chunked"]
    return ",".join(kept) or None


async def _read_body(request: web.Request, sink: Sink) -> None:
    """Feed the object bytes to ``sink``, decoding ``aws-chunked`` framing if present."""
    chunked = "aws-chunked" in request.headers.get("Content-Encoding", "") or request.headers.get(
        "x-amz-content-sha256", ""
    ).startswith("STREAMING-")
    content = request.content
    if not chunked:
        async for data in content.iter_chunked(1 << 20):
            sink.feed(data)
        return
    while True:
        header = await content.readline()
        if not header:
            raise web.HTTPBadRequest(text="truncated aws-chunked body")
        size = int(header.split(b";", 1)[0].strip(), 16)
        if size == 0:
            break
        remaining = size
        while remaining:
            data = await content.readexactly(min(remaining, 1 << 20))
            sink.feed(data)
            remaining -= len(data)
        await content.readexactly(2)  # CRLF after the chunk
    while (await content.readline()).strip():  # trailers (x-amz-checksum-...), then a blank line
        pass


def _error(status: int, code: str, message: str, resource: str) -> web.Response:
    body = (
        f"{XML_HEAD}<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>standin</RequestId></Error>"
    )
    return web.Response(status=status, body=body.encode(), content_type="application/xml")


class StandIn:
    """Run the stand-in on a free loopback port in a background thread (tests, small benches).

    ``with StandIn({"bench": GeneratedBucket(10_000)}) as server: server.endpoint``
    """

    def __init__(
        self,
        buckets: dict[str, GeneratedBucket],
        *,
        keep: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        latency: LatencyModel = ZERO,
    ) -> None:
        self.state = S3StandInApp(buckets, keep=keep, latency=latency)
        self.host = host
        self.port = port
        self.endpoint = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None

    def __enter__(self) -> StandIn:
        ready = threading.Event()
        errors: list[BaseException] = []

        async def serve() -> None:
            self._stop = asyncio.Event()
            runner = await start(self.state, self.host, self.port)
            self.port = _bound_port(runner)
            self.endpoint = f"http://{self.host}:{self.port}"
            ready.set()
            try:
                await self._stop.wait()
            finally:
                await runner.cleanup()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(serve())
            except BaseException as exc:  # noqa: BLE001 -- handed to the starting thread
                errors.append(exc)
                ready.set()
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="s3-standin", daemon=True)
        self._thread.start()
        ready.wait(30)
        if errors:
            raise errors[0]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)


async def start(state: S3StandInApp, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(state.app(), access_log=None, handle_signals=False)
    await runner.setup()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    site = web.SockSite(runner, sock, backlog=512)
    await site.start()
    return runner


def _bound_port(runner: web.AppRunner) -> int:
    for site in runner.sites:
        server = getattr(site, "_server", None)
        if server is not None and server.sockets:
            return int(server.sockets[0].getsockname()[1])
    raise RuntimeError("the stand-in did not bind a port")


def parse_bucket(spec: str) -> tuple[str, GeneratedBucket]:
    """``name=count[:root[:decoy_every[:layout]]]``, e.g. ``bench=1000000:2026/04/:10:folders``."""
    name, _, rest = spec.partition("=")
    count, _, rest = rest.partition(":")
    root, _, rest = rest.partition(":")
    decoys, _, layout = rest.partition(":")
    if layout and layout not in LAYOUTS:
        raise ValueError(f"layout {layout!r}: expected one of {', '.join(LAYOUTS)}")
    return name, GeneratedBucket(int(count), root or "2026/04/", int(decoys) if decoys else 10, layout or "flat")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/s3_standin.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument(
        "--bucket", action="append", default=[], help="name=count[:root[:decoy_every[:layout]]]; repeatable"
    )
    parser.add_argument(
        "--latency",
        default="off",
        help="per-request latency: off (default), published (testkit/latency_model.py), list=0.3,other=0.1,put_mbps=85",
    )
    parser.add_argument("--keep", action="store_true", help="keep uploaded bytes (memory grows with them)")
    args = parser.parse_args(argv)
    buckets = dict(parse_bucket(spec) for spec in args.bucket) or {"bench": GeneratedBucket(1000)}
    state = S3StandInApp(buckets, keep=args.keep, latency=parse(args.latency))

    async def serve() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        runner = await start(state, args.host, args.port)
        print(f"S3_ENDPOINT_URL=http://{args.host}:{_bound_port(runner)}", flush=True)
        await stop.wait()
        await runner.cleanup()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
