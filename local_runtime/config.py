"""What the Lambda service knows about a function, and the environment it derives from it.

Real Lambda builds a function's process environment from two sources: the
variables you configured, and the reserved ones it sets itself (and which you
cannot override). Keeping that derivation in one place lets the CLI, the
Invoke API and the tests agree on exactly what a handler sees at import time.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_runtime.debugger import DEBUG_DIR, DebugOptions
from local_runtime.lambda_python import LAMBDA_PYTHON, LAYER_DIR, RUNTIME_DIR
from local_runtime.strict_json import parse_json_document, read_bounded

MIN_TIMEOUT_S = 0.1  # real Lambda's minimum is 1 s; fractions keep local tests fast
MAX_TIMEOUT_S = 900.0
DEFAULT_TIMEOUT_S = 3.0  # Lambda's default timeout
DEFAULT_MEMORY_MB = 128  # Lambda's default memory
MIN_MEMORY_MB = 128
MAX_MEMORY_MB = 10_240
MIN_EPHEMERAL_MB, MAX_EPHEMERAL_MB = 512, 10_240  # EphemeralStorage.Size: /tmp
SANDBOX_MODES = ("auto", "on", "off")
APPLICATION_LOG_LEVELS = ("TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL")
SYSTEM_LOG_LEVELS = ("DEBUG", "INFO", "WARN")
INIT_TIMEOUT_S = 10.0  # on-demand init phase limit
RUNTIMES = ("python3.13", "provided.al2023")  # provided.al2023: an executable ``bootstrap`` in the task root
ACCOUNT_ID = "123456789012"
ENV_FILE_LIMIT = 1 << 20  # .env and --env-vars files: Lambda allows 4 KB of variables in all
ENV_TOTAL_LIMIT = 4096  # bytes of the variables as compact JSON, the string Lambda measures

# Variables a real execution environment never inherits from anywhere; with
# ``clean_env`` only these host variables survive (credentials and what the
# interpreter needs to start).
_PASS_THROUGH = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "VIRTUAL_ENV",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
)


class ConfigurationError(ValueError):
    """A runner option or environment file the service would reject."""


@dataclass(frozen=True, kw_only=True)
class FunctionConfig:
    """The subset of a function's configuration the runner reproduces."""

    name: str
    task_root: Path  # the function's code, as Lambda unpacks it into /var/task
    handler: str = ""  # module.function for Python; a provided runtime's bootstrap reads it as it likes
    memory_mb: int = DEFAULT_MEMORY_MB
    timeout_s: float = DEFAULT_TIMEOUT_S
    region: str = "us-east-1"
    env: dict[str, str] = field(default_factory=dict)
    log_format: str = "text"  # "text" or "json", as the LoggingConfig.LogFormat setting
    tmp_per_environment: bool = True
    clean_env: bool = False
    runtime: str = "python3.13"
    # Directories on the runtime's PYTHONPATH before its own, as layers (/opt/python) are; an
    # unpacked zip needs none: its dependencies sit in the task root.
    layers: tuple[Path, ...] = (LAYER_DIR,)
    init_timeout_s: float = INIT_TIMEOUT_S  # lowered only by tests that exercise the retry quickly
    debug: DebugOptions | None = None  # run under debugpy (local_runtime/debugger.py)
    ephemeral_storage_mb: int = MIN_EPHEMERAL_MB  # the size of /tmp (local_runtime/sandbox.py)
    sandbox: str = "auto"  # auto: bubblewrap where it works; on: or fail; off: the host's view
    application_log_level: str = "INFO"  # LoggingConfig.ApplicationLogLevel (JSON format only)
    system_log_level: str = "INFO"  # LoggingConfig.SystemLogLevel (JSON format only)

    @property
    def python_version(self) -> str:
        return LAMBDA_PYTHON

    def __post_init__(self) -> None:
        if not MIN_TIMEOUT_S <= self.timeout_s <= MAX_TIMEOUT_S:
            raise ConfigurationError(f"timeout must be between 1 and 900 seconds, got {self.timeout_s:g}")
        if not MIN_MEMORY_MB <= self.memory_mb <= MAX_MEMORY_MB:
            raise ConfigurationError(f"memory must be between 128 and 10240 MB, got {self.memory_mb}")
        if not MIN_EPHEMERAL_MB <= self.ephemeral_storage_mb <= MAX_EPHEMERAL_MB:
            raise ConfigurationError(
                f"ephemeral storage must be between 512 and 10240 MB, got {self.ephemeral_storage_mb}"
            )
        if self.sandbox not in SANDBOX_MODES:
            raise ConfigurationError(f"sandbox must be auto, on or off, got {self.sandbox!r}")
        if self.application_log_level not in APPLICATION_LOG_LEVELS:
            raise ConfigurationError(f"application log level must be one of {', '.join(APPLICATION_LOG_LEVELS)}")
        if self.system_log_level not in SYSTEM_LOG_LEVELS:
            raise ConfigurationError(f"system log level must be one of {', '.join(SYSTEM_LOG_LEVELS)}")
        if self.log_format not in ("text", "json"):
            raise ConfigurationError(f"log format must be text or json, got {self.log_format!r}")
        if self.runtime == "provided":
            object.__setattr__(self, "runtime", "provided.al2023")
        if self.runtime not in RUNTIMES:
            raise ConfigurationError(f"runtime must be one of {', '.join(RUNTIMES)} or provided, got {self.runtime!r}")
        if self.runtime.startswith("python") and "." not in self.handler:
            raise ConfigurationError(f"handler must look like module.function, got {self.handler!r}")
        if self.debug is not None:
            if not self.runtime.startswith("python"):
                raise ConfigurationError("--debug-port needs a Python runtime (debugpy runs the handler)")
            if DEBUG_DIR not in self.layers:  # debugpy, importable in a debug run only, as one more layer
                object.__setattr__(self, "layers", (*self.layers, DEBUG_DIR))
        check_environment_size(self.env)

    @property
    def arn(self) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT_ID}:function:{self.name}"

    @property
    def log_group_name(self) -> str:
        return f"/aws/lambda/{self.name}"


