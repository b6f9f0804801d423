"""What the CLI tests share: the environment that points the scripts at the test S3, the one-line error rule."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT

TRACEBACK = "Traceback (most recent call last)"


def run(
    script: str, *args: str, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """A root script as a user runs it, with ``env`` over the process environment."""
    return subprocess.run(
        [sys.executable, script, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert TRACEBACK not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().count("\n") == 0, done.stderr[-2000:]
    assert len(done.stderr) < 600, done.stderr[:600]
    assert done.stdout == ""
    for needle in needles:
        assert needle in done.stderr


@pytest.fixture
def cli_env(s3_endpoint: str, bucket: str, tmp_path) -> dict[str, str]:
    return {"S3_ENDPOINT_URL": s3_endpoint, "BUCKET_NAME": bucket, "PREFIX": "2026/04/", "TMPDIR": str(tmp_path)}
