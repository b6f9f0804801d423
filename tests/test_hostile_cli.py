"""Hostile input to the command-line tools (issue 14): one line on stderr, exit status 2, nothing done.

Each case here used to end in a Python traceback (exit 1), a hang (a FIFO as
``--event`` or ``--env-file``), or unbounded memory (``/dev/zero``, a 125 MB
event), or, for seed.py, in uploads made before the failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

TRACEBACK = "Traceback (most recent call last)"


def run(
    *args: str, cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env={**os.environ, "S3_ENDPOINT_URL": "http://127.0.0.1:1", **(env or {})},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert TRACEBACK not in done.stderr, done.stderr[-2000:]
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().count("\n") == 0, done.stderr[-2000:]
    assert len(done.stderr) < 600, done.stderr[:600]
    assert done.stdout == ""
    for needle in needles:
        assert needle in done.stderr


@pytest.fixture
def files(tmp_path: Path) -> Path:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "deep.json").write_text("[" * 1000 + "]" * 1000)
    (tmp_path / "big.json").write_text(json.dumps({"x": "y" * (6 << 20)}))
    (tmp_path / "bom.json").write_bytes(b'\xef\xbb\xbf{"a": 1}')
    (tmp_path / "nul.env").write_bytes(b"A=1\nB=x\x00y\n")
    (tmp_path / "latin1.env").write_bytes(b"A=1\nB=caf\xe9\n")
    (tmp_path / "huge-int.json").write_text('{"B": ' + "1" * 5000 + "}")
    (tmp_path / "huge-float.json").write_text('{"B": 1e999}')
    (tmp_path / "eq.json").write_text('{"A=B": "1"}')
    (tmp_path / "nul-name.json").write_text('{"A\\u0000B": "1"}')
    (tmp_path / "surrogate-name.json").write_text('{"A\\ud800": "1"}')
    (tmp_path / "surrogate-value.json").write_text('{"A": "\\udfff"}')
    (tmp_path / "nul-value.json").write_text('{"A": "x\\u0000"}')
    (tmp_path / "dir").mkdir()
    return tmp_path


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--event", "@deep.json"], "deeper"),
        (["--event", "/dev/zero"], "not a regular file"),
        (["--event", "@fifo"], "FIFO"),
        (["--event", "@dir"], "directory"),
        (["--event", "@big.json"], "6291456"),
        (["--event", "@bom.json"], "byte order mark"),
        (["--env-file", "@fifo"], "FIFO"),
        (["--env-file", "/dev/zero"], "not a regular file"),
        (["--env-file", "@dir"], "directory"),
        (["--env-file", "@nul.env"], "NUL"),
        (["--env-file", "@latin1.env"], "line 2 is not UTF-8"),
        (["--env-vars", "@huge-int.json"], "env vars file"),
        (["--env-vars", "@eq.json"], "name"),
        (["--env-vars", "@nul-name.json"], "name"),
        (["--env-vars", "@surrogate-name.json"], "name"),
        (["--env-vars", "@surrogate-value.json"], "surrogate"),
        (["--env-vars", "@nul-value.json"], "NUL"),
        (["--env-vars", "@fifo"], "FIFO"),
        (["--function-name", "a=b\x01"], "function name"),
        (["--handler", "has space.handler"], "handler"),
        (["--region", "us-east-1\x1b[31m"], "region"),
        (["--timeout", "nan"], "timeout"),
        (["--repeat", "many"], "--repeat"),
        (["serve", "--port", "99999"], "65535"),
        (["serve", "--port", "-1"], "65535"),
        (["serve", "--host", "256.256.256.256", "--port", "0"], "cannot listen"),
    ],
)
def test_invoke_py_answers_hostile_input_with_one_line_and_status_2(files, args, needle):
    resolved = [str(files / a[1:]) if a.startswith("@") else a for a in args]
    if "--env-file" not in resolved:
        resolved += ["--env-file", os.devnull]  # never the developer's own .env

    done = run("invoke.py", *resolved, env={"TMPDIR": str(files)}, timeout=60)

    assert_one_line_error(done, needle)


def test_invoke_py_refuses_an_event_over_6_mb_on_stdin(tmp_path):
    big = json.dumps({"x": "y" * (6 << 20)})
    done = subprocess.run(
        [sys.executable, "invoke.py", "--event", "-", "--env-file", os.devnull],
        cwd=ROOT,
        env={**os.environ, "S3_ENDPOINT_URL": "http://127.0.0.1:1"},
        input=big,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert_one_line_error(done, "6291456")
