"""What the suite adds to the lambda_pytest plugin's fixtures.

The plugin (lambda_pytest/plugin.py, loaded through its pytest11 entry point)
gives every test here what it gives a user's own tests: ``s3_endpoint`` and
``s3`` (one moto server per session), ``bucket``, ``seed_pdfs``,
``load_handler`` (a cold start under the variables asked for),
``context_factory``/``lambda_context`` and ``local_lambda``. This file adds the
suite's own: dummy credentials for the whole process, moto's backend, a log
sink, a Lambda client, and ``pytester`` for the plugin's tests.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local_dev.embedded_s3 import DUMMY_CREDENTIALS
from local_runtime.config import ACCOUNT_ID  # moto's default account too

ROOT = Path(__file__).resolve().parent.parent
pytest_plugins = ["pytester"]


# Dummy credentials for the whole session, so nothing can ever reach real AWS.
for _name, _value in DUMMY_CREDENTIALS.items():
    os.environ[_name] = _value
os.environ.pop("AWS_SESSION_TOKEN", None)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture
def moto_backend() -> Any:
    """moto's in-memory S3 (the plugin's server runs in this process), for fixtures too big to upload."""
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT_ID]["aws"]


class Captured(list[str]):
    """A log sink for EnvironmentPool that keeps every line, for asserting on platform output."""

    def __call__(self, line: str) -> None:
        self.append(line)

    def starts(self) -> int:
        return sum(line.startswith("START RequestId") for line in self)


@pytest.fixture
def sink() -> Captured:
    return Captured()


def lambda_client(url: str, **config: Any) -> Any:
    """boto3's Lambda client for a local Invoke API: dummy keys, no retries (a retry would hide an answer)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "lambda",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1, "mode": "standard"}, **config),
    )


def start_serve(*options: str, env: dict[str, str] | None = None, stderr: int = subprocess.DEVNULL) -> tuple[Any, str]:
    """``invoke.py serve --port 0 OPTIONS`` as a user starts it, and the Invoke API URL it prints first.

    The caller owns the process (stdout stays a pipe; stderr as asked) and stops it.
    """
    process = subprocess.Popen(
        [sys.executable, "invoke.py", "serve", "--port", "0", *options],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    url = re.search(r"http://127\.0\.0\.1:\d+", line)
    if url is None:
        process.kill()
        process.communicate()
        raise AssertionError(f"invoke.py serve printed no URL: {line!r}")
    return process, url.group(0)


def aws_cli_env(**extra: str) -> dict[str, str]:
    """The environment the tests run the AWS CLI in: dummy keys, no user config or credentials file."""
    return {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        **extra,
    }
