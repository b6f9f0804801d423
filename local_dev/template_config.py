"""The function's configuration as template.yaml deploys it, for local runs.

``sam local invoke`` runs a function with the handler, runtime, memory,
timeout, architecture and environment variables its template declares; a
local runner that used Lambda's bare defaults instead (3 s, 128 MB) would run
a different function than the one that gets deployed. This module reads those
properties from the SAM/CloudFormation template, resolving ``!Ref`` to a
parameter's ``Default`` and ``Globals.Function`` as SAM merges it. Values it
cannot know locally (a parameter without a default, ``!Sub``, ``!GetAtt``) are
left out of the environment variables, so the local environment or ``.env``
supplies them; for the handler, runtime, memory, timeout and architecture
they are refused, since running Lambda's default instead would run another
function. Numbers are plain decimals (``0x10`` and ``.inf`` are refused, not
read as 16 and infinity), and YAML aliases may add at most ``ALIAS_BUDGET``
nodes, counted before anything is expanded.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_runtime.config import ConfigurationError
from local_runtime.display import shown

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
ALIAS_BUDGET = 10_000  # nodes that aliases may add to a template once expanded
_DECIMAL = re.compile(r"[0-9]+(\.[0-9]+)?")
# Lambda's rule for variable names is [a-zA-Z]([a-zA-Z0-9_])+; one letter is let through here, as before.
_VARIABLE_NAME = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")


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

    def decimal_int(loader: Any, node: Any) -> Any:
        """YAML 1.1 reads 0x10, 0o20, 1_6 and 0:16 as 16: keep any but a plain decimal as written."""
        text = loader.construct_scalar(node)
        return int(text) if re.fullmatch(r"[-+]?(0|[1-9][0-9]*)", text) else text

    def finite_float(loader: Any, node: Any) -> Any:
        """.inf, .nan and 1e400 stay text, so they can never become a memory size or a timeout."""
        value = yaml.SafeLoader.construct_yaml_float(loader, node)
        return value if math.isfinite(value) else loader.construct_scalar(node)

    CfnLoader.add_multi_constructor("!", tagged)
    CfnLoader.add_constructor("tag:yaml.org,2002:int", decimal_int)
    CfnLoader.add_constructor("tag:yaml.org,2002:float", finite_float)
    return CfnLoader


def _expanded_nodes(root: Any) -> int:
    """How many nodes the document has once every alias is expanded, counted on the unexpanded graph."""
    sizes: dict[int, int] = {}
    on_path: set[int] = set()

    def size(node: Any) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in on_path:
            raise ValueError("an alias refers to a node that contains it")
        on_path.add(key)
        total = 1
        if isinstance(node.value, list):
            for item in node.value:
                total += sum(size(child) for child in (item if isinstance(item, tuple) else (item,)))
        on_path.discard(key)
        sizes[key] = total
        return total

    return size(root)


def _parse(text: str, path: Path) -> Any:
    """The template as Python values, refusing an alias expansion past ALIAS_BUDGET before it happens."""
    loader = _cfn_loader()(text)
    try:
        root = loader.get_single_node()
        if root is None:
            return None
        try:
            expanded = _expanded_nodes(root)
        except ValueError as exc:
            raise ConfigurationError(f"template {str(path)!r}: {exc}") from None
        unique = _unique_nodes(root)
        if expanded - unique > ALIAS_BUDGET:
            raise ConfigurationError(
                f"template {str(path)!r}: its YAML aliases expand to {expanded:,} nodes from {unique:,} "
                f"(at most {ALIAS_BUDGET:,} more are accepted)"
            )
        return loader.construct_document(root)
    finally:
        loader.dispose()


def _unique_nodes(root: Any) -> int:
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node.value, list):
            for item in node.value:
                stack.extend(item if isinstance(item, tuple) else (item,))
    return len(seen)


def _resolve(value: Any, defaults: dict[str, Any]) -> Any:
    """A literal, or a ``Ref`` to a parameter with a default; anything else is ``None``."""
    if isinstance(value, dict):
        if set(value) == {"Ref"} and isinstance(value["Ref"], str):
            return defaults.get(value["Ref"])
        return None
    return value


def _is_intrinsic(value: Any) -> bool:
    if not (isinstance(value, dict) and len(value) == 1):
        return False
    (key,) = value
    return key in ("Ref", "Condition") or str(key).startswith("Fn::")


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Reader:
    """Checks one template's shapes as it reads them; every refusal is one ConfigurationError line."""

    def __init__(self, path: Path, defaults: dict[str, Any]) -> None:
        self.path = path
        self.defaults = defaults

    def fail(self, message: str) -> ConfigurationError:
        return ConfigurationError(f"template {str(self.path)!r}: {message}")

    def mapping(self, value: Any, where: str) -> dict[Any, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"{where} must be a mapping, not {type(value).__name__} {shown(value, quoted=True)}")
        return value

    def setting(self, props: dict[str, Any], key: str) -> Any:
        """A property sam local would resolve: a literal or a !Ref to a parameter with a Default."""
        raw = props.get(key)
        value = _resolve(raw, self.defaults)
        if raw is not None and value is None:
            if isinstance(raw, dict) and set(raw) == {"Ref"}:
                what = f"!Ref {shown(raw['Ref'], quoted=True)} (no parameter Default)"
            elif _is_intrinsic(raw):
                what = "!" + str(next(iter(raw))).removeprefix("Fn::")
            else:
                what = shown(raw, quoted=True)
            raise self.fail(
                f"{key} is {what}, which cannot be resolved locally: write the value, "
                "or !Ref a parameter that has a Default"
            )
        if isinstance(value, dict | list) and key != "Architectures":
            raise self.fail(f"{key} must be a single value, not {shown(value, quoted=True)}")
        return value

    def number(self, props: dict[str, Any], key: str, whole: bool) -> float | None:
        value = self.setting(props, key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise self.fail(f"{key} {shown(value, quoted=True)} is not a number")
        if isinstance(value, str) and not _DECIMAL.fullmatch(value):
            raise self.fail(f"{key} {shown(value, quoted=True)} is not a plain decimal number")
        number = float(value)
        if not math.isfinite(number) or (whole and not number.is_integer()):
            raise self.fail(f"{key} {shown(value, quoted=True)} is not a whole number")
        return number

    def variables(self, environment: Any, where: str) -> dict[Any, Any]:
        variables = self.mapping(self.mapping(environment, f"{where}.Environment").get("Variables"), where)
        for name, value in variables.items():
            if not isinstance(name, str) or not _VARIABLE_NAME.fullmatch(name):
                raise self.fail(
                    f"environment variable name {shown(name, quoted=True)} is not a Lambda variable name "
                    "(a letter, then letters, digits or _)"
                )
            if value is None or isinstance(value, list) or (isinstance(value, dict) and not _is_intrinsic(value)):
                raise self.fail(
                    f"environment variable {name} must be a string, number or boolean, not {shown(value, quoted=True)}"
                )
        return variables


def load_template_function(path: str | Path, logical_id: str | None = None) -> TemplateFunction:
    """Read one function from a template (the only one, or ``logical_id``); ConfigurationError if unusable."""
    import yaml

    path = Path(path)
    if not path.is_file():  # missing, a directory, a FIFO or a device: reading it would fail or block
        raise ConfigurationError(f"template {str(path)!r} is not a file")
    try:
        template = _parse(path.read_text(encoding="utf-8"), path)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigurationError(f"cannot read template {str(path)!r}: {exc}".splitlines()[0]) from None
    except RecursionError:
        raise ConfigurationError(f"template {str(path)!r} nests too deeply to read") from None
    if not isinstance(template, dict):
        raise ConfigurationError(f"template {str(path)!r} is not a CloudFormation template")
    check = _Reader(path, {})
    parameters = check.mapping(template.get("Parameters"), "Parameters")
    check.defaults = {
        name: spec.get("Default") for name, spec in parameters.items() if isinstance(spec, dict) and "Default" in spec
    }
    resources = check.mapping(template.get("Resources"), "Resources")
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
        raise ConfigurationError(
            f"template {str(path)!r} declares {len(functions)} functions {sorted(map(str, functions))}"
        )

    props: dict[str, Any] = dict(check.mapping(functions[chosen].get("Properties"), f"{chosen}.Properties"))
    own_env = check.variables(props.get("Environment"), chosen)
    if functions[chosen]["Type"] == "AWS::Serverless::Function":
        shared = check.mapping(check.mapping(template.get("Globals"), "Globals").get("Function"), "Globals.Function")
        shared_env = check.variables(shared.get("Environment"), "Globals.Function")
        props = {**shared, **props}
        own_env = {**shared_env, **own_env}

    env: dict[str, str] = {}
    unresolved: list[str] = []
    for name, raw in own_env.items():
        value = _resolve(raw, check.defaults)
        if value is None or isinstance(value, dict | list):
            unresolved.append(name)
        else:
            env[name] = _env_value(value)

    architectures = check.setting(props, "Architectures")
    if architectures is not None and not (isinstance(architectures, list) and architectures):
        raise check.fail(f"Architectures must be a list, not {shown(architectures, quoted=True)}")
    architecture = check.setting({"Architectures[0]": architectures[0]}, "Architectures[0]") if architectures else None
    memory = check.number(props, "MemorySize", whole=True)
    handler = check.setting(props, "Handler")
    runtime = check.setting(props, "Runtime")
    storage = check.mapping(props.get("EphemeralStorage"), "EphemeralStorage")
    ephemeral = check.number(storage, "Size", whole=True)
    ephemeral_mb = int(ephemeral) if ephemeral is not None else None
    logging_config = check.mapping(props.get("LoggingConfig"), "LoggingConfig")

    def logging(key: str) -> str | None:
        value = check.setting(logging_config, key)
        return str(value) if value is not None else None

    log_format = logging("LogFormat")
    if log_format is not None and log_format not in ("Text", "JSON"):
        raise check.fail(f"LoggingConfig.LogFormat {shown(log_format, quoted=True)} is not Text or JSON")
    return TemplateFunction(
        source=str(path),
        logical_id=chosen,
        handler=str(handler) if handler is not None else None,
        runtime=str(runtime) if runtime is not None else None,
        memory_mb=int(memory) if memory is not None else None,
        timeout_s=check.number(props, "Timeout", whole=False),
        architecture=str(architecture) if architecture is not None else None,
        ephemeral_storage_mb=ephemeral_mb,
        log_format=log_format.lower() if log_format else None,
        application_log_level=logging("ApplicationLogLevel"),
        system_log_level=logging("SystemLogLevel"),
        env=env,
        unresolved_env=tuple(unresolved),
    )
