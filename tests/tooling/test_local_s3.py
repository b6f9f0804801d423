"""`make up` / `make down` / `make clean` without Docker, run for real in a scratch copy.

Each test gets a copy of the repository (tests/local_sandbox.py) and free ports,
and runs the make targets a user runs. The browser half (the console showing
what `make seed` and `make invoke` wrote) is tests/tooling/test_console_browser.py.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import ROOT
from tests.local_sandbox import Sandbox, json_document
from tests.verifying_s3 import binary_path, locate_binary

pytestmark = [pytest.mark.s3verify, pytest.mark.slow]

locate_binary(module_level=True)

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "sandbox-user", "AWS_SECRET_ACCESS_KEY": "sandbox-secret-0123456789"}


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[Sandbox]:
    box = Sandbox.create(tmp_path / "repo", BUCKET_NAME="sandbox-bucket", **CREDENTIALS)
    try:
        yield box
    finally:
        box.make("down")


def client(box: Sandbox, secret: str = CREDENTIALS["AWS_SECRET_ACCESS_KEY"]):
    return boto3.client(
        "s3",
        endpoint_url=box.endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=secret,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 1}),
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text().lower()


def can_bind(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def test_up_serves_s3_and_console_with_the_env_credentials_twice_harmlessly_and_down_stops_it(sandbox: Sandbox):
    first = sandbox.make("up")

    assert first.returncode == 0, first.stderr
    line = first.stdout.strip().splitlines()[-1]
    assert line.startswith("native S3 (versitygw, no Docker) started")
    assert f"API {sandbox.endpoint}" in line and f"console {sandbox.console}/" in line
    assert "bucket sandbox-bucket created" in line
    assert CREDENTIALS["AWS_SECRET_ACCESS_KEY"] not in first.stdout + first.stderr  # never printed
    pid = sandbox.record()["pid"]
    assert "VersityGW" in requests.get(f"{sandbox.console}/", timeout=5).text  # the console login page
    client(sandbox).head_bucket(Bucket="sandbox-bucket")  # .env's keys are the server's keys
    with pytest.raises(ClientError, match=r"SignatureDoesNotMatch|InvalidAccessKeyId|AccessDenied|403"):
        client(sandbox, secret="not-the-secret").head_bucket(Bucket="sandbox-bucket")

    again = sandbox.make("up")

    assert again.returncode == 0, again.stderr
    assert f"already running (pid {pid})" in again.stdout
    assert "bucket sandbox-bucket," in again.stdout  # there already, not created twice
    assert sandbox.record()["pid"] == pid

    down = sandbox.make("down")

    assert down.returncode == 0, down.stderr
    assert f"native S3 stopped (pid {pid}" in down.stdout
    assert not alive(pid)
    assert can_bind(sandbox.s3_port) and can_bind(sandbox.console_port)
    assert (sandbox.root / ".s3-data" / "buckets" / "sandbox-bucket").is_dir()  # data kept
    assert "native S3 not running" in sandbox.make("down").stdout


def test_keys_changed_in_dot_env_after_up_are_a_one_line_error_naming_the_fix(sandbox: Sandbox):
    assert sandbox.make("up").returncode == 0
    sandbox.write_env(BUCKET_NAME="sandbox-bucket", **{**CREDENTIALS, "AWS_SECRET_ACCESS_KEY": "changed-later"})

    done = sandbox.make("up")

    assert done.returncode != 0
    assert "refuses the configured keys (changed since it started?): make down, then make up" in done.stderr


def test_clean_also_removes_the_data(sandbox: Sandbox):
    assert sandbox.make("up").returncode == 0
    pid = sandbox.record()["pid"]

    done = sandbox.make("clean")

    assert done.returncode == 0, done.stderr
    assert not alive(pid)
    assert not (sandbox.root / ".s3-data").exists()


def test_verifier_aliases_still_work(sandbox: Sandbox):
    up = sandbox.make("verifier-up")
    assert up.returncode == 0, up.stderr
    assert "console" in up.stdout
    pid = sandbox.record()["pid"]

    down = sandbox.make("verifier-down")

    assert down.returncode == 0, down.stderr
    assert not alive(pid)


def test_a_fresh_clone_gets_a_dot_env_pointing_at_the_server(tmp_path: Path):
    box = Sandbox.create(tmp_path / "repo")  # no .env, as after git clone
    try:
        done = box.make("up")

        assert done.returncode == 0, done.stderr
        assert "wrote .env from .env.example" in done.stdout
        env = (box.root / ".env").read_text()
        assert f"S3_ENDPOINT_URL={box.endpoint}\n" in env
        assert "minioadmin" not in env  # a random pair, which the server and the scripts both use
        assert box.make("up").returncode == 0
        assert (box.root / ".env").read_text() == env  # kept afterwards
        assert "note:" not in done.stdout  # seed / invoke already agree with the server
        assert box.make("seed").returncode == 0
        invoked = box.make("invoke")
        assert invoked.returncode == 0, invoked.stderr
        body = json.loads(json_document(invoked.stdout)["body"])
        # 25 generated reports + the 3 PDFs the events/ samples name in the default bucket
        assert body["count"] == 28 and body["manifest_key"].startswith("manifests/")
        assert requests.get(body["manifest_url"], timeout=10).text.count('"key"') == 28
    finally:
        box.make("down")


def test_a_taken_port_is_a_one_line_error_naming_the_fix(sandbox: Sandbox):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", sandbox.s3_port))
        squatter.listen()

        done = sandbox.make("up")

    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if not line.startswith("make:")]
    assert len(ours) == 1, done.stderr
    assert f"127.0.0.1:{sandbox.s3_port} (S3_ADDR) is taken" in ours[0]
    assert "S3_ADDR=" in ours[0] and "CONSOLE_ADDR=" in ours[0]
    assert sandbox.record() is None  # nothing started, nothing recorded


def test_no_docker_and_no_go_is_a_one_line_error_naming_both_fixes(sandbox: Sandbox, tmp_path: Path):
    # A PATH with neither go nor docker, and an empty cache (so no versitygw built yet).
    path = os.pathsep.join(
        entry
        for entry in os.environ["PATH"].split(os.pathsep)
        if not any(shutil.which(tool, path=entry) for tool in ("go", "docker"))
    )
    done = sandbox.make("up", env={"PATH": path, "XDG_CACHE_HOME": str(tmp_path / "empty-cache"), "LOCAL_S3": "auto"})

    assert done.returncode != 0
    ours = [line for line in done.stderr.splitlines() if not line.startswith("make:")]
    assert len(ours) == 1, done.stderr
    assert "install Go (https://go.dev/dl/) or start Docker" in ours[0]


def test_down_never_signals_a_process_that_is_not_its_versitygw(sandbox: Sandbox):
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        data = sandbox.root / ".s3-data"
        data.mkdir()
        (data / "versitygw.json").write_text(json.dumps({"pid": bystander.pid, "s3": "x", "console": "y"}))

        done = sandbox.make("down")

        assert done.returncode == 0, done.stderr
        assert f"stale record, pid {bystander.pid} left alone" in done.stdout
        assert bystander.poll() is None
        assert not (data / "versitygw.json").exists()
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()


def test_a_server_left_by_the_old_verifier_up_is_named_and_stopped_by_make_down(sandbox: Sandbox):
    # What `make verifier-up` ran before it gained the console: relative data path, a .pid file.
    data = sandbox.root / ".s3-data"
    (data / "buckets").mkdir(parents=True)
    old = subprocess.Popen(
        [str(binary_path()), "--port", sandbox.env["S3_ADDR"], "--quiet", "posix", ".s3-data/buckets"],
        cwd=sandbox.root,
        env={**sandbox.env, "ROOT_ACCESS_KEY": "minioadmin", "ROOT_SECRET_KEY": "minioadmin"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        (data / "versitygw.pid").write_text(f"{old.pid}\n")

        up = sandbox.make("up")

        assert up.returncode != 0
        assert f"an older make verifier-up still runs here (pid {old.pid}): make down, then make up" in up.stderr
        down = sandbox.make("down")
        assert f"native S3 stopped (pid {old.pid}, started by an older make verifier-up)" in down.stdout
        assert old.wait(timeout=10) is not None
        assert sandbox.make("up").returncode == 0
    finally:
        old.kill()
        old.wait()


def test_local_s3_script_has_help_and_does_nothing_else():
    done = subprocess.run(
        [sys.executable, "tools/local_s3.py", "--help"], cwd=ROOT, capture_output=True, text=True, timeout=30
    )

    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout and "up" in done.stdout and "down" in done.stdout
    assert not (ROOT / "tools" / ".s3-data").exists()


def test_a_bad_address_is_a_one_line_error(sandbox: Sandbox):
    done = sandbox.make("up", env={"S3_ADDR": "nine-thousand"})

    assert done.returncode != 0
    assert "S3_ADDR='nine-thousand' is not HOST:PORT" in done.stderr


def test_up_starts_the_event_bridge_first_and_an_upload_reaches_it_while_serve_is_down(sandbox: Sandbox):
    up = sandbox.make("up")
    assert up.returncode == 0, up.stderr
    bridge = json.loads((sandbox.root / ".s3-data" / "s3-bridge.json").read_text())
    assert f"uploads notify {bridge['url']}" in up.stdout
    health = bridge["url"].replace("/s3-events", "/health")
    client = boto3.client(
        "s3",
        endpoint_url=sandbox.endpoint,
        region_name="us-east-1",
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    client.put_object(Bucket="sandbox-bucket", Key="2026/04/new report.pdf", Body=b"%PDF-1.4\n")
    client.put_object(Bucket="sandbox-bucket", Key="2026/04/notes.txt", Body=b"text")
    skipped = "no invocation for ObjectCreated:Put sandbox-bucket/2026/04/notes.txt"
    log_path = sandbox.root / ".s3-data" / "s3-bridge.log"
    # versitygw posts each event on its own after answering the PUT, so the two may arrive in either order.
    deadline = time.monotonic() + 20
    while skipped not in log_path.read_text() or requests.get(health, timeout=5).json()["queued"] != 1:
        assert time.monotonic() < deadline, log_path.read_text()
        time.sleep(0.1)
    assert "2026/04/new report.pdf: queued for the function" in log_path.read_text()
    assert requests.get(health, timeout=5).json()["queued"] == 1  # no serve yet: kept, retried, not lost
    down = sandbox.make("down")
    assert down.returncode == 0 and "S3 event bridge stopped" in down.stdout, down.stdout
