"""Run the Lambda handler locally, once, the way the Lambda service would call it.

The event comes from a file (or stdin), the context carries the real Lambda
attributes, the handler's return value goes to stdout as JSON and everything
else goes to stderr, so ``python invoke.py | jq`` works.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import traceback
from pathlib import Path
from typing import Any

from local_runtime.context import make_context

DEFAULT_FUNCTION_NAME = "pdf-manifest"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Invoke lambda_function.handler locally with a Lambda-shaped event and context.",
        epilog="Exit status: 0 on success, 1 when the function raised, 2 on bad input.",
    )
    parser.add_argument(
        "--event",
        "-e",
        metavar="FILE",
        help="JSON event file, or '-' for stdin (default: the empty event {})",
    )
    parser.add_argument("--handler", default="lambda_function.handler", help="module.function (default: %(default)s)")
    parser.add_argument(
        "--function-name",
        default=os.environ.get("AWS_LAMBDA_FUNCTION_NAME", DEFAULT_FUNCTION_NAME),
        help="function name used in the context (default: %(default)s)",
    )
    parser.add_argument(
        "--memory", type=int, default=512, help="memory size in MB reported to the handler (default: %(default)s)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=3.0,
        help="seconds reported by get_remaining_time_in_millis (default: %(default)s)",
    )
    parser.add_argument(
        "--env-file",
        default=".env",
        help="dotenv file loaded before the handler is imported (default: %(default)s; missing is fine)",
    )
    return parser.parse_args(argv)


def load_event(source: str | None) -> Any:
    if source is None:
        return {}
    text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    return json.loads(text)


def error_payload(exc: BaseException, request_id: str) -> dict[str, Any]:
    """The body Lambda returns for an unhandled exception."""
    frames = traceback.extract_tb(exc.__traceback__)[1:]  # drop this runner's own frame
    return {
        "errorMessage": str(exc),
        "errorType": type(exc).__name__,
        "requestId": request_id,
        "stackTrace": traceback.format_list(frames),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        event = load_event(args.event)
    except (OSError, json.JSONDecodeError) as exc:
        print(f"invoke.py: cannot read event {args.event!r}: {exc}", file=sys.stderr)
        return 2

    # The handler's own stdout (log lines, EMF metrics) is its log stream, as in
    # Lambda: send it to stderr and keep the real stdout for the result alone.
    result_out = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    sys.stdout.flush()
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    from dotenv import load_dotenv  # local-only: real Lambda gets its environment from the config

    load_dotenv(args.env_file, override=False)
    region = os.environ.setdefault("AWS_REGION", os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    module_name, _, function_name = args.handler.rpartition(".")
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is reported, Lambda-style
        print(f"invoke.py: cannot load handler {args.handler!r}: {exc}", file=sys.stderr)
        return 2

    context = make_context(
        function_name=args.function_name,
        memory_mb=args.memory,
        timeout_s=args.timeout,
        region=region,
        log_stream_name="local",
    )
    try:
        result = handler(event, context)
    except Exception as exc:  # noqa: BLE001 - the runner reports what Lambda would
        print(json.dumps(error_payload(exc, context.aws_request_id), indent=2), file=result_out, flush=True)
        return 1
    print(json.dumps(result, indent=2), file=result_out, flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
