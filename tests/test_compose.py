"""docker-compose.yml, checked by parsing: no Docker engine runs here."""

from __future__ import annotations

import re

import yaml

from tests.conftest import ROOT


def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_publishes_api_and_console_ports_on_loopback_where_make_up_says():
    # The same variables and defaults as mk/s3verify.mk, so both sandboxes sit at the same addresses.
    assert compose()["services"]["minio"]["ports"] == [
        "${S3_ADDR:-127.0.0.1:9000}:9000",
        "${CONSOLE_ADDR:-127.0.0.1:9001}:9001",
    ]
    makefile = (ROOT / "mk" / "s3verify.mk").read_text()
    assert re.search(r"^VERIFIER_ADDR\s+\?= 127\.0\.0\.1:9000$", makefile, re.MULTILINE)
    assert re.search(r"^S3_ADDR\s+\?= \$\(VERIFIER_ADDR\)$", makefile, re.MULTILINE)
    assert re.search(r"^CONSOLE_ADDR\s+\?= 127\.0\.0\.1:9001$", makefile, re.MULTILINE)


def test_compose_pins_a_minio_image_that_can_be_overridden():
    image = compose()["services"]["minio"]["image"]

    match = re.fullmatch(r"\$\{MINIO_IMAGE:-(?P<default>[^}]+)\}", image)
    assert match, image
    assert match["default"].endswith(":RELEASE.2025-10-15T17-29-55Z")
    assert not match["default"].startswith("minio/")  # gone from Docker Hub


def test_compose_keeps_data_in_a_named_volume():
    spec = compose()

    assert "minio-data:/data" in spec["services"]["minio"]["volumes"]
    assert "minio-data" in spec["volumes"]


def test_compose_has_a_healthcheck_that_gates_bucket_creation():
    spec = compose()

    assert "9000" in " ".join(spec["services"]["minio"]["healthcheck"]["test"])
    gate = spec["services"]["create-bucket"]["depends_on"]["minio"]["condition"]
    assert gate == "service_healthy"


def test_compose_credentials_match_env_example():
    env = dict(
        line.split("=", 1)
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line and not line.startswith("#")
    )
    minio_env = compose()["services"]["minio"]["environment"]

    assert minio_env["MINIO_ROOT_USER"].endswith(f":-{env['AWS_ACCESS_KEY_ID']}}}")
    assert minio_env["MINIO_ROOT_PASSWORD"].endswith(f":-{env['AWS_SECRET_ACCESS_KEY']}}}")
    assert env["S3_ENDPOINT_URL"] == "http://localhost:9000"
