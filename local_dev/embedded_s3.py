"""An S3 endpoint on loopback with nothing to install: moto in server mode.

moto's in-process ``mock_aws`` does not work with aiobotocore (aiobotocore#1320),
so the handler always talks real HTTP to this server, exactly as it would to
MinIO or AWS. moto does not verify signatures: a tampered or expired presigned
URL still downloads here, which is why the MinIO-class tests exist.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import threading
from collections.abc import Iterator

DUMMY_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@contextlib.contextmanager
def embedded_s3(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """Run moto's S3 on a free loopback port and yield its endpoint URL."""
    from moto.server import ThreadedMotoServer  # local-only dependency

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=host, port=port, verbose=False)
    server.start()
    try:
        bound_host, bound_port = server.get_host_and_port()
        yield f"http://{bound_host}:{bound_port}"
    finally:
        server.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m local_dev.embedded_s3",
        description="Serve an S3 API (moto) on loopback until interrupted.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to bind; 0 picks a free one (default)")
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with embedded_s3(args.host, args.port) as endpoint:
        print(f"S3_ENDPOINT_URL={endpoint}", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
