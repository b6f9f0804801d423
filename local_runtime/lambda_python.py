"""Where Lambda's Python (3.13) and AWS's runtime client live on this machine.

The function runs under the interpreter the template deploys (``python3.13``),
not the one the tooling runs on. It is looked for the way a user's machine has
it: ``python3.13`` on PATH (a pyenv shim that answers "command not found" does
not count), then pyenv's installed 3.13.x versions. ``make lambda-python``
installs two directories for it, both for Python 3.13:

* ``.lambda313/runtime``: awslambdaric and its dependencies, the part of
  Lambda's ``/var/runtime`` that runs the handler (requirements-lambda-runtime.txt);
* ``.lambda313/layer``: the handler's dependencies (requirements.txt), put on
  ``PYTHONPATH`` as a layer would be, for task roots that do not vendor them
  (this repository); an unpacked zip brings its own and runs without it.

``python -m local_runtime.lambda_python`` prints the interpreter's path (the
Makefile uses it) or one line saying none was found, exit status 1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from functools import cache
from pathlib import Path

LAMBDA_PYTHON = "3.13"
ROOT = Path(__file__).resolve().parent.parent
HOME = Path(os.environ.get("LAMBDA_PYTHON_HOME", ROOT / ".lambda313"))
RUNTIME_DIR = HOME / "runtime"
LAYER_DIR = HOME / "layer"
NOT_FOUND = (
    f"Python {LAMBDA_PYTHON} not found (no working python{LAMBDA_PYTHON} on PATH, no {LAMBDA_PYTHON}.x in "
    f"'pyenv versions'); install it, e.g. 'pyenv install {LAMBDA_PYTHON}', or set LAMBDA_PYTHON=/path/to/python3.13"
)


class LambdaPythonError(RuntimeError):
    """Lambda's Python, or the runtime client installed for it, is missing."""


def _version_of(executable: str) -> str | None:
    """``3.13`` for a working interpreter, None for a missing one or a shim that fails."""
    try:
        done = subprocess.run(
            [executable, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _from_pyenv() -> str | None:
    pyenv = shutil.which("pyenv")
    if pyenv is None:
        return None
    listed = subprocess.run([pyenv, "versions", "--bare"], capture_output=True, text=True, check=False).stdout
    wanted = re.compile(rf"^{re.escape(LAMBDA_PYTHON)}\.(\d+)$")
    versions = sorted(
        (int(match.group(1)), line.strip()) for line in listed.splitlines() if (match := wanted.match(line.strip()))
    )
    for _, version in reversed(versions):  # newest patch release first
        prefix = subprocess.run([pyenv, "prefix", version], capture_output=True, text=True, check=False).stdout
        candidate = Path(prefix.strip()) / "bin" / f"python{LAMBDA_PYTHON}"
        if prefix.strip() and _version_of(str(candidate)) == LAMBDA_PYTHON:
            return str(candidate)
    return None


@cache
def find_interpreter() -> str:
    """The python3.13 to run functions with: $LAMBDA_PYTHON, PATH, then pyenv."""
    override = os.environ.get("LAMBDA_PYTHON")
    if override:
        if _version_of(override) != LAMBDA_PYTHON:
            raise LambdaPythonError(f"LAMBDA_PYTHON={override} is not a working Python {LAMBDA_PYTHON}")
        return override
    on_path = shutil.which(f"python{LAMBDA_PYTHON}")
    if on_path and _version_of(on_path) == LAMBDA_PYTHON:
        return on_path
    found = _from_pyenv()
    if found is None:
        raise LambdaPythonError(NOT_FOUND)
    return found


def check_runtime_installed() -> None:
    """Fail in one line when ``make lambda-python`` has not been run."""
    if not (RUNTIME_DIR / "awslambdaric" / "__main__.py").is_file():
        raise LambdaPythonError(
            f"AWS's runtime client for Python {LAMBDA_PYTHON} is not installed in {RUNTIME_DIR}; "
            "run 'make lambda-python'"
        )


def main() -> int:
    try:
        print(find_interpreter())
    except LambdaPythonError as exc:
        print(exc, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
