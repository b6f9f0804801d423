"""Say when exported variables silently beat ``.env``.

The local scripts read ``.env`` without overriding the process environment (as
real Lambda never lets a file beat its configuration). That is right, but
silent: keys exported for a real AWS account then win over the MinIO keys in
``.env`` and ``make seed`` fails with ``XAdminUserNotFound``. One line naming
the variables (never their values) makes the cause visible.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path


def shadowed(dotenv: Mapping[str, str | None], environ: Mapping[str, str] | None = None) -> list[str]:
    """Names ``.env`` sets that the environment also sets, to a different value."""
    environ = os.environ if environ is None else environ
    return sorted(name for name, value in dotenv.items() if name in environ and environ[name] != (value or ""))


def warn_if_shadowed(prog: str, env_file: str | Path | None, environ: Mapping[str, str] | None = None) -> list[str]:
    """Print one line on stderr when the environment overrides variables of ``env_file``."""
    if not env_file or not Path(env_file).is_file():  # missing, a FIFO or a device: the reader reports those
        return []
    from dotenv import dotenv_values  # local-only dependency

    try:
        names = shadowed(dotenv_values(env_file), environ)
    except (OSError, ValueError):  # unreadable or not UTF-8: the script's own reading of the file says why
        return []
    if names:
        print(
            f"{prog}: the environment overrides {env_file} for {', '.join(names)} (unset them to use {env_file})",
            file=sys.stderr,
            flush=True,
        )
    return names
