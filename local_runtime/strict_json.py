"""JSON input as Lambda takes it: UTF-8, bounded in size and depth, read only from plain files.

The Invoke API, ``invoke.py --event`` and ``--env-vars`` all take JSON from
people and programs that may send anything. ``json.loads`` alone would guess
UTF-16/32, skip a BOM, accept NaN, raise ``RecursionError`` on deep nesting and
``ValueError`` past 4300 digits; ``open().read()`` would block forever on a FIFO
and never end on ``/dev/zero``. These helpers turn every such input into one
``ValueError`` (or ``OSError``) whose message a one-line error can show.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any, BinaryIO

MAX_JSON_DEPTH = 512  # deeper documents are refused up front rather than failing inside the runtime's decoder
SYNC_PAYLOAD_LIMIT = 6_291_456  # 6 MB: Lambda's limit for a RequestResponse payload


def json_depth_exceeds(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when arrays/objects nest deeper than ``limit`` (iterative: no recursion to exhaust)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json_document(raw: bytes | str, what: str) -> Any:
    """Strict JSON in UTF-8 (``ValueError`` says why not).

    Lambda takes UTF-8 only, and the runtime would fail to decode anything
    else; NaN and Infinity are Python extensions, not JSON; integers beyond
    Python's 4300-digit limit and nesting beyond MAX_JSON_DEPTH are refused
    here rather than in the runtime.
    """
    if isinstance(raw, bytes):
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ValueError(f"{what} is not UTF-8: {exc.reason} at byte {exc.start}") from None
    else:
        text = raw
    if text.startswith("\ufeff"):
        raise ValueError(f"{what} starts with a byte order mark; send plain UTF-8")
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except RecursionError:
        raise ValueError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"{what} is not valid JSON: {exc.msg} (line {exc.lineno}, column {exc.colno})") from None
    except ValueError as exc:  # the 4300-digit integer limit, NaN and Infinity
        raise ValueError(f"{what} is not valid JSON: {str(exc)[:120]}") from None
    if (text.count("[") + text.count("{")) > MAX_JSON_DEPTH and json_depth_exceeds(value):
        raise ValueError(f"{what} nests deeper than {MAX_JSON_DEPTH} levels")
    return value


def read_bounded(source: str | Path | BinaryIO, limit: int, what: str) -> bytes:
    """At most ``limit`` bytes of a regular file (or an open stream), or an error saying why not.

    Only regular files are opened (``os.devnull`` too, as the empty file): a
    FIFO would block the open until a writer came, a device may never end.
    """
    if not isinstance(source, str | Path):
        data = source.read(limit + 1)
        if len(data) > limit:
            raise ValueError(f"{what} is larger than {limit} bytes")
        return data
    path = os.fspath(source)
    if path == os.devnull:
        return b""
    try:
        mode = os.stat(path).st_mode
    except ValueError:  # a NUL in the path
        raise ValueError(f"{what} path contains a NUL byte") from None
    if not stat.S_ISREG(mode):
        kind = "directory" if stat.S_ISDIR(mode) else "FIFO" if stat.S_ISFIFO(mode) else "device or special file"
        raise ValueError(f"{what} is a {kind}, not a regular file")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # never blocks, even if swapped for a FIFO
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            raise ValueError(f"{what} is not a regular file")
        data = stream.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{what} is larger than {limit} bytes")
    return data
