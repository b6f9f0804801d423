"""Deploy, invoke, fan out and roll back on AWS: every command line in one place.

``make deploy``, ``make invoke-aws``, ``make run-fanout``, ``make rollback`` and
``make s3-trigger`` all call this module, so the exact ``sam``/``aws`` command
lines are built by code that tests can read. ``--dry-run`` (``DRY_RUN=1``)
prints them (each prefixed with ``+ ``) and starts no process at all: this
repository has no AWS account, so that is how the commands are checked here.
Values that only AWS can supply (the function name from the stack outputs, the
alias's current version) appear as ``<placeholders>`` in a dry run.

The rules that keep a real run from doing what the user did not ask:

* every value arrives as an argv element or an environment variable (make
  passes its variables through the environment, never pasted into a shell
  line) and is checked by :mod:`tools.deploy_inputs` before anything runs;
* a yes/no setting spelt in a way we do not know is an error, never a "no";
* the region is resolved as the AWS CLI resolves it (:mod:`tools.aws_target`),
  passed to every command, and printed with the account before any change;
* a command that changes something waits for a yes on a terminal, or ``--yes``.

Callers use the alias ``live`` (the template's AutoPublishAlias): every deploy
that changes the function's code or configuration publishes a version and moves
the alias, so rolling back is pointing the alias at an earlier version; no
rebuild, no redeploy. SAM names the version after a hash of the code location,
the environment and MemorySize as the template *text* spells them, so a value
that arrives as a parameter (``!Ref MemorySize``) would change nothing it
hashes: the rendered template therefore carries a digest of the function's
properties with every parameter resolved (``AutoPublishCodeSha256``), and every
parameter is passed explicitly, never left to "use the previous value".
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import yaml

from local_dev.s3_trigger import trigger_rules
from tools import deploy_inputs as check
from tools.aws_target import Confirmation, Region, resolve_region
from tools.deploy_inputs import InputError
from tools.package import MACHINES, zip_name

ROOT = Path(__file__).resolve().parent.parent

TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
RENDERED_DIR = ROOT / "build" / "sam"
ALIAS = "live"
FUNCTION_RESOURCE = "Function"  # the template's AWS::Serverless::Function with AutoPublishAlias
DEFAULT_STACK = "pdf-manifest"
NOTIFICATION_ID_SUFFIX = "-pdfs"  # the notification is named <stack>-pdfs


class DeployError(RuntimeError):
    """A step cannot go ahead (missing zip, no earlier version to roll back to, ...)."""


@dataclass
class Runner:
    """Prints every command; runs it unless dry-run. ``tools`` maps ``aws``/``sam`` to executables.

    A command marked ``change=True`` first needs the user's confirmation, asked
    once per run, after every read that shows what will happen.
    """

    dry_run: bool
    out: TextIO = sys.stdout
    tools: dict[str, str] = field(default_factory=dict)
    confirmation: Confirmation = field(default_factory=lambda: Confirmation(assume_yes=False))
    target: str = ""  # "account ... in region ...", named in the confirmation question

    def _argv(self, command: Sequence[str]) -> list[str]:
        return [self.tools.get(command[0], command[0]), *command[1:]]

    def show(self, command: Sequence[str]) -> None:
        print("+ " + shlex.join(command), file=self.out, flush=True)

    def _confirm(self, command: Sequence[str]) -> None:
        if not self.dry_run:
            self.confirmation.require(f"Run `{shlex.join(command[:3])} ...` against {self.target}")

    def run(self, command: Sequence[str], change: bool = False) -> None:
        self.show(command)
        if change:
            self._confirm(command)
        if not self.dry_run:
            subprocess.run(self._argv(command), check=True)

    def capture(self, command: Sequence[str], placeholder: str, change: bool = False) -> str:
        """Run a query and return its output; a dry run returns ``placeholder`` instead."""
        self.show(command)
        if change:
            self._confirm(command)
        if self.dry_run:
            return placeholder
        done = subprocess.run(self._argv(command), check=True, capture_output=True, text=True)
        return done.stdout.strip()

    def say(self, message: str) -> None:
        print(message, file=self.out, flush=True)


# ---------------------------------------------------------------------------
# Stack outputs
# ---------------------------------------------------------------------------


def stack_output(runner: Runner, stack: str, region: str, key: str) -> str:
    return runner.capture(
        [
            "aws",
            "cloudformation",
            "describe-stacks",
            "--stack-name",
            stack,
            "--region",
            region,
            "--query",
            f"Stacks[0].Outputs[?OutputKey=='{key}'].OutputValue",
            "--output",
            "text",
        ],
        placeholder=f"<{key}>",
    )


# ---------------------------------------------------------------------------
# deploy
# ---------------------------------------------------------------------------


class _TemplateLoader(yaml.SafeLoader):
    """YAML with CloudFormation's short tags (``!Ref``, ``!Sub``, ``!If``...) read as their long forms."""


