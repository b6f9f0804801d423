"""Presigned GET URLs per second on one core: botocore vs aiobotocore vs presign.py.

Why: the handler's cost per PDF is one presigned URL, and botocore's
``generate_presigned_url`` (~650 µs each in 1.40) dominates a large scan.
This measures the three ways side by side, in one process pinned to one CPU,
on the same keys, credentials (with a session token, as Lambda has) and
pinned clock, and checks first that all three produce the same URLs, so the
speed-up is never bought with a different answer.

    python bench/presign_bench.py [--seconds 2] [--repeats 3] [--json FILE]

Writes bench/out/presign.json; with RECORD=1, the committed bench/results/presign.json.

Each figure is the best of ``--repeats`` runs of at least ``--seconds`` each
(the machine is shared; the best run is the least disturbed one).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from unittest import mock

import botocore
import botocore.auth
import botocore.session
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials

from bench.output import results_path, write_report
from pdf_manifest.presign import S3Presigner

ROOT = Path(__file__).resolve().parent.parent

ENDPOINT = "http://127.0.0.1:9000"
REGION = "us-east-1"
BUCKET = "my-company-reports-bucket"
EXPIRES = 900
NOW = dt.datetime(2026, 4, 1, 12, 0, 0)
CREDS = ReadOnlyCredentials(
    "ASIAIOSFODNN7EXAMPLE",
    "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD" * 12,  # Lambda tokens are ~1 KB
)
CONFIG = Config(signature_version="s3v4", s3={"addressing_style": "path"})


def keys(n: int) -> list[str]:
    return [f"2026/04/doc-{i:07d}.pdf" for i in range(n)]


def pin_to_one_core() -> int | None:
    """Run on one CPU, so "URLs/s on one core" means what it says."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def best_rate(run: Callable[[int], None], batch: int, seconds: float, repeats: int) -> tuple[float, int]:
    """Best URLs/s over ``repeats`` runs, each calling ``run(batch)`` for at least ``seconds``."""
    best = 0.0
    total = 0
    for _ in range(repeats):
        done = 0
        started = time.perf_counter()
        while True:
            run(batch)
            done += batch
            elapsed = time.perf_counter() - started
            if elapsed >= seconds:
                break
        best = max(best, done / elapsed)
        total += done
    return best, total


def _client_args() -> dict[str, Any]:
    """The same S3 client settings for the sync and the aio client, so they sign alike."""
    return {
        "service_name": "s3",
        "region_name": REGION,
        "endpoint_url": ENDPOINT,
        "aws_access_key_id": CREDS.access_key,
        "aws_secret_access_key": CREDS.secret_key,
        "aws_session_token": CREDS.token,
        "config": CONFIG,
    }


def sync_client() -> Any:
    return botocore.session.get_session().create_client(**_client_args())


def measure(seconds: float, repeats: int) -> dict[str, Any]:
    sample = keys(200)
    client = sync_client()
    presigner = S3Presigner(region=REGION, endpoint_url=ENDPOINT, addressing_style="path", expires_in=EXPIRES)
    loop = asyncio.new_event_loop()
    from aiobotocore.session import get_session

    aio_context = get_session().create_client(**_client_args())
    aio_client = loop.run_until_complete(aio_context.__aenter__())
    try:
        with mock.patch.object(botocore.auth, "get_current_datetime", return_value=NOW):
            # Same answer first.
            expected = [
                client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": k}, ExpiresIn=EXPIRES)
                for k in sample
            ]

            async def aio_many(batch_keys: list[str]) -> list[str]:
                return [
                    await aio_client.generate_presigned_url(
                        "get_object", Params={"Bucket": BUCKET, "Key": k}, ExpiresIn=EXPIRES
                    )
                    for k in batch_keys
                ]

            assert loop.run_until_complete(aio_many(sample)) == expected, "aiobotocore differs from botocore"
            assert presigner.presign_many(BUCKET, sample, CREDS, NOW) == expected, "presign.py differs from botocore"

            slow_keys = keys(500)
            fast_keys = keys(10_000)

            def run_botocore(n: int) -> None:
                for k in slow_keys[:n]:
                    client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": k}, ExpiresIn=EXPIRES)

            def run_aiobotocore(n: int) -> None:
                loop.run_until_complete(aio_many(slow_keys[:n]))

            def run_presign_many(n: int) -> None:
                presigner.presign_many(BUCKET, fast_keys[:n], CREDS, NOW)

            def run_presign_get(n: int) -> None:
                for k in fast_keys[:n]:
                    presigner.presign_get(BUCKET, k, CREDS, NOW)

            def run_presign_many_now(n: int) -> None:
                presigner.presign_many(BUCKET, fast_keys[:n], CREDS)  # real clock: timestamp per batch

            contenders = [
                ("botocore generate_presigned_url (sync client)", run_botocore, 100),
                ("aiobotocore generate_presigned_url", run_aiobotocore, 100),
                ("presign.py presign_get (one key per call)", run_presign_get, 10_000),
                ("presign.py presign_many (batches of 1000)", run_presign_many, 1000),
                ("presign.py presign_many (real clock)", run_presign_many_now, 1000),
            ]
            rows = []
            for name, run, batch in contenders:
                rate, total = best_rate(run, batch, seconds, repeats)
                rows.append({"name": name, "urls_per_second": round(rate), "urls_signed": total})
                print(f"  {name:<50} {rate:>12,.0f} URLs/s", flush=True)
    finally:
        loop.run_until_complete(aio_context.__aexit__(None, None, None))
        loop.close()
    base = rows[0]["urls_per_second"]
    for row in rows:
        row["vs_botocore"] = round(row["urls_per_second"] / base, 1)
    return {"rows": rows, "identical_urls_checked": len(sample)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="minimum duration of one run (default 2)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per contender; the best counts (default 3)")
    parser.add_argument("--json", type=Path, default=results_path("presign.json"), help="default: %(default)s")
    args = parser.parse_args(argv)
    cpu = pin_to_one_core()
    print(f"presigned GET URLs per second, one core (cpu {cpu}), best of {args.repeats} x >= {args.seconds}s:")
    result = measure(args.seconds, args.repeats)
    print()
    print(f"  {'contender':<50} {'URLs/s':>12} {'vs botocore':>12}")
    for row in result["rows"]:
        print(f"  {row['name']:<50} {row['urls_per_second']:>12,} {row['vs_botocore']:>11}x")
    report = {
        "benchmark": "presign",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "botocore": botocore.__version__,
        "machine": {"cpus": os.cpu_count(), "pinned_cpu": cpu, "load_average": os.getloadavg()},
        "settings": {"seconds": args.seconds, "repeats": args.repeats, "session_token": True, "endpoint": ENDPOINT},
        **result,
    }
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
