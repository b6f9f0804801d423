"""Reload on save for ``invoke.py serve --watch``: a changed file under the task root retires the environments.

Lambda runs new code only in new execution environments (a deploy replaces
them all); this does the same locally without a restart: when a file under the
task root changes, idle environments end at once, busy ones after their
invocation (:meth:`local_runtime.pool.EnvironmentPool.retire_environments`),
and the next invocation cold-starts on the new code. One log line names the
file.

The watching is ``watchfiles`` (Rust ``notify``: inotify, FSEvents, ...), the
watcher uvicorn uses. What a developer's tools write beside the code does not
count: caches, virtual environments, the local S3's data, build output.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

from local_runtime.pool import EnvironmentPool

# Directories under a task root whose changes are not the function's code (the repository is the default task root).
IGNORED_DIRS = (
    ".git",
    ".venv",
    ".lambda313",
    ".lambda313.tmp",
    ".s3-data",
    ".s3-events",
    ".minio-data",
    "__pycache__",
    ".pytest_cache",
    ".mypy_cache",
    ".ruff_cache",
    ".hypothesis",
    ".import_linter_cache",
    "node_modules",
    "dist",
    "build",
    "test-artifacts",
    "out",
)


def _say(message: str) -> None:
    print(f"invoke.py serve: {message}", file=sys.stderr, flush=True)


class Reloader:
    """A background thread that retires the pools' environments whenever the task root changes."""

    def __init__(self, task_root: Path, pools: Iterable[EnvironmentPool], say: Callable[[str], None] = _say) -> None:
        from watchfiles import DefaultFilter

        self.task_root = task_root.resolve()
        self.pools = list(pools)
        self._say = say
        self._stop = threading.Event()
        self._filter = DefaultFilter(ignore_dirs=IGNORED_DIRS)
        self._threads: list[threading.Thread] = []

    def start(self) -> Reloader:
        """Watch the task root itself (its files, saved in place or by rename) and, recursively, each of its
        folders but the ignored ones: no inotify watch is spent on a virtual environment's thousands of folders."""
        folders = [e for e in sorted(self.task_root.iterdir()) if e.is_dir() and e.name not in IGNORED_DIRS]
        plans: list[tuple[list[Path], bool]] = [([self.task_root], False)]
        if folders:
            plans.append((folders, True))
        for paths, recursive in plans:
            ready = threading.Event()
            thread = threading.Thread(
                target=self._run, args=(paths, recursive, ready), name="reload-watch", daemon=True
            )
            thread.start()
            ready.wait(10)
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)

    def _run(self, paths: list[Path], recursive: bool, ready: threading.Event) -> None:
        from watchfiles import watch

        ready.set()
        for changes in watch(
            *paths,
            watch_filter=self._filter,
            stop_event=self._stop,
            recursive=recursive,
            debounce=400,
            step=20,
            rust_timeout=500,
            yield_on_timeout=False,
            raise_interrupt=False,
        ):
            if changes:
                self.changed(sorted({path for _, path in changes}))

    def changed(self, paths: list[str]) -> None:
        idle = busy = 0
        for pool in self.pools:
            ended, later = pool.retire_environments()
            idle, busy = idle + ended, busy + later
        first = Path(paths[0])
        with_others = f" (and {len(paths) - 1} more)" if len(paths) > 1 else ""
        shown = first.relative_to(self.task_root) if first.is_relative_to(self.task_root) else first
        self._say(
            f"{shown}{with_others} changed: {idle} idle environment(s) ended, {busy} busy one(s) end after their "
            "invocation; the next invocation starts cold on the new code"
        )
