"""MemorySize enforced, Max Memory Used measured, and the freeze between invocations.

Lambda puts an execution environment in a memory cgroup of MemorySize: every
process in it counts, and past the limit the kernel kills the runtime
(``Runtime.OutOfMemory``, "Runtime exited with error: signal: killed", REPORT
Max Memory Used = Memory Size). /tmp does not count. Two ways to do that here:

* **A delegated cgroup v2** (root on a pure cgroup v2 host, or a user slice
  handed over with ``systemd-run --user --scope -p Delegate=yes``): each
  environment gets its own cgroup with ``memory.swap.max`` 0 and ``pids.max``
  1,024. Its /tmp is a tmpfs, and tmpfs pages are charged to the writer's
  cgroup, so ``memory.max`` is MemorySize + EphemeralStorage: a full /tmp ends
  in ENOSPC, never in an out-of-memory kill. The watch below then enforces
  MemorySize on ``memory.current`` minus the cgroup's shmem (its /tmp), which is
  what Lambda counts, and reports its peak. Used only where the cgroup is
  delegated (owned by this user, or marked ``trusted.delegate``/``user.delegate``
  by systemd) and has the memory controller; ``LAMBDA_CGROUP=off`` turns it off,
  ``LAMBDA_CGROUP=/sys/fs/cgroup/...`` names a delegated parent directly.
* **A watch over every process of the environment** (everywhere else, and on
  this project's CI machines, whose cgroups belong to their supervisor): one
  thread samples each running environment every 20 ms (its process tree is
  re-read every 200 ms), sums the processes' resident memory and kills the whole
  environment when the sum passes MemorySize, or when one process's own peak
  (VmHWM, kept by the kernel) did, so an allocation made and freed between two
  samples is caught too. When several processes share pages (a fork), the sum
  is checked against their proportional set sizes before killing. tmpfs pages
  are not in anyone's resident memory, so /tmp does not count, as on Lambda.

Frozen environments are not sampled: nothing in them runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from functools import cache
from pathlib import Path

_SAMPLE_S = 0.02
_TREE_EVERY = 10  # samples between two reads of the process tree
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_MB = 1 << 20


# -- the delegated cgroup v2 ---------------------------------------------------------------------


def _cgroup2_mounted() -> bool:
    try:
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            fields = line.split(" - ")
            if len(fields) == 2 and fields[0].split()[4] == str(_CGROUP_ROOT) and fields[1].startswith("cgroup2 "):
                return True
    except (OSError, IndexError):
        pass
    return False


def _delegated(path: Path) -> bool:
    for attribute in ("trusted.delegate", "user.delegate"):
        with contextlib.suppress(OSError, AttributeError):
            if os.getxattr(path, attribute) == b"1":
                return True
    with contextlib.suppress(OSError):
        return os.getuid() != 0 and path.stat().st_uid == os.getuid()
    return False


def _usable(path: Path) -> bool:
    try:
        controllers = (path / "cgroup.controllers").read_text().split()
    except OSError:
        return False
    return "memory" in controllers and "pids" in controllers and os.access(path, os.W_OK)


@cache
def delegated_cgroup() -> Path | None:
    """The delegated cgroup v2 directory environments go under, or None (reads only; changes nothing)."""
    setting = os.environ.get("LAMBDA_CGROUP", "auto")
    if setting == "off" or not _cgroup2_mounted():
        return None
    if setting != "auto":
        path = Path(setting)
        return path if path.is_relative_to(_CGROUP_ROOT) and _usable(path) else None
    try:
        own = next(line[3:] for line in Path("/proc/self/cgroup").read_text().splitlines() if line.startswith("0::"))
    except (OSError, StopIteration):
        return None
    path = _CGROUP_ROOT / own.lstrip("/")
    return path if _usable(path) and _delegated(path) else None


def no_cgroup_reason() -> str:
    setting = os.environ.get("LAMBDA_CGROUP", "auto")
    if setting == "off":
        return "LAMBDA_CGROUP=off"
    if not _cgroup2_mounted():
        return f"no cgroup v2 at {_CGROUP_ROOT}"
    return "no delegated cgroup v2 with the memory and pids controllers"


_runner_moved = threading.Lock()
_runner_leaf: list[Path] = []


def make_cgroup(name: str, memory_mb: int, tmp_mb: int) -> Path | None:
    """A cgroup for one environment under the delegated one; None when there is none.

    cgroup v2 allows controllers only for children of a cgroup with no process of
    its own, so the first call moves this runner into a ``runner`` leaf of the
    delegated cgroup (what a delegation is for) and enables memory and pids.
    """
    parent = delegated_cgroup()
    if parent is None:
        return None
    with _runner_moved:
        if not _runner_leaf and os.environ.get("LAMBDA_CGROUP", "auto") == "auto":
            leaf = parent / "runner"
            leaf.mkdir(exist_ok=True)
            for pid in (parent / "cgroup.procs").read_text().split():
                with contextlib.suppress(OSError):  # gone, or a thread of a process already moved
                    (leaf / "cgroup.procs").write_text(pid)
            _runner_leaf.append(leaf)
        (parent / "cgroup.subtree_control").write_text("+memory +pids")
    path = parent / f"lambda-env-{name}"
    path.mkdir()
    (path / "memory.max").write_text(str((memory_mb + tmp_mb) * _MB))
    (path / "memory.swap.max").write_text("0")
    (path / "pids.max").write_text("1024")
    return path


def remove_cgroup(path: Path) -> None:
    with contextlib.suppress(OSError):
        (path / "cgroup.kill").write_text("1")
    for _ in range(50):
        try:
            path.rmdir()
            return
        except OSError:
            time.sleep(0.01)


def _cgroup_used(path: Path) -> int | None:
    """Bytes Lambda would count: the cgroup's memory less its shmem (its /tmp)."""
    try:
        current = int((path / "memory.current").read_text())
        stat = (path / "memory.stat").read_text().splitlines()
        shmem = next(int(line.split()[1]) for line in stat if line.startswith("shmem "))
    except (OSError, ValueError, StopIteration):
        return None
    return max(0, current - shmem)


