"""Run the Lambda handler locally the way the Lambda service runs it, with no Docker.

    python invoke.py [--event FILE|NAME|-] [--repeat N] [--timeout S] ...   invoke, print the result
    python invoke.py serve [--port 0]                                       Lambda's Invoke API on loopback

Each execution environment is a separate Python process that gets Lambda's
reserved variables before the handler module is imported, so configuration
read at import time behaves as on Lambda; see local_runtime/ for the pieces.
The handler's result (or Lambda's error payload) goes to stdout as JSON and
every log line (START/END/REPORT and the handler's own) to stderr, so
``python invoke.py | jq`` works.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import socket
import statistics
import sys
from pathlib import Path
from typing import Any, NoReturn

from local_dev.env_file import warn_if_shadowed
from local_dev.events import load_event, sample_events
from local_dev.s3_endpoint import endpoint_problem, refused_on_loopback
from local_dev.template_config import TemplateFunction, load_template_function
from local_runtime.config import (
    DEFAULT_MEMORY_MB,
    DEFAULT_TIMEOUT_S,
    ENV_FILE_LIMIT,
    ConfigurationError,
    FunctionConfig,
    check_env_name,
    check_env_value,
    load_env_vars_file,
)
from local_runtime.debugger import DebuggerError, DebugOptions, check_ready
from local_runtime.display import shown
from local_runtime.environment import Invocation
from local_runtime.lambda_python import LambdaPythonError
from local_runtime.pool import EnvironmentPool
from local_runtime.sandbox import SandboxError
from local_runtime.sandbox import describe as describe_sandbox
from local_runtime.strict_json import SYNC_PAYLOAD_LIMIT, read_bounded

DEFAULT_FUNCTION_NAME = "pdf-manifest"
ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TEMPLATE = ROOT / "template.yaml"
DEFAULT_HANDLER = "lambda_function.handler"  # without a template: the handler at this repository's root
DEFAULT_RUNTIME = "python3.13"
EXIT_OK, EXIT_FUNCTION_ERROR, EXIT_BAD_INPUT = 0, 1, 2
# What the Lambda API accepts for these settings (CreateFunction's patterns).
_FUNCTION_NAME = re.compile(r"[a-zA-Z0-9_-]{1,64}")
_HANDLER = re.compile(r"[^\s]{1,128}")
_REGION = re.compile(r"[a-z]{2}(-gov)?-[a-z]+-\d{1}")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage is one ``--help`` away)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see --help)\n")


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be a whole number, got {text[:20]!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be between 0 and 65535, got {port}")
    return port


def _function_options() -> argparse.ArgumentParser:
    """Options that describe the function's configuration, shared by run and serve."""
    parser = argparse.ArgumentParser(add_help=False)
    group = parser.add_argument_group(
        "function configuration", "Defaults come from the function in template.yaml, as with sam local invoke."
    )
    group.add_argument(
        "--template",
        metavar="FILE",
        default=str(DEFAULT_TEMPLATE),
        help="SAM template to take handler, runtime, memory, timeout, architecture and environment variables "
        "from (default: template.yaml; '' for Lambda's defaults: 3 s, 128 MB)",
    )
    group.add_argument("--handler", help="module.function (default: the template's Handler)")
    group.add_argument(
        "--runtime",
        choices=("python3.13", "provided", "provided.al2023"),
        help="python3.13: AWS's runtime client (awslambdaric) runs the handler under Python 3.13; "
        "provided: the task root's executable 'bootstrap' runs against the Runtime API "
        "(default: the template's Runtime, else python3.13)",
    )
    group.add_argument(
        "--task-root",
        type=Path,
        default=ROOT,
        help="the function's code, as /var/task (default: this repository)",
    )
    group.add_argument(
        "--function-name",
        default=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", DEFAULT_FUNCTION_NAME),
        help="function name (default: %(default)s)",
    )
    group.add_argument("--memory", type=int, help="memory size in MB, 128-10240 (default: the template's MemorySize)")
    group.add_argument(
        "--timeout",
        type=float,
        help="seconds before the environment is killed, as Lambda does (default: the template's Timeout)",
    )
    group.add_argument(
        "--architecture", choices=("arm64", "x86_64"), help="architecture to report (default: the template's)"
    )
    group.add_argument(
        "--region", help="AWS_REGION of the function (default: AWS_REGION, AWS_DEFAULT_REGION, us-east-1)"
    )
    group.add_argument(
        "--env-file",
        default=".env",
        help="dotenv file; never overrides the process environment (default: %(default)s; missing is fine)",
    )
    group.add_argument(
        "--env-vars",
        metavar="JSON",
        help='function variables in SAM\'s shape: {"Parameters": {...}} and/or {"<FunctionName>": {...}}',
    )
    group.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="Lambda's LoggingConfig.LogFormat (default: the template's, else text)",
    )
    group.add_argument(
        "--ephemeral-storage",
        type=int,
        metavar="MB",
        help="size of /tmp in MB, 512-10240 (default: the template's EphemeralStorage, else 512)",
    )
    group.add_argument(
        "--sandbox",
        choices=("auto", "on", "off"),
        default="auto",
        help="Lambda's sandbox with bubblewrap (read-only /var/task, private /tmp of its size, hidden home, "
        "a PID namespace): auto uses it where it can be built, on fails where it cannot, off runs in the "
        "host's view (default: %(default)s). Memory, file descriptor limits and the freeze apply either way",
    )
    group.add_argument(
        "--tmp",
        choices=("per-env", "shared"),
        default="per-env",
        help="per-env: each execution environment gets its own /tmp, kept while warm; "
        "shared: the host's temp dir (default: %(default)s)",
    )
    group.add_argument(
        "--clean-env",
        action="store_true",
        help="start environments from an empty environment (plus AWS credentials and PATH), as on Lambda",
    )
    debug = parser.add_argument_group(
        "debugger", "debugpy in the environment, for VS Code's attach or any Debug Adapter Protocol client"
    )
    debug.add_argument(
        "--debug-port",
        type=_port,
        metavar="N",
        help="run the environment under debugpy listening on 127.0.0.1:N; the function's timeout stops while "
        "a debugger is attached",
    )
    debug.add_argument(
        "--debug-wait",
        action="store_true",
        help="with --debug-port: wait for the debugger to attach before anything of the function runs",
    )
    return parser


