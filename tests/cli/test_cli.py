"""invoke.py, seed.py and demo.py as a user runs them: subprocesses, real S3 over HTTP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
import requests

from tests.cli.conftest import run
from tests.conftest import ROOT


@pytest.mark.parametrize("script", ["invoke.py", "seed.py", "demo.py"])
def test_every_script_explains_itself_with_help(script):
    done = run(script, "--help")

    assert done.returncode == 0
    assert "usage:" in done.stdout
    assert "--" in done.stdout


def test_seed_then_invoke_round_trip(cli_env, s3, bucket):
    seeded = run("seed.py", "--count", "7", "--quiet", "--env-file", os.devnull, env=cli_env)
    assert seeded.returncode == 0, seeded.stderr
    assert "7 uploaded" not in seeded.stdout  # decoys are uploaded too
    assert "10 uploaded, 0 already there" in seeded.stdout

    invoked = run("invoke.py", "--env-file", os.devnull, env=cli_env)

    assert invoked.returncode == 0, invoked.stderr
    body = json.loads(json.loads(invoked.stdout)["body"])
    assert body["count"] == 7
    lines = requests.get(body["manifest_url"], timeout=10).text.split("\n")[:-1]
    assert len(lines) == 7


def test_invoke_reads_the_event_from_stdin(cli_env, s3, bucket):
    s3.put_object(Bucket=bucket, Key="2026/04/x.pdf", Body=b"%PDF-")

    done = run("invoke.py", "--event", "-", "--env-file", os.devnull, env=cli_env, stdin="{}")

    assert done.returncode == 0, done.stderr
    assert json.loads(json.loads(done.stdout)["body"])["count"] == 1


def test_invoke_bad_event_file_is_a_one_line_error(cli_env, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")

    done = run("invoke.py", "--event", str(bad), "--env-file", os.devnull, env=cli_env)

    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert done.stdout == ""


def test_invoke_reports_an_unhandled_error_in_lambdas_shape(cli_env):
    # One attempt: retries against a dead port would outlast Lambda's 3 s default timeout, which is enforced.
    unreachable = {**cli_env, "S3_ENDPOINT_URL": "http://127.0.0.1:9", "S3_MAX_ATTEMPTS": "1"}
    done = run("invoke.py", "--env-file", os.devnull, env=unreachable)

    assert done.returncode == 1
    payload: dict[str, Any] = json.loads(done.stdout)
    assert set(payload) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert payload["errorType"] == "EndpointConnectionError"
    assert "Could not connect" in payload["errorMessage"]


def test_invoke_against_a_stopped_loopback_s3_fails_at_once_with_the_cause(cli_env):
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stopped = {k: v for k, v in cli_env.items() if k != "S3_MAX_ATTEMPTS"}
    stopped["S3_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"

    started = time.monotonic()
    done = run("invoke.py", "--env-file", os.devnull, env=stopped)
    elapsed = time.monotonic() - started

    assert done.returncode == 1
    assert json.loads(done.stdout)["errorType"] == "EndpointConnectionError"
    assert f"S3_ENDPOINT_URL http://127.0.0.1:{port} does not answer" in done.stderr
    assert "this run tries S3 once (S3_MAX_ATTEMPTS=1)" in done.stderr
    assert elapsed < 60

    seen = run("invoke.py", "--env-file", os.devnull, "--handler", "tests.fixtures.handlers.whoami", env=stopped)
    assert json.loads(seen.stdout)["import_env"]["S3_MAX_ATTEMPTS"] == "1"  # what the handler's botocore reads
    stopped["S3_MAX_ATTEMPTS"] = "3"
    seen = run("invoke.py", "--env-file", os.devnull, "--handler", "tests.fixtures.handlers.whoami", env=stopped)
    assert json.loads(seen.stdout)["import_env"]["S3_MAX_ATTEMPTS"] == "3"  # the user's setting stands
    assert "tries S3 once" not in seen.stderr


def test_invoke_reads_settings_from_the_env_file(cli_env, s3, bucket, tmp_path):
    s3.put_object(Bucket=bucket, Key="from-dotenv/x.pdf", Body=b"%PDF-")
    env_file = tmp_path / "custom.env"
    env_file.write_text("PREFIX=from-dotenv/\n")
    env = {key: value for key, value in cli_env.items() if key != "PREFIX"}

    done = subprocess.run(
        [sys.executable, "invoke.py", "--env-file", str(env_file)],
        cwd=ROOT,
        env={k: v for k, v in {**os.environ, **env}.items() if k != "PREFIX"},
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(json.loads(done.stdout)["body"])["count"] == 1


@pytest.mark.slow
def test_demo_runs_end_to_end():
    done = run("demo.py", "--count", "6")

    assert done.returncode == 0, done.stderr
    assert "PDFs found        9 (6 generated + 3 the events/ samples name" in done.stdout
    assert "manifest URL      http://127.0.0.1:" in done.stdout
    assert "Next steps:" in done.stdout
    assert "Demo passed" in done.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["tools/package.py"],
        ["tools/zip_import_time.py"],
        ["tools/deploy.py"],
        ["bench/presign_bench.py"],
        ["bench/scan_bench.py"],
        ["bench/zip_cold_start.py"],
        ["bench/s3_standin.py"],
        ["docs/build_docs.py"],
        ["docs/graphs/render.py"],
        ["docs/graphs/measure_timeline.py"],
        ["-m", "reliability.fault_run"],
        ["-m", "reliability.load_run"],
        ["-m", "local_dev.embedded_s3"],
        ["invoke.py", "serve"],
    ],
)
def test_every_other_script_has_help_and_does_nothing_else(command):
    before = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout

    done = subprocess.run([sys.executable, *command, "--help"], cwd=ROOT, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    assert "usage:" in done.stdout
    after = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    assert after == before


def test_an_event_name_that_is_neither_a_file_nor_a_sample_lists_the_samples():
    done = run("invoke.py", "--event", "nosuch", "--env-file", os.devnull)

    assert done.returncode == 2 and done.stdout == ""
    line = done.stderr.strip()
    assert "\n" not in line
    assert "nor a sample in events/: apigateway-proxy, direct, s3-object-created" in line


@pytest.mark.parametrize("value", ["1", "yes", "ON"])
def test_package_with_dry_run_previews_and_builds_nothing(tmp_path, value):
    done = run("tools/package.py", "--out", str(tmp_path / "dist"), env={"DRY_RUN": value})

    assert done.returncode == 0, done.stderr
    assert done.stdout.count("DRY_RUN: would build") == 2 and "nothing built" in done.stdout
    assert not (tmp_path / "dist").exists()


def test_package_with_a_misspelt_dry_run_stops_in_one_line(tmp_path):
    done = run("tools/package.py", "--out", str(tmp_path / "dist"), env={"DRY_RUN": "maybe"})

    assert done.returncode == 2 and "is neither yes nor no" in done.stderr
    assert not (tmp_path / "dist").exists()


@pytest.mark.slow
def test_demo_keep_running_leaves_the_printed_manifest_url_working_until_interrupted():
    demo = subprocess.Popen(
        [sys.executable, "demo.py", "--count", "2", "--keep-running"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert demo.stdout is not None
        url = ""
        for line in demo.stdout:
            if line.startswith("manifest URL"):
                url = line.split()[-1]
            if "stays up" in line:
                break
        assert url.startswith("http://127.0.0.1:")
        assert len(requests.get(url, timeout=10).text.splitlines()) == 5  # 2 generated + 3 the samples name
        demo.send_signal(signal.SIGINT)
        rest = demo.communicate(timeout=30)[0]
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 0
    assert "Next steps:" in rest
