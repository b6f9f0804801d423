"""Configuration is read once at import and bad values stop the cold start."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT


def import_with(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    code = "import lambda_function"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={"PATH": "/usr/bin:/bin", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_config_defaults(load_handler):
    module = load_handler(BUCKET_NAME=None, PREFIX=None, URL_EXPIRY_SECONDS=None, QUEUE_MAX=None, S3_ENDPOINT_URL="")

    assert module.BUCKET_NAME == "my-company-reports-bucket"
    assert module.PREFIX == "2026/04/"
    assert module.URL_EXPIRY_SECONDS == 900
    assert module.QUEUE_MAX == 2000
    assert module.LIST_CONCURRENCY == 32
    assert module.S3_CONFIG.max_pool_connections >= module.LIST_CONCURRENCY  # a connection per concurrent LIST
    assert module.S3_ENDPOINT_URL is None


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("URL_EXPIRY_SECONDS", "abc", "URL_EXPIRY_SECONDS must be a whole number"),
        ("URL_EXPIRY_SECONDS", "0", "URL_EXPIRY_SECONDS must be between 1 and 604800"),
        ("URL_EXPIRY_SECONDS", "604801", "URL_EXPIRY_SECONDS must be between 1 and 604800"),
        ("QUEUE_MAX", "0", "QUEUE_MAX must be 1 or more"),
        ("QUEUE_MAX", "1.5", "QUEUE_MAX must be a whole number"),
        ("LIST_CONCURRENCY", "0", "LIST_CONCURRENCY must be between 1 and 256"),
        ("LIST_CONCURRENCY", "257", "LIST_CONCURRENCY must be between 1 and 256"),
        ("LIST_CONCURRENCY", "many", "LIST_CONCURRENCY must be a whole number"),
    ],
)
def test_config_rejects_bad_values_at_import(name, value, message):
    done = import_with({name: value})

    assert done.returncode != 0
    assert f"ConfigError: {message}" in done.stderr.strip().splitlines()[-1]


def test_config_accepts_the_sigv4_maximum(load_handler):
    assert load_handler(URL_EXPIRY_SECONDS="604800").URL_EXPIRY_SECONDS == 604800
