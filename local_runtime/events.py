"""Sample events by name (``s3-object-created``) or by path, for the CLI, tests and docs.

Keeping them as plain JSON files under ``events/`` means the same files work
with ``invoke.py --event``, ``aws lambda invoke --payload fileb://...`` and SAM.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def event_path(name_or_path: str | Path) -> Path:
    """A path as given if it exists, else ``events/<name>`` or ``events/<name>.json``."""
    path = Path(name_or_path)
    if path.exists():
        return path
    for candidate in (EVENTS_DIR / path.name, EVENTS_DIR / f"{path.name}.json"):
        if candidate.is_file():
            return candidate
    return path  # reading it raises the FileNotFoundError that names what was asked for


def load_event(name_or_path: str | Path | None) -> Any:
    """The event as a Python value: ``None`` is the empty event ``{}``, ``-`` reads stdin."""
    if name_or_path is None:
        return {}
    if str(name_or_path) == "-":
        return json.loads(sys.stdin.read())
    return json.loads(event_path(name_or_path).read_text(encoding="utf-8"))


def sample_events() -> list[str]:
    return sorted(path.stem for path in EVENTS_DIR.glob("*.json"))
