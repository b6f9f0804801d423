"""Shared fixtures: one moto S3 server per session, a fresh bucket per test.

The handler reads its configuration at import time (once per cold start), so
``load_handler`` imports a fresh copy of ``lambda_function`` under the
environment a test asks for, exactly as a new execution environment would.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from botocore.config import Config

from local_dev.embedded_s3 import DUMMY_CREDENTIALS, embedded_s3
from local_runtime.config import ACCOUNT_ID  # moto's default account too
from testkit.cold_import import import_fresh
from testkit.lambda_context import make_context

ROOT = Path(__file__).resolve().parent.parent


# Dummy credentials for the whole session, so nothing can ever reach real AWS.
for _name, _value in DUMMY_CREDENTIALS.items():
    os.environ[_name] = _value
os.environ.pop("AWS_SESSION_TOKEN", None)
os.environ.pop("AWS_PROFILE", None)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with embedded_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def s3(s3_endpoint: str) -> Any:
    config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, max_pool_connections=32)
    return boto3.client("s3", endpoint_url=s3_endpoint, region_name="us-east-1", config=config)


@pytest.fixture
def bucket(s3: Any) -> str:
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def moto_backend() -> Any:
    """moto's in-memory S3, for fixtures too big to upload over HTTP quickly."""
    from moto.s3.models import s3_backends

    return s3_backends[ACCOUNT_ID]["aws"]


@pytest.fixture
def lambda_tmp(tmp_path: Path) -> Path:
    path = tmp_path / "lambda-tmp"
    path.mkdir()
    return path


@pytest.fixture
def load_handler(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, lambda_tmp: Path) -> Callable[..., ModuleType]:
    """Import a fresh ``lambda_function`` with the given settings (a cold start)."""

    def load(**settings: Any) -> ModuleType:
        env = {"S3_ENDPOINT_URL": s3_endpoint, "TMPDIR": str(lambda_tmp), **settings}
        for name, value in env.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, str(value))
        monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR, as a new process would
        _forget_powertools_logger(os.environ.get("POWERTOOLS_SERVICE_NAME", "pdf-manifest"))
        return import_fresh("lambda_function_under_test")

    return load


def _forget_powertools_logger(service: str) -> None:
    """Powertools configures a named stdlib logger once per process; a fresh
    import must configure it again, bound to the current sys.stdout."""
    stdlib_logger = logging.getLogger(service)
    stdlib_logger.handlers.clear()
    for attribute in ("init", "powertools_handler", "logger_handler"):
        if hasattr(stdlib_logger, attribute):
            delattr(stdlib_logger, attribute)


@pytest.fixture
def context_factory() -> Callable[..., Any]:
    def factory(**overrides: Any) -> Any:
        settings: dict[str, Any] = {
            "function_name": "pdf-manifest",
            "memory_mb": 512,
            "timeout_s": 60,
            "region": "us-east-1",
            "log_stream_name": "2026/11/25/[$LATEST]test",
        }
        settings.update(overrides)
        return make_context(**settings)

    return factory


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
