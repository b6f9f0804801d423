"""Sample events by name (``s3-object-created``) or by path, for the CLI, tests and docs.

Keeping them as plain JSON files under ``events/`` means the same files work
with ``invoke.py --event``, ``aws lambda invoke --payload fileb://...`` and SAM.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from local_runtime.strict_json import SYNC_PAYLOAD_LIMIT, parse_json_document, read_bounded

EVENTS_DIR = Path(__file__).resolve().parent.parent / "events"


def event_path(name_or_path: str | Path) -> Path:
    """A path as given if it exists, else ``events/<name>`` or ``events/<name>.json``."""
    path = Path(name_or_path)
    if "\0" in str(path) or path.exists() or path.is_symlink():
        return path
    for candidate in (EVENTS_DIR / path.name, EVENTS_DIR / f"{path.name}.json"):
        if candidate.is_file():
            return candidate
    return path  # reading it raises the FileNotFoundError that names what was asked for


def load_event(name_or_path: str | Path | None, limit: int = SYNC_PAYLOAD_LIMIT) -> Any:
    """The event as a Python value: ``None`` is the empty event ``{}``, ``-`` reads stdin.

    At most ``limit`` bytes (Lambda's 6 MB payload limit) of a regular file or
    stdin are read, as strict UTF-8 JSON; anything else raises ``ValueError``
    (or ``OSError``) with a message fit for a one-line error.
    """
    if name_or_path is None:
        return {}
    if str(name_or_path) == "-":
        return parse_json_document(read_bounded(sys.stdin.buffer, limit, "stdin"), "the event")
    return parse_json_document(read_bounded(event_path(name_or_path), limit, "the event file"), "the event")


def sample_events() -> list[str]:
    return sorted(path.stem for path in EVENTS_DIR.glob("*.json"))