# -- the process tree ----------------------------------------------------------------------------


def _parents() -> dict[int, int]:
    """pid -> parent pid for every process (one pass over /proc)."""
    parents: dict[int, int] = {}
    with contextlib.suppress(OSError):
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            try:
                with open(f"/proc/{entry.name}/stat", "rb") as handle:
                    stat = handle.read()
                parents[int(entry.name)] = int(stat[stat.rindex(b")") + 2 :].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    return parents


def children_map() -> dict[int, list[int]]:
    """parent pid -> its children, for every process."""
    children: dict[int, list[int]] = {}
    for pid, parent in _parents().items():
        children.setdefault(parent, []).append(pid)
    return children


def tree(root: int, children: dict[int, list[int]] | None = None) -> list[int]:
    """``root`` and every process descended from it (``children``: a map read once for many roots)."""
    if not Path("/proc/self/stat").exists():  # macOS: psutil walks it
        try:
            import psutil

            process = psutil.Process(root)
            return [root, *(child.pid for child in process.children(recursive=True))]
        except Exception:  # noqa: BLE001 - gone
            return []
    if children is None:
        children = children_map()
    found, queue = [], [root]
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue.extend(children.get(pid, ()))
    return found


def _status(pid: int) -> tuple[int, int]:
    """(resident, peak resident) bytes of one process; zeros when it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            text = handle.read()
    except OSError:
        return _status_psutil(pid)
    rss = hwm = 0
    for line in text.splitlines():
        if line.startswith(b"VmRSS:"):
            rss = int(line.split()[1]) * 1024
        elif line.startswith(b"VmHWM:"):
            hwm = int(line.split()[1]) * 1024
    return rss, hwm


def _status_psutil(pid: int) -> tuple[int, int]:
    try:
        import psutil

        rss = psutil.Process(pid).memory_info().rss
    except Exception:  # noqa: BLE001 - gone, or no psutil
        return 0, 0
    return rss, rss


def _proportional(pids: list[int]) -> int:
    """Sum of proportional set sizes: shared pages split between the processes sharing them."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
                    break
        except (OSError, ValueError):
            total += _status(pid)[0]
    return total


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, sig)


# -- the watch -----------------------------------------------------------------------------------


