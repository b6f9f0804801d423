"""A scratch copy of the repository to run the real ``make up / seed / invoke`` in.

The tests drive the sandbox exactly as a user does, through make, but never in
the worktree itself: ``make up`` writes ``.env`` and ``.s3-data/`` next to the
Makefile, and a developer's own ``make up`` may be running there. A copy (with
the worktree's ``.venv`` linked in, so nothing is installed again) gets free
ports, its own ``.env`` and data, and is thrown away afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ROOT
from tests.verifying_s3 import free_port

NOT_COPIED = {".git", ".venv", ".env", ".s3-data", "test-artifacts", "dist", "build", "__pycache__"}
NOT_COPIED_GLOBS = (".pytest_cache", ".ruff_cache", ".mypy_cache", ".import_linter_cache", ".hypothesis", "*.pyc")
# Settings a developer's shell may carry that must not reach the sandbox: its .env decides.
OWN_SETTINGS_PREFIXES = ("AWS_", "S3_", "MAKE", "MFLAGS", "GNUMAKE")
OWN_SETTINGS = {
    "BUCKET_NAME",
    "PREFIX",
    "URL_EXPIRY_SECONDS",
    "QUEUE_MAX",
    "ALLOWED_BUCKETS",
    "LOCAL_S3",
    "CONSOLE_ADDR",
    "VERIFIER_ADDR",
    "SOURCE_DIR",
    "BRIDGE_ADDR",
    "DEBUG_PORT",
}


def copy_repository(target: Path) -> Path:
    ignore = shutil.ignore_patterns(*NOT_COPIED, *NOT_COPIED_GLOBS)
    shutil.copytree(ROOT, target, ignore=ignore, symlinks=True, copy_function=_copy_unless_gone)
    (target / ".venv").symlink_to(ROOT / ".venv")
    return target


def _copy_unless_gone(source: str, target: str) -> None:
    """Copy a file, skipping one that vanished meanwhile: other tests run alongside (a linter's
    cache journal, a build's temporary file), and a copy of the repository does not need them."""
    with contextlib.suppress(FileNotFoundError):
        shutil.copy2(source, target)


def clean_environment() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(OWN_SETTINGS_PREFIXES) and name not in OWN_SETTINGS
    }


def json_document(text: str) -> Any:
    """The first JSON object in make's output (make echoes the command line before it)."""
    return json.JSONDecoder().raw_decode(text[text.index("{") :])[0]


@dataclass
class Sandbox:
    """A repository copy with its own ports; ``make`` runs the real targets in it."""

    root: Path
    s3_port: int
    console_port: int
    env: dict[str, str]

    @classmethod
    def create(cls, target: Path, **settings: str) -> Sandbox:
        root = copy_repository(target)
        s3_port, console_port = free_port(), free_port()
        while console_port == s3_port:
            console_port = free_port()
        env = {
            **clean_environment(),
            # Native versitygw even where a Docker engine runs: it is the server under test.
            "LOCAL_S3": "native",
            "S3_ADDR": f"127.0.0.1:{s3_port}",
            "CONSOLE_ADDR": f"127.0.0.1:{console_port}",
            "BRIDGE_ADDR": f"127.0.0.1:{free_port()}",  # the S3 event bridge make up starts first
        }
        sandbox = cls(root, s3_port, console_port, env)
        if settings:
            sandbox.write_env(**settings)
        return sandbox

    # Bound to 127.0.0.1, named localhost: as make up prints them and .env.example spells them.
    @property
    def endpoint(self) -> str:
        return f"http://localhost:{self.s3_port}"

    @property
    def console(self) -> str:
        return f"http://localhost:{self.console_port}"

    def write_env(self, **settings: str) -> None:
        """The user's .env: .env.example with some lines changed, pointing at this sandbox's port."""
        lines = (self.root / ".env.example").read_text().splitlines()
        settings = {"S3_ENDPOINT_URL": self.endpoint, **settings}
        kept = [line for line in lines if line.split("=", 1)[0] not in settings]
        (self.root / ".env").write_text("\n".join([*kept, *(f"{k}={v}" for k, v in settings.items())]) + "\n")

    def make(self, *args: str, env: dict[str, str] | None = None, timeout: float = 90) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["make", "--no-print-directory", *args],
            cwd=self.root,
            env={**self.env, **(env or {})},
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def record(self) -> dict[str, Any] | None:
        path = self.root / ".s3-data" / "versitygw.json"
        return json.loads(path.read_text()) if path.is_file() else None
