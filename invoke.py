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
import statistics
import sys
from pathlib import Path
from typing import Any, NoReturn

from local_runtime.config import (
    DEFAULT_TIMEOUT_S,
    ENV_FILE_LIMIT,
    ConfigurationError,
    FunctionConfig,
    check_env_name,
    check_env_value,
    load_env_vars_file,
)
from local_runtime.environment import Invocation
from local_runtime.events import load_event
from local_runtime.lambda_python import LambdaPythonError
from local_runtime.pool import EnvironmentPool
from local_runtime.strict_json import SYNC_PAYLOAD_LIMIT, read_bounded

DEFAULT_FUNCTION_NAME = "pdf-manifest"
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
    group = parser.add_argument_group("function configuration")
    group.add_argument("--handler", default="lambda_function.handler", help="module.function (default: %(default)s)")
    group.add_argument(
        "--runtime",
        choices=("python3.13", "provided", "provided.al2023"),
        default="python3.13",
        help="python3.13: AWS's runtime client (awslambdaric) runs the handler under Python 3.13; "
        "provided: the task root's executable 'bootstrap' runs against the Runtime API (default: %(default)s)",
    )
    group.add_argument(
        "--task-root",
        type=Path,
        default=Path(__file__).resolve().parent,
        help="the function's code, as /var/task (default: this repository)",
    )
    group.add_argument(
        "--function-name",
        default=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", DEFAULT_FUNCTION_NAME),
        help="function name (default: %(default)s)",
    )
    group.add_argument("--memory", type=int, default=512, help="memory size in MB, 128-10240 (default: %(default)s)")
    group.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT_S,
        help="seconds before the environment is killed, as Lambda does (default: %(default)s, Lambda's default)",
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
        "--log-format", choices=("text", "json"), default="text", help="Lambda's LogFormat setting (default: text)"
    )
    group.add_argument(
        "--tmp",
        choices=("per-env", "shared"),
        default="per-env",
        help="per-env: each execution environment gets its own /tmp (TMPDIR), kept while warm; "
        "shared: the host's temp dir (default: %(default)s)",
    )
    group.add_argument(
        "--clean-env",
        action="store_true",
        help="start environments from an empty environment (plus AWS credentials and PATH), as on Lambda",
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
        help="invoke N times in one execution environment: one cold start, then warm ones (default: 1)",
    )
    return parser.parse_args(argv)


def parse_serve_args(argv: list[str]) -> argparse.Namespace:
    parser = _Parser(
        prog="invoke.py serve",
        parents=[_function_options()],
        description="Serve Lambda's Invoke API (POST /2015-03-31/functions/<name>/invocations) on loopback "
        "for aws lambda invoke --endpoint-url and boto3.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=_port, default=9009, help="port; 0 picks a free one (default: %(default)s)")
    parser.add_argument(
        "--max-concurrency",
        type=int,
        default=10,
        help="environments allowed at once; more concurrent requests get 429 (default: %(default)s)",
    )
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace) -> FunctionConfig:
    """Turn options, .env and --env-vars into a function configuration (ConfigurationError if invalid)."""
    _check_setting("function name", args.function_name, _FUNCTION_NAME)
    _check_setting("handler", args.handler, _HANDLER)
    if args.region is not None:
        _check_setting("region", args.region, _REGION)
    dotenv = read_env_file(args.env_file) if args.env_file else {}
    user_env = {k: v for k, v in dotenv.items() if args.clean_env or k not in os.environ}
    if args.env_vars:
        user_env.update(load_env_vars_file(args.env_vars, args.function_name))
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
        handler=args.handler,
        memory_mb=args.memory,
        timeout_s=args.timeout,
        region=region,
        task_root=args.task_root.resolve(),
        env=user_env,
        log_format=args.log_format,
        tmp_per_environment=args.tmp == "per-env",
        clean_env=args.clean_env,
        runtime=args.runtime,
    )


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


def print_result(invocation: Invocation) -> None:
    try:
        body: Any = json.loads(invocation.payload)
    except ValueError:
        sys.stdout.write(invocation.payload.decode("utf-8", "replace") + "\n")
    else:
        print(json.dumps(body, indent=2))
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
    return json.dumps(path if path is None or len(path) <= 80 else path[:80] + "...")


def run(argv: list[str]) -> int:
    args = parse_run_args(argv)
    if args.repeat < 1:
        print("invoke.py: --repeat must be 1 or more", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        event = load_event(args.event)
        payload = json.dumps(event, ensure_ascii=False).encode("utf-8")
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not JSON, too deep, too big, not a plain file
        print(f"invoke.py: cannot read event {_shown_path(args.event)}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if len(payload) > SYNC_PAYLOAD_LIMIT:
        print(
            f"invoke.py: the event is {len(payload)} bytes; Lambda accepts at most {SYNC_PAYLOAD_LIMIT}",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    try:
        config = build_config(args)
    except ConfigurationError as exc:
        print(f"invoke.py: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    invocations: list[Invocation] = []
    try:
        pool = EnvironmentPool(config, max_environments=1)
    except LambdaPythonError as exc:
        print(f"invoke.py: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    with pool:
        for _ in range(args.repeat):
            invocation = pool.invoke(payload)
            invocations.append(invocation)
            print_result(invocation)
    if args.repeat > 1:
        print(summarise(invocations), file=sys.stderr)
    return EXIT_FUNCTION_ERROR if any(inv.function_error for inv in invocations) else EXIT_OK


def serve(argv: list[str]) -> int:
    from local_runtime.api_server import InvokeApi

    args = parse_serve_args(argv)
    try:
        config = build_config(args)
    except ConfigurationError as exc:
        print(f"invoke.py serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        pools = {config.name: EnvironmentPool(config, max_environments=max(1, args.max_concurrency))}
    except LambdaPythonError as exc:
        print(f"invoke.py serve: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        server = InvokeApi(pools, args.host, args.port)
    except (OSError, ValueError, OverflowError) as exc:
        print(f"invoke.py serve: cannot listen on {args.host[:80]}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"Invoke API for function {config.name!r} on {server.url}", flush=True)
    print(
        f"  aws lambda invoke --endpoint-url {server.url} --function-name {config.name} "
        "--cli-binary-format raw-in-base64-out --payload '{}' out.json",
        file=sys.stderr,
        flush=True,
    )
    # SIGTERM and Ctrl-C: stop listening, answer or close every client, end every environment.
    server.serve_forever(handle_signals=True)
    return EXIT_OK


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    return run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