class MemoryWatch:
    """One environment's memory: its peak, the limit, the kill, the freeze."""

    def __init__(self, root_pid: int, limit_mb: int, cgroup: Path | None = None) -> None:
        self.root_pid = root_pid
        self.limit = limit_mb * _MB
        self.cgroup = cgroup
        self.peak = 0
        self.oom_killed = False
        self.frozen = False
        self._pids = [root_pid]
        self._samples = 0
        self._lock = threading.Lock()
        _WATCHER.add(self)

    @property
    def peak_mb(self) -> int:
        return max(1, round(self.peak / _MB)) if self.peak else 0

    @property
    def young(self) -> bool:
        return self._samples < 10 and not self.frozen and self.cgroup is None

    def pids(self) -> list[int]:
        with self._lock:
            self._pids = tree(self.root_pid) or [self.root_pid]
            return list(self._pids)

    def sample(self, children: dict[int, list[int]] | None) -> None:
        """Measure once (``children``: a fresh process map, or None to keep the known pids); kill past the limit."""
        with self._lock:
            if self.oom_killed:
                return
            self._samples += 1
            if self.cgroup is not None:
                used = _cgroup_used(self.cgroup) or 0
                over = used > self.limit
            else:
                if children is not None:
                    self._pids = tree(self.root_pid, children) or [self.root_pid]
                figures = [_status(pid) for pid in self._pids]
                used = sum(rss for rss, _ in figures)
                single_peak = max((hwm for _, hwm in figures), default=0)
                over = single_peak > self.limit
                if used > self.limit and not over:
                    over = len(self._pids) == 1 or _proportional(self._pids) > self.limit
                used = max(used, single_peak)
            self.peak = max(self.peak, min(used, self.limit) if over else used)
            if over and not self.frozen:  # a frozen process cannot grow; its peak was caught while it ran
                self.oom_killed = True
                self.peak = self.limit
                self._kill_locked()

    def _kill_locked(self) -> None:
        if self.cgroup is not None:
            with contextlib.suppress(OSError):
                (self.cgroup / "cgroup.kill").write_text("1")
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.root_pid, signal.SIGKILL)
        signal_all(self._pids, signal.SIGKILL)

    def freeze(self) -> None:
        """SIGSTOP every process, until no new one appears (a stopped process cannot fork)."""
        with self._lock:
            self.frozen = True
            # The process group first, in one call (the runtime leads it): none of its members can fork after.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.root_pid, signal.SIGSTOP)
            known: set[int] = set()
            while True:  # then whatever left the group (setsid): stopped, and looked for again until none is new
                current = set(tree(self.root_pid))
                outside = [pid for pid in current - known if _group(pid) != self.root_pid]
                known |= current
                if not outside:
                    break
                signal_all(outside, signal.SIGSTOP)
            self._pids = sorted(known) or [self.root_pid]

    def thaw(self) -> None:
        with self._lock:
            if not self.frozen:
                return
            signal_all(self._pids, signal.SIGCONT)
            self.frozen = False

    def close(self) -> None:
        _WATCHER.remove(self)


class _Watcher:
    """One thread for every environment in the process: cheaper than one each under a cold wave."""

    def __init__(self) -> None:
        self._watches: set[MemoryWatch] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, watch: MemoryWatch) -> None:
        with self._lock:
            self._watches.add(watch)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="memory-watch", daemon=True)
                self._thread.start()

    def remove(self, watch: MemoryWatch) -> None:
        with self._lock:
            self._watches.discard(watch)

    def _run(self) -> None:
        count = 0
        while True:
            time.sleep(_SAMPLE_S)
            count += 1
            with self._lock:
                watches = list(self._watches)
            if not watches:
                continue
            # One pass over /proc serves every environment; a young one (its runtime still starting) is re-read
            # at every sample, so a fast allocation right after spawn is seen at once.
            fresh = count % _TREE_EVERY == 0 or any(watch.young for watch in watches)
            children = children_map() if fresh else None
            for watch in watches:
                if watch.frozen:
                    continue
                try:
                    watch.sample(children)
                except Exception:  # noqa: BLE001, S112 - one environment's hiccup must not stop the others'
                    continue


_WATCHER = _Watcher()
