"""The tree stays clean under every checker `make lint` runs; CI fails the moment it is not."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BIN = Path(sys.executable).parent
LAYERS = (
    "pdf_manifest",
    "local_runtime",
    "local_dev",
    "testkit",
    "lambda_pytest",
    "tools",
    "bench",
    "reliability",
    "tests",
)


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_check_is_clean():
    done = _run(sys.executable, "-m", "ruff", "check", ".")

    assert done.returncode == 0, done.stdout


def test_ruff_format_is_clean():
    done = _run(sys.executable, "-m", "ruff", "format", "--check", ".")

    assert done.returncode == 0, done.stdout


def test_the_import_contracts_hold():
    """pyproject.toml's [tool.importlinter]: the function and the service import nothing above them."""
    done = _run(str(BIN / "lint-imports"), "--no-cache")

    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"Contracts: \d+ kept, 0 broken", done.stdout)


def test_mypy_is_clean_strict_on_the_function_and_the_service():
    done = _run(sys.executable, "-m", "mypy")

    assert done.returncode == 0, done.stdout + done.stderr


def test_vulture_finds_no_dead_code():
    done = _run(sys.executable, "-m", "vulture")

    assert done.returncode == 0, done.stdout + done.stderr


def _local_imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names & {*LAYERS, "lambda_function", "invoke", "seed", "demo"}


def test_the_handler_module_imports_only_its_own_package():
    """lint-imports takes packages only; lambda_function.py is the one module at the root that ships."""
    assert _local_imports(ROOT / "lambda_function.py") == {"pdf_manifest"}


@pytest.mark.parametrize("script", ["invoke.py", "seed.py", "demo.py"])
def test_the_root_scripts_are_thin_entry_points_into_local_dev(script: str):
    assert _local_imports(ROOT / script) == {"local_dev"}
    assert len((ROOT / script).read_text(encoding="utf-8").splitlines()) < 40


def test_no_file_edits_sys_path_or_silences_import_order():
    """The project is installed (pip install -e .): nothing needs a sys.path shim or an E402 noqa."""
    tracked = _run("git", "ls-files", "*.py").stdout.split()
    offenders = [
        name
        for name in tracked
        if re.search(r"sys\.path\.(insert|append)|sys\.path\s*=|noqa: E402", (ROOT / name).read_text(encoding="utf-8"))
        and name != "tests/tooling/test_lint.py"
    ]
    assert offenders == []


def test_the_layout_page_names_every_top_level_package():
    """docs/reference/layout.md's tree lists each package and no folder that is gone."""
    page = (ROOT / "docs" / "reference" / "layout.md").read_text(encoding="utf-8")
    tree = page.split("```")[1]
    listed = {word.rstrip("/") for line in tree.splitlines() for word in line.split()[:2] if word.endswith("/")}
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}

    assert packages <= listed
    assert all((ROOT / name).is_dir() for name in listed)
