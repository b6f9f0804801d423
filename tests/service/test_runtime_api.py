"""Each environment runs AWS's runtime client (or a custom bootstrap) against its own Runtime API.

What the runner returns is what awslambdaric returns: the handlers in
tests/fixtures/ric_cases.py hit the cases where a re-implemented runtime
drifted (raw bytes, Decimal, namedtuple, non-ASCII, JSON log records, the
context's tenant id, unbuffered stdout, multi-line error records). Then the
service side: bad runtimes and bootstraps get a one-line error and leave no
process behind; init is limited to 10 s and re-run inside the first
invocation; at most one init per core runs at once; ``provided.al2023`` runs
an executable ``bootstrap`` that is a shell script using curl.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from local_runtime.config import FunctionConfig
from local_runtime.environment import INIT_SLOTS
from local_runtime.lambda_python import HOME, LAYER_DIR, find_interpreter
from local_runtime.pool import EnvironmentPool
from tests.conftest import ROOT, Captured

CASES = "tests.fixtures.ric_cases"


@pytest.fixture
def run(sink: Captured) -> Iterator[Any]:
    """``run(handler, payload, **invoke_kwargs)``: one cold invocation in a pool that is closed after the test."""
    pools: list[EnvironmentPool] = []

    def invoke(handler: str, payload: bytes = b"{}", config: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        pool = EnvironmentPool(
            FunctionConfig(
                task_root=ROOT, name="fixture", handler=f"{CASES}.{handler}", **{"memory_mb": 512, **(config or {})}
            ),
            sink,
        )
        pools.append(pool)
        return pool.invoke(payload, **kwargs)

    yield invoke
    for pool in pools:
        pool.close()


def _no_process_left(marker: str) -> bool:
    """No live process whose environment names ``marker`` (every environment's process group is gone)."""
    for process in psutil.process_iter(["pid"]):
        try:
            if process.environ().get("LAMBDA_TEST_MARKER") == marker and process.status() != psutil.STATUS_ZOMBIE:
                return False
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return True


# -- results: what awslambdaric's marshaller makes of them ---------------------------------------------


def test_bytes_are_returned_raw(run):
    assert run("raw_bytes").payload == b"\x00raw\xffbytes"


def test_decimal_keeps_its_digits(run):
    assert run("decimal_value").payload == b'{"price": 1.10, "big": 1E+2}'


def test_namedtuple_becomes_an_object(run):
    assert json.loads(run("named_tuple").payload) == {"x": 1, "y": 2}


def test_non_ascii_is_raw_utf8_on_python_3_13(run):
    payload = run("non_ascii").payload
    assert payload == '{"name": "café ☕ 東京"}'.encode()
    assert b"\\u" not in payload


# -- logs ----------------------------------------------------------------------------------------------------


def test_json_application_logs_are_the_runtime_records(run, sink):
    invocation = run("json_logs", config={"log_format": "json"})
    records = [json.loads(line) for line in sink if line.startswith('{"timestamp"')]

    extra, as_dict, unicode, failure = records
    assert extra["message"] == "with extra" and extra["order"] == 7 and "dropped" not in extra
    assert as_dict["message"] == {"kind": "dict message", "n": 1}
    assert unicode["message"] == "naïve ☕"
    assert any("naïve ☕" in line for line in sink)  # written raw, not as \u escapes
    assert failure["errorType"] == "KeyError" and failure["errorMessage"] == "'missing'"
    assert failure["location"].endswith("ric_cases.py:json_logs:44")
    assert "Traceback" not in json.dumps(failure["stackTrace"])
    for record in records:
        assert record["requestId"] == invocation.request_id
        assert time.strptime(record["timestamp"], "%Y-%m-%dT%H:%M:%SZ")  # the runtime's second precision


def test_a_multi_line_error_record_is_one_log_event(run, sink):
    invocation = run("raising_multiline")

    assert json.loads(invocation.payload)["errorMessage"] == "first line\nsecond line"
    [record] = [line for line in sink if line.startswith("[ERROR]")]
    assert record.startswith("[ERROR] ValueError: first line\nsecond line\nTraceback (most recent call last):\n")
    assert "raising_multiline" in record


def test_stdout_is_unbuffered_so_nothing_is_lost_when_the_process_dies(run, sink):
    invocation = run("unflushed_then_exit")

    assert invocation.error_type == "Runtime.ExitError"
    assert "written without a newline" in sink
    assert sink.index("written without a newline") < next(i for i, line in enumerate(sink) if "exit status 5" in line)


# -- context ---------------------------------------------------------------------------------------------------


def test_context_carries_tenant_identity_client_context_and_deadline(run):
    invocation = run(
        "context_fields",
        config={"timeout_s": 5},
        tenant_id="tenant-7",
        identity={"cognitoIdentityId": "cid", "cognitoIdentityPoolId": "pool"},
        client_context={"custom": {"a": 1}},
    )
    context = json.loads(invocation.payload)

    assert context["tenant_id"] == "tenant-7"
    assert context["request_id"] == invocation.request_id
    assert context["memory"] == "512"
    assert 4000 < context["remaining_ms"] <= 5000  # Lambda-Runtime-Deadline-Ms is sent
    assert context["cognito_identity_id"] == "cid"
    assert context["client_custom"] == {"a": 1}
    assert context["trace"].startswith("Root=1-")


def test_tenant_id_is_none_without_one(run):
    assert json.loads(run("context_fields").payload)["tenant_id"] is None


# -- a runtime that misbehaves -----------------------------------------------------------------------------


def test_a_response_over_6_mb_is_refused_and_the_environment_reset(sink):
    config = FunctionConfig(task_root=ROOT, name="fixture", handler="tests.fixtures.handlers.big_response")
    with EnvironmentPool(config, sink) as pool:
        too_big = pool.invoke(b"{}")
        again = pool.invoke(b"{}")

    assert json.loads(too_big.payload) == {
        "errorType": "Function.ResponseSizeTooLarge",
        "errorMessage": "Response payload size exceeded maximum allowed payload size (6291556 bytes).",
    }
    assert "Status: error\tError Type: Function.ResponseSizeTooLarge" in "\n".join(sink)
    assert again.cold_start  # awslambdaric exits after a refused post


def test_a_timer_that_ends_the_runtime_runs_late_after_the_thaw_as_on_lambda(sink):
    config = FunctionConfig(
        task_root=ROOT, name="fixture", handler=f"{CASES}.exit_after_return", env={"LAMBDA_TEST_MARKER": "between"}
    )
    with EnvironmentPool(config, sink) as pool:
        first = pool.invoke(b"{}")
        time.sleep(1.0)  # its 0.3 s timer is due, but the environment is frozen: nothing runs
        second = pool.invoke(b"{}")
        third = pool.invoke(b"{}")

    assert first.payload == b'"answered"'
    assert not any("between invocations" in line for line in sink)
    # Thawed for the second invocation, the overdue timer fires at once and the runtime exits with it.
    log = second.log + third.log
    assert "Runtime exited with error: exit status 7" in log or "Runtime exited after answering (exit status 7)" in log
    assert third.cold_start and third.payload == b'"answered"'
    assert _no_process_left("between")


def _bootstrap(root: Path, script: str, mode: int = 0o755) -> Path:
    path = root / "bootstrap"
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(mode)
    return path


_API = 'API="http://$AWS_LAMBDA_RUNTIME_API/2018-06-01/runtime"\n'
_NEXT = (
    'next() {\n  curl -sS -D "${TMPDIR:-/tmp}/h" -o "${TMPDIR:-/tmp}/event" "$API/invocation/next"\n'
    "  ID=$(grep -i '^lambda-runtime-aws-request-id:' \"${TMPDIR:-/tmp}/h\" | tr -d '\\r' | cut -d' ' -f2)\n}\n"
)


def test_provided_runtime_runs_a_shell_bootstrap_against_the_runtime_api(tmp_path, sink):
    _bootstrap(
        tmp_path,
        _API
        + _NEXT
        + 'echo "bootstrap started"\n'
        + "while true; do\n  next\n"
        + '  DEADLINE=$(grep -i "^lambda-runtime-deadline-ms:" "${TMPDIR:-/tmp}/h" | tr -d "\\r" | cut -d" " -f2)\n'
        + '  printf \'{"echo": %s, "handler": "%s", "has_deadline": %s}\' "$(cat "${TMPDIR:-/tmp}/event")" "$_HANDLER" '
        + '"$([ -n "$DEADLINE" ] && echo true || echo false)" > "${TMPDIR:-/tmp}/out"\n'
        + '  curl -sS -o /dev/null -X POST --data-binary @"${TMPDIR:-/tmp}/out" "$API/invocation/$ID/response"\n'
        + "done\n",
    )
    config = FunctionConfig(name="custom", handler="function.handler", runtime="provided", task_root=tmp_path)
    with EnvironmentPool(config, sink) as pool:
        cold, warm = pool.invoke(b'{"n": 1}'), pool.invoke(b'{"n": 2}')

    assert json.loads(cold.payload) == {"echo": {"n": 1}, "handler": "function.handler", "has_deadline": True}
    assert json.loads(warm.payload)["echo"] == {"n": 2}
    assert cold.cold_start and not warm.cold_start
    assert sink[0] == "INIT_START Runtime Version: provided:al2023.local"
    assert "bootstrap started" in sink


def test_a_second_response_or_one_for_another_id_is_refused_and_the_first_stands(tmp_path, sink):
    _bootstrap(
        tmp_path,
        _API
        + _NEXT
        + "next\n"
        + 'curl -sS -o /dev/null -X POST -d \'"first"\' "$API/invocation/$ID/response"\n'
        + 'curl -s -o /dev/null -w "second: %{http_code}\\n" -X POST -d \'"second"\' "$API/invocation/$ID/response"\n'
        + 'curl -s -w "\\n other: %{http_code}\\n" -X POST -d \'"other"\' "$API/invocation/not-$ID/response"\n'
        + "next\n",
    )
    config = FunctionConfig(name="custom", runtime="provided", task_root=tmp_path)
    with EnvironmentPool(config, sink) as pool:
        invocation = pool.invoke(b"{}")

    assert invocation.payload == b'"first"' and not invocation.function_error
    assert "second: 403" in sink
    assert '{"errorMessage": "Invalid request ID", "errorType": "InvalidRequestID"}' in sink
    assert " other: 400" in sink
    rejected = [line for line in sink if line.startswith("Runtime API rejected")]
    assert len(rejected) == 2 and all("\n" not in line for line in rejected)
    assert "403 InvalidStateTransition" in rejected[0] and "400 InvalidRequestID" in rejected[1]


def test_a_refused_response_leaves_no_empty_line_in_the_functions_log(sink):
    """awslambdaric prints the refusal's body inside its own line: the body ends without a newline."""
    config = FunctionConfig(task_root=ROOT, name="fixture", handler="tests.fixtures.handlers.big_response")
    with EnvironmentPool(config, sink) as pool:
        pool.invoke(b"{}")

    [refused] = [line for line in sink if "Http response code: 413" in line]
    assert refused.endswith('"errorType": "RequestEntityTooLarge"}')
    assert "" not in sink


def test_a_slow_response_cut_by_the_timeout_logs_no_traceback(tmp_path, sink, caplog):
    _bootstrap(
        tmp_path,
        _API
        + _NEXT
        + "next\n"
        + "(printf '\"slow'; sleep 5; printf '\"') | curl -sS -X POST -T - \"$API/invocation/$ID/response\"\n",
    )
    config = FunctionConfig(name="custom", runtime="provided", task_root=tmp_path, timeout_s=1)
    with caplog.at_level(logging.DEBUG), EnvironmentPool(config, sink) as pool:
        invocation = pool.invoke(b"{}")
        time.sleep(0.5)  # the Runtime API sees the connection go after the kill

    assert invocation.error_type == "Sandbox.Timedout"
    assert not [record for record in caplog.records if record.exc_info], caplog.text
    assert not any("Traceback" in line for line in sink)


@pytest.mark.parametrize(
    ("mode", "message"),
    [(None, "Couldn't find valid bootstrap(s): ["), (0o644, "fork/exec ")],
)
def test_a_missing_or_non_executable_bootstrap_is_invalid_entrypoint(tmp_path, sink, mode, message):
    if mode is not None:
        _bootstrap(tmp_path, "exit 0\n", mode)
    config = FunctionConfig(name="custom", runtime="provided", task_root=tmp_path)
    with EnvironmentPool(config, sink) as pool:
        invocation = pool.invoke(b"{}")
        assert pool.environment_count == 0

    error = json.loads(invocation.payload)
    assert error["errorType"] == "Runtime.InvalidEntrypoint"
    assert message in error["errorMessage"] and "\n" not in error["errorMessage"]
    assert sink[-1].endswith("\tStatus: error\tError Type: Runtime.InvalidEntrypoint")


def test_a_runtime_that_never_calls_next_times_out_and_leaves_nothing_running(tmp_path, sink):
    _bootstrap(tmp_path, "sleep 300 &\nsleep 300\n")
    config = FunctionConfig(
        name="custom",
        runtime="provided",
        task_root=tmp_path,
        timeout_s=0.5,
        init_timeout_s=0.5,
        env={"LAMBDA_TEST_MARKER": "never-next"},
    )
    with EnvironmentPool(config, sink) as pool:
        invocation = pool.invoke(b"{}")

    assert invocation.error_type == "Sandbox.Timedout"
    assert json.loads(invocation.payload)["errorMessage"].endswith("Task timed out after 0.50 seconds")
    assert any(line.startswith("INIT_REPORT Init Duration: ") and "Status: timeout" in line for line in sink)
    assert _no_process_left("never-next")


# -- init as Lambda runs it ---------------------------------------------------------------------------------


@pytest.fixture
def slow_init_root(tmp_path: Path) -> Path:
    """A function whose init sleeps INIT_SLEEP seconds, or only the first time with INIT_ONCE."""
    (tmp_path / "slow_init.py").write_text(
        "import os, tempfile, time\n"
        "marker = os.path.join(tempfile.gettempdir(), 'init-ran')\n"
        "if not (os.environ.get('INIT_ONCE') and os.path.exists(marker)):\n"
        "    open(marker, 'w').close()\n"
        "    time.sleep(float(os.environ['INIT_SLEEP']))\n"
        "def handler(event, context):\n"
        "    return context.get_remaining_time_in_millis()\n"
    )
    return tmp_path


@pytest.mark.slow
def test_a_12_s_init_with_a_3_s_timeout_ends_in_sandbox_timedout(slow_init_root, sink):
    config = FunctionConfig(
        name="fixture", handler="slow_init.handler", task_root=slow_init_root, timeout_s=3, env={"INIT_SLEEP": "12"}
    )
    with EnvironmentPool(config, sink) as pool:
        started = time.monotonic()
        invocation = pool.invoke(b"{}")
        elapsed = time.monotonic() - started

    assert invocation.error_type == "Sandbox.Timedout"
    assert 12.5 < elapsed < 16  # 10 s of init, then 3 s of re-init inside the invocation
    init_report = next(line for line in sink if line.startswith("INIT_REPORT"))
    assert 10_000 <= float(init_report.split("Init Duration: ")[1].split(" ms")[0]) < 11_000
    assert init_report.endswith("\tPhase: init\tStatus: timeout")
    assert 3000 <= invocation.report.duration_ms < 4000
    assert invocation.report.init_duration_ms is None and invocation.cold_start


def test_an_init_over_the_limit_runs_again_inside_the_first_invocation(slow_init_root, sink):
    config = FunctionConfig(
        name="fixture",
        handler="slow_init.handler",
        task_root=slow_init_root,
        timeout_s=3,
        init_timeout_s=1,
        env={"INIT_SLEEP": "2", "INIT_ONCE": "1"},
        # The marker lives in /tmp, which Lambda keeps across this reset; the sandbox's /tmp lives in the
        # environment's mount namespace and goes with the reset (docs/reference/local-runtime.md says so).
        sandbox="off",
    )
    with EnvironmentPool(config, sink) as pool:
        first = pool.invoke(b"{}")
        second = pool.invoke(b"{}")

    assert not first.function_error
    assert 2000 < int(first.payload) < 3000  # the re-init was spent from the function's own timeout
    assert first.cold_start and first.report.init_duration_ms is None
    assert not second.cold_start and int(second.payload) > 2900
    assert sum(line.startswith("INIT_REPORT") for line in sink) == 1
    assert sum(line.startswith("INIT_START") for line in sink) == 1


def test_at_most_one_init_per_core_runs_at_once(tmp_path, sink):
    log = tmp_path / "inits.log"
    (tmp_path / "timed_init.py").write_text(
        "import os, time\n"
        "start = time.time(); time.sleep(0.6)\n"
        f"open({str(log)!r}, 'a').write(f'{{start}} {{time.time()}}\\n')\n"
        "def handler(event, context):\n    return 'ok'\n"
    )
    config = FunctionConfig(name="fixture", handler="timed_init.handler", task_root=tmp_path, tmp_per_environment=False)
    cores = INIT_SLOTS._initial_value  # type: ignore[attr-defined]
    assert cores == (os.cpu_count() or 1)
    count = cores + 2
    results: list[tuple[float, Any]] = []

    def invoke(pool: EnvironmentPool) -> None:
        started = time.monotonic()
        invocation = pool.invoke(b"{}")
        results.append((time.monotonic() - started, invocation))

    with EnvironmentPool(config, sink, max_environments=count) as pool:
        threads = [threading.Thread(target=invoke, args=(pool,)) for _ in range(count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)

    assert len(results) == count and all(r.payload == b'"ok"' for _, r in results)
    windows = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    most = max(sum(start <= moment < end for start, end in windows) for moment, _ in windows)
    assert most <= cores
    # Waiting for a core is not init: Init Duration is about the 0.6 s the module takes, while
    # the invocations that waited took at least one more init's time end to end.
    assert all(600 <= r.report.init_duration_ms < 3000 for _, r in results)
    assert max(elapsed - r.report.init_duration_ms / 1000 for elapsed, r in results) >= 0.5


# -- the command line ---------------------------------------------------------------------------------------


def _cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "invoke.py", "--env-file", os.devnull, "--log-format", "text", *args],
        cwd=ROOT,
        env=env or dict(os.environ),
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_cli_runs_a_provided_bootstrap_from_a_task_root(tmp_path):
    _bootstrap(
        tmp_path,
        _API
        + _NEXT
        + "next\n"
        + 'curl -sS -o /dev/null -X POST --data-binary @"${TMPDIR:-/tmp}/event" "$API/invocation/$ID/response"\n'
        "next\n",
    )

    done = _cli("--runtime", "provided", "--task-root", str(tmp_path), "--event", "direct")
    (tmp_path / "no-bootstrap").mkdir()
    missing = _cli("--runtime", "provided", "--task-root", str(tmp_path / "no-bootstrap"))

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"bucket": "my-company-reports-bucket", "prefix": "2026/04/"}
    assert "INIT_START Runtime Version: provided:al2023.local" in done.stderr
    assert missing.returncode == 1
    assert json.loads(missing.stdout)["errorType"] == "Runtime.InvalidEntrypoint"