def _short_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _short_tag)


def load_template(template: Path = TEMPLATE) -> dict[str, Any]:
    return yaml.load(template.read_text(encoding="utf-8"), Loader=_TemplateLoader)  # noqa: S506 (a SafeLoader)


# Template parameter -> the make variable (and environment variable) that sets it.
# Every other parameter is passed with its template default.
SETTINGS = {
    "Architecture": "ARCH",
    "BucketName": "BUCKET_NAME",
    "Prefix": "PREFIX",
    "ScopePrefix": "SCOPE_PREFIX",
    "UrlExpirySeconds": "URL_EXPIRY_SECONDS",
    "MemorySize": "MEMORY_SIZE",
    "Timeout": "TIMEOUT",
    "LogLevel": "LOG_LEVEL",
    "KmsKeyArn": "KMS_KEY_ARN",
    "EnableS3Trigger": "S3_TRIGGER",
}


def parameter_values(given: dict[str, str], template: dict[str, Any]) -> dict[str, str]:
    """Every template parameter, in template order: the value given, else the template's default.

    All of them go to ``sam deploy``: for a parameter it is not given, SAM asks
    CloudFormation to keep the stack's previous value, so a setting dropped from
    the command line would silently stay as it was, and the digest would not
    describe what is deployed.
    """
    values = {}
    for name, spec in template["Parameters"].items():
        value = given.get(name) or ""
        if not value and "Default" in spec:
            value = str(spec["Default"])
        values[name] = value
    return values


def parameter_overrides(values: dict[str, str]) -> list[str]:
    """``Key=Value`` for ``--parameter-overrides``; an empty value is spelt ``Key=""``, which SAM reads as empty."""
    return [f"{key}={value}" if value else f'{key}=""' for key, value in values.items()]


def _resolve(node: Any, values: dict[str, str]) -> Any:
    """``node`` with every reference to a parameter replaced by its value (``!Ref`` and ``${...}`` in ``!Sub``)."""
    if isinstance(node, list):
        return [_resolve(item, values) for item in node]
    if not isinstance(node, dict):
        return node
    if set(node) == {"Ref"} and node["Ref"] in values:
        return values[node["Ref"]]
    if set(node) == {"Fn::Sub"} and isinstance(node["Fn::Sub"], str):
        text = re.sub(r"\$\{([A-Za-z0-9]+)\}", lambda m: values.get(m.group(1), m.group(0)), node["Fn::Sub"])
        return {"Fn::Sub": text}
    return {key: _resolve(value, values) for key, value in node.items()}


def _referenced(node: Any, names: set[str]) -> set[str]:
    """The parameters among ``names`` that ``node`` refers to."""
    text = json.dumps(node)
    found = {name for name in names if f'{{"Ref": "{name}"}}' in text}
    return found | {name for name in re.findall(r"\$\{([A-Za-z0-9]+)\}", text) if name in names}


