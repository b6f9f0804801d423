"""bench/ output: a benchmark run writes to an ignored folder and leaves the committed results alone."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import ROOT


def test_benchmarks_write_to_an_ignored_folder_unless_recording(monkeypatch):
    from bench import output

    monkeypatch.delenv("RECORD", raising=False)
    assert output.results_path("scan.json") == ROOT / "bench" / "out" / "scan.json"
    assert output.graphs_dir() == ROOT / "bench" / "out" / "graphs"
    ignored = subprocess.run(["git", "check-ignore", "-q", "bench/out/scan.json"], cwd=ROOT, check=False)
    assert ignored.returncode == 0
    monkeypatch.setenv("RECORD", "1")
    assert output.results_path("scan.json") == ROOT / "bench" / "results" / "scan.json"
    assert output.graphs_dir() == ROOT / "docs" / "graphs"


def test_a_presign_bench_run_changes_no_tracked_file():
    env = {k: v for k, v in os.environ.items() if k != "RECORD"}
    before = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout

    done = subprocess.run(
        [sys.executable, "bench/presign_bench.py", "--seconds", "0.05", "--repeats", "1"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert "wrote bench/out/presign.json" in done.stdout
    after = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True).stdout
    assert after == before
