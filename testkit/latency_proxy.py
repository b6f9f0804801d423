"""A loopback proxy that holds each S3 request for the latency model's time, nothing else.

Put in front of any S3 server (moto, versitygw), it turns a server that answers
a LIST in milliseconds into one that answers like S3 does: each request waits
``LatencyModel.delay`` before it is forwarded. Requests are forwarded byte for
byte, the ``Host`` header included (SigV4 signs it); one client connection is
one upstream connection, and requests on a connection wait one after the
other, as on S3. Requests in flight on different connections wait at the same
time, so concurrency hides latency here exactly as it does against S3.

``reliability/fault_proxy.py`` does this and breaks requests too; this one is
the part the benchmarks need.

    python -m testkit.latency_proxy http://127.0.0.1:7070 list=0.3,other=0,put_mbps=0
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from urllib.parse import urlsplit

from testkit.latency_model import LatencyModel, parse
from testkit.s3_operations import s3_operation

HEAD_LIMIT = 1 << 16


class LatencyProxy:
    def __init__(self, upstream: str, latency: LatencyModel) -> None:
        parts = urlsplit(upstream)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self.latency = latency
        self.requests = 0

    async def start(self, port: int = 0) -> tuple[asyncio.Server, str]:
        server = await asyncio.start_server(self._serve, "127.0.0.1", port, limit=HEAD_LIMIT)
        return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def _serve(self, client_in: asyncio.StreamReader, client_out: asyncio.StreamWriter) -> None:
        up_in, up_out = await asyncio.open_connection(self._host, self._port, limit=HEAD_LIMIT)
        answers = asyncio.create_task(self._pipe(up_in, client_out))
        try:
            while True:
                head = await client_in.readuntil(b"\r\n\r\n")
                method, target, _ = head.split(b" ", 2)
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                    elif name.strip().lower() == b"transfer-encoding":
                        raise ValueError("chunked request bodies are not supported")
                self.requests += 1
                await asyncio.sleep(self.latency.delay(s3_operation(method.decode(), target.decode()), length))
                up_out.write(head)  # the body follows as it comes ("Expect: 100-continue" waits for the server)
                while length:
                    chunk = await client_in.read(min(length, 1 << 16))
                    if not chunk:
                        raise ConnectionError("the client closed mid-body")
                    up_out.write(chunk)
                    length -= len(chunk)
                await up_out.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            answers.cancel()
            for writer in (up_out, client_out):
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()

    @staticmethod
    async def _pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while chunk := await source.read(1 << 16):
                sink.write(chunk)
                await sink.drain()
        sink.close()


async def _main(upstream: str, spec: str) -> None:
    proxy = LatencyProxy(upstream, parse(spec))
    server, url = await proxy.start()
    print(f"PROXY_URL={url}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(_main(sys.argv[1], sys.argv[2]))
