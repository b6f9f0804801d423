"""The local runtime behaves like Lambda: environment, context, phases, logs, limits, errors, /tmp.

Every test drives real child processes (execution environments) running the
misbehaving handlers in tests/fixtures/handlers.py; nothing is mocked.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import psutil
import pytest

from local_dev.events import load_event, sample_events
from local_runtime import logs
from local_runtime.config import ConfigurationError, FunctionConfig, load_env_vars_file
from local_runtime.pool import EnvironmentPool
from tests.conftest import ROOT, Captured

FIXTURES = "tests.fixtures.handlers"
RESERVED = (
    "_HANDLER",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "LAMBDA_TASK_ROOT",
    "TZ",
)
LOG_STREAM = re.compile(r"^\d{4}/\d{2}/\d{2}/\[\$LATEST\][0-9a-f]{32}$")
REPORT = re.compile(
    r"^REPORT RequestId: (?P<id>[0-9a-f-]{36})\tDuration: (?P<duration>\d+\.\d{2}) ms"
    r"\tBilled Duration: (?P<billed>\d+) ms\tMemory Size: (?P<memory>\d+) MB"
    r"\tMax Memory Used: (?P<used>\d+) MB(\tInit Duration: (?P<init>\d+\.\d{2}) ms)?"
    r"(\tStatus: (?P<status>\w+)(\tError Type: (?P<error>[\w.]+))?)?$",
    re.MULTILINE,
)


@pytest.fixture
def make_pool(sink: Captured) -> Iterator[Any]:
    pools: list[EnvironmentPool] = []

    def make(handler: str, **settings: Any) -> EnvironmentPool:
        settings = {"memory_mb": 512, **settings}
        config = FunctionConfig(task_root=ROOT, name="fixture", handler=f"{FIXTURES}.{handler}", **settings)
        pool = EnvironmentPool(config, log_sink=sink, max_environments=settings.pop("max_envs", 4))
        pools.append(pool)
        return pool

    yield make
    for pool in pools:
        pool.close()


def body(invocation: Any) -> Any:
    return json.loads(invocation.payload)


def cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    # Text logs unless a test asks otherwise: template.yaml's LoggingConfig says JSON.
    text_logs = [] if "--log-format" in args else ["--log-format", "text"]
    return subprocess.run(
        [sys.executable, "invoke.py", "--env-file", os.devnull, *text_logs, *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
    )


def json_documents(text: str) -> list[Any]:
    """stdout of --repeat: one pretty-printed JSON document per invocation."""
    decoder, documents, index = json.JSONDecoder(), [], 0
    while index < len(text):
        if text[index].isspace():
            index += 1
            continue
        document, index = decoder.raw_decode(text, index)
        documents.append(document)
    return documents


# -- environment ---------------------------------------------------------------


def test_reserved_variables_are_set_before_the_module_is_imported(make_pool):
    result = body(make_pool("whoami", memory_mb=256, region="eu-west-1").invoke(b"{}"))

    seen = result["import_env"]
    assert set(RESERVED) <= set(seen)
    assert seen["_HANDLER"] == f"{FIXTURES}.whoami"
    assert seen["AWS_LAMBDA_FUNCTION_NAME"] == "fixture"
    assert seen["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "256"
    assert seen["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert seen["AWS_LAMBDA_LOG_GROUP_NAME"] == "/aws/lambda/fixture"
    assert LOG_STREAM.match(seen["AWS_LAMBDA_LOG_STREAM_NAME"])
    assert seen["AWS_REGION"] == seen["AWS_DEFAULT_REGION"] == "eu-west-1"
    assert seen["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.13"
    assert result["python"] == "3.13"  # Lambda's Python runs the function, whatever runs the tooling
    assert seen["AWS_LAMBDA_INITIALIZATION_TYPE"] == "on-demand"
    assert seen["LAMBDA_TASK_ROOT"] == "/var/task" == result["cwd"]  # the repository, mounted where Lambda has it
    assert seen["TZ"] == ":UTC" and result["localtime_is_utc"]
    assert result["trace_id"].startswith("Root=1-")


def test_env_vars_file_accepts_both_sam_shapes(tmp_path):
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"Parameters": {"A": "shared", "B": 1}, "fixture": {"A": "own", "C": True}}))

    assert load_env_vars_file(path, "fixture") == {"A": "own", "B": "1", "C": "true"}
    assert load_env_vars_file(path, "other") == {"A": "shared", "B": "1"}
    assert load_env_vars_file(path, "Function", "fixture") == {"A": "own", "B": "1", "C": "true"}
    path.write_text("[1, 2]")
    with pytest.raises(ConfigurationError):
        load_env_vars_file(path, "fixture")


def test_env_vars_file_reads_the_logical_id_as_sam_does_and_names_sections_that_match_nothing(tmp_path):
    path = tmp_path / "env.json"
    path.write_text(json.dumps({"Parameters": {"A": "1"}, "Function": {"A": "2"}, "Fucntion": {"A": "3"}}))
    warnings: list[str] = []

    assert load_env_vars_file(path, "Function", "pdf-manifest", warn=warnings.append) == {"A": "2"}
    assert len(warnings) == 1 and '"Fucntion" match no function here' in warnings[0]


def test_cli_env_vars_keyed_by_the_templates_logical_id_reach_the_function(tmp_path):
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({"Function": {"PREFIX": "mine/", "NOT_DECLARED": "x"}, "Other": {"PREFIX": "no"}}))

    done = subprocess.run(
        [sys.executable, "invoke.py", "--handler", f"{FIXTURES}.whoami", "--env-vars", str(env_vars)],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "PREFIX"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["import_env"]["PREFIX"] == "mine/"
    assert '"Other" match no function here (known: "Parameters", "Function", "pdf-manifest")' in done.stderr
    assert "NOT_DECLARED, which Function in template.yaml does not declare" in done.stderr


def test_cli_user_variables_from_env_vars_and_env_file(tmp_path):
    env_vars = tmp_path / "env.json"
    env_vars.write_text(json.dumps({"Parameters": {"GREETING": "from-env-vars"}, "fixture": {"AWS_REGION": "x"}}))
    dotenv = tmp_path / ".env"
    dotenv.write_text("ONLY_FOR_FUNCTION=from-dotenv\nGREETING=from-dotenv\n")

    done = subprocess.run(
        [
            *(sys.executable, "invoke.py", "--handler", f"{FIXTURES}.whoami", "--function-name", "fixture"),
            *("--env-file", str(dotenv), "--env-vars", str(env_vars), "--region", "us-west-2"),
        ],
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k not in ("GREETING", "ONLY_FOR_FUNCTION")},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)["import_env"]
    assert seen["GREETING"] == "from-env-vars"  # the function's configuration beats .env
    assert seen["ONLY_FOR_FUNCTION"] == "from-dotenv"
    assert seen["AWS_REGION"] == "us-west-2"  # reserved variables cannot be overridden


def test_env_file_never_overrides_the_process_environment(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("GREETING=from-dotenv\n")

    done = subprocess.run(
        [sys.executable, "invoke.py", "--handler", f"{FIXTURES}.whoami", "--env-file", str(dotenv)],
        cwd=ROOT,
        env={**os.environ, "GREETING": "from-process"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert json.loads(done.stdout)["import_env"]["GREETING"] == "from-process"


@pytest.mark.slow
def test_bad_configuration_is_exit_status_2(tmp_path):
    (tmp_path / "bad.json").write_text("{nope")

    assert cli("--timeout", "901").returncode == 2
    assert cli("--memory", "64").returncode == 2
    assert cli("--env-vars", str(tmp_path / "bad.json")).returncode == 2
    assert cli("--repeat", "0").returncode == 2


# -- context -------------------------------------------------------------------


def test_context_carries_the_real_attribute_set(make_pool):
    pool = make_pool("whoami", memory_mb=1024, region="eu-central-1")

    first, second = body(pool.invoke(b"{}")), body(pool.invoke(b"{}"))

    context = first["context"]
    assert context["function_name"] == "fixture"
    assert context["function_version"] == "$LATEST"
    assert context["invoked_function_arn"] == "arn:aws:lambda:eu-central-1:123456789012:function:fixture"
    assert context["memory_limit_in_mb"] == "1024"  # a string, as the real runtime passes it
    assert context["log_group_name"] == "/aws/lambda/fixture"
    assert context["log_stream_name"] == first["import_env"]["AWS_LAMBDA_LOG_STREAM_NAME"]
    assert context["identity"] == [None, None]
    assert context["client_context_custom"] is None
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[0-9a-f]{4}-[0-9a-f]{12}", context["aws_request_id"])
    assert second["context"]["aws_request_id"] != context["aws_request_id"]


def test_remaining_time_counts_down_from_the_timeout(make_pool):
    first, second = body(make_pool("countdown", timeout_s=2).invoke(b'{"sleep": 0.3}'))

    assert 1500 < first <= 2000
    assert 250 <= first - second < 1000


# -- init and warm invocations -------------------------------------------------


def test_repeat_imports_once_and_shows_cold_versus_warm():
    done = cli("--handler", f"{FIXTURES}.whoami", "--repeat", "3", "--event", "direct")

    assert done.returncode == 0, done.stderr
    results = json_documents(done.stdout)
    assert [r["invocations"] for r in results] == [1, 2, 3]
    assert len({r["pid"] for r in results}) == 1
    assert results[0]["event"] == load_event("direct")
    assert done.stderr.count("fixture handlers imported") == 1
    reports = list(REPORT.finditer(done.stderr))
    assert len(reports) == 3
    assert [m["init"] is not None for m in reports] == [True, False, False]
    assert "#1   cold" in done.stderr and "#3   warm" in done.stderr


# -- platform log lines ---------------------------------------------------------


def test_start_end_report_lines_in_lambdas_format(make_pool, sink):
    pool = make_pool("whoami")
    cold, warm = pool.invoke(b"{}"), pool.invoke(b"{}")

    text = "\n".join(sink)
    assert sink.index(f"START RequestId: {cold.request_id} Version: $LATEST") < sink.index(
        f"END RequestId: {cold.request_id}"
    )
    assert sink[0].startswith("INIT_START Runtime Version: python:")
    assert any(re.search(rf"^\[INFO\]\t\S+Z\t{warm.request_id}\twhoami called", line) for line in sink)
    cold_report, warm_report = (m.groupdict() for m in REPORT.finditer(text))
    assert cold_report["id"] == cold.request_id and warm_report["id"] == warm.request_id
    assert cold_report["memory"] == "512"
    # Billed per millisecond, rounded up; a cold start bills its init too (since August 2025).
    cold_total = float(cold_report["duration"]) + float(cold_report["init"])
    assert cold_total - 0.01 <= int(cold_report["billed"]) < cold_total + 1.01
    warm_total = float(warm_report["duration"])
    assert int(warm_report["billed"]) == 1 or warm_total - 0.01 <= int(warm_report["billed"]) < warm_total + 1.01
    assert warm_report["init"] is None and warm_report["status"] is None


def test_billed_duration_rounds_up_to_the_next_millisecond():
    assert logs.Report("r", 0.01, 128, 30).billed_duration_ms == 1
    assert logs.Report("r", 100.001, 128, 30).billed_duration_ms == 101
    assert logs.Report("r", 100.0, 128, 30).billed_duration_ms == 100
    assert logs.Report("r", 10.5, 128, 30, init_duration_ms=200.25).billed_duration_ms == 211
    assert logs.Report("r", 10.5, 128, 30, init_duration_ms=200.5).billed_duration_ms == 211


def test_max_memory_used_is_measured_not_assumed(make_pool):
    small = make_pool("whoami").invoke(b"{}")
    big = make_pool("grow").invoke(b'{"mb": 150}')

    assert small.report.max_memory_used_mb < 100
    assert 150 <= big.report.max_memory_used_mb < 512


def test_json_log_format_emits_platform_records(make_pool, sink):
    pool = make_pool("whoami", log_format="json")
    cold, _warm = pool.invoke(b"{}"), pool.invoke(b"{}")

    records = [json.loads(line) for line in sink if line.startswith("{")]
    kinds = [r.get("type") for r in records]
    assert kinds.count("platform.start") == 2 and kinds.count("platform.report") == 2
    assert "platform.initStart" in kinds
    reports = [r for r in records if r.get("type") == "platform.report"]
    assert reports[0]["record"]["requestId"] == cold.request_id
    assert reports[0]["record"]["status"] == "success"
    metrics = reports[0]["record"]["metrics"]
    assert set(metrics) == {"durationMs", "billedDurationMs", "memorySizeMB", "maxMemoryUsedMB", "initDurationMs"}
    assert "initDurationMs" not in reports[1]["record"]["metrics"]
    app = [r for r in records if r.get("level") == "INFO"]
    assert app and app[0]["requestId"] == cold.request_id and app[0]["message"].startswith("whoami called")
    assert not any(line.startswith(("START", "END", "REPORT")) for line in sink)


# -- timeout and crashes ------------------------------------------------------------


def test_timeout_kills_the_environment_and_the_next_invocation_is_cold(make_pool, sink):
    pool = make_pool("sleepy", timeout_s=0.5)

    timed_out = pool.invoke(b'{"seconds": 30}')
    pid_gone = body(timed_out)
    after = pool.invoke(b'{"seconds": 0}')

    assert pid_gone == {
        "errorType": "Sandbox.Timedout",
        "errorMessage": f"RequestId: {timed_out.request_id} Error: Task timed out after 0.50 seconds",
    }
    assert timed_out.report.status == "timeout" and 500 <= timed_out.report.duration_ms < 1500
    assert any(line.endswith(f"{timed_out.request_id} Task timed out after 0.50 seconds") for line in sink)
    assert "\tStatus: timeout\tError Type: Sandbox.Timedout" in "\n".join(sink)
    assert after.cold_start and body(after) == "woke up"
    assert timed_out.environment_id != after.environment_id


def test_a_timed_out_environment_process_is_really_gone(make_pool):
    pool = make_pool("sleepy", timeout_s=0.5)
    pool.invoke(b'{"seconds": 0}')
    pid = pool._idle[0]._process.pid

    pool.invoke(b'{"seconds": 30}')

    assert not psutil.pid_exists(pid)


def test_cli_timeout_is_lambdas_error_and_exit_status_1():
    done = cli("--handler", f"{FIXTURES}.sleepy", "--timeout", "0.5")

    assert done.returncode == 1
    assert json.loads(done.stdout)["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 0.50 seconds" in done.stderr


def test_a_crashing_process_is_runtime_exit_error(make_pool, sink):
    pool = make_pool("exiting")

    crashed = pool.invoke(b'{"code": 3}')
    again = pool.invoke(b'{"code": 4}')

    assert body(crashed) == {
        "errorType": "Runtime.ExitError",
        "errorMessage": f"RequestId: {crashed.request_id} Error: Runtime exited with error: exit status 3",
    }
    assert "about to exit" in sink
    assert crashed.report.max_memory_used_mb > 5
    assert again.cold_start and "exit status 4" in body(again)["errorMessage"]


# -- errors ------------------------------------------------------------------------


def test_unhandled_exception_is_lambdas_error_payload_and_exit_1():
    done = cli("--handler", f"{FIXTURES}.raising", "--event", "-", stdin='{"value": 7}')

    assert done.returncode == 1
    payload = json.loads(done.stdout)
    assert set(payload) == {"errorMessage", "errorType", "requestId", "stackTrace"}
    assert payload["errorType"] == "ValueError" and payload["errorMessage"] == "bad input: 7"
    assert re.search(r"RequestId: " + payload["requestId"], done.stderr)
    assert any("handlers.py" in frame and "in raising" in frame for frame in payload["stackTrace"])
    assert not any("local_runtime" in frame for frame in payload["stackTrace"])
    assert "[ERROR] ValueError: bad input: 7" in done.stderr


@pytest.mark.parametrize(
    ("handler", "error_type", "message"),
    [
        (
            "tests.fixtures.broken_import.handler",
            "Runtime.ImportModuleError",
            "Unable to import module 'tests.fixtures.broken_import': No module named 'a_module_that_is_not_installed'",
        ),
        (
            f"{FIXTURES}.no_such_handler",
            "Runtime.HandlerNotFound",
            f"Handler 'no_such_handler' missing on module '{FIXTURES}'",
        ),
        ("tests.fixtures.failing_init.handler", "RuntimeError", "configuration is broken"),
        (f"{FIXTURES}.unserializable", "Runtime.MarshalError", "Unable to marshal response: Object of type object"),
    ],
)
def test_runtime_errors_are_named_as_lambda_names_them(handler, error_type, message):
    done = cli("--handler", handler)

    assert done.returncode == 1
    payload = json.loads(done.stdout)
    assert payload["errorType"] == error_type
    assert payload["errorMessage"].startswith(message)
    assert f"[ERROR] {error_type}: {message}" in done.stderr


def test_an_init_failure_is_retried_with_a_fresh_environment(make_pool):
    pool = make_pool("no_such_handler")

    first, second = pool.invoke(b"{}"), pool.invoke(b"{}")

    assert first.cold_start and second.cold_start
    assert first.error_type == second.error_type == "Runtime.HandlerNotFound"
    assert pool.environment_count == 0


def test_response_larger_than_6_mb_is_an_error(make_pool):
    invocation = make_pool("big_response").invoke(b"{}")

    assert invocation.error_type == "Function.ResponseSizeTooLarge"


# -- /tmp ------------------------------------------------------------------------------


def test_tmp_is_per_environment_kept_while_warm_and_gone_after_a_cold_start(make_pool):
    pool = make_pool("tmp_touch")

    first = pool.invoke(b"{}")
    warm = pool.invoke(b'{"crash": true}')  # sees the first file, then ends its environment
    cold = pool.invoke(b"{}")

    assert body(first)["seen"] == []
    assert warm.error_type == "Runtime.ExitError"
    # The literal /tmp, as on Lambda (no TMPDIR), and the old environment's files went with it.
    assert body(first)["tmp"] == body(cold)["tmp"] == "/tmp"
    assert body(cold)["seen"] == []


def test_files_left_in_tmp_are_seen_by_the_next_warm_invocation(make_pool):
    pool = make_pool("tmp_touch")

    first, second = pool.invoke(b"{}"), pool.invoke(b"{}")

    assert body(second)["seen"] == [f"left-by-{first.request_id}"]
    assert body(second)["pid"] == body(first)["pid"]


def test_shared_tmp_uses_the_hosts_temp_dir(make_pool, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))

    invocation = make_pool("tmp_touch", tmp_per_environment=False).invoke(b"{}")

    assert body(invocation)["tmp"] == "/tmp"  # the host's temp dir, mounted there without a quota
    assert (tmp_path / f"left-by-{invocation.request_id}").read_text() == "hello"


def test_clean_env_passes_only_what_lambda_would(make_pool, monkeypatch):
    monkeypatch.setenv("GREETING", "host-only")

    clean = body(make_pool("whoami", clean_env=True, env={"ONLY_FOR_FUNCTION": "yes"}).invoke(b"{}"))

    assert clean["import_env"]["GREETING"] == ""
    assert clean["import_env"]["ONLY_FOR_FUNCTION"] == "yes"


# -- sample events ------------------------------------------------------------------------


def test_sample_events_load_by_name_and_path():
    assert sample_events() == ["apigateway-proxy", "direct", "s3-object-created", "stepfunctions-map-item"]
    assert load_event("direct") == {"bucket": "my-company-reports-bucket", "prefix": "2026/04/"}
    assert load_event(ROOT / "events" / "direct.json") == load_event("direct.json")
    record = load_event("s3-object-created")["Records"][0]
    assert record["eventSource"] == "aws:s3" and record["eventName"].startswith("ObjectCreated:")
    assert " " in unquote_plus(record["s3"]["object"]["key"]) and "+" in record["s3"]["object"]["key"]
    assert "prefix" in load_event("stepfunctions-map-item")
    assert load_event("apigateway-proxy")["queryStringParameters"]["prefix"] == "2026/04/"
    with pytest.raises(FileNotFoundError):
        load_event("no-such-event")


@pytest.mark.parametrize("name", ["direct", "s3-object-created", "stepfunctions-map-item", "apigateway-proxy"])
def test_sample_events_reach_the_handler_through_the_cli(name):
    done = cli("--handler", f"{FIXTURES}.whoami", "--event", name)

    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["event"] == load_event(name)


# -- a task root outside this repository ----------------------------------------------------


@pytest.fixture
def task_root(tmp_path: Path) -> Path:
    """A function directory of its own, as a deployment zip unpacks to /var/task."""
    root = tmp_path / "task"
    root.mkdir()
    (root / "syntax_broken.py").write_text("def handler(event, context)\n    return 1\n")
    (root / "killed.py").write_text(
        "import os, signal\n\ndef handler(event, context):\n    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    (root / "nested").mkdir()
    (root / "nested" / "app.py").write_text("import os\n\ndef handler(event, context):\n    return os.getcwd()\n")
    return root


def test_a_syntax_error_is_runtime_user_code_syntax_error(task_root, sink):
    config = FunctionConfig(name="fixture", handler="syntax_broken.handler", task_root=task_root)
    with EnvironmentPool(config, log_sink=sink) as pool:
        invocation = pool.invoke(b"{}")

    payload = body(invocation)
    assert payload["errorType"] == "Runtime.UserCodeSyntaxError"
    assert payload["errorMessage"].startswith("Syntax error in module 'syntax_broken'")
    assert "syntax_broken.py" in payload["stackTrace"][0]
    assert "\tStatus: error\tError Type: Runtime.UserCodeSyntaxError" in "\n".join(sink)


def test_a_process_killed_by_a_signal_is_reported_with_the_signal(task_root, sink):
    config = FunctionConfig(name="fixture", handler="killed.handler", task_root=task_root)
    with EnvironmentPool(config, log_sink=sink) as pool:
        invocation = pool.invoke(b"{}")

    assert body(invocation)["errorMessage"].endswith("Error: Runtime exited with error: signal: kill")
    assert any(line.endswith("\tStatus: error\tError Type: Runtime.ExitError") for line in sink)


def test_a_slash_handler_path_resolves_from_the_task_root(task_root):
    config = FunctionConfig(name="fixture", handler="nested/app.handler", task_root=task_root)
    with EnvironmentPool(config) as pool:
        assert body(pool.invoke(b"{}")) == "/var/task"  # the task root, mounted where Lambda has it