def parse_run_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(
        prog="invoke.py",
        parents=[_function_options()],
        description="Invoke the handler locally, the way the Lambda service would. "
        "Run 'invoke.py serve --help' for the Invoke API server.",
        epilog="Exit status: 0 on success, 1 when the function failed (error, timeout, crash), 2 on bad input.",
    )
    parser.add_argument(
        "--event",
        "-e",
        metavar="FILE",
        help="JSON event file, a sample name from events/ (e.g. s3-object-created), or '-' for stdin (default: {})",
    )
    parser.add_argument(
        "--repeat",
        "-n",
        type=int,
        default=1,
        metavar="N",
        help="invoke N times in one execution environment: one cold start, then warm ones (default: 1); "
        "N > 1 prints one JSON document per line (JSON Lines)",
    )
    return parser.parse_args(argv)


def parse_serve_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(
        prog="invoke.py serve",
        parents=[_function_options()],
        description="Serve Lambda's Invoke API (POST /2015-03-31/functions/<name>/invocations) on loopback "
        "for aws lambda invoke --endpoint-url and boto3.",
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default: %(default)s); anything but loopback also needs --allow-remote",
    )
    parser.add_argument(
        "--allow-remote",
        action="store_true",
        help="let --host be a non-loopback address: anyone who can reach it runs the function with your "
        "credentials (the local API checks no signature)",
    )
    parser.add_argument("--port", type=_port, default=9009, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument(
        "--watch",
        action="store_true",
        help="reload on save: a change under the task root ends the warm environments (busy ones after their "
        "invocation), so the next invocation starts cold on the new code",
    )
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=10,
        help="environments allowed at once; more concurrent requests get 429 (default: %(default)s)",
    )
    return parser.parse_args(argv)


