"""The function's configuration as template.yaml deploys it, for local runs.

``sam local invoke`` runs a function with the handler, runtime, memory,
timeout, architecture and environment variables its template declares; a
local runner that used Lambda's bare defaults instead (3 s, 128 MB) would run
a different function than the one that gets deployed. This module reads those
properties from the SAM/CloudFormation template, resolving ``!Ref`` to a
parameter's ``Default`` and ``Globals.Function`` as SAM merges it. Values it
cannot know locally (a parameter without a default, ``!Sub``, ``!GetAtt``) are
left out, so the local environment or ``.env`` supplies them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_runtime.config import ConfigurationError

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")


@dataclass(frozen=True)
class TemplateFunction:
    """What a template says about one function; ``None`` where it says nothing usable."""

    source: str
    logical_id: str
    handler: str | None = None
    runtime: str | None = None
    memory_mb: int | None = None
    timeout_s: float | None = None
    architecture: str | None = None
    ephemeral_storage_mb: int | None = None  # EphemeralStorage.Size
    log_format: str | None = None  # LoggingConfig.LogFormat, as "text" or "json"
    application_log_level: str | None = None  # LoggingConfig.ApplicationLogLevel
    system_log_level: str | None = None  # LoggingConfig.SystemLogLevel
    env: dict[str, str] = field(default_factory=dict)
    unresolved_env: tuple[str, ...] = ()  # variables whose value only exists at deploy time


def _cfn_loader() -> type:
    """A safe YAML loader that keeps CloudFormation's short-form tags as their long form."""
    import yaml  # local-only dependency (requirements-dev.txt)

    class CfnLoader(yaml.SafeLoader):
        pass

    def tagged(loader: Any, suffix: str, node: Any) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
        if suffix == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {name: value}

    CfnLoader.add_multi_constructor("!", tagged)
    return CfnLoader


def _resolve(value: Any, defaults: dict[str, Any]) -> Any:
    """A literal, or a ``Ref`` to a parameter with a default; anything else is ``None``."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and isinstance(value["Ref"], str):
            return defaults.get(value["Ref"])
        return None
    return value


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def load_template_function(path: str | Path, logical_id: str | None = None) -> TemplateFunction:
    """Read one function from a template (the only one, or ``logical_id``); ConfigurationError if unusable."""
    import yaml

    path = Path(path)
    if not path.is_file():  # missing, a directory, a FIFO or a device: reading it would fail or block
        raise ConfigurationError(f"template {str(path)!r} is not a file")
    try:
        template = yaml.load(path.read_text(encoding="utf-8"), Loader=_cfn_loader())  # noqa: S506 - SafeLoader subclass
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read template {str(path)!r}: {exc}".splitlines()[0]) from None
    if not isinstance(template, dict):
        raise ConfigurationError(f"template {str(path)!r} is not a CloudFormation template")
    resources = template.get("Resources") or {}
    functions = {
        name: res for name, res in resources.items() if isinstance(res, dict) and res.get("Type") in FUNCTION_TYPES
    }
    if logical_id is not None:
        if logical_id not in functions:
            raise ConfigurationError(f"template {str(path)!r} has no function {logical_id!r} (has {sorted(functions)})")
        chosen = logical_id
    elif len(functions) == 1:
        (chosen,) = functions
    else:
        raise ConfigurationError(f"template {str(path)!r} declares {len(functions)} functions {sorted(functions)}")

    defaults = {
        name: spec.get("Default")
        for name, spec in (template.get("Parameters") or {}).items()
        if isinstance(spec, dict) and "Default" in spec
    }
    props: dict[str, Any] = dict(functions[chosen].get("Properties") or {})
    if functions[chosen]["Type"] == "AWS::Serverless::Function":
        shared = ((template.get("Globals") or {}).get("Function")) or {}
        shared_env = ((shared.get("Environment") or {}).get("Variables")) or {}
        own_env = ((props.get("Environment") or {}).get("Variables")) or {}
        props = {**shared, **props, "Environment": {"Variables": {**shared_env, **own_env}}}

    env: dict[str, str] = {}
    unresolved: list[str] = []
    for name, raw in (((props.get("Environment") or {}).get("Variables")) or {}).items():
        value = _resolve(raw, defaults)
        if value is None:
            unresolved.append(name)
        else:
            env[name] = _env_value(value)

    def number(key: str) -> float | None:
        value = _resolve(props.get(key), defaults)
        try:
            return float(value) if value is not None else None
        except (TypeError, ValueError):
            raise ConfigurationError(f"template {str(path)!r}: {key} {value!r} is not a number") from None

    storage = props.get("EphemeralStorage")
    ephemeral = _resolve(storage.get("Size"), defaults) if isinstance(storage, dict) else None
    logging_config = props.get("LoggingConfig")
    logging_config = logging_config if isinstance(logging_config, dict) else {}

    def logging(key: str) -> str | None:
        value = _resolve(logging_config.get(key), defaults)
        return str(value) if value is not None else None

    log_format = logging("LogFormat")
    if log_format is not None and log_format not in ("Text", "JSON"):
        raise ConfigurationError(f"template {str(path)!r}: LoggingConfig.LogFormat {log_format!r} is not Text or JSON")
    try:
        ephemeral_mb = int(ephemeral) if ephemeral is not None else None
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"template {str(path)!r}: EphemeralStorage.Size {ephemeral!r} is not a number"
        ) from None
    architectures = _resolve(props.get("Architectures"), defaults)
    architecture = _resolve(architectures[0], defaults) if isinstance(architectures, list) and architectures else None
    memory = number("MemorySize")
    handler = _resolve(props.get("Handler"), defaults)
    runtime = _resolve(props.get("Runtime"), defaults)
    return TemplateFunction(
        source=str(path),
        logical_id=chosen,
        handler=str(handler) if handler is not None else None,
        runtime=str(runtime) if runtime is not None else None,
        memory_mb=int(memory) if memory is not None else None,
        timeout_s=number("Timeout"),
        architecture=str(architecture) if architecture is not None else None,
        ephemeral_storage_mb=ephemeral_mb,
        log_format=log_format.lower() if log_format else None,
        application_log_level=logging("ApplicationLogLevel"),
        system_log_level=logging("SystemLogLevel"),
        env=env,
        unresolved_env=tuple(unresolved),
    )
