"""What the other architecture's zip costs the handler: its C extensions never load, pure Python runs.

CPython loads an extension module only through a file suffix in
``importlib.machinery.EXTENSION_SUFFIXES``: on x86_64 ``.cpython-313-x86_64-linux-gnu.so``,
``.abi3.so`` and ``.so``, on aarch64 the same with ``aarch64``. The zips ship
only architecture-tagged files, so on the wrong machine none of aiohttp's,
multidict's, yarl's, frozenlist's, propcache's or wrapt's extensions is even
tried, and each library falls back to its pure-Python implementation. This
runs both zips (built by ``make package``) on this machine, unpacked, under
Python 3.13 and awslambdaric through the local runtime, against the embedded
S3: the native zip, then the other architecture's. It prints which
extensions each process mapped, the cold start, and the warm durations.

    .venv/bin/python bench/foreign_arch.py [--pdfs 3000] [--warm 7]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import zipfile
from pathlib import Path

import boto3
from botocore.config import Config

from local_dev.embedded_s3 import DUMMY_CREDENTIALS, embedded_s3
from local_runtime.config import FunctionConfig
from local_runtime.pool import EnvironmentPool
from tools.package import zip_name

ROOT = Path(__file__).resolve().parent.parent

NATIVE = {"x86_64": "x86_64", "aarch64": "arm64"}[platform.machine()]
FOREIGN = {"x86_64": "arm64", "arm64": "x86_64"}[NATIVE]


def run(zip_path: Path, endpoint: str, bucket: str, prefix: str, warm: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as scratch:
        task_root = Path(scratch)
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(task_root)
        config = FunctionConfig(
            name="pdf-manifest",
            handler="lambda_function.handler",
            memory_mb=512,
            task_root=task_root,
            layers=(),
            clean_env=True,
            timeout_s=300,
            env={"BUCKET_NAME": bucket, "PREFIX": prefix, "S3_ENDPOINT_URL": endpoint, **DUMMY_CREDENTIALS},
        )
        event = json.dumps({"bucket": bucket, "prefix": prefix}).encode()
        with EnvironmentPool(config, log_sink=lambda line: None) as pool:
            runs = [pool.invoke(event) for _ in range(warm + 1)]
            [environment] = pool._idle
            maps = Path(f"/proc/{environment._process.pid}/maps").read_text()
        mapped = sorted(
            {
                Path(line.split()[-1]).relative_to(task_root).as_posix()
                for line in maps.splitlines()
                if line.endswith(".so") and line.split()[-1].startswith(str(task_root))
            }
        )
    for invocation in runs:
        body = json.loads(json.loads(invocation.payload)["body"])
        assert "manifest_url" in body, body
    return {
        "zip": zip_path.name,
        "count": body["count"],
        "extensions_mapped_from_zip": mapped,
        "init_ms": runs[0].report.init_duration_ms,
        "cold_ms": runs[0].report.duration_ms,
        "warm_ms": [round(r.report.duration_ms, 1) for r in runs[1:]],
        "warm_median_ms": round(statistics.median(r.report.duration_ms for r in runs[1:]), 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pdfs", type=int, default=3000)
    parser.add_argument("--warm", type=int, default=7)
    args = parser.parse_args()
    zips = {arch: ROOT / "dist" / zip_name(arch) for arch in (NATIVE, FOREIGN)}
    missing = [str(path) for path in zips.values() if not path.is_file()]
    if missing:
        print(f"missing {', '.join(missing)}: run make package", file=sys.stderr)
        return 1
    os.environ.update(DUMMY_CREDENTIALS)
    with embedded_s3() as endpoint:
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, max_pool_connections=32)
        s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config)
        bucket, prefix = "foreign-arch", "2026/04/"
        s3.create_bucket(Bucket=bucket)
        for i in range(args.pdfs):
            s3.put_object(Bucket=bucket, Key=f"{prefix}{i:06d}.pdf", Body=b"%PDF-1.4")
        results = [run(zips[arch], endpoint, bucket, prefix, args.warm) for arch in (NATIVE, FOREIGN, NATIVE, FOREIGN)]
    for result in results:
        print(json.dumps(result))
    native = statistics.median(r["warm_median_ms"] for r in results[0::2])
    foreign = statistics.median(r["warm_median_ms"] for r in results[1::2])
    print(
        f"# {platform.machine()}, Python 3.13, {args.pdfs} PDFs, warm median: native {native:.0f} ms, "
        f"{FOREIGN} zip (pure-Python fallbacks) {foreign:.0f} ms: {foreign / native:.2f}x"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
