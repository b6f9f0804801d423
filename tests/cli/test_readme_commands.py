"""Every ```bash block of README.md runs as written, in order, in a scratch copy of the repository.

A newcomer follows the README literally, so the page is tested the
same way: its shell blocks become one bash script, run in one shell as a user
would in one terminal, in a copy of the working tree (with ``.venv`` linked in,
so nothing is installed again). Each command must end with exit status 0, or
with the status its own comment announces (``# exit status 1: ...``).

What the test changes, and why:
* ``make test`` is skipped: it is the suite this test is part of;
* the ports the page names (9000/9001 for the local S3, 9009 for the Invoke API)
  become free ones, through ``S3_ADDR`` / ``CONSOLE_ADDR`` and in the commands,
  so parallel runs and a developer's own ``make up`` are left alone;
* ``LOCAL_S3=native``: the S3 under test is versitygw even where Docker runs;
* ``DRY_RUN=1`` and dummy credentials: the AWS targets print their commands and
  nothing can reach AWS;
* the developer's own AWS_*/S3_* settings are dropped: ``.env`` decides, as on a fresh clone.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.verifying_s3 import binary_path, free_port

README = ROOT / "README.md"
BLOCK = re.compile(r"^```bash\n(.*?)^```", re.DOTALL | re.MULTILINE)
EXPECTED_STATUS = re.compile(r"#.*\bexit status (\d+)")
SKIPPED = {"make test": "the suite this test runs in"}
PAGE_PORTS = (9000, 9001, 9009)
LINKED = (".venv", ".lambda313")
NOT_COPIED = {".git", *LINKED, ".env", ".s3-data", "test-artifacts", "dist", "build", "out.json"}
OWN_SETTINGS_PREFIXES = ("AWS_", "S3_", "MAKE", "MFLAGS", "GNUMAKE")
OWN_SETTINGS = {"BUCKET_NAME", "PREFIX", "ALLOWED_BUCKETS", "URL_EXPIRY_SECONDS", "QUEUE_MAX", "SOURCE_DIR", "RECORD"}
OWN_SETTINGS |= {"LOCAL_S3", "CONSOLE_ADDR", "VERIFIER_ADDR", "EVENT", "PORT", "DRY_RUN", "YES", "DEADLINE_MARGIN_MS"}
OWN_SETTINGS |= {"BRIDGE_ADDR", "DEBUG_PORT"}
OWN_SETTINGS |= {"MEMORY_SIZE", "TIMEOUT", "LOG_LEVEL"}


def readme_commands(text: str) -> list[str]:
    """Logical command lines of every bash block (backslash continuations joined), comments kept."""
    commands: list[str] = []
    for block in BLOCK.findall(text):
        pending = ""
        for line in block.splitlines():
            if line.endswith("\\"):
                pending += line + "\n"
                continue
            command = pending + line
            pending = ""
            if command.strip() and not command.lstrip().startswith("#"):
                commands.append(command)
    return commands


def bare(command: str) -> str:
    """The command without its trailing comment (good enough for the page's own lines)."""
    return command.split(" #", 1)[0].strip()


def script(commands: list[str], ports: dict[int, int]) -> str:
    lines = ["set -u"]
    for number, command in enumerate(commands, 1):
        if bare(command) in SKIPPED:
            lines.append(f"echo '### README command {number} skipped: {SKIPPED[bare(command)]}' >&2")
            continue
        for page_port, port in ports.items():
            command = re.sub(rf"(?<![0-9]){page_port}(?![0-9])", str(port), command)
        match = EXPECTED_STATUS.search(command)
        expected = int(match.group(1)) if match else 0
        lines += [
            f"echo {shlex.quote(f'### README command {number}: {command}')} >&2",
            command,
            "__status=$?",
            f'if [ "$__status" != {expected} ]; then '
            f'echo "### README command {number} ended with exit status $__status, not {expected}" >&2; exit 97; fi',
        ]
    return "\n".join(lines) + "\n"


def copy_working_tree(target: Path) -> Path:
    """The files git knows or would add (as edited, with their times, so make sees .venv as current)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if name.split("/", 1)[0] in NOT_COPIED or not source.is_file():
            continue
        (target / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target / name, follow_symlinks=False)
    for installed in LINKED:  # what make installs, shared rather than installed again
        if (ROOT / installed).exists():
            (target / installed).symlink_to(ROOT / installed)
    return target


def test_the_readme_has_the_commands_this_test_expects():
    commands = [bare(c) for c in readme_commands(README.read_text())]

    assert commands[:2] == ["make demo", "make test"]
    for needed in ("make up", "make seed", "make invoke", "make down"):
        assert needed in commands
    assert any(c.endswith("--payload fileb://events/direct.json out.json") for c in commands)
    assert not [c for c in commands if c.startswith(("python ", "python3 "))], "use .venv/bin/python"
    assert not [c for c in commands if "--cli-binary-format" in c], "the .venv AWS CLI is v1"


@pytest.mark.s3verify
@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    if not binary_path().exists():
        pytest.skip(f"make up needs versitygw: run make s3-verifier (expected at {binary_path()})")
    root = copy_working_tree(tmp_path / "repo")
    ports = {page_port: free_port() for page_port in PAGE_PORTS}
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(OWN_SETTINGS_PREFIXES) and name not in OWN_SETTINGS
    }
    env.update(
        LOCAL_S3="native",
        S3_ADDR=f"127.0.0.1:{ports[9000]}",
        CONSOLE_ADDR=f"127.0.0.1:{ports[9001]}",
        VERIFIER_ADDR=f"127.0.0.1:{ports[9000]}",
        BRIDGE_ADDR=f"127.0.0.1:{free_port()}",
        DRY_RUN="1",
    )
    (root / "run-readme.sh").write_text(script(readme_commands(README.read_text()), ports))

    process = subprocess.Popen(
        ["bash", "run-readme.sh"],
        cwd=root,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=420)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # a background server the script did not stop
        subprocess.run(["make", "down"], cwd=root, env=env, capture_output=True, timeout=60, check=False)

    output = f"--- stdout\n{stdout[-6000:]}\n--- stderr\n{stderr[-12000:]}"
    assert process.returncode == 0, output
    assert "Demo passed" in stdout, output
    assert "ScanDeadlineExceeded" in stdout and "Sandbox.Timedout" in stdout, output
    invoked = (root / "out.json").read_text()
    assert '"StatusCode"' not in invoked  # the last out.json is the aws CLI's payload file, the function's answer
    assert '"statusCode": 200' in invoked, invoked
