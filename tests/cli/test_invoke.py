"""invoke.py as a user runs it: the deployed configuration, what it says before invoking, JSON Lines, serve.

The local function is the deployed one (template.yaml) unless flags say otherwise; a dead S3 endpoint
and variables that shadow .env are named before invoking; --repeat is JSON Lines; the serve banner's
AWS CLI command works with the CLI make install provides.
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from local_dev.env_file import shadowed
from local_dev.template_config import load_template_function
from local_runtime.config import ConfigurationError
from tests.conftest import ROOT

FIXTURES = "tests.fixtures.handlers"


def cli(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "invoke.py", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def whoami(done: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the local function is the deployed one ---------------------------------------


def test_an_unusable_template_is_a_one_line_configuration_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("Resources: [unclosed\n")

    with pytest.raises(ConfigurationError, match="cannot read template"):
        load_template_function(bad)
    for template in (bad, tmp_path):  # unparsable; not a file
        done = cli("--template", str(template), "--env-file", os.devnull)
        assert done.returncode == 2
        assert done.stderr.strip().count("\n") == 0


def test_invoke_runs_with_the_templates_memory_and_timeout_unless_told_otherwise():
    handler = ("--handler", f"{FIXTURES}.whoami", "--env-file", os.devnull)

    deployed = whoami(cli(*handler))
    overridden = whoami(cli(*handler, "--timeout", "5", "--memory", "256"))
    bare = whoami(cli(*handler, "--template", ""))

    assert deployed["context"]["memory_limit_in_mb"] == "512"
    assert 110_000 < deployed["context"]["remaining_ms"] <= 120_000
    assert deployed["import_env"].get("PREFIX", "2026/04/") == "2026/04/"
    assert overridden["context"]["memory_limit_in_mb"] == "256"
    assert 4_000 < overridden["context"]["remaining_ms"] <= 5_000
    assert bare["context"]["memory_limit_in_mb"] == "128"  # Lambda's own defaults
    assert 2_000 < bare["context"]["remaining_ms"] <= 3_000


def test_invoke_says_which_configuration_runs_and_when_s3_does_not_answer():
    port = closed_port()
    done = cli(
        "--handler",
        f"{FIXTURES}.whoami",
        "--env-file",
        os.devnull,
        env={"S3_ENDPOINT_URL": f"http://127.0.0.1:{port}"},
    )

    assert done.returncode == 0, done.stderr
    first, sandbox_line, second = done.stderr.splitlines()[:3]
    assert first.startswith("invoke.py: pdf-manifest (Function in template.yaml): ")
    assert "512 MB, 120 s timeout, arm64" in first
    assert sandbox_line.startswith("invoke.py: sandbox: ")  # which sandbox and memory method is in force
    assert second.startswith(f"invoke.py: S3_ENDPOINT_URL http://127.0.0.1:{port} does not answer")


# -- exported variables that beat .env --------------------------------------------------


def test_variables_the_environment_shadows_are_named_never_their_values(tmp_path):
    env_file = tmp_path / "local.env"
    env_file.write_text("AWS_ACCESS_KEY_ID=minioadmin\nPREFIX=2026/04/\nQUEUE_MAX=10\n")

    done = cli(
        "--handler",
        f"{FIXTURES}.whoami",
        "--env-file",
        str(env_file),
        env={"AWS_ACCESS_KEY_ID": "AKIAEXPORTEDSECRET", "PREFIX": "2026/04/"},
    )

    assert done.returncode == 0, done.stderr
    warning = [line for line in done.stderr.splitlines() if "overrides" in line]
    assert warning == [
        f"invoke.py: the environment overrides {env_file} for AWS_ACCESS_KEY_ID (unset them to use {env_file})"
    ]
    assert "AKIAEXPORTEDSECRET" not in done.stderr and "minioadmin" not in done.stderr


def test_shadowed_compares_values():
    assert shadowed({"A": "1", "B": "2", "C": None}, {"A": "1", "B": "3", "C": "x"}) == ["B", "C"]


# -- outputs a script can read ------------------------------------------------------------


def test_repeat_prints_json_lines():
    done = cli("--handler", f"{FIXTURES}.whoami", "--env-file", os.devnull, "--repeat", "3")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert [json.loads(line)["invocations"] for line in lines] == [1, 2, 3]


# -- the AWS CLI command the serve banner prints -------------------------------------------


def test_the_serve_banners_aws_cli_command_works_as_printed(tmp_path):
    aws = ROOT / ".venv" / "bin" / "aws"
    if Path(sys.prefix).resolve() != (ROOT / ".venv").resolve() or not aws.exists():
        pytest.skip("the banner names .venv/bin/aws, which make install provides")
    server = subprocess.Popen(
        [
            sys.executable,
            "invoke.py",
            "serve",
            "--port",
            "0",
            "--handler",
            f"{FIXTURES}.whoami",
            "--env-file",
            os.devnull,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None and server.stderr is not None
        assert "Invoke API" in server.stdout.readline()
        command = ""
        for _ in range(20):
            line = server.stderr.readline()
            if "aws lambda invoke" in line:
                command = line.strip()
                break
        assert command, "no AWS CLI command in the banner"
        out = tmp_path / "out.json"
        words = shlex.split(command.replace(" out.json", f" {out}"))
        assignments = dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-"))
        argv = [word for word in words if word.split("=", 1)[0] not in assignments]
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}

        done = subprocess.run(
            argv, cwd=ROOT, env={**env, **assignments}, capture_output=True, text=True, timeout=60, check=False
        )

        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["StatusCode"] == 200
        assert json.loads(out.read_text())["event"] == json.loads((ROOT / "events" / "direct.json").read_text())
    finally:
        server.terminate()
        server.wait(timeout=30)