def load_template(args: argparse.Namespace) -> TemplateFunction | None:
    """The template's function, or None with --template '' (or no template.yaml where the default points)."""
    if not args.template or (args.template == str(DEFAULT_TEMPLATE) and not DEFAULT_TEMPLATE.is_file()):
        return None
    return load_template_function(args.template)


def _first(*values: Any) -> Any:
    """The first value that was given (an option, then the template, then Lambda's default)."""
    return next(value for value in values if value is not None)


def build_config(args: argparse.Namespace, template: TemplateFunction | None) -> FunctionConfig:
    """Turn options, template.yaml, .env and --env-vars into a function configuration (ConfigurationError if invalid).

    Precedence, lowest first: Lambda's defaults, the template, then the options;
    for variables: the template's, the host environment, .env, --env-vars.
    """
    _check_setting("function name", args.function_name, _FUNCTION_NAME)
    if args.handler is not None:
        _check_setting("handler", args.handler, _HANDLER)
    if args.region is not None:
        _check_setting("region", args.region, _REGION)
    if not args.task_root.exists():
        raise ConfigurationError(f"task root {_shown_path(str(args.task_root))} does not exist")
    if not args.task_root.is_dir():
        raise ConfigurationError(f"task root {_shown_path(str(args.task_root))} is not a directory")
    dotenv = read_env_file(args.env_file) if args.env_file else {}
    user_env = {k: v for k, v in (template.env if template else {}).items() if args.clean_env or k not in os.environ}
    user_env.update({k: v for k, v in dotenv.items() if args.clean_env or k not in os.environ})
    if args.env_vars:
        keys = (template.logical_id, args.function_name) if template else (args.function_name,)
        from_file = load_env_vars_file(args.env_vars, *keys, warn=_warn)
        if template is not None:
            extra = sorted(set(from_file) - set(template.env))
            if extra:
                _warn(
                    f"--env-vars sets {', '.join(name[:40] for name in extra[:5])}, which {template.logical_id} in "
                    f"{Path(template.source).name} does not declare (sam local invoke would ignore them; this run "
                    "sets them)"
                )
        user_env.update(from_file)
    region = (
        args.region
        or os.environ.get("AWS_REGION")
        or user_env.get("AWS_REGION")
        or os.environ.get("AWS_DEFAULT_REGION")
        or user_env.get("AWS_DEFAULT_REGION")
        or "us-east-1"
    )
    return FunctionConfig(
        name=args.function_name,
        handler=_first(args.handler, template and template.handler, DEFAULT_HANDLER),
        memory_mb=_first(args.memory, template and template.memory_mb, DEFAULT_MEMORY_MB),
        timeout_s=_first(args.timeout, template and template.timeout_s, DEFAULT_TIMEOUT_S),
        region=region,
        task_root=args.task_root.resolve(),
        env=user_env,
        log_format=_first(args.log_format, template and template.log_format, "text"),
        ephemeral_storage_mb=_first(args.ephemeral_storage, template and template.ephemeral_storage_mb, 512),
        sandbox=args.sandbox,
        application_log_level=_first(template and template.application_log_level, "INFO"),
        system_log_level=_first(template and template.system_log_level, "INFO"),
        tmp_per_environment=args.tmp == "per-env",
        clean_env=args.clean_env,
        runtime=_first(args.runtime, template and template.runtime, DEFAULT_RUNTIME),
        debug=_debug_options(args),
    )


