"""Where a benchmark run writes: a scratch folder, unless ``RECORD=1`` asks to update the committed results.

``bench/results/*.json`` and the ``docs/graphs/bench-*.svg`` the study site
shows are the recorded runs (the million-key scan takes minutes on a quiet
machine); a quick ``make bench-scan`` must not replace them. So by default
every run goes to ``bench/out/`` (ignored by git) and only ``RECORD=1``
writes over the committed files.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RECORDED_RESULTS = ROOT / "bench" / "results"
RECORDED_GRAPHS = ROOT / "docs" / "graphs"
SCRATCH = ROOT / "bench" / "out"


def recording() -> bool:
    return os.environ.get("RECORD", "").strip().lower() in {"1", "true", "yes"}


def results_dir() -> Path:
    """``bench/results`` with RECORD=1, else ``bench/out``."""
    return RECORDED_RESULTS if recording() else SCRATCH


def results_path(name: str) -> Path:
    """``bench/results/<name>`` with RECORD=1, else ``bench/out/<name>``."""
    return results_dir() / name


def graphs_dir() -> Path:
    """``docs/graphs`` with RECORD=1, else ``bench/out/graphs``."""
    return RECORDED_GRAPHS if recording() else SCRATCH / "graphs"


def write_report(path: Path, report: dict[str, Any]) -> None:
    """Write one run's JSON and say where, relative to the repository when it is inside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
