"""Who may talk to a local server: the SDKs and runtimes it stands in for, never a web page.

Real Lambda authenticates every call with SigV4; these loopback servers check
no signature, so without a guard any page the developer has open could run the
function (a form post, a no-cors ``fetch``) or, through DNS rebinding, read its
answer, which carries a presigned bearer URL. Two rules close that, and no real
client notices them:

* **No browser.** A browser marks its requests: ``Origin`` on every cross-site
  or state-changing request and ``Sec-Fetch-*`` on every request since 2020.
  boto3, the AWS CLI, awslambdaric and curl send neither, so a request that
  carries one is refused.
* **Only our own name.** ``Host`` must name the address the server listens on
  (``127.0.0.1``, ``localhost`` or ``[::1]``, with the port). A rebinding page
  sends its own host name (``rebind.example:9009``), which is refused even when
  a browser without Fetch Metadata sends no other mark.

Each server answers a refusal in its own API's error shape; this module only
decides and says why, and logs one readable line per refusal.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterable

from aiohttp import web

from local_runtime.display import shown

_log = logging.getLogger(__name__)


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback IP literal; a name that needs DNS is not (it may resolve elsewhere tomorrow)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _with_port(name: str, port: int) -> set[str]:
    shown_name = f"[{name}]" if ":" in name else name
    names = {f"{shown_name}:{port}".lower()}
    if port == 80:  # a client may leave out the default port
        names.add(shown_name.lower())
    return names


def allowed_hosts(port: int, *addresses: str) -> frozenset[str]:
    """The ``Host`` values that name a server listening on ``port`` at any of ``addresses``.

    Loopback: its own literal and ``localhost``. A wildcard address (0.0.0.0,
    ``::``), which serve only binds with an explicit flag: the loopback names
    too, and this machine's host name and addresses. Any other address or name: itself.
    """
    names: set[str] = set()
    for given in addresses:
        bound = given.strip("[]")
        names.add(bound)
        if not _is_ip(bound):
            continue
        address = ipaddress.ip_address(bound)
        if address.is_loopback:
            names.add("localhost")
        if address.is_unspecified:
            names.update(("localhost", "127.0.0.1", "::1"))
            names.update(_this_machine())
    hosts: set[str] = set()
    for name in names:
        hosts |= _with_port(name, port)
    return frozenset(hosts)


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def _this_machine() -> Iterable[str]:
    hostname = socket.gethostname()
    names = {hostname, socket.getfqdn()}
    with contextlib.suppress(OSError):
        names.update(socket.gethostbyname_ex(hostname)[2])
    return names


def refusal(request: web.BaseRequest, hosts: frozenset[str]) -> str | None:
    """Why this request is refused, or None: a browser's marks first, then a foreign ``Host``."""
    origin = request.headers.get("Origin")
    if origin is not None:
        return f"a web page's request (Origin: {shown(origin)})"
    for name, value in request.headers.items():
        if name.lower().startswith("sec-fetch-"):
            return f"a web browser's request ({name}: {shown(value)})"
    host = request.headers.get("Host")
    if host is None:
        return "no Host header"
    if host.lower() not in hosts:
        return f"Host {shown(host)} is not an address this server listens on"
    return None


def log_refusal(server: str, request: web.BaseRequest, reason: str, who: str = "") -> None:
    """One line naming the server, the peer (and its process, where known), the request and the reason."""
    peer = request.transport.get_extra_info("peername") if request.transport else None
    address = f"{peer[0]}:{peer[1]}" if peer else "an unknown peer"
    who = f"{address}, {who}" if who else address
    _log.warning("%s refused %s %s from %s: %s", server, request.method, shown(request.rel_url.raw_path), who, reason)