def function_configuration(template: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """The function's properties as CloudFormation will set them, code location aside.

    The code is covered already: ``sam deploy`` uploads the zip under a key
    made of its MD5, and SAM hashes that key into the version's logical id.
    """
    properties = dict(template["Resources"][FUNCTION_RESOURCE]["Properties"])
    properties.pop("CodeUri", None)
    return _resolve(properties, values)


def configuration_digest(configuration: dict[str, Any]) -> str:
    canonical = json.dumps(configuration, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def render_template(
    arch: str, values: dict[str, str], destination_dir: Path = RENDERED_DIR, template: Path = TEMPLATE
) -> Path:
    """The template ``sam deploy`` gets: code for ``arch``, absolute local paths, the configuration digest.

    SAM cannot take CodeUri from a parameter, and a zip's compiled extensions
    run fastest on their own architecture, so each architecture gets its own
    rendered copy. Under AutoPublishAlias it adds ``AutoPublishCodeSha256``,
    the sha256 of :func:`function_configuration`, with the resolved values
    written out above it; SAM appends that string to the function's
    description and hashes it into the version's logical id, so any change of
    memory, timeout, environment or log level publishes a new version. The
    other lines stay byte for byte the same.
    """
    text = template.read_text(encoding="utf-8")
    code = (ROOT / "dist" / zip_name(arch)).as_posix()
    text, replaced = re.subn(r"(?m)^(\s+CodeUri:\s*)\S+$", lambda m: m.group(1) + code, text)
    if replaced != 1:
        raise DeployError(f"expected one CodeUri in {template.name}, found {replaced}")

    def absolute(match: re.Match[str]) -> str:
        return match.group(1) + (template.parent / match.group(2)).as_posix()

    text = re.sub(r"(?m)^(\s+DefinitionUri:\s*)(\S+)$", absolute, text)

    parsed = load_template(template)
    configuration = function_configuration(parsed, values)
    digest = configuration_digest(configuration)
    used = _referenced(parsed["Resources"][FUNCTION_RESOURCE]["Properties"], set(values))

    def pin(match: re.Match[str]) -> str:
        indent = match.group(1)
        lines = [
            match.group(0),
            f"{indent}# Rendered by tools/deploy.py: the sha256 of this function's properties with",
            f"{indent}# these parameter values resolved (SAM hashes it into the version's id):",
            *(f"{indent}#   {name}: {values[name] or '(empty)'}" for name in values if name in used),
            f"{indent}AutoPublishCodeSha256: {digest}",
        ]
        return "\n".join(lines)

    text, pinned = re.subn(r"(?m)^(\s+)AutoPublishAlias:\s*\S+$", pin, text)
    if pinned != 1:
        raise DeployError(f"expected one AutoPublishAlias in {template.name}, found {pinned}")
    destination_dir.mkdir(parents=True, exist_ok=True)
    # Named by its configuration too: two previews with different settings never overwrite each other.
    rendered = destination_dir / f"template-{arch}-{digest[:12]}.yaml"
    partial = rendered.with_name(f".{rendered.name}.{os.getpid()}")
    partial.write_text(text, encoding="utf-8")
    partial.replace(rendered)  # whole or not at all, even with two runs at once
    return rendered


def deploy_command(args: argparse.Namespace, template: Path, guided: bool) -> list[str]:
    command = ["sam", "deploy"]
    if guided:
        command.append("--guided")
    command += [
        "--template-file",
        str(template),
        "--config-file",
        str(args.config_file),
        "--stack-name",
        args.stack_name,
        "--region",
        args.region,
        "--capabilities",
        "CAPABILITY_IAM",
        "--no-fail-on-empty-changeset",
        "--parameter-overrides",
        *parameter_overrides(args.parameters),
    ]
    return command


def cmd_deploy(args: argparse.Namespace, runner: Runner) -> int:
    code = ROOT / "dist" / zip_name(args.arch)
    guided = not Path(args.config_file).exists()
    if args.package:
        runner.run([sys.executable, str(ROOT / "tools" / "package.py"), "--arch", args.arch])
    if not args.dry_run and not code.is_file():
        raise DeployError(f"{code} is missing: run make package first")
    # Written in a dry run too: a file under build/ changes no account, and it is
    # the exact template the printed command would deploy.
    template = render_template(args.arch, args.parameters, args.render_dir)
    digest = configuration_digest(function_configuration(load_template(), args.parameters))
    runner.say(f"# {template}: CodeUri {code}, configuration sha256 {digest[:16]}...")
    if guided:
        runner.say(f"# {args.config_file} not found: guided deploy; answer the prompts and save the answers")
        runner.say("# keep the parameter values the prompts show: the digest was computed from them")
    runner.run(deploy_command(args, template, guided), change=True)
    return 0


# ---------------------------------------------------------------------------
# invoke
# ---------------------------------------------------------------------------


def manifest_url_from(response_file: Path) -> str:
    """The manifest URL from the handler's response, or a DeployError with its error body."""
    response = json.loads(response_file.read_text(encoding="utf-8"))
    if "errorMessage" in response:
        raise DeployError(f"the function raised {response.get('errorType')}: {response['errorMessage']}")
    body = json.loads(response.get("body") or "{}")
    if response.get("statusCode") != 200 or "manifest_url" not in body:
        raise DeployError(f"the function answered {response.get('statusCode')}: {body.get('error', body)}")
    return str(body["manifest_url"])


def invoke_payload(args: argparse.Namespace) -> str:
    if args.event:
        return json.dumps(json.loads(args.event), separators=(",", ":"))
    event = {key: value for key, value in (("bucket", args.bucket), ("prefix", args.prefix)) if value}
    return json.dumps(event, separators=(",", ":"))


def cmd_invoke(args: argparse.Namespace, runner: Runner) -> int:
    function = args.function_name or stack_output(runner, args.stack_name, args.region, "FunctionName")
    # An invocation writes a manifest into the account: confirmed like any change.
    runner.run(
        [
            "aws",
            "lambda",
            "invoke",
            "--function-name",
            function,
            "--qualifier",
            args.qualifier,
            "--region",
            args.region,
            "--cli-binary-format",
            "raw-in-base64-out",
            "--payload",
            invoke_payload(args),
            str(args.out),
        ],
        change=True,
    )
    if args.dry_run:
        runner.say(f"# would print the manifest URL from {args.out}")
        return 0
    runner.say(manifest_url_from(Path(args.out)))
    return 0


# ---------------------------------------------------------------------------
# run-fanout
# ---------------------------------------------------------------------------


def cmd_run_fanout(args: argparse.Namespace, runner: Runner) -> int:
    machine = args.state_machine_arn or stack_output(runner, args.stack_name, args.region, "StateMachineArn")
    execution_input = json.dumps({"prefixes": args.prefixes}, separators=(",", ":"))
    execution = runner.capture(
        [
            "aws",
            "stepfunctions",
            "start-execution",
            "--state-machine-arn",
            machine,
            "--region",
            args.region,
            "--input",
            execution_input,
            "--query",
            "executionArn",
            "--output",
            "text",
        ],
        placeholder="<executionArn>",
        change=True,
    )
    describe = ["aws", "stepfunctions", "describe-execution", "--execution-arn", execution, "--region", args.region]
    if not args.wait:
        runner.say("# follow it with:")
        runner.show(describe)
        return 0
    status_query = [*describe, "--query", "status", "--output", "text"]
    status = runner.capture(status_query, placeholder="SUCCEEDED")
    while status == "RUNNING":
        time.sleep(args.poll_seconds)
        status = runner.capture(status_query, placeholder="SUCCEEDED")
    output = runner.capture([*describe, "--query", "output", "--output", "text"], placeholder="<output>")
    runner.say(f"# {status}")
    runner.say(output)
    return 0 if status == "SUCCEEDED" else 1


# ---------------------------------------------------------------------------
# rollback
# ---------------------------------------------------------------------------


def previous_version(versions: Sequence[str], current: str) -> str:
    """The newest published version older than ``current`` ($LATEST is never a target)."""
    older = sorted(int(v) for v in versions if v.isdigit() and int(v) < int(current))
    if not older:
        raise DeployError(f"no published version before {current} to roll back to")
    return str(older[-1])


def cmd_rollback(args: argparse.Namespace, runner: Runner) -> int:
    function = args.function_name or stack_output(runner, args.stack_name, args.region, "FunctionName")
    current = runner.capture(
        [
            "aws",
            "lambda",
            "get-alias",
            "--function-name",
            function,
            "--name",
            args.alias,
            "--region",
            args.region,
            "--query",
            "FunctionVersion",
            "--output",
            "text",
        ],
        placeholder="<current version>",
    )
    target = args.to_version
    if target is None:
        listed = runner.capture(
            [
                "aws",
                "lambda",
                "list-versions-by-function",
                "--function-name",
                function,
                "--region",
                args.region,
                "--query",
                "Versions[].Version",
                "--output",
                "json",
            ],
            placeholder="<versions>",
        )
        target = "<previous version>" if args.dry_run else previous_version(json.loads(listed), current)
    runner.run(
        [
            "aws",
            "lambda",
            "update-alias",
            "--function-name",
            function,
            "--name",
            args.alias,
            "--function-version",
            target,
            "--region",
            args.region,
        ],
        change=True,
    )
    runner.say(f"# {args.alias}: {current} -> {target}")
    return 0


# ---------------------------------------------------------------------------
# s3-trigger
# ---------------------------------------------------------------------------


def merged_notification(
    existing: dict[str, Any], notification_id: str, function_arn: str, prefix: str
) -> dict[str, Any]:
    """The bucket's notification configuration plus (or with a fresh copy of) our PDF trigger.

    put-bucket-notification-configuration replaces the whole configuration, so
    whatever else the bucket notifies (queues, topics, other functions,
    EventBridge) is carried over untouched.
    """
    merged = {key: value for key, value in existing.items() if key != "ResponseMetadata"}
    ours = trigger_rules(prefix).notification(notification_id, function_arn)
    others = [c for c in merged.get("LambdaFunctionConfigurations", []) if c.get("Id") != notification_id]
    merged["LambdaFunctionConfigurations"] = [*others, ours]
    return merged


def cmd_s3_trigger(args: argparse.Namespace, runner: Runner) -> int:
    alias_arn = stack_output(runner, args.stack_name, args.region, "FunctionAliasArn")
    current = runner.capture(
        ["aws", "s3api", "get-bucket-notification-configuration", "--bucket", args.bucket, "--region", args.region],
        placeholder="{}",
    )
    config = merged_notification(
        json.loads(current or "{}"), args.stack_name + NOTIFICATION_ID_SUFFIX, alias_arn, args.prefix
    )
    runner.run(
        [
            "aws",
            "s3api",
            "put-bucket-notification-configuration",
            "--bucket",
            args.bucket,
            "--region",
            args.region,
            "--notification-configuration",
            json.dumps(config, separators=(",", ":"), sort_keys=True),
        ],
        change=True,
    )
    return 0


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------

ENVIRONMENT_HELP = """\
Every option left out is read from the environment, which is how make passes
its variables (BUCKET_NAME, PREFIX, SCOPE_PREFIX, KMS_KEY_ARN, S3_TRIGGER, ARCH,
MEMORY_SIZE, TIMEOUT, URL_EXPIRY_SECONDS, LOG_LEVEL, STACK_NAME, PREFIXES,
TO_VERSION, DRY_RUN, YES). A template setting left out takes the template's
default, never the deployed stack's previous value. Yes/no settings take
1/true/yes/on or 0/false/no/off (any case); any other spelling is an error.
The region is --region, else AWS_REGION, AWS_DEFAULT_REGION, then the active
profile's region (AWS_PROFILE, AWS_CONFIG_FILE), as the AWS CLI resolves it.
"""


def _env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python tools/deploy.py",
        description="sam/aws command lines for deploying and running pdf-manifest on AWS.",
        epilog=ENVIRONMENT_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing (DRY_RUN=1)")
    parser.add_argument("--yes", action="store_true", help="do not ask before changing anything (YES=1)")
    parser.add_argument("--stack-name", default=_env("STACK_NAME") or DEFAULT_STACK)
    parser.add_argument("--region", default=None, help="default: resolved as the AWS CLI does (see below)")
    sub = parser.add_subparsers(dest="command", required=True)

    deploy = sub.add_parser("deploy", help="sam deploy (guided when samconfig.toml is absent)")
    deploy.add_argument("--arch", default=_env("ARCH") or "arm64", help="x86_64 or arm64 (ARCH)")
    deploy.add_argument("--bucket", default=_env("BUCKET_NAME"), help="existing bucket with the PDFs (required)")
    deploy.add_argument("--prefix", default=_env("PREFIX"), help="default prefix (template default when empty)")
    deploy.add_argument("--scope-prefix", default=_env("SCOPE_PREFIX"), help="the role reads only under this prefix")
    deploy.add_argument("--kms-key-arn", default=_env("KMS_KEY_ARN"), help="the bucket's SSE-KMS key, if any")
    deploy.add_argument("--enable-s3-trigger", action="store_true", help="allow the bucket to invoke the alias")
    deploy.add_argument("--memory-size", default=_env("MEMORY_SIZE"), help="MB (MEMORY_SIZE; template default)")
    deploy.add_argument("--timeout", default=_env("TIMEOUT"), help="seconds (TIMEOUT; template default)")
    deploy.add_argument(
        "--url-expiry-seconds", default=_env("URL_EXPIRY_SECONDS"), help="presigned URL lifetime (URL_EXPIRY_SECONDS)"
    )
    deploy.add_argument("--log-level", default=_env("LOG_LEVEL"), help="DEBUG, INFO, WARN or ERROR (LOG_LEVEL)")
    deploy.add_argument("--render-dir", type=Path, default=RENDERED_DIR, help=argparse.SUPPRESS)
    deploy.add_argument("--package", action="store_true", help="build the zip first (make deploy does)")
    deploy.add_argument("--config-file", type=Path, default=SAMCONFIG)
    deploy.set_defaults(func=cmd_deploy)

    invoke = sub.add_parser("invoke", help="aws lambda invoke the live alias, print the manifest URL")
    invoke.add_argument("--function-name", default="", help="default: the stack's FunctionName output")
    invoke.add_argument("--qualifier", default=ALIAS)
    invoke.add_argument("--bucket", default=_env("BUCKET_NAME"))
    invoke.add_argument("--prefix", default=_env("PREFIX"))
    invoke.add_argument("--event", default="", help="a whole JSON event instead of --bucket/--prefix")
    invoke.add_argument("--out", type=Path, default=Path("out.json"))
    invoke.set_defaults(func=cmd_invoke)

    fanout = sub.add_parser("run-fanout", help='start the state machine with {"prefixes": [...]}')
    fanout.add_argument("prefixes", nargs="*", help="default: PREFIXES (words, or a JSON array), else PREFIX")
    fanout.add_argument("--state-machine-arn", default="", help="default: the stack's StateMachineArn output")
    fanout.add_argument("--wait", action="store_true", help="poll until the execution ends, print its output")
    fanout.add_argument("--poll-seconds", type=float, default=5.0)
    fanout.set_defaults(func=cmd_run_fanout)

    rollback = sub.add_parser("rollback", help="point the alias at the previous (or a given) version")
    rollback.add_argument("--function-name", default="")
    rollback.add_argument("--alias", default=ALIAS)
    rollback.add_argument(
        "--to-version", default=_env("TO_VERSION") or None, help="default: the newest version before the current one"
    )
    rollback.set_defaults(func=cmd_rollback)

    trigger = sub.add_parser("s3-trigger", help="add the *.pdf notification to the bucket (keeps the others)")
    trigger.add_argument("--bucket", default=_env("BUCKET_NAME"))
    trigger.add_argument("--prefix", default=_env("PREFIX"))
    trigger.set_defaults(func=cmd_s3_trigger)
    return parser


def check_arguments(args: argparse.Namespace) -> None:
    """Every value a command will pass on, checked before the first command runs (InputError otherwise)."""
    args.dry_run = args.dry_run or check.flag("DRY_RUN", _env("DRY_RUN"))
    args.yes = args.yes or check.flag("YES", _env("YES"))
    check.stack_name(args.stack_name)
    if getattr(args, "function_name", ""):
        check.function_name(args.function_name)
    if args.command == "deploy":
        if args.arch not in MACHINES:
            raise InputError(f"ARCH={check.shown(args.arch)} is not one of {', '.join(sorted(MACHINES))}")
        if not args.bucket:
            raise InputError("name the bucket: --bucket (make deploy BUCKET_NAME=...)")
        check.bucket_name(args.bucket)
        check.template_prefix(args.prefix, "PREFIX")
        check.template_prefix(args.scope_prefix, "SCOPE_PREFIX")
        if args.kms_key_arn:
            check.kms_key_arn(args.kms_key_arn)
        args.enable_s3_trigger = args.enable_s3_trigger or check.flag("S3_TRIGGER", _env("S3_TRIGGER"))
        declared = load_template()["Parameters"]
        given = {
            "Architecture": args.arch,
            "BucketName": args.bucket,
            "Prefix": args.prefix,
            "ScopePrefix": args.scope_prefix,
            "KmsKeyArn": args.kms_key_arn,
            "EnableS3Trigger": "true" if args.enable_s3_trigger else "false",
            "MemorySize": args.memory_size,
            "Timeout": args.timeout,
            "UrlExpirySeconds": args.url_expiry_seconds,
            "LogLevel": args.log_level,
        }
        for parameter, value in given.items():
            if value:
                given[parameter] = check.template_setting(SETTINGS[parameter], value, declared[parameter])
        args.parameters = parameter_values(given, load_template())
    elif args.command == "invoke":
        check.qualifier(args.qualifier)
        if args.bucket:
            check.bucket_name(args.bucket)
        check.prefix(args.prefix)
        if args.event:
            try:
                json.loads(args.event)
            except json.JSONDecodeError as exc:
                raise InputError(f"--event is not JSON: {exc.msg} at character {exc.pos}") from None
    elif args.command == "run-fanout":
        if args.prefixes:
            args.prefixes = [check.prefix(item, "prefix") for item in args.prefixes]
        else:
            args.prefixes = check.prefix_list(_env("PREFIXES") or _env("PREFIX"))
        if args.state_machine_arn:
            check.state_machine_arn(args.state_machine_arn)
    elif args.command == "rollback":
        check.qualifier(args.alias, "--alias")
        if args.to_version is not None:
            check.version(args.to_version)
    elif args.command == "s3-trigger":
        if not args.bucket:
            raise InputError("name the bucket: --bucket (make s3-trigger BUCKET_NAME=...)")
        check.bucket_name(args.bucket)
        check.template_prefix(args.prefix, "PREFIX")


def announce_target(runner: Runner, region: Region) -> None:
    """Say which account and region the commands go to, before any of them changes anything."""
    identity = runner.capture(
        ["aws", "sts", "get-caller-identity", "--region", region.name, "--query", "[Account,Arn]", "--output", "text"],
        placeholder="<account> <caller>",
    )
    account, _, caller = identity.partition("\t" if "\t" in identity else " ")
    runner.target = f"account {account} in {region.name}"
    runner.say(f"# {runner.target} (region from {region.source}; caller {caller.strip()})")


def main(
    argv: list[str] | None = None,
    out: TextIO | None = None,
    tools: dict[str, str] | None = None,
    confirmation: Confirmation | None = None,
) -> int:
    args = build_parser().parse_args(argv)
    try:
        check_arguments(args)  # every value, before anything runs
        region = resolve_region(args.region)
        args.region = region.name
        runner = Runner(
            dry_run=args.dry_run,
            out=out or sys.stdout,
            tools=tools or {},
            confirmation=confirmation or Confirmation(assume_yes=args.yes),
        )
        announce_target(runner, region)
        return args.func(args, runner)
    except InputError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 2
    except DeployError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"deploy: {shlex.join(map(str, exc.cmd))} exited {exc.returncode}", file=sys.stderr)
        return exc.returncode or 1
    except FileNotFoundError as exc:
        print(f"deploy: {exc.filename} is not on PATH: install the AWS CLI v2 and the SAM CLI", file=sys.stderr)
        return 127


if __name__ == "__main__":
    raise SystemExit(main())
