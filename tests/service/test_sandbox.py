"""Lambda's sandbox, without Docker: the issue's seven rows, as Lambda behaves, for both runtimes.

A probe function (tests/fixtures/sandbox_probe: ``probe.handler`` under
awslambdaric, and ``bootstrap``, a custom runtime) tries each thing, through
``invoke.py`` and through the Invoke API with boto3:

| the function does                        | Lambda, and here                               |
| writes into its own code directory       | EROFS (errno 30): /var/task is read-only        |
| reads LAMBDA_TASK_ROOT and os.getcwd()   | /var/task, /var/task                            |
| writes /tmp/x by its literal path        | a /tmp private to the execution environment     |
| writes 600 MB under /tmp                 | ENOSPC after 512 MB (EphemeralStorage)          |
| allocates 900 MB at 512 MB               | Runtime.OutOfMemory, "signal: killed", 512 MB   |
| starts a child process and returns       | the child dies with the environment             |
| opens 1,100 files                        | EMFILE at 1,024 descriptors                     |
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from local_runtime import memory_watch, sandbox
from local_runtime.config import FunctionConfig
from local_runtime.lambda_python import find_interpreter
from local_runtime.pool import EnvironmentPool
from tests.conftest import ROOT, Captured, lambda_client, start_serve

PROBE = ROOT / "tests" / "fixtures" / "sandbox_probe"
RUNTIMES = ("python3.13", "provided")
needs_bwrap = pytest.mark.skipif(sandbox.support().bwrap is None, reason=f"no sandbox: {sandbox.support().reason}")
pytestmark = needs_bwrap


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    """A copy of the probe, so a write that got through could not touch the repository."""
    root = tmp_path / "task"
    shutil.copytree(PROBE, root)
    return root


def _options(runtime: str, task_root: Path) -> list[str]:
    handler = ["--handler", "probe.handler"] if runtime == "python3.13" else []
    options = [
        "--runtime",
        runtime,
        "--task-root",
        str(task_root),
        *handler,
        "--memory",
        "512",
        "--env-file",
        os.devnull,
    ]
    return [*options, "--log-format", "text"]


def _invoke_cli(*argv: str, event: Any, tmp_path: Path, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    event_file = tmp_path / f"event-{uuid.uuid4().hex[:8]}.json"
    event_file.write_text(json.dumps(event))
    return subprocess.run(
        [sys.executable, "invoke.py", *argv, "--event", str(event_file)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _processes_with(marker: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        if marker in " ".join(process.info["cmdline"] or ()):
            found.append(process)
    return found


def _gone(marker: str, within: float = 5) -> bool:
    deadline = time.monotonic() + within
    while _processes_with(marker):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def _check_rows(rows: dict[str, Any], token: str) -> None:
    assert rows["write_task_root"]["error"] == "EROFS"
    assert rows["paths"]["task_root"] == "/var/task" and rows["paths"]["cwd"] == "/var/task"
    assert rows["paths"]["tmpdir"] is None  # Lambda sets no TMPDIR
    assert rows["paths"]["tmp_entries"] == []  # nothing of the host's /tmp, nor of another environment
    assert rows["paths"]["home_entries"] == []  # ~/.aws, ~/.ssh: not there
    assert rows["tmp_write"] == {"written": token}
    assert rows["tmp_fill"]["error"] == "ENOSPC" and 500 <= rows["tmp_fill"]["written_mb"] < 512
    assert rows["open_files"]["error"] == "EMFILE" and 1000 < rows["open_files"]["opened"] < 1024
    assert token not in _host_tmp_x()  # the literal /tmp/x is the environment's, not the host's


def _host_tmp_x() -> str:
    try:
        return Path("/tmp/x").read_text(errors="replace")
    except OSError:
        return ""


# -- through invoke.py ---------------------------------------------------------------------------


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_invoke_py_shows_the_rows_as_lambda_does(runtime, task_root, tmp_path):
    token = uuid.uuid4().hex
    done = _invoke_cli(*_options(runtime, task_root), event={"action": "rows", "token": token}, tmp_path=tmp_path)

    assert done.returncode == 0, done.stderr
    _check_rows(json.loads(done.stdout), token)
    assert sorted(p.name for p in task_root.iterdir()) == ["bootstrap", "probe.py"]  # nothing written
    assert re.search(
        r"invoke\.py: sandbox: bubblewrap namespaces: /var/task read-only, a private 512 MB /tmp", done.stderr
    )


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_invoke_py_900_mb_at_512_is_runtime_out_of_memory(runtime, task_root, tmp_path):
    done = _invoke_cli(*_options(runtime, task_root), event={"action": "allocate", "mb": 900}, tmp_path=tmp_path)

    assert done.returncode == 1
    error = json.loads(done.stdout)
    assert error["errorType"] == "Runtime.OutOfMemory"
    assert error["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    assert "Runtime exited with error: signal: killed\nRuntime.OutOfMemory" in done.stderr
    report = next(line for line in done.stderr.splitlines() if line.startswith("REPORT"))
    assert "Memory Size: 512 MB\tMax Memory Used: 512 MB" in report and "Error Type: Runtime.OutOfMemory" in report


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_invoke_py_a_child_dies_with_the_environment(runtime, task_root, tmp_path):
    marker = f"probe-child-{uuid.uuid4().hex}"
    done = _invoke_cli(*_options(runtime, task_root), event={"action": "child", "marker": marker}, tmp_path=tmp_path)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["child"] > 0  # it was started, in its own session
    assert _gone(marker)


def test_memory_size_and_ephemeral_storage_come_from_options(task_root, tmp_path):
    done = _invoke_cli(
        *_options("python3.13", task_root),
        "--ephemeral-storage",
        "1024",
        "--memory",
        "2048",
        event={"action": "tmp_fill", "mb": 600},
        tmp_path=tmp_path,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"written_mb": 600}
    assert "a private 1024 MB /tmp" in done.stderr and "kill at 2048 MB" in done.stderr


# -- through the Invoke API (boto3) --------------------------------------------------------------


@pytest.fixture(params=RUNTIMES)
def served_probe(request: pytest.FixtureRequest, task_root: Path) -> Iterator[tuple[Any, subprocess.Popen[str]]]:
    process, url = start_serve("--function-name", "probe", *_options(request.param, task_root))
    try:
        yield lambda_client(url, read_timeout=60), process
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def _call(client: Any, event: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    response = client.invoke(FunctionName="probe", Payload=json.dumps(event).encode(), LogType="Tail")
    return response, json.loads(response["Payload"].read())


def test_invoke_api_shows_the_rows_as_lambda_does(served_probe):
    client, server = served_probe
    token = uuid.uuid4().hex
    response, rows = _call(client, {"action": "rows", "token": token})
    assert "FunctionError" not in response
    _check_rows(rows, token)
    _, kept = _call(client, {"action": "tmp_read"})
    assert kept == {"read": token}  # kept across warm invocations of that environment

    response, error = _call(client, {"action": "allocate", "mb": 900})
    assert response["FunctionError"] == "Unhandled"
    assert error["errorType"] == "Runtime.OutOfMemory"
    assert error["errorMessage"].endswith("Runtime exited with error: signal: killed")
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "Max Memory Used: 512 MB" in tail

    response, fresh = _call(client, {"action": "tmp_read"})
    assert fresh["error"] == "ENOENT"  # a new environment, with a new /tmp
    assert "Init Duration" in base64.b64decode(response["LogResult"]).decode()

    marker = f"probe-child-{uuid.uuid4().hex}"
    _call(client, {"action": "child", "marker": marker})
    assert _processes_with(marker)  # frozen with its environment, not gone yet
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=20) == 0
    assert _gone(marker)


# -- memory, the freeze, with a pool -------------------------------------------------------------


def _pool(task_root: Path, sink: Captured, **settings: Any) -> EnvironmentPool:
    config = FunctionConfig(name="probe", handler="probe.handler", task_root=task_root, layers=(), **settings)
    return EnvironmentPool(config, log_sink=sink, max_environments=2)


def test_max_memory_used_counts_a_childs_memory(task_root, sink):
    with _pool(task_root, sink, memory_mb=1024) as pool:
        invocation = pool.invoke(json.dumps({"action": "child_memory", "mb": 300}))

    assert json.loads(invocation.payload) == {"child_ready": "ready"}
    assert invocation.report.max_memory_used_mb >= 300


def test_a_child_over_memory_size_kills_the_environment(task_root, sink):
    with _pool(task_root, sink, memory_mb=256) as pool:
        invocation = pool.invoke(json.dumps({"action": "child_memory", "mb": 400}))
        after = pool.invoke(json.dumps({"action": "tmp_read"}))

    assert invocation.error_type == "Runtime.OutOfMemory"
    assert invocation.report.max_memory_used_mb == 256
    assert after.cold_start


def test_the_environment_is_frozen_between_invocations(task_root, sink):
    with _pool(task_root, sink) as pool:
        first = json.loads(pool.invoke(json.dumps({"action": "ticker"})).payload)
        time.sleep(1.0)
        second = json.loads(pool.invoke(json.dumps({"action": "ticker"})).payload)

    assert first["longest_gap_s"] < 0.5
    assert second["longest_gap_s"] >= 0.9  # its thread made no progress while it was frozen: it ran late


def test_two_environments_do_not_see_each_others_tmp(task_root, sink):
    config = FunctionConfig(name="probe", handler="probe.handler", task_root=task_root, layers=())
    from local_runtime.environment import ExecutionEnvironment

    one, two = ExecutionEnvironment(config, sink), ExecutionEnvironment(config, sink)
    try:
        one.invoke(json.dumps({"action": "tmp_write", "token": "one"}))
        assert json.loads(two.invoke(json.dumps({"action": "tmp_read"})).payload)["error"] == "ENOENT"
        assert json.loads(one.invoke(json.dumps({"action": "tmp_read"})).payload) == {"read": "one"}
    finally:
        one.shutdown()
        two.shutdown()


@pytest.mark.skipif(memory_watch.delegated_cgroup() is None, reason=f"cgroup path: {memory_watch.no_cgroup_reason()}")
def test_cgroup_v2_enforces_memory_size_where_one_is_delegated(task_root, sink):
    with _pool(task_root, sink) as pool:
        filled = pool.invoke(json.dumps({"action": "tmp_fill", "mb": 600}))
        killed = pool.invoke(json.dumps({"action": "allocate", "mb": 900}))

    assert json.loads(filled.payload)["error"] == "ENOSPC"  # /tmp is not MemorySize: no OOM kill
    assert killed.error_type == "Runtime.OutOfMemory" and killed.report.max_memory_used_mb == 512


# -- what cannot run: one line, exit status 2, nothing left ----------------------------------------


def _mounts() -> list[str]:
    return Path("/proc/self/mountinfo").read_text().splitlines()


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--ephemeral-storage", "511"], {}, "ephemeral storage must be between 512 and 10240 MB, got 511"),
        (["--ephemeral-storage", "10241"], {}, "ephemeral storage must be between 512 and 10240 MB, got 10241"),
        (["--memory", "127"], {}, "memory must be between 128 and 10240 MB, got 127"),
        (["--memory", "10241"], {}, "memory must be between 128 and 10240 MB, got 10241"),
        (["--task-root", "/nonexistent/task"], {}, 'task root "/nonexistent/task" does not exist'),
        (["--task-root", "README.md"], {}, 'task root "README.md" is not a directory'),
        (["--sandbox", "on"], {"LAMBDA_BWRAP": "no-such-bwrap"}, "--sandbox on: the sandbox cannot be built"),
        (["--sandbox", "on"], {"PATH": "/nonexistent", "LAMBDA_PYTHON": find_interpreter()}, "bwrap) is not installed"),
    ],
)
@pytest.mark.parametrize("command", [[], ["serve", "--port", "0"]])
def test_bad_input_is_one_line_exit_2_and_nothing_left(argv, env, message, command):
    before = _mounts()
    marker = uuid.uuid4().hex
    done = subprocess.run(
        [sys.executable, "invoke.py", *command, *argv, "--env-file", os.devnull],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, **env, "SANDBOX_TEST_MARKER": marker},
        timeout=60,
        check=False,
    )

    assert done.returncode == 2, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and message in done.stderr
    assert done.stdout == ""
    assert _mounts() == before
    assert not _processes_inheriting(marker)


def _processes_inheriting(marker: str) -> list[int]:
    found = []
    for process in psutil.process_iter():
        try:
            if process.environ().get("SANDBOX_TEST_MARKER") == marker:
                found.append(process.pid)
        except (psutil.Error, OSError):
            continue
    return found


def test_sandbox_off_says_what_is_off_and_runs_as_before(task_root, tmp_path):
    options = _options("python3.13", task_root)
    done = _invoke_cli(*options, "--sandbox", "off", event={"action": "paths"}, tmp_path=tmp_path)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["task_root"] == str(task_root)
    line = next(line for line in done.stderr.splitlines() if "sandbox:" in line)
    assert "Off: read-only /var/task, private /tmp and its quota, hidden home, PID namespace (--sandbox off)" in line
    assert "kill at 512 MB" in line and "1,024 file descriptors" in line


def test_sandbox_auto_without_bubblewrap_says_why_and_runs_as_before(task_root, tmp_path, monkeypatch):
    monkeypatch.setenv("LAMBDA_BWRAP", "no-such-bwrap")
    done = _invoke_cli(*_options("python3.13", task_root), event={"action": "paths"}, tmp_path=tmp_path)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["task_root"] == str(task_root)
    assert "(LAMBDA_BWRAP=no-such-bwrap is not an executable; install it: apt-get install bubblewrap)" in done.stderr
