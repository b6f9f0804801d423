"""Hostile input to the command-line tools: one line on stderr, exit status 2, nothing done.

Each case is one a careless CLI ends in a Python traceback (exit 1), a hang (a
FIFO as ``--event`` or ``--env-file``) or unbounded memory (``/dev/zero``, a
125 MB event); seed.py's cases are in test_seed.py.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import TRACEBACK, assert_one_line_error
from tests.conftest import ROOT


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


# --- the local S3's make variables reach no shell -----------------------------

S3_VARIABLES = ["S3_DATA", "S3_ADDR", "CONSOLE_ADDR", "VERIFIER_ADDR", "VERSITYGW", "LOCAL_S3"]
SHELL_TEXT = ['x"; touch {canary}; echo "', "x'; touch {canary}; echo '", "$(shell touch {canary})", "`touch {canary}`"]


@pytest.fixture(scope="module")
def scratch_repo(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from tests.local_sandbox import Sandbox

    return Sandbox.create(tmp_path_factory.mktemp("hostile-make") / "repo")


@pytest.mark.slow
@pytest.mark.parametrize("text", SHELL_TEXT)
@pytest.mark.parametrize("variable", S3_VARIABLES)
@pytest.mark.parametrize("target", ["up", "down", "clean"])
def test_make_up_down_clean_take_the_local_s3_settings_as_data(scratch_repo, tmp_path, target, variable, text):
    canary = tmp_path / "canary"
    # A binary that cannot run: `make up` stops at "no versitygw" instead of starting a server.
    settings = {"VERSITYGW": str(tmp_path / "no-versitygw"), variable: text.format(canary=canary)}

    done = scratch_repo.make(target, *(f"{name}={value}" for name, value in settings.items()), timeout=120)

    assert not canary.exists(), done.stdout + done.stderr
    assert TRACEBACK not in done.stderr
    if target == "up":
        assert done.returncode != 0
        said = [line for line in done.stderr.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)]
        assert len(said) == 1 and said[0].startswith("local S3: "), done.stderr
    (scratch_repo.root / ".env").unlink(missing_ok=True)


def test_make_clean_removes_the_data_directory_it_is_given_and_nothing_else(scratch_repo):
    data = scratch_repo.root / 'data "dir"; echo'
    (data / "buckets").mkdir(parents=True)
    kept = scratch_repo.root / "data"
    kept.mkdir()

    done = scratch_repo.make("clean", f"S3_DATA={data.name}")

    assert done.returncode == 0, done.stderr
    assert not data.exists() and kept.is_dir()


# --- hostile template.yaml ------------------------------------------------------

FUNCTION = (
    "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n      Handler: lambda_function.handler\n"
)
ALIAS_BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)
)

HOSTILE_TEMPLATES = [
    ("memory-inf", FUNCTION + "      MemorySize: .inf\n", "MemorySize '.inf' is not a plain decimal"),
    ("memory-1e400", FUNCTION + "      MemorySize: 1e400\n", "MemorySize '1e400' is not a plain decimal"),
    ("memory-nan", FUNCTION + "      MemorySize: .nan\n", "MemorySize '.nan'"),
    ("memory-fraction", FUNCTION + "      MemorySize: 512.5\n", "MemorySize 512.5 is not a whole number"),
    ("memory-list", FUNCTION + "      MemorySize: [512]\n", "MemorySize must be a single value"),
    ("timeout-hex", FUNCTION + "      Timeout: 0x10\n", "Timeout '0x10' is not a plain decimal"),
    ("timeout-octal", FUNCTION + "      Timeout: 0o20\n", "Timeout '0o20'"),
    ("timeout-sexagesimal", FUNCTION + "      Timeout: 1:30\n", "Timeout '1:30'"),
    ("timeout-bool", FUNCTION + "      Timeout: true\n", "Timeout True is not a number"),
    ("variable-name-int", FUNCTION + "      Environment:\n        Variables:\n          1: x\n", "name 1"),
    ("variable-name-dash", FUNCTION + "      Environment:\n        Variables:\n          A-B: x\n", "name 'A-B'"),
    ("variable-name-null", FUNCTION + "      Environment:\n        Variables:\n          ~: x\n", "name None"),
    ("variable-value-list", FUNCTION + "      Environment:\n        Variables:\n          AB: [1]\n", "variable AB"),
    ("variable-value-map", FUNCTION + "      Environment:\n        Variables:\n          AB: {b: 1}\n", "variable AB"),
    ("variable-value-null", FUNCTION + "      Environment:\n        Variables:\n          AB:\n", "variable AB"),
    ("variables-list", FUNCTION + "      Environment:\n        Variables: [A]\n", "must be a mapping"),
    ("environment-string", FUNCTION + "      Environment: A=1\n", "Fn.Environment must be a mapping"),
    ("globals-list", "Globals: [1]\n" + FUNCTION, "Globals must be a mapping"),
    ("globals-function-string", "Globals:\n  Function: x\n" + FUNCTION, "Globals.Function must be a mapping"),
    ("resources-list", "Resources: [1, 2]\n", "Resources must be a mapping"),
    ("resources-string", "Resources: x\n", "Resources must be a mapping"),
    ("parameters-list", "Parameters: [1]\n" + FUNCTION, "Parameters must be a mapping"),
    ("properties-list", "Resources:\n  Fn:\n    Type: AWS::Lambda::Function\n    Properties: [1]\n", "Properties"),
    ("handler-sub", FUNCTION.replace("lambda_function.handler", "!Sub '${AWS::Region}.handler'"), "Handler is !Sub"),
    ("handler-if", FUNCTION.replace("lambda_function.handler", "!If [C, a.b, c.d]"), "Handler is !If"),
    ("handler-ref-no-default", FUNCTION.replace("lambda_function.handler", "!Ref H"), "Handler is !Ref 'H'"),
    ("runtime-join", FUNCTION + "      Runtime: !Join ['', [python, '3.13']]\n", "Runtime is !Join"),
    ("architectures-string", FUNCTION + "      Architectures: arm64\n", "Architectures must be a list"),
    ("architecture-getatt", FUNCTION + "      Architectures: [!GetAtt X.Y]\n", "is !GetAtt"),
    ("alias-bomb", ALIAS_BOMB + FUNCTION, "aliases expand to"),
    ("alias-loop", "a: &a [*a]\n" + FUNCTION, "an alias refers to a node that contains it"),
    ("deep", "a: " + "[" * 3000 + "]" * 3000 + "\n" + FUNCTION, "template"),
]


@pytest.mark.parametrize(
    ("text", "needle"), [case[1:] for case in HOSTILE_TEMPLATES], ids=[case[0] for case in HOSTILE_TEMPLATES]
)
def test_invoke_py_refuses_a_hostile_template_with_one_line_and_status_2(tmp_path, text, needle):
    template = tmp_path / "template.yaml"
    template.write_text(text)

    done = run("invoke.py", "--template", str(template), "--env-file", os.devnull, timeout=60)

    assert_one_line_error(done, needle)


def test_the_alias_bomb_is_small_and_refused_before_it_grows(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(ALIAS_BOMB + FUNCTION)
    assert len(ALIAS_BOMB) < 700

    done = run(
        "-c",
        "import sys, tracemalloc; from local_dev.template_config import load_template_function as load\n"
        "tracemalloc.start()\n"
        "try: load(sys.argv[1])\nexcept Exception as e: print(e)\n"
        "print(tracemalloc.get_traced_memory()[1])",
        str(template),
    )

    said, peak = done.stdout.splitlines()
    assert "aliases expand to" in said
    assert int(peak) < 20 << 20  # expanded, it took 1.6 GB


# --- Lambda's 4 KB of environment variables ---------------------------------


def _env_of_json_size(size: int) -> dict[str, str]:
    """Variables whose compact JSON ({"BIG":"xx..."}) is exactly ``size`` bytes."""
    return {"BIG": "x" * (size - len('{"BIG":""}'))}


def test_variables_up_to_4_kb_as_lambda_measures_them_are_accepted() -> None:
    from local_runtime.config import FunctionConfig

    env = _env_of_json_size(4096)
    assert len(json.dumps(env, separators=(",", ":"))) == 4096

    assert FunctionConfig(name="f", task_root=ROOT, handler="m.f", env=env).env == env


@pytest.mark.parametrize(
    "env",
    [
        _env_of_json_size(4097),
        {f"VAR_{i:03d}": "v" * 40 for i in range(80)},  # many small ones add up too
        {"SECRET": "s3cr3t" + "\u00e9" * 2100},  # bytes, not characters: 4,200 in UTF-8 (escaped in JSON)
    ],
    ids=["one-byte-over", "many-variables", "non-ascii"],
)
def test_variables_over_4_kb_are_refused_with_lambdas_message(env: dict[str, str]) -> None:
    from local_runtime.config import ConfigurationError, FunctionConfig

    with pytest.raises(ConfigurationError) as refused:
        FunctionConfig(name="f", task_root=ROOT, handler="m.f", env=env)

    message = str(refused.value)
    assert message.startswith(
        "InvalidParameterValueException: Lambda was unable to configure your environment variables because "
        "the environment variables you have provided exceeded the 4KB limit. String measured: "
    )
    assert f"{len(json.dumps(env, separators=(',', ':')))} bytes" in message
    assert all(value[:12] not in message for value in env.values())  # .env holds secrets: values stay out


def test_invoke_py_refuses_variables_over_4_kb_before_starting_anything(tmp_path: Path) -> None:
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({"pdf-manifest": {"BIG": "y" * 5000}}))

    done = run("invoke.py", "--template", "", "--env-file", os.devnull, "--env-vars", str(env_vars))

    assert_one_line_error(done, "exceeded the 4KB limit. String measured: 5010 bytes")
    assert "yyyy" not in done.stderr