def _debug_options(args: argparse.Namespace) -> DebugOptions | None:
    if args.debug_port is None:
        if args.debug_wait:
            raise ConfigurationError("--debug-wait needs --debug-port")
        return None
    return DebugOptions(port=args.debug_port, wait=args.debug_wait)


def start_debugger(prog: str, config: FunctionConfig) -> bool:
    """Check the debug port and debugpy; False (after one line) when the run cannot go on."""
    if config.debug is None:
        return True
    try:
        check_ready(config.debug)
    except DebuggerError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return False
    waits = "waits for it before the function runs" if config.debug.wait else "runs without waiting for it"
    print(
        f"{prog}: debugpy listens on 127.0.0.1:{config.debug.port} in each environment: attach a debugger "
        f"(VS Code: 'Python Debugger: Remote Attach'); the function {waits}, its timeout stops while one is attached",
        file=sys.stderr,
        flush=True,
    )
    return True


def describe(config: FunctionConfig, args: argparse.Namespace, template: TemplateFunction | None) -> str:
    """One line, like sam local invoke's, saying which function configuration runs."""
    import platform

    runtime_note = config.runtime if config.runtime.startswith("provided") else f"{config.runtime} (awslambdaric)"
    arch = _first(args.architecture, template and template.architecture, platform.machine())
    source = f"{template.logical_id} in {Path(template.source).name}" if template else "Lambda's defaults"
    logging = "text logs"
    if config.log_format == "json":
        logging = f"JSON logs (application {config.application_log_level}, system {config.system_log_level}"
        if config.system_log_level == "WARN":
            logging += ": Lambda would not send START/REPORT to CloudWatch, shown here anyway"
        logging += ")"
    return (
        f"{config.name} ({source}): {config.handler}, {runtime_note}, {config.memory_mb} MB, "
        f"{config.timeout_s:g} s timeout, {arch}, /tmp {config.ephemeral_storage_mb} MB, {logging}"
    )


def warn_about_setup(prog: str, config: FunctionConfig, args: argparse.Namespace) -> None:
    """One line each for what would otherwise surface late: shadowed .env values, an S3 that does not answer."""
    if not args.clean_env:
        warn_if_shadowed(prog, args.env_file)
    endpoint = _s3_endpoint(config)
    problem = endpoint_problem(endpoint) if endpoint else None
    if problem:
        print(
            f"{prog}: S3_ENDPOINT_URL {endpoint} {problem}: the function cannot reach S3 "
            "(start one with make up or make verifier-up, or fix .env)",
            file=sys.stderr,
            flush=True,
        )


def fail_fast_if_s3_is_down(config: FunctionConfig) -> None:
    """A one-shot run against a loopback S3 that refuses connections: one attempt, not ~20 s of retries.

    Only the function's configuration changes (``S3_MAX_ATTEMPTS=1``, unless
    set), and only for this run; serve keeps the retries, since the S3 may
    come up while it runs.
    """
    endpoint = _s3_endpoint(config)
    user_set = "S3_MAX_ATTEMPTS" in config.env or (not config.clean_env and "S3_MAX_ATTEMPTS" in os.environ)
    if not endpoint or user_set or not refused_on_loopback(endpoint):
        return
    config.env["S3_MAX_ATTEMPTS"] = "1"
    _warn("this run tries S3 once (S3_MAX_ATTEMPTS=1) instead of retrying a refused connection for about 20 s")


def _s3_endpoint(config: FunctionConfig) -> str | None:
    return config.env.get("S3_ENDPOINT_URL") or (None if config.clean_env else os.environ.get("S3_ENDPOINT_URL"))


def _warn(message: str) -> None:
    print(f"invoke.py: {message}", file=sys.stderr, flush=True)


def _check_setting(what: str, value: str, pattern: re.Pattern[str]) -> None:
    if pattern.fullmatch(value) is None:
        raise ConfigurationError(f"{what} {json.dumps(value[:80])} does not match {pattern.pattern}")


