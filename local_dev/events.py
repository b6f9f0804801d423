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


SUBPREFIX_PDFS = ("agenda.pdf", "minutes.PDF")  # what a sample event's own sub-prefix gets when seeded


def keys_named_by_samples(bucket: str, prefix: str) -> list[str]:
    """PDF keys under ``prefix`` that the sample events need to find something.

    seed.py uploads these next to its generated reports, so every file in
    ``events/`` finds PDFs in a freshly seeded bucket: an S3 notification's own
    keys, and a couple of PDFs under any narrower prefix an event scans. The
    samples are written for one bucket (the default ``BUCKET_NAME``); seeding
    any other bucket, or another prefix, adds nothing.
    """
    from pdf_manifest.scan_request import BadRequest, parse_event  # the handler's own reading of an event

    unnamed = ""  # stands for "the function's BUCKET_NAME" in events that name no bucket
    requests = []
    for name in sample_events():
        try:
            requests.append(
                parse_event(
                    load_event(name),
                    default_bucket=unnamed,
                    default_prefix=prefix,
                    allowed_buckets=frozenset({bucket, unnamed}),
                )
            )
        except BadRequest:
            continue  # names another bucket
    if bucket not in {request.bucket for request in requests}:
        return []
    keys: list[str] = []
    for request in requests:
        if request.keys is not None:
            keys += [key for key in request.keys if key.startswith(prefix) and key.lower().endswith(".pdf")]
        elif request.prefix.startswith(prefix) and request.prefix != prefix:
            keys += [request.prefix + leaf for leaf in SUBPREFIX_PDFS]
    return sorted(set(keys))
