"""Import the handler afresh, as a new execution environment's init phase would.

The handler reads its configuration once, at import. Tests and harnesses that
need several configurations in one process load a new copy of the module each
time, under a unique name, instead of reloading (which would keep stale
module-level state such as the boto session or the presigner).
"""

from __future__ import annotations

import importlib.util
import itertools
import logging
import sys
from pathlib import Path
from types import ModuleType

HANDLER_FILE = Path(__file__).resolve().parent.parent / "lambda_function.py"
_copies = itertools.count()


def import_fresh(label: str, path: Path = HANDLER_FILE) -> ModuleType:
    """Execute ``path`` as a brand-new module named ``<label>_<n>`` and return it."""
    name = f"{label}_{next(_copies)}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


def forget_powertools_logger(service: str) -> None:
    """Powertools configures its named stdlib logger once per process; a fresh import
    must configure it again, bound to the current ``sys.stdout`` (pytest's capture)."""
    stdlib_logger = logging.getLogger(service)
    stdlib_logger.handlers.clear()
    for attribute in ("init", "powertools_handler", "logger_handler"):
        if hasattr(stdlib_logger, attribute):
            delattr(stdlib_logger, attribute)
