"""Which local process is on the other end of a loopback TCP connection.

An environment's Runtime API must serve the runtime it started and nobody
else: any local process (or a browser tab) can reach a loopback port. Lambda's
own Runtime API is reachable only from inside its sandbox; here the closest
check is the caller's process. On Linux the kernel tells: the caller's end of
the connection is a line of ``/proc/net/tcp`` (or ``tcp6``) whose local
address is the peer address the server sees, and that line names the socket's
inode, which appears as ``socket:[inode]`` among the file descriptors of the
process holding it. Only the environment's process and its descendants are
searched for it, so an allowed call costs a few directory listings; the whole
``/proc`` is scanned only to name a refused caller.

Where the platform cannot tell (no ``/proc/net``, a process whose descriptors
may not be read), :func:`identify` says so and the caller decides; the Runtime
API then allows the call and says once that it could not check.
"""

from __future__ import annotations

import ipaddress
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil

_TABLES = ("/proc/net/tcp", "/proc/net/tcp6")
SHOWN_COMMAND_CHARS = 120


@dataclass(frozen=True)
class Peer:
    """What is known of a caller: ``allowed`` is None when the platform could not tell."""

    allowed: bool | None
    pid: int | None = None
    command: str = ""
    why: str = ""

    def describe(self) -> str:
        """``pid 4242 (curl -s http://...)``, or what stood in the way of knowing."""
        if self.pid is None:
            return self.why or "an unknown process"
        return f"pid {self.pid} ({self.command})" if self.command else f"pid {self.pid}"


def _address(text: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, int]:
    """``0100007F:8EA1`` → (127.0.0.1, 36513): each 32-bit word of the address is in host byte order."""
    hex_ip, hex_port = text.split(":")
    raw = bytes.fromhex(hex_ip)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(raw)
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped, int(hex_port, 16)
    return address, int(hex_port, 16)


def _normal(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    address = ipaddress.ip_address(host.split("%", 1)[0])
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def socket_inode(peer: tuple[str, int], server: tuple[str, int]) -> int | None:
    """The inode of the caller's socket; 0 when the connection is listed but no process holds it.

    None when the kernel's tables cannot be read (not Linux). Raises LookupError
    when they can but list no such connection.
    """
    wanted = (_normal(peer[0]), peer[1])
    ours = (_normal(server[0]), server[1])
    readable = False
    for table in _TABLES:
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            try:
                if _address(fields[1]) == wanted and _address(fields[2]) == ours:
                    return int(fields[9])
            except ValueError:
                continue
    if not readable:
        return None
    raise LookupError("the connection is not in the kernel's table")


def _holds(pid: int, inode: int) -> bool:
    """Whether ``pid`` has the socket open; PermissionError when its descriptors may not be read."""
    target = f"socket:[{inode}]"
    try:
        names = os.listdir(f"/proc/{pid}/fd")
    except FileNotFoundError:
        return False
    for name in names:
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}") == target:
                return True
        except OSError:
            continue
    return False


def _command(pid: int) -> str:
    try:
        words = psutil.Process(pid).cmdline()
    except psutil.Error:
        return ""
    command = " ".join(words)
    if len(command) > SHOWN_COMMAND_CHARS:
        command = command[:SHOWN_COMMAND_CHARS] + "..."
    return command.encode("unicode_escape").decode("ascii") if not command.isprintable() else command


def _holder(inode: int) -> int | None:
    """Any process holding the socket (a refused caller, to name it); None if none can be seen."""
    for pid in psutil.pids():
        try:
            if _holds(pid, inode):
                return pid
        except PermissionError:
            continue
    return None


def identify(peer: tuple[str, int], server: tuple[str, int], owner: int) -> Peer:
    """Is the caller at ``peer`` the process ``owner`` or one of its descendants?"""
    try:
        inode = socket_inode(peer, server)
    except LookupError:
        return Peer(False, why="a connection the kernel does not list (closed already)")
    except ValueError:
        return Peer(None, why="a peer address that cannot be read")
    if inode is None:
        return Peer(None, why="this platform does not list connections in /proc/net")
    if inode == 0:
        return Peer(False, why="a connection no process holds any more")
    try:
        family = [owner] + [child.pid for child in psutil.Process(owner).children(recursive=True)]
    except psutil.NoSuchProcess:
        family = []
    unreadable = False
    for pid in family:
        try:
            if _holds(pid, inode):
                return Peer(True, pid, _command(pid))
        except PermissionError:
            unreadable = True
    if unreadable:
        return Peer(None, why="the environment's processes' descriptors cannot be read")
    holder = _holder(inode)
    if holder is None:
        return Peer(False, why="a process this user cannot see")
    return Peer(False, holder, _command(holder))
