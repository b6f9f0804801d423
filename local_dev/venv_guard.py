"""Scripts started with a Python that lacks the project's packages: re-run under .venv, or say how.

Under the system interpreter ``python invoke.py`` would fail deep inside an
execution environment (``Runtime.ImportModuleError: No module named 'aioboto3'``)
and the fault runner would hang, so every script the README shows calls
:func:`ensure_project_python` first: if a package is missing and ``make install``
has built ``.venv``, the script re-runs itself with ``.venv/bin/python``
(one line on stderr says so); without ``.venv`` it exits with one line naming
the command that fixes it.
"""

from __future__ import annotations

import importlib.util
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
VENV_PYTHON = VENV / "bin" / "python"
# What the handler and the local tools import; requirements-dev.txt installs them all.
PROJECT_MODULES = ("aioboto3", "aiofiles", "aws_lambda_powertools", "boto3", "dotenv", "tqdm", "fpdf")
_REEXEC_MARK = "LAMBDA_LOCAL_RUNNER_REEXEC"
EXIT_NO_ENVIRONMENT = 2


def missing_modules(modules: Sequence[str] = PROJECT_MODULES) -> list[str]:
    return [name for name in modules if importlib.util.find_spec(name) is None]


def in_project_venv() -> bool:
    # Compare prefixes, not executables: .venv/bin/python is a symlink to the base interpreter.
    return Path(sys.prefix).resolve() == VENV.resolve()


def ensure_project_python(prog: str, modules: Sequence[str] = PROJECT_MODULES) -> None:
    """Return if ``modules`` import; else exec ``.venv/bin/python`` with the same arguments, or exit."""
    missing = missing_modules(modules)
    if not missing:
        return
    lacks = f"{sys.executable} lacks {', '.join(missing)}"
    if VENV_PYTHON.exists() and not in_project_venv() and os.environ.get(_REEXEC_MARK) != "1":
        print(f"{prog}: {lacks}; re-running with .venv/bin/python", file=sys.stderr, flush=True)
        argv = [str(VENV_PYTHON), *sys.orig_argv[1:]]
        os.execve(argv[0], argv, {**os.environ, _REEXEC_MARK: "1"})  # noqa: S606 - same script, same arguments
    fix = "run `make install`" if not VENV_PYTHON.exists() else "run `make install` again (it is incomplete)"
    again = shlex.join(sys.orig_argv[1:])
    print(f"{prog}: {lacks}: {fix}, then `.venv/bin/python {again}`", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_NO_ENVIRONMENT)