def test_cli_says_in_one_line_when_python_3_13_is_missing():
    env = {k: v for k, v in os.environ.items() if k not in ("LAMBDA_PYTHON", "PYENV_ROOT", "PYENV_VERSION")}
    env["PATH"] = "/usr/bin:/bin"  # no pyenv, no python3.13

    done = _cli("--handler", "tests.fixtures.handlers.whoami", env=env)

    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith("invoke.py: Python 3.13 not found")


# -- Lambda's Python -------------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.timeout(360)  # a whole pytest run under Python 3.13: minutes on a loaded 2-core machine
def test_the_handler_tests_pass_under_lambdas_python_with_the_zips_dependencies():
    """The handler and manifest upload tests again, on Python 3.13 with requirements.lock's versions."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME", "PYTEST_XDIST_WORKER")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(LAYER_DIR), str(HOME / "tests")])  # the layer wins
    command = [find_interpreter(), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"]
    probe = "import sys, botocore, aioboto3; print(sys.version_info[:2], botocore.__file__, aioboto3.__file__)"

    done = subprocess.run(
        [*command, "tests/function/test_handler.py", "tests/function/test_manifest_upload.py"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    where = subprocess.run(
        [find_interpreter(), "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    ).stdout

    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert " passed" in done.stdout.strip().splitlines()[-1] and " failed" not in done.stdout
    assert where.startswith("(3, 13)") and where.count(str(LAYER_DIR)) == 2