def check_environment_size(env: dict[str, str]) -> None:
    """Refuse what CreateFunction / UpdateFunctionConfiguration refuse: over 4 KB of variables in all.

    Lambda measures the variables as one compact JSON object and quotes it in
    its message; the values are left out here, since .env holds secrets.
    """
    measured = json.dumps(env, separators=(",", ":"))
    size = len(measured.encode("utf-8"))
    if size > ENV_TOTAL_LIMIT:
        names = ", ".join(sorted(env, key=lambda name: -len(env[name]))[:5])
        raise ConfigurationError(
            "InvalidParameterValueException: Lambda was unable to configure your environment variables because "
            f"the environment variables you have provided exceeded the 4KB limit. String measured: {size} bytes "
            f"of {len(env)} variables (values not shown; largest: {names[:120]})"
        )


def new_log_stream_name(now: float | None = None) -> str:
    """``YYYY/MM/DD/[$LATEST]<32 hex>``: one stream per execution environment."""
    day = time.strftime("%Y/%m/%d", time.gmtime(now if now is not None else time.time()))
    return f"{day}/[$LATEST]{secrets.token_hex(16)}"


def reserved_environment(config: FunctionConfig, log_stream_name: str, tmp_dir: str | None) -> dict[str, str]:
    """The variables Lambda sets itself; they win over anything configured."""
    reserved = {
        "_HANDLER": config.handler,
        "AWS_REGION": config.region,
        "AWS_DEFAULT_REGION": config.region,
        "AWS_LAMBDA_FUNCTION_NAME": config.name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(config.memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
        "AWS_LAMBDA_LOG_GROUP_NAME": config.log_group_name,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream_name,
        "LAMBDA_TASK_ROOT": str(config.task_root),
        "LAMBDA_RUNTIME_DIR": str(RUNTIME_DIR),
        "TZ": ":UTC",
    }
    if config.runtime.startswith("python"):
        # awslambdaric reads it: ensure_ascii and thread polling depend on the version named here.
        reserved["AWS_EXECUTION_ENV"] = f"AWS_Lambda_python{config.python_version}"
        # The task root comes first on sys.path (``python -m`` puts the working directory there),
        # then the layers, then the runtime's own packages, as on Lambda.
        reserved["PYTHONPATH"] = os.pathsep.join([*map(str, config.layers), str(RUNTIME_DIR)])
    if config.log_format == "json":
        reserved["AWS_LAMBDA_LOG_FORMAT"] = "JSON"
        reserved["AWS_LAMBDA_LOG_LEVEL"] = config.application_log_level
    if tmp_dir is not None:
        reserved["TMPDIR"] = tmp_dir
    return reserved


def process_environment(
    config: FunctionConfig, log_stream_name: str, tmp_dir: str | None, host: dict[str, str] | None = None
) -> dict[str, str]:
    """Host (or a clean slate), then the function's variables, then the reserved ones."""
    host = dict(os.environ if host is None else host)
    base = {k: v for k, v in host.items() if k in _PASS_THROUGH} if config.clean_env else host
    for stale in ("AWS_LAMBDA_LOG_FORMAT", "AWS_LAMBDA_LOG_LEVEL", "PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
        base.pop(stale, None)
    return {**base, **config.env, **reserved_environment(config, log_stream_name, tmp_dir)}


def _as_env_value(name: str, value: Any) -> str:
    check_env_name(name)
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, str | int | float):
        text = str(value)
    else:
        raise ConfigurationError(f"environment variable {name} must be a string, number or boolean")
    return check_env_value(name, text)


def check_env_name(name: str) -> str:
    """A name a process environment can hold: not empty, no ``=``, no NUL, encodable."""
    if not name or "=" in name or "\0" in name or not _encodable(name):
        raise ConfigurationError(
            f"environment variable name {json.dumps(name[:40])} is not usable (empty, '=', NUL or a lone surrogate)"
        )
    return name


def check_env_value(name: str, value: str) -> str:
    """A value a process environment can hold: no NUL, encodable."""
    if "\0" in value or not _encodable(value):
        raise ConfigurationError(f"environment variable {name} holds a NUL byte or a lone surrogate")
    return value


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8", "surrogateescape")  # what os.environ will do with it
    except UnicodeEncodeError:
        return False
    return True


def load_env_vars_file(
    path: str | Path, *function_keys: str, warn: Callable[[str], None] | None = None
) -> dict[str, str]:
    """Read SAM's ``--env-vars`` JSON: ``{"Parameters": {...}}`` and/or a section per function.

    As ``sam local invoke`` does, a function's own section (keyed by its logical
    id in the template, ``Function`` here, or by its name) overrides
    ``Parameters``. A flat ``{"NAME": "value"}`` file is accepted too, because
    that is what people write first. A section that names no function here is
    reported through ``warn``: SAM ignores it just as silently, which is how a
    typo leaves a variable unchanged with nothing said.
    """
    try:
        data = parse_json_document(read_bounded(path, ENV_FILE_LIMIT, "the file"), "the file")
    except (OSError, ValueError) as exc:  # ValueError: not UTF-8, not JSON, too deep, too big, not a plain file
        raise ConfigurationError(f"cannot read env vars file {str(path)!r}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigurationError(f"env vars file {str(path)!r} must hold a JSON object")
    if all(not isinstance(v, dict) for v in data.values()):
        sections = [data]
    else:
        keys = [k for k in ("Parameters", *dict.fromkeys(function_keys)) if k in data]  # lowest precedence first
        sections = [data[k] for k in keys]
        unmatched = [k for k in data if k not in keys]
        if unmatched and warn is not None:
            names = ", ".join(json.dumps(k[:40]) for k in unmatched[:5])
            known = ", ".join(json.dumps(k) for k in ("Parameters", *dict.fromkeys(function_keys)))
            warn(f"env vars file {str(path)!r}: {names} match no function here (known: {known}); ignored")
    merged: dict[str, str] = {}
    for section in sections:
        if not isinstance(section, dict):
            raise ConfigurationError(f"env vars file {str(path)!r}: sections must be JSON objects")
        merged.update({name: _as_env_value(name, value) for name, value in section.items()})
    return merged
