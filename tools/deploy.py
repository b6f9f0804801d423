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
publishes a version and moves the alias, so rolling back is pointing the
alias at an earlier version; no rebuild, no redeploy.
"""

from __future__ import annotations

import argparse
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

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make tools.package importable
    sys.path.insert(0, str(ROOT))
from tools import deploy_inputs as check  # noqa: E402
from tools.aws_target import Confirmation, Region, resolve_region  # noqa: E402
from tools.deploy_inputs import InputError  # noqa: E402
from tools.package import MACHINES, zip_name  # noqa: E402

TEMPLATE = ROOT / "template.yaml"
SAMCONFIG = ROOT / "samconfig.toml"
RENDERED_DIR = ROOT / "build" / "sam"
ALIAS = "live"
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


def render_template(arch: str, destination_dir: Path = RENDERED_DIR, template: Path = TEMPLATE) -> Path:
    """Copy the template with CodeUri on the zip for ``arch`` and local paths made absolute.

    SAM cannot take CodeUri from a parameter, and a zip's compiled extensions
    only load on their own architecture, so each architecture gets its own
    rendered copy; everything else stays byte for byte the same.
    """
    text = template.read_text(encoding="utf-8")
    code = (ROOT / "dist" / zip_name(arch)).as_posix()
    text, replaced = re.subn(r"(?m)^(\s+CodeUri:\s*)\S+$", lambda m: m.group(1) + code, text)
    if replaced != 1:
        raise DeployError(f"expected one CodeUri in {template.name}, found {replaced}")

    def absolute(match: re.Match[str]) -> str:
        return match.group(1) + (template.parent / match.group(2)).as_posix()

    text = re.sub(r"(?m)^(\s+DefinitionUri:\s*)(\S+)$", absolute, text)
    destination_dir.mkdir(parents=True, exist_ok=True)
    rendered = destination_dir / f"template-{arch}.yaml"
    rendered.write_text(text, encoding="utf-8")
    return rendered


def parameter_overrides(args: argparse.Namespace) -> list[str]:
    """Template parameters as ``Key=Value``; empty optional values keep the template default."""
    values = {
        "Architecture": args.arch,
        "BucketName": args.bucket,
        "Prefix": args.prefix,
        "ScopePrefix": args.scope_prefix,
        "KmsKeyArn": args.kms_key_arn,
        "EnableS3Trigger": "true" if args.enable_s3_trigger else "false",
    }
    return [f"{key}={value}" for key, value in values.items() if value]


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
        *parameter_overrides(args),
    ]
    return command


def cmd_deploy(args: argparse.Namespace, runner: Runner) -> int:
    code = ROOT / "dist" / zip_name(args.arch)
    guided = not Path(args.config_file).exists()
    if args.package:
        runner.run([sys.executable, str(ROOT / "tools" / "package.py"), "--arch", args.arch])
    if args.dry_run:
        template = RENDERED_DIR / f"template-{args.arch}.yaml"
        runner.say(f"# would render {template} with CodeUri {code}")
    else:
        if not code.is_file():
            raise DeployError(f"{code} is missing: run make package first")
        template = render_template(args.arch)
    if guided:
        runner.say(f"# {args.config_file} not found: guided deploy; answer the prompts and save the answers")
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
    ours = {
        "Id": notification_id,
        "LambdaFunctionArn": function_arn,
        "Events": ["s3:ObjectCreated:*"],
        "Filter": {
            "Key": {
                "FilterRules": [
                    *([{"Name": "prefix", "Value": prefix}] if prefix else []),
                    {"Name": "suffix", "Value": ".pdf"},
                ]
            }
        },
    }
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
STACK_NAME, PREFIXES, TO_VERSION, DRY_RUN, YES). Yes/no settings take
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
