"""Every sample event in events/ finds PDFs in a freshly seeded bucket, and their URLs download.

The samples are written for the default bucket and ``2026/04/``; seed.py adds
the objects they name, so no sample names a key that was never seeded or a
prefix with nothing in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests

from local_dev.embedded_s3 import embedded_s3
from local_dev.events import keys_named_by_samples, sample_events
from tests.conftest import ROOT

DEFAULT_BUCKET = "my-company-reports-bucket"


def run(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, script, "--env-file", os.devnull, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A private S3 (the default bucket name must not clash with other tests) seeded as make seed does."""
    with embedded_s3() as endpoint:
        env = {k: v for k, v in os.environ.items() if k not in {"BUCKET_NAME", "ALLOWED_BUCKETS", "PREFIX"}}
        env.update(S3_ENDPOINT_URL=endpoint, TMPDIR=str(tmp_path_factory.mktemp("lambda-tmp")))
        done = run("seed.py", "--count", "3", "--quiet", env=env)
        assert done.returncode == 0, done.stderr
        yield env


def test_the_samples_name_objects_only_in_their_own_bucket_and_prefix():
    named = keys_named_by_samples(DEFAULT_BUCKET, "2026/04/")

    assert "2026/04/quarterly report.pdf" in named  # s3-object-created: '+' is a space
    assert any(key.startswith("2026/04/team a/") for key in named)  # stepfunctions-map-item
    assert keys_named_by_samples("another-bucket", "2026/04/") == []
    assert keys_named_by_samples(DEFAULT_BUCKET, "2026/05/") == []


@pytest.mark.parametrize("name", sample_events())
def test_each_sample_event_finds_pdfs_whose_urls_download(seeded, name):
    done = run("invoke.py", "--event", name, env=seeded)

    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["count"] > 0, f"events/{name}.json finds nothing in a seeded bucket"
    manifest = requests.get(body["manifest_url"], timeout=10)
    assert manifest.status_code == 200
    lines = [json.loads(line) for line in manifest.text.splitlines()]
    assert len(lines) == body["count"]
    pdf = requests.get(lines[0]["url"], timeout=10)
    assert pdf.status_code == 200, lines[0]["key"]
    assert pdf.content.startswith(b"%PDF-")
