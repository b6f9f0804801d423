"""make as a user types it: make invoke's stdout is the function's JSON, make help lists every target."""

from __future__ import annotations

import json
import os
import re
import subprocess

from tests.conftest import ROOT


def test_make_invoke_stdout_is_the_functions_json_alone(s3_endpoint, bucket, s3):
    s3.put_object(Bucket=bucket, Key="2026/04/only.pdf", Body=b"%PDF-1.4")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    env.update(S3_ENDPOINT_URL=s3_endpoint, BUCKET_NAME=bucket, PREFIX="2026/04/")

    done = subprocess.run(["make", "invoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert json.loads(json.loads(done.stdout)["body"])["count"] == 1  # no echoed recipe, no make chatter


def test_make_help_groups_every_target_under_the_headings_in_order():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    done = subprocess.run(["make", "help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    headings = [line for line in lines if line and not line.startswith((" ", "New here"))]
    assert headings == ["Start here", "Local S3", "Run", "Test and lint", "Bench and stress", "Docs", "AWS"]
    listed = [line.split()[1] for line in lines if line.startswith("  make ")]
    makefiles = [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]
    documented = [
        name for path in makefiles for name in re.findall(r"^([a-zA-Z0-9_-]+):.*## ", path.read_text(), re.MULTILINE)
    ]
    assert sorted(listed) == sorted(documented)
    start = lines.index("Start here")
    assert [line.split()[1] for line in lines[start + 1 : start + 5]] == ["help", "install", "demo", "test"]
