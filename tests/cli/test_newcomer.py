"""Issue 18, the newcomer's first thirty minutes: what used to go wrong, pinned.

The wrong interpreter says what to run; a failed import ends the fault run;
the local function is the deployed one (template.yaml); a dead S3 endpoint and
variables that shadow .env are named before invoking; --repeat is JSON Lines;
the serve banner's AWS CLI command works with the CLI make install provides.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from local_dev import venv_guard
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


# -- 1. the wrong Python -----------------------------------------------------------


def test_a_python_without_the_packages_is_told_what_to_run(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(venv_guard, "VENV_PYTHON", tmp_path / "no-venv" / "bin" / "python")
    monkeypatch.setattr(sys, "orig_argv", ["python3", "invoke.py", "--repeat", "3"])

    with pytest.raises(SystemExit) as stopped:
        venv_guard.ensure_project_python("invoke.py", modules=("json", "no_such_module_for_issue_18"))

    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "lacks no_such_module_for_issue_18" in err
    assert "run `make install`, then `.venv/bin/python invoke.py --repeat 3`" in err


def test_the_project_python_passes_the_check():
    venv_guard.ensure_project_python("invoke.py")  # returns: every package is installed here


def test_a_base_python_re_runs_the_script_under_the_venv():
    base = Path(getattr(sys, "_base_executable", sys.executable))
    probe = subprocess.run(
        [str(base), "-c", "import importlib.util as u; print(u.find_spec('aioboto3') is None)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.stdout.strip() != "True" or not venv_guard.VENV_PYTHON.exists():
        pytest.skip("needs a base interpreter without the packages and the project's .venv")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}

    done = subprocess.run([str(base), "invoke.py", "--help"], cwd=ROOT, env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert "re-running with .venv/bin/python" in done.stderr
    assert "usage: invoke.py" in done.stdout


def test_a_fault_run_whose_handler_cannot_import_ends_with_an_error_not_a_hang():
    started = time.monotonic()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "reliability.fault_run",
            "--seed",
            "1",
            "--only",
            "3",
            "--keys",
            "10",
            "--parallel",
            "1",
        ],
        cwd=ROOT,
        env={**os.environ, "URL_EXPIRY_SECONDS": "0"},  # the handler refuses to import with it
        capture_output=True,
        text=True,
        timeout=90,
    )

    assert done.returncode != 0
    assert "URL_EXPIRY_SECONDS must be between" in done.stderr
    assert time.monotonic() - started < 60


# -- 3. the local function is the deployed one ---------------------------------------


def test_template_yaml_gives_the_deployed_configuration():
    function = load_template_function(ROOT / "template.yaml")

    assert function.logical_id == "Function"
    assert (function.handler, function.runtime, function.architecture) == (
        "lambda_function.handler",
        "python3.13",
        "arm64",
    )
    assert (function.memory_mb, function.timeout_s) == (512, 120)
    assert function.env["PREFIX"] == "2026/04/"
    assert function.env["URL_EXPIRY_SECONDS"] == "900"
    assert function.env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert set(function.unresolved_env) == {"BUCKET_NAME", "ALLOWED_BUCKETS"}  # a parameter with no default


def test_globals_literals_refs_and_deploy_time_values(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Parameters:\n  Mem: {Type: Number, Default: 1024}\n"
        "Globals:\n  Function:\n    Timeout: 30\n    Environment: {Variables: {SHARED: yes, OWN: global}}\n"
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      Handler: app.main\n      MemorySize: !Ref Mem\n"
        "      Environment:\n        Variables: {OWN: mine, ARN: !Sub 'arn:${AWS::Partition}:x', N: 5}\n"
    )

    function = load_template_function(template)

    assert (function.handler, function.memory_mb, function.timeout_s) == ("app.main", 1024, 30)
    assert function.env == {"SHARED": "true", "OWN": "mine", "N": "5"}
    assert function.unresolved_env == ("ARN",)


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


# -- 7. exported variables that beat .env --------------------------------------------------


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


# -- 8. outputs a script can read ------------------------------------------------------------


def test_repeat_prints_json_lines():
    done = cli("--handler", f"{FIXTURES}.whoami", "--env-file", os.devnull, "--repeat", "3")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 3
    assert [json.loads(line)["invocations"] for line in lines] == [1, 2, 3]


# -- 2. the AWS CLI command the serve banner prints -------------------------------------------


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


# -- 6. benchmarks leave the committed results alone ---------------------------------------------


def test_benchmarks_write_to_an_ignored_folder_unless_recording(monkeypatch):
    from bench import output

    monkeypatch.delenv("RECORD", raising=False)
    assert output.results_path("scan.json") == ROOT / "bench" / "out" / "scan.json"
    assert output.graphs_dir() == ROOT / "bench" / "out" / "graphs"
    ignored = subprocess.run(["git", "check-ignore", "-q", "bench/out/scan.json"], cwd=ROOT, check=False)
    assert ignored.returncode == 0
    monkeypatch.setenv("RECORD", "1")
    assert output.results_path("scan.json") == ROOT / "bench" / "results" / "scan.json"
    assert output.graphs_dir() == ROOT / "docs" / "graphs"


def test_a_presign_bench_run_changes_no_tracked_file():
    env = {k: v for k, v in os.environ.items() if k != "RECORD"}
    before = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout

    done = subprocess.run(
        [sys.executable, "bench/presign_bench.py", "--seconds", "0.05", "--repeats", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert "wrote bench/out/presign.json" in done.stdout
    after = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    assert after == before


def test_seed_names_the_variables_the_environment_shadows(s3_endpoint, bucket, tmp_path):
    env_file = tmp_path / "local.env"
    env_file.write_text("AWS_ACCESS_KEY_ID=minioadmin\n")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "exported-key", "S3_ENDPOINT_URL": s3_endpoint, "BUCKET_NAME": bucket}

    done = subprocess.run(
        [sys.executable, "seed.py", "--count", "1", "-q", "--env-file", str(env_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert f"seed.py: the environment overrides {env_file} for AWS_ACCESS_KEY_ID" in done.stderr
    assert "exported-key" not in done.stderr and "minioadmin" not in done.stderr


def test_make_invoke_stdout_is_the_functions_json_alone(s3_endpoint, bucket, s3):
    s3.put_object(Bucket=bucket, Key="2026/04/only.pdf", Body=b"%PDF-1.4")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    env.update(S3_ENDPOINT_URL=s3_endpoint, BUCKET_NAME=bucket, PREFIX="2026/04/")

    done = subprocess.run(["make", "invoke"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    assert json.loads(json.loads(done.stdout)["body"])["count"] == 1  # no echoed recipe, no make chatter


# -- 10. make help ------------------------------------------------------------------------------


def test_make_help_groups_every_target_under_the_headings_in_order():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MAKE", "MFLAGS"))}
    done = subprocess.run(["make", "help"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    headings = [line for line in lines if line and not line.startswith((" ", "New here"))]
    assert headings == ["Start here", "Local S3", "Run", "Test and lint", "Bench and stress", "Docs", "AWS"]
    listed = [line.split()[1] for line in lines if line.startswith("  make ")]
    makefiles = [ROOT / "Makefile", *sorted((ROOT / "mk").glob("*.mk"))]
    documented = [
        name for path in makefiles for name in re.findall(r"^([a-zA-Z0-9_-]+):.*## ", path.read_text(), re.MULTILINE)
    ]
    assert sorted(listed) == sorted(documented)
    start = lines.index("Start here")
    assert [line.split()[1] for line in lines[start + 1 : start + 5]] == ["help", "install", "demo", "test"]


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
