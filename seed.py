"""Fill a bucket prefix with PDFs so the handler has something to scan.

With ``--source-dir`` it uploads a directory tree; without one it generates
small, valid PDFs (plus a few non-PDF decoys the handler must skip, and the
PDFs the sample events in events/ name), so the demo and every sample event
work with nothing on disk. Objects already present with the same bytes
are skipped, so re-running is cheap.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import sys
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from local_runtime.venv_guard import ensure_project_python

if __name__ == "__main__":
    ensure_project_python("seed.py")

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError
from tqdm import tqdm

from local_runtime.env_file import warn_if_shadowed
from local_runtime.events import keys_named_by_samples

DECOYS = {
    "README.txt": b"Not a PDF: the manifest must not list this file.\n",
    "cover.png": b"\x89PNG\r\n\x1a\n not really an image",
    "report-0001.pdf.bak": b"a backup, not a PDF",
}
_FIXED_DATE = datetime(2026, 4, 1, tzinfo=UTC)  # same bytes on every run


class SeedError(Exception):
    """A problem the user can fix; printed as one line."""


@dataclass(frozen=True)
class Item:
    key: str
    body: bytes

    @property
    def etag(self) -> str:
        return '"' + hashlib.md5(self.body, usedforsecurity=False).hexdigest() + '"'


def make_pdf(title: str) -> bytes:
    """A one-page PDF that opens in any viewer; identical bytes for the same title."""
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_creation_date(_FIXED_DATE)
    pdf.add_page()
    pdf.set_font("helvetica", size=16)
    pdf.cell(text=title)
    return bytes(pdf.output())


def generated_items(prefix: str, count: int, decoys: bool = True) -> list[Item]:
    items = []
    for i in range(1, count + 1):
        extension = ".PDF" if i % 5 == 0 else ".pdf"  # the filter is case-insensitive
        items.append(Item(f"{prefix}report-{i:04d}{extension}", make_pdf(f"Report {i} of {count}")))
    if decoys:
        items += [Item(prefix + name, body) for name, body in DECOYS.items()]
    return items


def directory_items(prefix: str, source: Path) -> list[Item]:
    if not source.is_dir():
        raise SeedError(f"source directory {str(source)!r} does not exist or is not a directory")
    return [
        Item(prefix + path.relative_to(source).as_posix(), path.read_bytes())
        for path in sorted(source.rglob("*"))
        if path.is_file()
    ]


def s3_client(endpoint_url: str | None, region: str):
    config = Config(
        signature_version="s3v4",
        s3={"addressing_style": "path"} if endpoint_url else {},
        connect_timeout=5,
        retries={"mode": "standard", "max_attempts": 3},
        max_pool_connections=32,
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def ensure_bucket(s3, bucket: str, region: str) -> None:
    try:
        s3.head_bucket(Bucket=bucket)
        return
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in {"404", "NoSuchBucket", "NotFound"}:
            raise
    if region == "us-east-1":
        s3.create_bucket(Bucket=bucket)
    else:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})


def existing_etags(s3, bucket: str, prefix: str) -> dict[str, str]:
    etags: dict[str, str] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            etags[obj["Key"]] = obj["ETag"]
    return etags


def upload(s3, bucket: str, items: list[Item], workers: int, progress: bool) -> None:
    def put(item: Item) -> None:
        content_type = "application/pdf" if item.key.lower().endswith(".pdf") else "application/octet-stream"
        s3.put_object(Bucket=bucket, Key=item.key, Body=item.body, ContentType=content_type)

    with (
        ThreadPoolExecutor(max_workers=workers) as pool,
        tqdm(total=len(items), unit="obj", desc="uploading", disable=not progress, file=sys.stderr) as bar,
    ):
        for future in as_completed([pool.submit(put, item) for item in items]):
            future.result()
            bar.update()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Upload PDFs to BUCKET_NAME under PREFIX (creating the bucket if needed).",
        epilog="Settings default to the environment (and .env): BUCKET_NAME, PREFIX, S3_ENDPOINT_URL, SOURCE_DIR.",
    )
    parser.add_argument("--source-dir", help="upload every file below this directory (env SOURCE_DIR)")
    parser.add_argument(
        "--count",
        type=int,
        default=25,
        help="PDFs to generate when no source directory is given (default: %(default)s)",
    )
    parser.add_argument("--no-decoys", action="store_true", help="do not add the non-PDF decoy files")
    parser.add_argument(
        "--no-sample-events",
        action="store_true",
        help="do not add the PDFs the events/ samples name (added only to their bucket, under PREFIX)",
    )
    parser.add_argument("--bucket", help="bucket name (env BUCKET_NAME, default my-company-reports-bucket)")
    parser.add_argument("--prefix", help="key prefix (env PREFIX, default 2026/04/)")
    parser.add_argument(
        "--endpoint-url", help="S3 endpoint, e.g. http://localhost:9000 (env S3_ENDPOINT_URL; unset = AWS)"
    )
    parser.add_argument("--workers", type=int, default=16, help="parallel uploads (default: %(default)s)")
    parser.add_argument(
        "--env-file", default=".env", help="dotenv file to read settings from (default: %(default)s; missing is fine)"
    )
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    if args.count < 0 or args.count > 1_000_000:
        parser.error("--count must be between 0 and 1000000")
    if args.workers < 1 or args.workers > 256:
        parser.error("--workers must be between 1 and 256")
    return args


def check_endpoint(endpoint: str) -> None:
    parts = urlsplit(endpoint)
    try:
        port_ok = parts.port is None or 0 < parts.port < 65536
    except ValueError:
        port_ok = False
    if parts.scheme not in {"http", "https"} or not parts.hostname or not port_ok:
        raise SeedError(f"endpoint {endpoint!r} is not a URL like http://localhost:9000")


def seed(args: argparse.Namespace) -> tuple[int, int, str]:
    """Upload what is missing; return (uploaded, skipped, destination)."""
    bucket = args.bucket or os.environ.get("BUCKET_NAME") or "my-company-reports-bucket"
    prefix = args.prefix if args.prefix is not None else os.environ.get("PREFIX", "2026/04/")
    endpoint = args.endpoint_url or os.environ.get("S3_ENDPOINT_URL") or None
    if endpoint is not None:
        check_endpoint(endpoint)
    region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    source = args.source_dir or os.environ.get("SOURCE_DIR")
    items = directory_items(prefix, Path(source)) if source else generated_items(prefix, args.count, not args.no_decoys)
    if not source and not args.no_sample_events:
        items += [Item(key, make_pdf(key.rsplit("/", 1)[-1])) for key in keys_named_by_samples(bucket, prefix)]

    s3 = s3_client(endpoint, region)
    ensure_bucket(s3, bucket, region)
    present = existing_etags(s3, bucket, prefix)
    todo = [item for item in items if present.get(item.key) != item.etag]
    upload(s3, bucket, todo, args.workers, progress=not args.quiet)
    return len(todo), len(items) - len(todo), f"s3://{bucket}/{prefix}"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from dotenv import load_dotenv

    warn_if_shadowed("seed.py", args.env_file)
    load_dotenv(args.env_file, override=False)
    try:
        uploaded, skipped, destination = seed(args)
    except SeedError as exc:
        print(f"seed.py: {exc}", file=sys.stderr)
        return 2
    except NoCredentialsError:
        print(
            "seed.py: no AWS credentials found; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (see .env.example)",
            file=sys.stderr,
        )
        return 1
    except ClientError as exc:
        error = exc.response.get("Error", {})
        print(f"seed.py: S3 refused the request: {error.get('Code')}: {error.get('Message')}", file=sys.stderr)
        return 1
    except BotoCoreError as exc:
        print(f"seed.py: cannot reach S3: {exc}", file=sys.stderr)
        return 1
    print(f"seeded {destination}: {uploaded} uploaded, {skipped} already there")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