def read_env_file(path: str) -> dict[str, str]:
    """A dotenv file's variables; missing is fine, anything unusable is a ConfigurationError.

    Read here (bounded, regular files only, strict UTF-8, no NUL) and handed to
    python-dotenv as text, so a FIFO, a device or stray bytes are one clear
    error instead of a hang or a traceback when the environment starts.
    """
    from dotenv import dotenv_values  # local-only: real Lambda gets its variables from the configuration

    try:
        if "\0" not in path and not os.path.lexists(path):
            return {}
        raw = read_bounded(path, ENV_FILE_LIMIT, "the file")
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigurationError(f"env file {_shown_path(path)}: line {line} is not UTF-8") from None
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"cannot read env file {_shown_path(path)}: {exc}") from None
    if "\0" in text:
        line = text[: text.index("\0")].count("\n") + 1
        raise ConfigurationError(f"env file {_shown_path(path)}: line {line} holds a NUL byte")
    values = dotenv_values(stream=io.StringIO(text))
    return {check_env_name(k): check_env_value(k, v) for k, v in values.items() if v is not None}


def print_result(invocation: Invocation, lines: bool = False) -> None:
    """The payload as JSON: indented for one invocation, one compact line each with --repeat (JSON Lines)."""
    try:
        body: Any = json.loads(invocation.payload)
    except ValueError:
        sys.stdout.write(invocation.payload.decode("utf-8", "replace") + "\n")
    else:
        print(json.dumps(body) if lines else json.dumps(body, indent=2))
    sys.stdout.flush()


def summarise(invocations: list[Invocation]) -> str:
    """The cold-versus-warm comparison --repeat exists to show."""
    lines = [f"{len(invocations)} invocations:"]
    for number, inv in enumerate(invocations, 1):
        kind = "cold" if inv.cold_start else "warm"
        init = f"  init {inv.report.init_duration_ms:8.2f} ms" if inv.cold_start else " " * 19
        lines.append(
            f"  #{number:<3} {kind}{init}  duration {inv.report.duration_ms:8.2f} ms"
            f"  billed {inv.report.billed_duration_ms:6d} ms  {inv.report.status}"
        )
    warm = [inv.report.duration_ms for inv in invocations if not inv.cold_start]
    cold = [inv for inv in invocations if inv.cold_start]
    if warm and cold:
        cold_total = statistics.mean((c.report.init_duration_ms or 0) + c.report.duration_ms for c in cold)
        lines.append(
            f"  cold start costs {cold_total:.2f} ms (init + duration); warm median {statistics.median(warm):.2f} ms"
        )
    return "\n".join(lines)


def _shown_path(path: str | None) -> str:
    return "null" if path is None else f'"{shown(path)}"'


