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

import sys

from local_dev.venv_guard import ensure_project_python


def main() -> int:
    ensure_project_python("invoke.py")  # before anything imports the project's packages
    from local_dev.invoke_cli import main as run

    return run(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
