"""docker-compose.yml, checked by parsing: no Docker engine runs here."""

from __future__ import annotations

import json
import re
import stat
import subprocess
import sys

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


def test_compose_takes_its_keys_from_dot_env_and_has_no_default_pair():
    """make up writes random keys into .env; compose refuses to start MinIO without them."""
    spec = compose()
    minio_env = spec["services"]["minio"]["environment"]
    cli_env = spec["services"]["create-bucket"]["environment"]

    for value, name in [
        (minio_env["MINIO_ROOT_USER"], "AWS_ACCESS_KEY_ID"),
        (minio_env["MINIO_ROOT_PASSWORD"], "AWS_SECRET_ACCESS_KEY"),
        (cli_env["AWS_ACCESS_KEY_ID"], "AWS_ACCESS_KEY_ID"),
        (cli_env["AWS_SECRET_ACCESS_KEY"], "AWS_SECRET_ACCESS_KEY"),
    ]:
        assert value.startswith(f"${{{name}:?"), value
    assert "minioadmin" not in (ROOT / "docker-compose.yml").read_text()


def test_minio_notifies_the_s3_event_bridge_with_the_trigger_rules_make_s3_trigger_deploys():
    from local_dev.s3_trigger import trigger_rules
    from tools.deploy import merged_notification

    minio = compose()["services"]["minio"]
    env = minio["environment"]
    assert env["MINIO_NOTIFY_WEBHOOK_ENABLE_LAMBDA"] == "on"
    assert env["MINIO_NOTIFY_WEBHOOK_ENDPOINT_LAMBDA"] == "http://host.docker.internal:${BRIDGE_PORT:-9010}/s3-events"
    assert "host.docker.internal:host-gateway" in minio["extra_hosts"]
    create = compose()["services"]["create-bucket"]
    assert create["environment"]["S3_NOTIFICATION"] == "${S3_NOTIFICATION:-}"
    assert "put-bucket-notification-configuration" in create["command"][0]
    assert '"$$S3_NOTIFICATION"' in create["command"][0]

    # What make up passes as S3_NOTIFICATION: the queue config MinIO takes, with the deployed rules.
    printed = subprocess.run(
        [sys.executable, "tools/local_s3.py", "notification", "--env-file", "/nonexistent"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PATH": "/usr/bin:/bin", "PREFIX": "2026/04/"},
    ).stdout
    (queue,) = json.loads(printed)["QueueConfigurations"]
    assert queue["QueueArn"] == "arn:minio:sqs::LAMBDA:webhook"
    deployed = merged_notification({}, "id", "arn:fn", "2026/04/")["LambdaFunctionConfigurations"][0]
    assert queue["Events"] == deployed["Events"] == ["s3:ObjectCreated:*"]
    assert (
        queue["Filter"]
        == deployed["Filter"]
        == {"Key": {"FilterRules": [{"Name": "prefix", "Value": "2026/04/"}, {"Name": "suffix", "Value": ".pdf"}]}}
    )
    assert trigger_rules("2026/04/").key_matches("2026/04/a.pdf")
    assert not trigger_rules("2026/04/").key_matches("manifests/2026-04-30.jsonl")

    makefile = (ROOT / "Makefile").read_text()
    bridge_first = makefile.index("tools/local_s3.py bridge")
    assert bridge_first < makefile.index("docker compose up -d --wait")  # the webhook answers before MinIO starts
    assert 'S3_NOTIFICATION="$$($(PY) tools/local_s3.py notification)"' in makefile


def env_lines(path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines() if line and not line.startswith("#"))


def test_first_make_up_writes_random_keys_into_dot_env_and_keeps_them(tmp_path):
    first, second = tmp_path / "first.env", tmp_path / "second.env"
    command = [sys.executable, "tools/local_s3.py", "env", "--env-example", str(ROOT / ".env.example")]

    def write(path):
        return subprocess.run(
            [*command, "--env-file", str(path), "--s3-addr", "127.0.0.1:9100"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        )

    said = write(first).stdout
    written = first.read_text()
    write(second)
    again = write(first)

    keys = env_lines(first)
    assert "wrote" in said and "random S3 keys" in said
    assert re.fullmatch(r"LOCAL[A-Z0-9]{15}", keys["AWS_ACCESS_KEY_ID"])
    assert re.fullmatch(r"[A-Za-z0-9]{40}", keys["AWS_SECRET_ACCESS_KEY"])
    assert keys["S3_ENDPOINT_URL"] == "http://localhost:9100"
    assert keys["AWS_ACCESS_KEY_ID"] != env_lines(second)["AWS_ACCESS_KEY_ID"]
    assert keys["AWS_SECRET_ACCESS_KEY"] != env_lines(second)["AWS_SECRET_ACCESS_KEY"]
    assert "minioadmin" not in written
    assert stat.S_IMODE(first.stat().st_mode) == 0o600
    assert again.stdout == "" and first.read_text() == written  # kept afterwards
    example = env_lines(ROOT / ".env.example")
    assert {k: v for k, v in keys.items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET", "S3_ENDPOINT"))} == {
        k: v for k, v in example.items() if not k.startswith(("AWS_ACCESS", "AWS_SECRET", "S3_ENDPOINT"))
    }
