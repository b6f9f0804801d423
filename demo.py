"""The whole job end to end on an embedded S3: seed, invoke, fetch, summarise.

Runs ``seed.py`` and ``invoke.py`` as a user would, against moto on a free
loopback port, then follows the presigned URLs the handler returned: the
manifest, and PDFs listed in it. Needs no Docker and no AWS account.
"""

from __future__ import annotations

import sys

from local_dev.venv_guard import ensure_project_python


def main() -> int:
    ensure_project_python("demo.py")  # before anything imports the project's packages
    from local_dev.demo import main as run

    return run(sys.argv[1:])


if __name__ == "__main__":
    raise SystemExit(main())
