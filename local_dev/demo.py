"""The whole job end to end on an embedded S3: seed, invoke, fetch, summarise.

Runs ``seed.py`` and ``invoke.py`` as a user would, against moto on a free
loopback port, then follows the presigned URLs the handler returned: the
manifest, and PDFs listed in it. Needs no Docker and no AWS account.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

from local_dev.embedded_s3 import DUMMY_CREDENTIALS, embedded_s3
from local_dev.events import keys_named_by_samples

ROOT = Path(__file__).resolve().parent.parent  # where invoke.py and seed.py are
NEXT_STEPS = """
Next steps:
  .venv/bin/python demo.py --keep-running      the same, then keep the S3 up to open the URLs yourself
  make up && make seed && make invoke          the same job against a local S3 that keeps running (README.md)
  make help                                    every target, grouped"""


class DemoError(Exception):
    """A step of the demo did not do what it should; printed as one line."""


def run_step(title: str, args: list[str], env: dict[str, str]) -> str:
    """Run one script; show only its Lambda platform lines, or everything if it failed."""
    print(f"==> {title}", file=sys.stderr, flush=True)
    done = subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise DemoError(f"{title} failed with exit status {done.returncode}")
    for line in done.stderr.splitlines():
        if line.startswith(("START ", "END ", "REPORT ", "invoke.py: ")):
            print(f"    {line}", file=sys.stderr)
    return done.stdout


def fetch(url: str) -> tuple[bytes, str]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - loopback URL from our handler
        return response.read(), response.headers.get("Content-Type", "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the PDF-manifest job end to end on an embedded S3 (moto).")
    parser.add_argument("--count", type=int, default=25, help="PDFs to generate (default: %(default)s)")
    parser.add_argument("--prefix", default="2026/04/", help="prefix to seed and scan (default: %(default)s)")
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="afterwards keep the embedded S3 up (until Ctrl-C) so the printed URLs can be opened",
    )
    args = parser.parse_args(argv)

    with embedded_s3() as endpoint:
        print(f"==> embedded S3 (moto) listening on {endpoint}", file=sys.stderr)
        env = {
            **os.environ,
            **DUMMY_CREDENTIALS,
            "S3_ENDPOINT_URL": endpoint,
            "PREFIX": args.prefix,
            "BUCKET_NAME": os.environ.get("BUCKET_NAME", "my-company-reports-bucket"),
        }
        env.pop("S3_PUBLIC_ENDPOINT_URL", None)
        env.pop("AWS_SESSION_TOKEN", None)
        no_env_file = ["--env-file", os.devnull]  # the demo must not pick up a MinIO .env
        try:
            run_step(
                "seed.py: generating and uploading PDFs",
                ["seed.py", "--count", str(args.count), "--quiet", *no_env_file],
                env,
            )
            output = run_step("invoke.py: running the handler", ["invoke.py", *no_env_file], env)
            response = json.loads(output)
            if response.get("statusCode") != 200:
                raise DemoError(f"handler answered {response}")
            body = json.loads(response["body"])
            manifest, content_type = fetch(body["manifest_url"])
            lines = [json.loads(line) for line in manifest.decode("utf-8").split("\n") if line]
            if len(lines) != body["count"]:
                raise DemoError(f"manifest has {len(lines)} lines, handler said {body['count']}")
            first_pdf = fetch(lines[0]["url"])[0] if lines else b""
            if lines and not first_pdf.startswith(b"%PDF-"):
                raise DemoError(f"{lines[0]['key']} did not download as a PDF")
        except DemoError as exc:
            print(f"demo.py: {exc}", file=sys.stderr)
            return 1

        named = len(keys_named_by_samples(env["BUCKET_NAME"], args.prefix))
        print("\nThe handler's response (invoke.py's stdout):")
        print(json.dumps(response, indent=2))
        print()
        found = f"{body['count']} ({args.count} generated + {named} the events/ samples name; decoys skipped)"
        print(f"PDFs found        {found}")
        where = f"s3://{env['BUCKET_NAME']}/{body['manifest_key']}"
        print(f"manifest          {where} ({content_type}, {len(manifest)} bytes)")
        print(f"manifest URL      {body['manifest_url']}")
        if lines:
            size = len(first_pdf)
            print(f"first PDF         {lines[0]['key']} downloaded through its URL ({size} bytes, starts with %PDF-)")
        print("\nDemo passed: the handler's manifest URL works and leads to the PDFs.")
        if args.keep_running:
            print(f"\nThe embedded S3 stays up at {endpoint}: open the URLs above. Ctrl-C stops it.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
        else:
            print("(The URLs stop working now: the embedded S3 ends with the demo; --keep-running keeps it.)")
    print(NEXT_STEPS)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