def run(argv: list[str]) -> int:
    args = parse_run_args(argv)
    if args.repeat < 1:
        print("invoke.py: --repeat must be 1 or more", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        event = load_event(args.event)
        payload = json.dumps(event, ensure_ascii=False).encode("utf-8")
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not JSON, too deep, too big, not a plain file
        hint = ""
        if isinstance(exc, FileNotFoundError) and "/" not in str(args.event):
            hint = f" (not a file, nor a sample in events/: {', '.join(sample_events())})"
        print(f"invoke.py: cannot read event {_shown_path(args.event)}: {exc}{hint}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if len(payload) > SYNC_PAYLOAD_LIMIT:
        print(
            f"invoke.py: the event is {len(payload)} bytes; Lambda accepts at most {SYNC_PAYLOAD_LIMIT}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        template = load_template(args)
        config = build_config(args, template)
    except ConfigurationError as exc:
        print(f"invoke.py: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    invocations: list[Invocation] = []
    if not start_debugger("invoke.py", config):
        return EXIT_BAD_INPUT
    try:
        pool = EnvironmentPool(config, max_environments=1)
        sandbox_line = describe_sandbox(config)
    except (LambdaPythonError, SandboxError) as exc:
        print(f"invoke.py: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"invoke.py: {describe(config, args, template)}", file=sys.stderr, flush=True)
    print(f"invoke.py: {sandbox_line}", file=sys.stderr, flush=True)
    warn_about_setup("invoke.py", config, args)
    fail_fast_if_s3_is_down(config)
    with pool:
        for _ in range(args.repeat):
            invocation = pool.invoke(payload)
            invocations.append(invocation)
            print_result(invocation, lines=args.repeat > 1)
    if args.repeat > 1:
        print(summarise(invocations), file=sys.stderr)
    return EXIT_FUNCTION_ERROR if any(inv.function_error for inv in invocations) else EXIT_OK


def serve(argv: list[str]) -> int:
    from local_runtime.api_server import InvokeApi
    from local_runtime.http_guard import is_loopback

    args = parse_serve_args(argv)
    where = f"{args.host[:80]}:{args.port}"
    try:
        resolved = {info[4][0] for info in socket.getaddrinfo(args.host, args.port, type=socket.SOCK_STREAM)}
    except (OSError, UnicodeError) as exc:
        print(f"invoke.py serve: cannot listen on {where}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not all(is_loopback(address) for address in resolved):
        if not args.allow_remote:
            print(
                f"invoke.py serve: --host {where} is not a loopback address: anyone who can reach it could run "
                "the function with your credentials; add --allow-remote if that is what you want",
                file=sys.stderr,
            )
            return EXIT_BAD_INPUT
        print(
            f"invoke.py serve: WARNING: listening on {where}: anyone on that network can run the function "
            "with these credentials (the local Invoke API checks no signature)",
            file=sys.stderr,
            flush=True,
        )
    try:
        template = load_template(args)
        config = build_config(args, template)
    except ConfigurationError as exc:
        print(f"invoke.py serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if not start_debugger("invoke.py serve", config):
        return EXIT_BAD_INPUT
    # One debug port, one environment at a time: a second one could not listen on it.
    concurrency = 1 if config.debug else max(1, args.max_concurrency)
    try:
        pools = {config.name: EnvironmentPool(config, max_environments=concurrency)}
        sandbox_line = describe_sandbox(config)
    except (LambdaPythonError, SandboxError) as exc:
        print(f"invoke.py serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        server = InvokeApi(pools, args.host, args.port)
    except (OSError, ValueError, OverflowError) as exc:
        print(f"invoke.py serve: cannot listen on {args.host[:80]}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"Invoke API for function {config.name!r} on {server.url}", flush=True)
    print(f"  {describe(config, args, template)}", file=sys.stderr, flush=True)
    print(f"  {sandbox_line}", file=sys.stderr, flush=True)
    warn_about_setup("invoke.py serve", config, args)
    print(f"  try it (another terminal):\n    {aws_cli_example(server.url, config)}", file=sys.stderr, flush=True)
    reloader = None
    if args.watch:
        from local_dev.reload import Reloader

        reloader = Reloader(config.task_root, pools.values()).start()
        print(f"  reload on save: watching {config.task_root}", file=sys.stderr, flush=True)
    # SIGTERM and Ctrl-C: stop listening, answer or close every client, end every environment.
    try:
        server.serve_forever(handle_signals=True)
    finally:
        if reloader is not None:
            reloader.stop()
    return EXIT_OK


def aws_cli_example(url: str, config: FunctionConfig) -> str:
    """A command that works with the AWS CLI make install puts in .venv (v1) and with v2 alike.

    fileb:// sends the file's bytes as they are under both (v2 would base64-decode
    an inline or file:// payload without --cli-binary-format, which v1 rejects);
    the loopback API checks no signature, but the CLI insists on a region and credentials.
    """
    return (
        f"AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing .venv/bin/aws lambda invoke --region {config.region} "
        f"--endpoint-url {url} --function-name {config.name} --payload fileb://events/direct.json out.json"
    )


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    return run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
