"""local_dev.venv_guard: the wrong interpreter is told what to run, a base one re-runs under .venv."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from local_dev import venv_guard
from tests.conftest import ROOT


def test_a_python_without_the_packages_is_told_what_to_run(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr(venv_guard, "VENV_PYTHON", tmp_path / "no-venv" / "bin" / "python")
    monkeypatch.setattr(sys, "orig_argv", ["python3", "invoke.py", "--repeat", "3"])

    with pytest.raises(SystemExit) as stopped:
        venv_guard.ensure_project_python("invoke.py", modules=("json", "no_such_module_for_issue_18"))

    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "lacks no_such_module_for_issue_18" in err
    assert "run `make install`, then `.venv/bin/python invoke.py --repeat 3`" in err


def test_the_project_python_passes_the_check():
    venv_guard.ensure_project_python("invoke.py")  # returns: every package is installed here


def test_a_base_python_re_runs_the_script_under_the_venv():
    base = Path(getattr(sys, "_base_executable", sys.executable))
    probe = subprocess.run(
        [str(base), "-c", "import importlib.util as u; print(u.find_spec('aioboto3') is None)"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.stdout.strip() != "True" or not venv_guard.VENV_PYTHON.exists():
        pytest.skip("needs a base interpreter without the packages and the project's .venv")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}

    done = subprocess.run([str(base), "invoke.py", "--help"], cwd=ROOT, env=env, capture_output=True, text=True)

    assert done.returncode == 0, done.stderr
    assert "re-running with .venv/bin/python" in done.stderr
    assert "usage: invoke.py" in done.stdout
