"""Does the S3 endpoint a local run points at answer at all?

A handler whose S3 is down does not fail fast: botocore retries the
connection with backoff, and a short function timeout then reports only
"Task timed out". One TCP connect before invoking turns that into one line
naming the endpoint and what to start.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from local_runtime.http_guard import is_loopback

PROBE_TIMEOUT_S = 1.0


def _host_and_port(url: str) -> tuple[str, int] | None:
    """Where ``url`` connects to, or None for anything that is not an http(s) URL with a host."""
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        return None
    return parts.hostname, port


def endpoint_problem(url: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """``None`` when something accepts TCP connections at ``url``; else why not, as a clause."""
    address = _host_and_port(url)
    if address is None:
        return "is not a URL like http://localhost:9000"
    try:
        with socket.create_connection(address, timeout=timeout):
            return None
    except OSError as exc:
        return f"does not answer ({exc.strerror or exc})"


def refused_on_loopback(url: str) -> bool:
    """The endpoint is on this machine and nothing listens there: retrying it is only waiting.

    botocore's standard retries back off for about 20 s in all before giving up
    on a refused connection; a loopback server that is down now will not be up
    by then, so a one-shot run can try it once and say why at once.
    """
    address = _host_and_port(url)
    if address is None or not is_loopback(address[0]):
        return False
    try:
        with socket.create_connection(address, timeout=PROBE_TIMEOUT_S):
            return False
    except ConnectionRefusedError:
        return True
    except OSError:
        return False
