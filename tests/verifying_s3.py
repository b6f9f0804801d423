"""Fixtures for an S3 server that really verifies SigV4: versitygw.

moto (the suite's default S3) serves tampered, expired and wrongly signed
presigned URLs with 200, so it can never show that our URLs are right. MinIO
would, but it cannot be built here (the Go module proxy refuses it), so these
fixtures run versitygw (Apache-2.0, POSIX backend) instead: the binary built by
``make s3-verifier``, on a free loopback port, with a temporary data dir.

Import the fixtures into a test module (pytest_plugins only works in the root
conftest)::

    from tests.verifying_s3 import verifier, verified_handler  # noqa: F401

Without the binary the tests skip with a one-line reason, never silently.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from tests.conftest import ROOT

MAKEFILE_FRAGMENT = ROOT / "mk" / "s3verify.mk"
# Root credentials of the test server. Deliberately not the conftest's
# "testing" pair, so a URL signed with the process-wide dummy credentials
# cannot pass by accident.
ACCESS_KEY = "verifier-root"
SECRET_KEY = "verifier-root-secret"  # a throwaway loopback test secret
REGION = "us-east-1"  # versitygw's default region, the one every URL is signed for
READY_TIMEOUT_S = 10.0
START_ATTEMPTS = 3  # a free port can be taken between probing it and the server binding it


def pinned_version() -> str:
    """The versitygw pin, read from mk/s3verify.mk so the pin lives in one place."""
    match = re.search(r"^VERSITYGW_VERSION\s*[:?]?=\s*(\S+)", MAKEFILE_FRAGMENT.read_text(), re.MULTILINE)
    if not match:
        raise RuntimeError(f"no VERSITYGW_VERSION line in {MAKEFILE_FRAGMENT}")
    return match.group(1)


def binary_path() -> Path:
    """Where ``make s3-verifier`` puts the binary (VERSITYGW_BIN overrides)."""
    override = os.environ.get("VERSITYGW_BIN", "").strip()
    if override:
        return Path(override)
    cache = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(cache) / "lambda-local-runner" / "versitygw" / pinned_version() / "versitygw"


def locate_binary(module_level: bool = False) -> Path:
    """The built binary, or a skip whose one line says what to do about it.

    ``module_level=True`` skips a whole test module at collection, so the
    summary shows the reason once instead of once per test.
    """
    path = binary_path()
    if path.is_file() and os.access(path, os.X_OK):
        return path
    if shutil.which("go") is None:
        reason = f"s3verify: no versitygw at {path} and no Go toolchain to build it (install Go, make s3-verifier)"
    else:
        reason = f"s3verify: versitygw not built at {path}: run make s3-verifier"
    pytest.skip(reason, allow_module_level=module_level)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class Verifier:
    """A running versitygw: where it listens, its root credentials, its data."""

    port: int
    root: Path
    access_key: str = ACCESS_KEY
    secret_key: str = SECRET_KEY

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, endpoint: str | None = None, secret_key: str | None = None, **config: Any) -> Any:
        """A client for this server (another endpoint or secret: to forge URLs)."""
        return signing_client(endpoint or self.endpoint, self.access_key, secret_key or self.secret_key, **config)


def signing_client(endpoint: str, access_key: str, secret_key: str, **config: Any) -> Any:
    """A boto3 S3 client configured like the handler's: SigV4, path-style."""
    settings: dict[str, Any] = {
        "signature_version": "s3v4",
        "s3": {"addressing_style": "path"},
        "max_pool_connections": 32,
        **config,
    }
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        config=Config(**settings),
    )


def start_verifier(binary: Path, root: Path) -> tuple[subprocess.Popen[bytes], Verifier]:
    """Start versitygw on a free loopback port and wait until /health answers."""
    data = root / "buckets"
    data.mkdir(parents=True, exist_ok=True)
    serve = ["posix", str(data)]
    log_path = root / "versitygw.log"
    env = {**os.environ, "ROOT_ACCESS_KEY": ACCESS_KEY, "ROOT_SECRET_KEY": SECRET_KEY}
    failure = ""
    for _ in range(START_ATTEMPTS):
        port = free_port()
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [str(binary), "--port", f"127.0.0.1:{port}", "--health", "/health", "--keep-alive", "--quiet", *serve],
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        verifier = Verifier(port=port, root=data)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline and process.poll() is None:
            try:
                if requests.get(f"{verifier.endpoint}/health", timeout=1).status_code == 200:
                    return process, verifier
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        stop_verifier(process)
        last_lines = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        failure = f"exit code {process.returncode}: {last_lines[0]}"
    raise RuntimeError(f"versitygw did not become ready on a loopback port ({failure}); log: {log_path}")


def stop_verifier(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@pytest.fixture(scope="session")
def verifier(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Verifier]:
    """One versitygw per test session (per xdist worker), on its own port and data dir."""
    binary = locate_binary()
    process, running = start_verifier(binary, tmp_path_factory.mktemp("versitygw"))
    try:
        yield running
    finally:
        stop_verifier(process)


@pytest.fixture(scope="session")
def verifier_s3(verifier: Verifier) -> Any:
    return verifier.client()


@pytest.fixture
def verifier_bucket(verifier_s3: Any) -> str:
    name = f"verified-{uuid.uuid4().hex[:16]}"
    verifier_s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def verified_handler(
    load_handler: Callable[..., ModuleType], verifier: Verifier, verifier_bucket: str
) -> Callable[..., ModuleType]:
    """conftest's ``load_handler`` (a fresh cold start), aimed at the verifier.

    The conftest sets the dummy "testing" credentials process-wide; the handler
    must sign with the verifier's root credentials instead, or every URL would
    (rightly) be refused. ``load_handler`` sets them through monkeypatch, so
    they are undone after the test.
    """

    def load(**settings: Any) -> ModuleType:
        env: dict[str, Any] = {
            "S3_ENDPOINT_URL": verifier.endpoint,
            "S3_PUBLIC_ENDPOINT_URL": None,
            "AWS_ACCESS_KEY_ID": verifier.access_key,
            "AWS_SECRET_ACCESS_KEY": verifier.secret_key,
            "AWS_SESSION_TOKEN": None,
            "AWS_REGION": REGION,
            "BUCKET_NAME": verifier_bucket,
            "ALLOWED_BUCKETS": None,
            **settings,
        }
        return load_handler(**env)

    return load


def s3_error_code(response: requests.Response) -> str:
    """The <Code> of an S3 XML error body ('' when there is none)."""
    match = re.search(r"<Code>([^<]*)</Code>", response.text)
    return match.group(1) if match else ""
