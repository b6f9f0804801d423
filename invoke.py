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
import json
import os
import signal
import statistics
import sys
from pathlib import Path
from typing import Any

from local_runtime.venv_guard import ensure_project_python

if __name__ == "__main__":
    ensure_project_python("invoke.py")

from local_runtime.config import DEFAULT_TIMEOUT_S, ConfigurationError, FunctionConfig, load_env_vars_file
from local_runtime.env_file import warn_if_shadowed
from local_runtime.environment import Invocation
from local_runtime.events import load_event
from local_runtime.lambda_python import LambdaPythonError
from local_runtime.pool import EnvironmentPool
from local_runtime.s3_endpoint import endpoint_problem
from local_runtime.template_config import TemplateFunction, load_template_function

DEFAULT_FUNCTION_NAME = "pdf-manifest"
DEFAULT_TEMPLATE = Path(__file__).resolve().parent / "template.yaml"
DEFAULT_HANDLER, DEFAULT_MEMORY_MB = "lambda_function.handler", 128  # Lambda's own defaults
DEFAULT_RUNTIME = "python3.13"
EXIT_OK, EXIT_FUNCTION_ERROR, EXIT_BAD_INPUT = 0, 1, 2


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
        default=Path(__file__).resolve().parent,
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
    parser = argparse.ArgumentParser(
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
    parser = argparse.ArgumentParser(
        prog="invoke.py serve",
        parents=[_function_options()],
        description="Serve Lambda's Invoke API (POST /2015-03-31/functions/<name>/invocations) on loopback "
        "for aws lambda invoke --endpoint-url and boto3.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    parser.add_argument("--port", type=int, default=9009, help="port; 0 picks a free one (default: %(default)s)")
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
    from dotenv import dotenv_values  # local-only: real Lambda gets its variables from the configuration

    dotenv = {k: v for k, v in dotenv_values(args.env_file).items() if v is not None} if args.env_file else {}
    user_env = {k: v for k, v in (template.env if template else {}).items() if args.clean_env or k not in os.environ}
    user_env.update({k: v for k, v in dotenv.items() if args.clean_env or k not in os.environ})
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
        handler=_first(args.handler, template and template.handler, DEFAULT_HANDLER),
        memory_mb=_first(args.memory, template and template.memory_mb, DEFAULT_MEMORY_MB),
        timeout_s=_first(args.timeout, template and template.timeout_s, DEFAULT_TIMEOUT_S),
        region=region,
        task_root=args.task_root.resolve(),
        env=user_env,
        log_format=args.log_format,
        tmp_per_environment=args.tmp == "per-env",
        clean_env=args.clean_env,
        runtime=_first(args.runtime, template and template.runtime, DEFAULT_RUNTIME),
    )


def describe(config: FunctionConfig, args: argparse.Namespace, template: TemplateFunction | None) -> str:
    """One line, like sam local invoke's, saying which function configuration runs."""
    import platform

    runtime_note = config.runtime if config.runtime.startswith("provided") else f"{config.runtime} (awslambdaric)"
    arch = _first(args.architecture, template and template.architecture, platform.machine())
    source = f"{template.logical_id} in {Path(template.source).name}" if template else "Lambda's defaults"
    return (
        f"{config.name} ({source}): {config.handler}, {runtime_note}, {config.memory_mb} MB, "
        f"{config.timeout_s:g} s timeout, {arch}"
    )


def warn_about_setup(prog: str, config: FunctionConfig, args: argparse.Namespace) -> None:
    """One line each for what would otherwise surface late: shadowed .env values, an S3 that does not answer."""
    if not args.clean_env:
        warn_if_shadowed(prog, args.env_file)
    endpoint = config.env.get("S3_ENDPOINT_URL") or ("" if config.clean_env else os.environ.get("S3_ENDPOINT_URL"))
    problem = endpoint_problem(endpoint) if endpoint else None
    if problem:
        print(
            f"{prog}: S3_ENDPOINT_URL {endpoint} {problem}: the function cannot reach S3 "
            "(start one with make up or make verifier-up, or fix .env)",
            file=sys.stderr,
            flush=True,
        )


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


def run(argv: list[str]) -> int:
    args = parse_run_args(argv)
    if args.repeat < 1:
        print("invoke.py: --repeat must be 1 or more", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        event = load_event(args.event)
    except (OSError, ValueError) as exc:  # ValueError: bad JSON or bytes that are not UTF-8
        print(f"invoke.py: cannot read event {args.event!r}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        template = load_template(args)
        config = build_config(args, template)
    except ConfigurationError as exc:
        print(f"invoke.py: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    payload = json.dumps(event).encode("utf-8")
    print(f"invoke.py: {describe(config, args, template)}", file=sys.stderr, flush=True)
    warn_about_setup("invoke.py", config, args)
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
            print_result(invocation, lines=args.repeat > 1)
    if args.repeat > 1:
        print(summarise(invocations), file=sys.stderr)
    return EXIT_FUNCTION_ERROR if any(inv.function_error for inv in invocations) else EXIT_OK


def serve(argv: list[str]) -> int:
    from local_runtime.api_server import InvokeApi

    args = parse_serve_args(argv)
    try:
        template = load_template(args)
        config = build_config(args, template)
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
    except OSError as exc:
        print(f"invoke.py serve: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    print(f"Invoke API for function {config.name!r} on {server.url}", flush=True)
    print(f"  {describe(config, args, template)}", file=sys.stderr, flush=True)
    warn_about_setup("invoke.py serve", config, args)
    print(f"  try it (another terminal):\n    {aws_cli_example(server.url, config)}", file=sys.stderr, flush=True)
    try:
        server.serve_forever(poll_interval=0.1)
    except KeyboardInterrupt:
        pass
    finally:
        server.release()
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


def _stop_on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM (docker-less process managers, the tests) stops serve like Ctrl-C: environments end cleanly."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["serve"]:
        return serve(argv[1:])
    return run(argv)


if __name__ == "__main__":
    raise SystemExit(main())
