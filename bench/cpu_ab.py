"""CPU per PDF of the handler from two (or more) checkouts, on one seeded versitygw, runs alternating.

On a shared machine the load moves by the minute, so "before" measured now and
"after" measured later are not comparable. This seeds one versitygw bucket
(``listing_matrix.server``) and runs ``bench/scan_bench.py --child handler``
from each checkout in turn, default concurrency then ``LIST_CONCURRENCY=1``,
``--reps`` times, and prints each run and the medians. A checkout is any
directory holding the project's files (``git archive <commit> | tar -x -C
/tmp/base``); it runs with this venv, its own code first on ``PYTHONPATH``.

    python bench/cpu_ab.py /tmp/base . --keys 200000 --reps 3

CPU per PDF is the child's process CPU (user + system, imports excluded) over
the PDFs in the bucket, as ``listing_matrix.py`` computes ``cpu_us_per_pdf``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.listing_matrix import BUCKET, server
from bench.s3_standin import GeneratedBucket
from bench.scan_bench import _DROP_ENV, CHILD_ENV, PREFIX


def run_handler(checkout: Path, endpoint: str, credentials: dict[str, str], concurrency: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env.update(CHILD_ENV)
    env.pop("AWS_SESSION_TOKEN", None)  # versitygw: its root user, no session token
    env.update(credentials)
    tmp = tempfile.mkdtemp(prefix="cpu-ab-")
    env.update(
        {"TMPDIR": tmp, "S3_ENDPOINT_URL": endpoint, "BUCKET_NAME": BUCKET, "ALLOWED_BUCKETS": BUCKET, "PREFIX": PREFIX}
    )
    env["PYTHONPATH"] = str(checkout)
    if concurrency:
        env["LIST_CONCURRENCY"] = concurrency
    command = [sys.executable, str(checkout / "bench" / "scan_bench.py"), "--child", "handler", "--endpoint", endpoint]
    try:
        done = subprocess.run(
            [*command, "--bucket", BUCKET], env=env, cwd=checkout, capture_output=True, text=True, check=True
        )
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("checkouts", nargs="+", type=Path)
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--layout", choices=("flat", "folders"), default="folders")
    parser.add_argument("--reps", type=int, default=3)
    args = parser.parse_args(argv)
    expected = GeneratedBucket(args.keys, PREFIX, 10, args.layout).pdf_count
    runs: dict[str, list[float]] = {}
    with server("versitygw", args.keys, args.layout) as (endpoint, credentials):
        for _ in range(args.reps):
            for checkout in args.checkouts:
                for concurrency in ("", "1"):
                    result = run_handler(checkout.resolve(), endpoint, credentials, concurrency)
                    if result["count"] != expected:
                        raise SystemExit(f"{checkout}: {result['count']} PDFs, expected {expected}")
                    us = result["cpu_seconds"] * 1e6 / expected
                    label = f"{checkout} {'LIST_CONCURRENCY=1' if concurrency else 'default'}"
                    runs.setdefault(label, []).append(us)
                    print(f"{label}: {us:.2f} µs/PDF, {result['seconds']:.2f} s, load {os.getloadavg()[0]:.2f}")
    for label, values in runs.items():
        print(f"{label}: median {statistics.median(values):.2f} µs/PDF of {[round(v, 2) for v in values]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
