"""Fill a bucket prefix with PDFs so the handler has something to scan.

With ``--source-dir`` it uploads a directory tree; without one it generates
small, valid PDFs (plus a few non-PDF decoys the handler must skip, and the
PDFs the sample events in events/ name), so the demo and every sample event
work with nothing on disk. Objects already present with the same bytes
are skipped, so re-running is cheap.
"""

from __future__ import annotations

import sys

from local_dev.venv_guard import ensure_project_python


def main() -> int:
    ensure_project_python("seed.py")  # before anything imports the project's packages
    from local_dev.seed import main as run

    return run(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
