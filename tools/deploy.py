"""Deploy, invoke, fan out and roll back on AWS: every command line in one place.

``make deploy``, ``make invoke-aws``, ``make run-fanout``, ``make rollback`` and
``make s3-trigger`` all call this module, so the exact ``sam``/``aws`` command
lines are built by code that tests can read. ``--dry-run`` prints them (each
prefixed with ``+ ``) and runs nothing: this repository has no AWS account, so
that is how the commands are checked here. Values that only AWS can supply
(the function name from the stack outputs, the alias's current version) appear
as ``<placeholders>`` in a dry run.

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
    """Prints every command; runs it unless dry-run. ``tools`` maps ``aws``/``sam`` to executables."""

    dry_run: bool
    out: TextIO = sys.stdout
    tools: dict[str, str] = field(default_factory=dict)

    def _argv(self, command: Sequence[str]) -> list[str]:
        return [self.tools.get(command[0], command[0]), *command[1:]]

    def show(self, command: Sequence[str]) -> None:
        print("+ " + shlex.join(command), file=self.out, flush=True)

    def run(self, command: Sequence[str]) -> None:
        self.show(command)
        if not self.dry_run:
            subprocess.run(self._argv(command), check=True)

    def capture(self, command: Sequence[str], placeholder: str) -> str:
        """Run a query and return its output; a dry run returns ``placeholder`` instead."""
        self.show(command)
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
    if not args.bucket:
        raise DeployError("name the bucket: --bucket (make deploy BUCKET_NAME=...)")
    code = ROOT / "dist" / zip_name(args.arch)
    guided = not Path(args.config_file).exists()
    if args.dry_run:
        template = RENDERED_DIR / f"template-{args.arch}.yaml"
        runner.say(f"# would render {template} with CodeUri {code}")
    else:
        if not code.is_file():
            raise DeployError(f"{code} is missing: run make package first")
        template = render_template(args.arch)
    if guided:
        runner.say(f"# {args.config_file} not found: guided deploy; answer the prompts and save the answers")
    runner.run(deploy_command(args, template, guided))
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
        ]
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
        ]
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
    if not args.bucket:
        raise DeployError("name the bucket: --bucket (make s3-trigger BUCKET_NAME=...)")
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
        ]
    )
    return 0


# ---------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python tools/deploy.py",
        description="sam/aws command lines for deploying and running pdf-manifest on AWS.",
    )
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
    parser.add_argument("--stack-name", default=os.environ.get("STACK_NAME") or DEFAULT_STACK)
    parser.add_argument(
        "--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    deploy = sub.add_parser("deploy", help="sam deploy (guided when samconfig.toml is absent)")
    deploy.add_argument("--arch", choices=sorted(MACHINES), default="arm64")
    deploy.add_argument("--bucket", default="", help="existing bucket with the PDFs (required)")
    deploy.add_argument("--prefix", default="", help="default prefix (template default when empty)")
    deploy.add_argument("--scope-prefix", default="", help="the role reads only under this prefix")
    deploy.add_argument("--kms-key-arn", default="", help="the bucket's SSE-KMS key, if any")
    deploy.add_argument("--enable-s3-trigger", action="store_true", help="allow the bucket to invoke the alias")
    deploy.add_argument("--config-file", type=Path, default=SAMCONFIG)
    deploy.set_defaults(func=cmd_deploy)

    invoke = sub.add_parser("invoke", help="aws lambda invoke the live alias, print the manifest URL")
    invoke.add_argument("--function-name", default="", help="default: the stack's FunctionName output")
    invoke.add_argument("--qualifier", default=ALIAS)
    invoke.add_argument("--bucket", default="")
    invoke.add_argument("--prefix", default="")
    invoke.add_argument("--event", default="", help="a whole JSON event instead of --bucket/--prefix")
    invoke.add_argument("--out", type=Path, default=Path("out.json"))
    invoke.set_defaults(func=cmd_invoke)

    fanout = sub.add_parser("run-fanout", help='start the state machine with {"prefixes": [...]}')
    fanout.add_argument("prefixes", nargs="+")
    fanout.add_argument("--state-machine-arn", default="", help="default: the stack's StateMachineArn output")
    fanout.add_argument("--wait", action="store_true", help="poll until the execution ends, print its output")
    fanout.add_argument("--poll-seconds", type=float, default=5.0)
    fanout.set_defaults(func=cmd_run_fanout)

    rollback = sub.add_parser("rollback", help="point the alias at the previous (or a given) version")
    rollback.add_argument("--function-name", default="")
    rollback.add_argument("--alias", default=ALIAS)
    rollback.add_argument("--to-version", default=None, help="default: the newest version before the current one")
    rollback.set_defaults(func=cmd_rollback)

    trigger = sub.add_parser("s3-trigger", help="add the *.pdf notification to the bucket (keeps the others)")
    trigger.add_argument("--bucket", default="")
    trigger.add_argument("--prefix", default="")
    trigger.set_defaults(func=cmd_s3_trigger)
    return parser


def main(argv: list[str] | None = None, out: TextIO | None = None, tools: dict[str, str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    runner = Runner(dry_run=args.dry_run, out=out or sys.stdout, tools=tools or {})
    try:
        return args.func(args, runner)
    except DeployError as exc:
        print(f"deploy: {exc}", file=sys.stderr)
        return 1
    except subprocess.CalledProcessError as exc:
        print(f"deploy: {shlex.join(map(str, exc.cmd))} exited {exc.returncode}", file=sys.stderr)
        return exc.returncode or 1


if __name__ == "__main__":
    raise SystemExit(main())
