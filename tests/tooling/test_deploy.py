"""tools/deploy.py and mk/deploy.mk: the exact sam/aws command lines, without AWS.

There is no AWS account here, so the commands are checked two ways: a dry run
prints them (and must start no process at all), and a real run is pointed at a
fake ``aws`` executable that records its arguments and answers like the CLI,
which exercises the parts that read answers (versions, out.json).
"""

from __future__ import annotations

import io
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tools import deploy
from tools.aws_target import Confirmation
from tools.package import zip_name

REGION = ["--region", "eu-west-1"]
IDENTITY = [
    "aws",
    "sts",
    "get-caller-identity",
    "--region",
    "eu-west-1",
    "--query",
    "[Account,Arn]",
    "--output",
    "text",
]
STATE_MACHINE = "arn:aws:states:eu-west-1:111122223333:stateMachine:reports-fanout"
# Everything the make targets pass to tools/deploy.py through the environment.
DEPLOY_VARIABLES = [
    *("BUCKET_NAME", "PREFIX", "SCOPE_PREFIX", "KMS_KEY_ARN", "S3_TRIGGER", "ARCH", "STACK_NAME", "PREFIXES"),
    *("TO_VERSION", "DRY_RUN", "YES", "PORT", "MEMORY_SIZE", "TIMEOUT", "URL_EXPIRY_SECONDS", "LOG_LEVEL"),
    *("AWS_REGION", "AWS_DEFAULT_REGION", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE"),
]


@pytest.fixture(autouse=True)
def hermetic_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No setting of the developer's shell or ~/.aws may leak into what a test expects."""
    for name in DEPLOY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))


def dry_run(*argv: str) -> list[str]:
    out = io.StringIO()
    assert deploy.main(["--dry-run", "--stack-name", "reports", *REGION, *argv], out=out) == 0
    return out.getvalue().splitlines()


def commands(lines: list[str]) -> list[list[str]]:
    """The commands shown, after the identity check that every run starts with."""
    shown = [shlex.split(line[2:]) for line in lines if line.startswith("+ ")]
    assert shown[0] == IDENTITY
    return shown[1:]


@pytest.fixture
def allow_processes() -> None:
    """Marks a test that may start processes (make, cfn-lint, the fake aws CLI)."""


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """A dry run must never start sam or aws; only tests asking for it may run anything."""
    if {"fake_aws", "allow_processes", "recording_make"} & set(request.fixturenames):
        return

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a dry run started a process: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)


def _rendered(lines: list[str], directory: Path, arch: str) -> str:
    """The rendered template a dry run names: template-<arch>-<configuration digest>.yaml in ``directory``."""
    found = set(re.findall(re.escape(str(directory / f"template-{arch}-")) + r"[0-9a-f]{12}\.yaml", "\n".join(lines)))
    assert len(found) == 1, found
    return found.pop()


def test_first_deploy_is_guided_and_uses_the_rendered_template_for_the_arch(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    lines = dry_run(
        "deploy",
        "--arch",
        "x86_64",
        "--bucket",
        "acme-reports",
        "--prefix",
        "2026/04/",
        "--scope-prefix",
        "2026/",
        "--config-file",
        str(config),
    )

    assert commands(lines) == [
        [
            "sam",
            "deploy",
            "--guided",
            "--template-file",
            _rendered(lines, deploy.RENDERED_DIR, "x86_64"),
            "--config-file",
            str(config),
            "--stack-name",
            "reports",
            "--region",
            "eu-west-1",
            "--capabilities",
            "CAPABILITY_IAM",
            "--no-fail-on-empty-changeset",
            "--parameter-overrides",
            "Architecture=x86_64",
            "BucketName=acme-reports",
            "Prefix=2026/04/",
            "ScopePrefix=2026/",
            "UrlExpirySeconds=900",
            "MemorySize=512",
            "Timeout=120",
            "LogLevel=INFO",
            "LogRetentionDays=30",
            'KmsKeyArn=""',
            "EnableS3Trigger=false",
        ]
    ]
    assert any("guided deploy" in line for line in lines)


def test_later_deploys_reuse_samconfig_and_can_enable_kms_and_the_trigger(tmp_path: Path) -> None:
    config = tmp_path / "samconfig.toml"
    config.write_text("version = 0.1\n")
    [command] = commands(
        dry_run(
            "deploy",
            "--bucket",
            "acme-reports",
            "--kms-key-arn",
            "arn:aws:kms:eu-west-1:111122223333:key/abc",
            "--enable-s3-trigger",
            "--config-file",
            str(config),
        )
    )

    assert command[:3] == ["sam", "deploy", "--template-file"]
    assert "--guided" not in command
    overrides = command[command.index("--parameter-overrides") + 1 :]
    assert overrides == [
        "Architecture=arm64",
        "BucketName=acme-reports",
        "Prefix=2026/04/",
        'ScopePrefix=""',
        "UrlExpirySeconds=900",
        "MemorySize=512",
        "Timeout=120",
        "LogLevel=INFO",
        "LogRetentionDays=30",
        "KmsKeyArn=arn:aws:kms:eu-west-1:111122223333:key/abc",
        "EnableS3Trigger=true",
    ]


def test_every_setting_is_passed_so_none_keeps_a_previous_value(tmp_path: Path) -> None:
    """SAM sends UsePreviousValue for a template parameter it is not given: each one is given."""
    [command] = commands(
        dry_run(
            "deploy",
            "--bucket",
            "acme-reports",
            "--memory-size",
            "1024",
            "--timeout",
            "300",
            "--url-expiry-seconds",
            "3600",
            "--log-level",
            "DEBUG",
            "--render-dir",
            str(tmp_path),
            "--config-file",
            str(tmp_path / "samconfig.toml"),
        )
    )
    overrides = dict(item.split("=", 1) for item in command[command.index("--parameter-overrides") + 1 :])

    assert list(overrides) == list(deploy.load_template()["Parameters"])
    assert overrides["MemorySize"] == "1024" and overrides["Timeout"] == "300"
    assert overrides["UrlExpirySeconds"] == "3600" and overrides["LogLevel"] == "DEBUG"
    rendered = Path(command[command.index("--template-file") + 1])
    assert rendered.parent == tmp_path and re.fullmatch(r"template-arm64-[0-9a-f]{12}\.yaml", rendered.name)
    assert rendered.is_file()  # a dry run writes the template it would deploy


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--memory-size", "100", "MEMORY_SIZE=100 is outside 128..10240"),
        ("--memory-size", "1e3", "MEMORY_SIZE='1e3' is not a whole number"),
        ("--timeout", "901", "TIMEOUT=901 is outside 10..900"),
        ("--url-expiry-seconds", "604801", "URL_EXPIRY_SECONDS=604801 is outside 1..604800"),
        ("--log-level", "debug", "LOG_LEVEL='debug' is not one of DEBUG, INFO, WARN, ERROR"),
        ("--log-level", "INFO LogRetentionDays=1", "is not one of"),
    ],
)
def test_settings_are_checked_against_the_templates_own_limits(
    capsys: pytest.CaptureFixture[str], option: str, value: str, message: str
) -> None:
    argv = ["--dry-run", *REGION, "deploy", "--bucket", "acme-reports", option, value]

    assert deploy.main(argv, out=io.StringIO()) == 2
    assert message in capsys.readouterr().err


def test_deploy_without_a_bucket_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy.main(["--dry-run", *REGION, "deploy"], out=io.StringIO()) == 2
    assert "--bucket" in capsys.readouterr().err


def test_invoke_calls_the_live_alias_with_raw_json_payload() -> None:
    lines = dry_run(
        "invoke", "--function-name", "reports-Function-1", "--prefix", "2026/05/", "--bucket", "acme-reports"
    )

    assert commands(lines) == [
        [
            "aws",
            "lambda",
            "invoke",
            "--function-name",
            "reports-Function-1",
            "--qualifier",
            "live",
            "--region",
            "eu-west-1",
            "--cli-binary-format",
            "raw-in-base64-out",
            "--payload",
            '{"bucket":"acme-reports","prefix":"2026/05/"}',
            "out.json",
        ]
    ]
    assert lines[-1] == "# would print the manifest URL from out.json"


def test_invoke_finds_the_function_name_in_the_stack_outputs() -> None:
    lookup, invoke = commands(dry_run("invoke", "--event", '{"Records": []}'))

    assert lookup == [
        "aws",
        "cloudformation",
        "describe-stacks",
        "--stack-name",
        "reports",
        "--region",
        "eu-west-1",
        "--query",
        "Stacks[0].Outputs[?OutputKey=='FunctionName'].OutputValue",
        "--output",
        "text",
    ]
    assert invoke[invoke.index("--function-name") + 1] == "<FunctionName>"
    assert invoke[invoke.index("--payload") + 1] == '{"Records":[]}'


def test_run_fanout_starts_the_state_machine_with_the_prefixes() -> None:
    lines = dry_run("run-fanout", "2026/04/", "2026/05/", "--state-machine-arn", STATE_MACHINE)

    assert commands(lines) == [
        [
            "aws",
            "stepfunctions",
            "start-execution",
            "--state-machine-arn",
            STATE_MACHINE,
            "--region",
            "eu-west-1",
            "--input",
            '{"prefixes":["2026/04/","2026/05/"]}',
            "--query",
            "executionArn",
            "--output",
            "text",
        ],
        ["aws", "stepfunctions", "describe-execution", "--execution-arn", "<executionArn>", "--region", "eu-west-1"],
    ]


def test_rollback_moves_the_alias_to_the_previous_version() -> None:
    get_alias, list_versions, update = commands(dry_run("rollback", "--function-name", "fn"))

    assert get_alias[:3] == ["aws", "lambda", "get-alias"] and "live" in get_alias
    assert list_versions[:3] == ["aws", "lambda", "list-versions-by-function"]
    assert update == [
        "aws",
        "lambda",
        "update-alias",
        "--function-name",
        "fn",
        "--name",
        "live",
        "--function-version",
        "<previous version>",
        "--region",
        "eu-west-1",
    ]


def test_rollback_to_a_given_version_skips_the_listing() -> None:
    get_alias, update = commands(dry_run("rollback", "--function-name", "fn", "--to-version", "4"))

    assert get_alias[:3] == ["aws", "lambda", "get-alias"]
    assert update[update.index("--function-version") + 1] == "4"


def test_s3_trigger_adds_the_pdf_notification_for_the_alias() -> None:
    lookup, get, put = commands(dry_run("s3-trigger", "--bucket", "acme-reports", "--prefix", "2026/"))

    assert "FunctionAliasArn" in lookup[lookup.index("--query") + 1]
    assert get[:3] == ["aws", "s3api", "get-bucket-notification-configuration"]
    assert put[:5] == ["aws", "s3api", "put-bucket-notification-configuration", "--bucket", "acme-reports"]
    config = json.loads(put[put.index("--notification-configuration") + 1])
    [ours] = config["LambdaFunctionConfigurations"]
    assert ours["LambdaFunctionArn"] == "<FunctionAliasArn>"
    assert ours["Filter"]["Key"]["FilterRules"] == [
        {"Name": "prefix", "Value": "2026/"},
        {"Name": "suffix", "Value": ".pdf"},
    ]


def test_notification_merge_keeps_everything_else_and_replaces_only_ours() -> None:
    existing = {
        "ResponseMetadata": {"RequestId": "x"},
        "QueueConfigurations": [{"Id": "q", "QueueArn": "arn:q", "Events": ["s3:ObjectRemoved:*"]}],
        "LambdaFunctionConfigurations": [
            {"Id": "other", "LambdaFunctionArn": "arn:other", "Events": ["s3:ObjectCreated:*"]},
            {"Id": "reports-pdfs", "LambdaFunctionArn": "arn:old", "Events": ["s3:ObjectCreated:*"]},
        ],
        "EventBridgeConfiguration": {},
    }

    merged = deploy.merged_notification(existing, "reports-pdfs", "arn:new", "")

    assert "ResponseMetadata" not in merged
    assert merged["QueueConfigurations"] == existing["QueueConfigurations"]
    assert merged["EventBridgeConfiguration"] == {}
    ids = [(c["Id"], c["LambdaFunctionArn"]) for c in merged["LambdaFunctionConfigurations"]]
    assert ids == [("other", "arn:other"), ("reports-pdfs", "arn:new")]
    assert merged["LambdaFunctionConfigurations"][-1]["Filter"]["Key"]["FilterRules"] == [
        {"Name": "suffix", "Value": ".pdf"}
    ]


def test_previous_version_ignores_latest_and_newer_versions() -> None:
    assert deploy.previous_version(["$LATEST", "1", "3", "7", "9"], "7") == "3"
    with pytest.raises(deploy.DeployError, match="no published version"):
        deploy.previous_version(["$LATEST", "1"], "1")


@pytest.mark.parametrize(
    ("response", "message"),
    [
        ({"errorType": "ScanDeadlineExceeded", "errorMessage": "stopped"}, "raised ScanDeadlineExceeded"),
        ({"statusCode": 400, "body": json.dumps({"error": "bucket 'x' is not in ALLOWED_BUCKETS"})}, "answered 400"),
    ],
)
def test_manifest_url_reports_function_errors(tmp_path: Path, response: dict[str, Any], message: str) -> None:
    out = tmp_path / "out.json"
    out.write_text(json.dumps(response))

    with pytest.raises(deploy.DeployError, match=message):
        deploy.manifest_url_from(out)


def test_render_template_points_code_at_the_arch_zip_and_stays_valid(tmp_path: Path) -> None:
    values = deploy.parameter_values({"BucketName": "acme-reports", "Architecture": "x86_64"}, deploy.load_template())
    rendered = deploy.render_template("x86_64", values, tmp_path)
    original = deploy.TEMPLATE.read_text().splitlines()
    text = rendered.read_text()
    digest = deploy.configuration_digest(deploy.function_configuration(deploy.load_template(), values))
    added = [line.strip() for line in text.splitlines() if line not in original]

    paths = [line for line in added if not line.startswith(("#", "AutoPublishCodeSha256:"))]
    assert paths == [
        f"CodeUri: {(ROOT / 'dist' / zip_name('x86_64')).as_posix()}",
        f"DefinitionUri: {(ROOT / 'statemachine' / 'fanout.asl.json').as_posix()}",
    ]
    assert [line for line in added if line.startswith("AutoPublish")] == [f"AutoPublishCodeSha256: {digest}"]
    assert "#   MemorySize: 512" in added and "#   Architecture: x86_64" in added
    kept = [line for line in text.splitlines() if line.strip() not in added]
    assert len(kept) == len(original) - 2  # every other line byte for byte
    from cfnlint.api import lint_file

    assert [str(match) for match in lint_file(rendered)] == []


def test_digest_follows_every_resolved_property_and_nothing_else() -> None:
    template = deploy.load_template()

    def digest(**given: str) -> str:
        values = deploy.parameter_values({"BucketName": "acme-reports", **given}, template)
        return deploy.configuration_digest(deploy.function_configuration(template, values))

    assert digest() == digest(MemorySize="512")  # the default spelt out is the same configuration
    changed = [digest(MemorySize="1024"), digest(Timeout="60"), digest(LogLevel="WARN"), digest(Prefix="x/")]
    assert len({digest(), *changed}) == 5
    assert digest() == digest(ScopePrefix="2026/", KmsKeyArn="arn:aws:kms:eu-west-1:111122223333:key/k")  # role only


# ---------------------------------------------------------------------------
# Real mode against a fake aws CLI
# ---------------------------------------------------------------------------

_FAKE_AWS = textwrap.dedent(
    """
    import json, sys
    args = sys.argv[1:]
    with open(sys.argv[0] + ".log", "a") as log:
        log.write(json.dumps(args) + "\\n")
    if args[:2] == ["sts", "get-caller-identity"]:
        print("111122223333\tarn:aws:iam::111122223333:user/dev")
    elif args[:2] == ["cloudformation", "describe-stacks"]:
        print("reports-Function-ABC")
    elif args[:2] == ["lambda", "invoke"]:
        body = {"count": 2, "manifest_key": "manifests/x.jsonl", "manifest_url": "https://example.invalid/m?sig"}
        with open(args[-1], "w") as out:
            json.dump({"statusCode": 200, "body": json.dumps(body)}, out)
        print(json.dumps({"StatusCode": 200, "ExecutedVersion": "8"}))
    elif args[:2] == ["lambda", "get-alias"]:
        print("8")
    elif args[:2] == ["lambda", "list-versions-by-function"]:
        print(json.dumps(["$LATEST", "5", "7", "8"]))
    elif args[:2] == ["stepfunctions", "start-execution"]:
        print("arn:exec:1")
    elif args[:2] == ["stepfunctions", "describe-execution"]:
        print("SUCCEEDED" if "status" in args else json.dumps({"manifests": []}))
    """
)


@pytest.fixture
def fake_aws(tmp_path: Path) -> Path:
    script = tmp_path / "aws"
    script.write_text(f"#!{sys.executable}\n{_FAKE_AWS}")
    script.chmod(0o755)
    return script


def fake_calls(fake_aws: Path) -> list[list[str]]:
    """What the fake CLI was asked, after the identity check every run starts with."""
    log = Path(f"{fake_aws}.log")
    calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    assert calls[0] == IDENTITY[1:]
    return calls[1:]


def run_real(fake_aws: Path, *argv: str, confirmation: Confirmation | None = None) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = deploy.main(
        ["--stack-name", "reports", *REGION, *argv],
        out=out,
        tools={"aws": str(fake_aws)},
        confirmation=confirmation or Confirmation(assume_yes=True),
    )
    return code, out.getvalue().splitlines()


def test_invoke_prints_the_manifest_url_from_out_json(fake_aws: Path, tmp_path: Path) -> None:
    code, lines = run_real(fake_aws, "invoke", "--prefix", "2026/04/", "--out", str(tmp_path / "out.json"))

    assert code == 0
    assert lines[-1] == "https://example.invalid/m?sig"
    lookup, invoke = fake_calls(fake_aws)
    assert lookup[:2] == ["cloudformation", "describe-stacks"]
    assert invoke[invoke.index("--function-name") + 1] == "reports-Function-ABC"


def test_rollback_picks_the_version_before_the_current_one(fake_aws: Path) -> None:
    code, lines = run_real(fake_aws, "rollback")

    assert code == 0
    update = fake_calls(fake_aws)[-1]
    assert update[:2] == ["lambda", "update-alias"]
    assert update[update.index("--function-version") + 1] == "7"
    assert lines[-1] == "# live: 8 -> 7"


def test_run_fanout_waits_and_prints_the_output(fake_aws: Path) -> None:
    code, lines = run_real(fake_aws, "run-fanout", "a/", "b/", "--wait", "--poll-seconds", "0")

    assert code == 0
    assert lines[-2:] == ["# SUCCEEDED", '{"manifests": []}']


def test_deploy_refuses_to_run_without_the_zip(
    fake_aws: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(deploy, "ROOT", tmp_path)  # no dist/ here

    code, _ = run_real(
        fake_aws, "deploy", "--bucket", "acme-reports", "--config-file", str(tmp_path / "samconfig.toml")
    )

    assert code == 1
    assert "make package" in capsys.readouterr().err


def test_make_targets_pass_dry_run_through(allow_processes: None) -> None:
    done = subprocess.run(
        [
            "make",
            "-s",
            "-o",
            "install",
            "rollback",
            "run-fanout",
            "DRY_RUN=1",
            "STACK_NAME=reports",
            "PREFIXES=a/ b/",
            "AWS_REGION=eu-west-1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert "+ aws lambda update-alias" in done.stdout
    assert '{"prefixes":["a/","b/"]}' in done.stdout
    assert "--stack-name reports" in done.stdout


# ---------------------------------------------------------------------------
# Hostile values through make, with recording aws/sam on PATH
# ---------------------------------------------------------------------------

_RECORDER = textwrap.dedent(
    """
    import json, os, sys
    with open(os.environ["DEPLOY_RECORD_LOG"], "a") as log:
        log.write(json.dumps([os.path.basename(sys.argv[0]), *sys.argv[1:]]) + "\\n")
    args = sys.argv[1:]
    if args[:2] == ["sts", "get-caller-identity"]:
        print("111122223333\\tarn:aws:iam::111122223333:user/dev")
    elif args[:2] == ["cloudformation", "describe-stacks"]:
        print("arn:aws:states:eu-west-1:111122223333:stateMachine:from-the-stack")
    elif args[:2] == ["lambda", "get-alias"]:
        print("8")
    elif args[:2] == ["stepfunctions", "start-execution"]:
        print("arn:exec:1")
    elif args[:2] == ["lambda", "invoke"]:
        with open(args[-1], "w") as out:
            json.dump({"statusCode": 200, "body": json.dumps({"manifest_url": "https://example.invalid/m"})}, out)
    """
)


@dataclass
class MakeRun:
    returncode: int
    stdout: str
    stderr: str
    calls: list[list[str]]


@pytest.fixture
def recording_make(tmp_path: Path) -> Any:
    """``make <target> VAR=value...`` in the repo with recording ``aws`` and ``sam`` first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("aws", "sam"):
        (bin_dir / tool).write_text(f"#!{sys.executable}\n{_RECORDER}")
        (bin_dir / tool).chmod(0o755)
    log = tmp_path / "calls.jsonl"

    def run(target: str, *assignments: str, env: dict[str, str] | None = None) -> MakeRun:
        environment = {
            **os.environ,
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "DEPLOY_RECORD_LOG": str(log),
            **(env or {}),
        }
        done = subprocess.run(
            ["make", "-s", "-o", "install", target, *assignments],
            cwd=ROOT,
            env=environment,
            capture_output=True,
            text=True,
            timeout=120,
        )
        calls = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        log.unlink(missing_ok=True)
        return MakeRun(done.returncode, done.stdout, done.stderr, calls)

    return run


def _canary(tmp_path: Path) -> Path:
    return tmp_path / "canary"


INJECTIONS_REFUSED = [
    # (target, variable, value with {canary}); each must be refused before any command runs
    ("deploy", "BUCKET_NAME", "x'; touch {canary}; echo '"),
    ("deploy", "BUCKET_NAME", "x\ntouch {canary}"),
    ("deploy", "BUCKET_NAME", "x$(shell touch {canary})"),
    ("deploy", "PREFIX", "a'; touch {canary}; echo '"),
    ("deploy", "SCOPE_PREFIX", "a'; touch {canary}; echo '"),
    ("deploy", "SCOPE_PREFIX", "*"),
    ("deploy", "KMS_KEY_ARN", "arn:aws:kms:eu-west-1:111122223333:key/k'; touch {canary}; echo '"),
    ("deploy", "ARCH", "arm64; touch {canary}"),
    ("deploy", "ARCH", "`touch {canary}`"),
    ("deploy", "STACK_NAME", "reports; touch {canary}"),
    ("deploy", "STACK_NAME", "`touch {canary}`"),
    ("deploy", "AWS_REGION", "eu-west-1; touch {canary}"),
    ("deploy", "MEMORY_SIZE", "512; touch {canary}"),
    ("deploy", "MEMORY_SIZE", "$(shell touch {canary})"),
    ("deploy", "TIMEOUT", "`touch {canary}`"),
    ("deploy", "URL_EXPIRY_SECONDS", "900 LogLevel=DEBUG"),
    ("deploy", "LOG_LEVEL", "INFO'; touch {canary}; echo '"),
    ("rollback", "TO_VERSION", "7; touch {canary}"),
    ("rollback", "TO_VERSION", "$LATEST"),
    ("s3-trigger", "BUCKET_NAME", "x'; touch {canary}; echo '"),
    ("s3-trigger", "PREFIX", "a/'; touch {canary}; echo '"),
]


@pytest.mark.parametrize("dry_run_value", ["1", ""])
@pytest.mark.parametrize(("target", "variable", "value"), INJECTIONS_REFUSED)
def test_make_refuses_hostile_values_before_running_anything(
    recording_make: Any, tmp_path: Path, target: str, variable: str, value: str, dry_run_value: str
) -> None:
    hostile = value.format(canary=_canary(tmp_path))
    assignments = {"BUCKET_NAME": "acme-reports", "AWS_REGION": "eu-west-1", "YES": "1", "DRY_RUN": dry_run_value}
    assignments[variable] = hostile

    done = recording_make(target, *(f"{name}={text}" for name, text in assignments.items()))

    assert done.returncode != 0
    assert not _canary(tmp_path).exists()
    assert done.calls == []  # not even the identity check: the value is refused first
    [message] = [line for line in done.stderr.splitlines() if line.startswith("deploy: ")]
    assert variable in message


def test_make_deploy_dry_run_passes_the_settings_and_writes_the_template(recording_make: Any) -> None:
    done = recording_make(
        "deploy",
        "DRY_RUN=1",
        "BUCKET_NAME=acme-reports",
        "AWS_REGION=eu-west-1",
        "MEMORY_SIZE=1024",
        "TIMEOUT=300",
        "URL_EXPIRY_SECONDS=3600",
        "LOG_LEVEL=WARN",
    )

    assert done.returncode == 0, done.stderr
    assert done.calls == []  # a preview starts no aws or sam
    [sam] = [shlex.split(line[2:]) for line in done.stdout.splitlines() if line.startswith("+ sam deploy")]
    overrides = sam[sam.index("--parameter-overrides") + 1 :]
    assert {"MemorySize=1024", "Timeout=300", "UrlExpirySeconds=3600", "LogLevel=WARN"} <= set(overrides)
    rendered = Path(sam[sam.index("--template-file") + 1])
    assert rendered.parent == deploy.RENDERED_DIR and "#   MemorySize: 1024" in rendered.read_text()


def test_make_serve_takes_port_as_one_value(recording_make: Any) -> None:
    done = recording_make("serve", "PORT=0 --host 0.0.0.0")

    assert done.returncode != 0
    assert "argument --port: port must be a whole number, got '0 --host 0.0.0.0'" in done.stderr


@pytest.mark.parametrize(
    ("prefixes", "expected"),
    [
        ("*", ["*"]),
        ("a/; touch {canary}", ["a/;", "touch", "{canary}"]),
        ("`touch {canary}` $(touch {canary})", ["`touch", "{canary}`", "$(touch", "{canary})"]),
        ("a/ --state-machine-arn arn:aws:states:eu-west-1:999999999999:stateMachine:other", None),
        ('["team a/", "b\'/"]', ["team a/", "b'/"]),
    ],
)
def test_make_run_fanout_passes_prefixes_as_data(
    recording_make: Any, tmp_path: Path, prefixes: str, expected: list[str] | None
) -> None:
    hostile = prefixes.format(canary=_canary(tmp_path))

    done = recording_make("run-fanout", f"PREFIXES={hostile}", "AWS_REGION=eu-west-1", "YES=1", "STACK_NAME=reports")

    assert done.returncode == 0, done.stderr
    assert not _canary(tmp_path).exists()
    start = next(call for call in done.calls if call[1:3] == ["stepfunctions", "start-execution"])
    assert start[start.index("--state-machine-arn") + 1].endswith(":stateMachine:from-the-stack")
    sent = json.loads(start[start.index("--input") + 1])["prefixes"]
    canary = str(_canary(tmp_path))
    assert sent == ([item.format(canary=canary) for item in expected] if expected else hostile.split())


@pytest.mark.parametrize("prefix", ["a'; touch {canary}; echo '", "$(shell touch {canary})", "x\u00e9/`id`"])
def test_make_invoke_aws_sends_the_prefix_as_one_json_value(recording_make: Any, tmp_path: Path, prefix: str) -> None:
    hostile = prefix.format(canary=_canary(tmp_path))

    done = recording_make(
        "invoke-aws",
        "BUCKET_NAME=acme-reports",
        f"PREFIX={hostile}",
        "AWS_REGION=eu-west-1",
        "STACK_NAME=reports",
        "YES=1",
    )

    assert done.returncode == 0, done.stderr
    assert not _canary(tmp_path).exists()
    invoke = next(call for call in done.calls if call[1:3] == ["lambda", "invoke"])
    assert json.loads(invoke[invoke.index("--payload") + 1]) == {"bucket": "acme-reports", "prefix": hostile}
    (ROOT / "out.json").unlink(missing_ok=True)


# ---------------------------------------------------------------------------
# DRY_RUN spellings, region, confirmation
# ---------------------------------------------------------------------------

YES_SPELLINGS = ["1", "true", "TRUE", "True", "yes", "Yes", "YES", "on", "On", "ON", "y", "Y", " yes "]
UNCLEAR_SPELLINGS = ["2", "maybe", "tru", "yes please", "-1", "enable", "si", "dry"]


@pytest.mark.parametrize("target", ["deploy", "rollback", "s3-trigger", "run-fanout", "invoke-aws"])
@pytest.mark.parametrize("spelling", YES_SPELLINGS)
def test_every_yes_spelling_of_dry_run_previews(recording_make: Any, target: str, spelling: str) -> None:
    done = recording_make(
        target, f"DRY_RUN={spelling}", "BUCKET_NAME=acme-reports", "PREFIXES=a/", "AWS_REGION=eu-west-1", "YES=1"
    )

    assert done.returncode == 0, done.stderr
    assert done.calls == []  # a preview starts no aws or sam at all
    assert "+ aws sts get-caller-identity" in done.stdout


@pytest.mark.parametrize("target", ["deploy", "rollback", "s3-trigger", "run-fanout"])
@pytest.mark.parametrize("spelling", UNCLEAR_SPELLINGS)
def test_an_unclear_dry_run_is_refused(recording_make: Any, target: str, spelling: str) -> None:
    done = recording_make(target, f"DRY_RUN={spelling}", "BUCKET_NAME=acme-reports", "AWS_REGION=eu-west-1", "YES=1")

    assert done.returncode == 2
    assert done.calls == []
    assert f"DRY_RUN={spelling!r} is neither yes nor no" in done.stderr


@pytest.mark.parametrize("dry_run", ["DRYRUN=1", "DRY_RUN=", "DRY-RUN=1", "dry_run=1"])
def test_invoke_aws_without_a_preview_asks_first_like_a_change(recording_make: Any, dry_run: str) -> None:
    """An invocation writes a manifest into the account: a misspelt or empty DRY_RUN must not just run it."""
    settings = ["BUCKET_NAME=acme-reports", "AWS_REGION=eu-west-1", "STACK_NAME=reports"]

    refused = recording_make("invoke-aws", dry_run, *settings)
    confirmed = recording_make("invoke-aws", dry_run, *settings, "YES=1")

    assert refused.returncode == 2
    assert not any(call[1:3] == ["lambda", "invoke"] for call in refused.calls)
    [said] = [line for line in refused.stderr.splitlines() if not re.match(r"make(\[\d+\])?: \*\*\*", line)]
    assert said.startswith("deploy: Run `aws lambda invoke ...` against account ")
    assert "not on a terminal, so nothing was changed; pass --yes (make ... YES=1)" in said
    assert confirmed.returncode == 0, confirmed.stderr
    assert any(call[1:3] == ["lambda", "invoke"] for call in confirmed.calls)
    (ROOT / "out.json").unlink(missing_ok=True)


def test_invoke_aws_asks_on_a_terminal_and_stops_on_anything_but_yes(fake_aws: Path, tmp_path: Path) -> None:
    asked: list[str] = []

    def ask(question: str) -> str:
        asked.append(question)
        return "no"

    code, _ = run_real(
        fake_aws,
        "invoke",
        "--out",
        str(tmp_path / "out.json"),
        confirmation=Confirmation(assume_yes=False, ask=ask, interactive=True),
    )

    assert code == 2 and asked
    assert not any(call[:2] == ["lambda", "invoke"] for call in fake_calls(fake_aws))


@pytest.mark.parametrize("spelling", ["0", "false", "No", "OFF", "n", ""])
def test_a_clear_no_runs_for_real(fake_aws: Path, monkeypatch: pytest.MonkeyPatch, spelling: str) -> None:
    monkeypatch.setenv("DRY_RUN", spelling)

    code, _ = run_real(fake_aws, "rollback", "--to-version", "3")

    assert code == 0
    assert fake_calls(fake_aws)[-1][:2] == ["lambda", "update-alias"]


@pytest.mark.parametrize("spelling", UNCLEAR_SPELLINGS)
def test_an_unclear_yes_is_refused(monkeypatch: pytest.MonkeyPatch, spelling: str) -> None:
    monkeypatch.setenv("YES", spelling)

    assert deploy.main([*REGION, "rollback"], out=io.StringIO()) == 2


def _aws_config(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "aws-config"
    config.write_text(textwrap.dedent(text))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))


def test_region_comes_from_the_active_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _aws_config(tmp_path, "[default]\nregion = us-west-2\n[profile dev]\nregion = eu-west-3\n", monkeypatch)
    monkeypatch.setenv("AWS_PROFILE", "dev")
    out = io.StringIO()

    assert deploy.main(["--dry-run", "rollback", "--function-name", "fn"], out=out) == 0

    lines = out.getvalue().splitlines()
    shown = [shlex.split(line[2:]) for line in lines if line.startswith("+ ")]
    assert all(command[command.index("--region") + 1] == "eu-west-3" for command in shown)
    assert any("eu-west-3 (region from profile 'dev'" in line for line in lines)


def test_region_environment_beats_the_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _aws_config(tmp_path, "[default]\nregion = us-west-2\n", monkeypatch)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "ap-south-1")
    out = io.StringIO()

    assert deploy.main(["--dry-run", "rollback", "--function-name", "fn"], out=out) == 0

    assert "--region ap-south-1" in out.getvalue()
    assert "region from AWS_DEFAULT_REGION" in out.getvalue()


def test_make_deploy_reads_the_profile_region(recording_make: Any, tmp_path: Path) -> None:
    config = tmp_path / "aws-config"
    config.write_text("[default]\nregion = eu-north-1\n")

    done = recording_make("deploy", "DRY_RUN=1", "BUCKET_NAME=acme-reports", env={"AWS_CONFIG_FILE": str(config)})

    assert done.returncode == 0, done.stderr
    [sam] = [shlex.split(line[2:]) for line in done.stdout.splitlines() if line.startswith("+ sam ")]
    assert sam[sam.index("--region") + 1] == "eu-north-1"


@pytest.mark.parametrize(
    ("config", "profile", "message"),
    [("[default]\noutput = json\n", "", "no AWS region"), ("[default]\nregion = eu-west-1\n", "nope", "'nope'")],
)
def test_no_region_is_an_error_never_us_east_1(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    config: str,
    profile: str,
    message: str,
) -> None:
    _aws_config(tmp_path, config, monkeypatch)
    if profile:
        monkeypatch.setenv("AWS_PROFILE", profile)

    assert deploy.main(["--dry-run", "rollback"], out=io.StringIO()) == 2
    assert message in capsys.readouterr().err


def test_a_change_off_a_terminal_needs_yes(fake_aws: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, lines = run_real(fake_aws, "rollback", confirmation=Confirmation(assume_yes=False, interactive=False))

    assert code == 2
    assert "pass --yes" in capsys.readouterr().err
    assert [call[:2] for call in fake_calls(fake_aws)] == [
        ["cloudformation", "describe-stacks"],
        ["lambda", "get-alias"],
        ["lambda", "list-versions-by-function"],
    ]  # reads only: the alias never moved
    assert any("account 111122223333 in eu-west-1" in line for line in lines)


@pytest.mark.parametrize(("answer", "moved"), [("yes", True), ("y", True), ("", False), ("no", False), ("yess", False)])
def test_a_change_on_a_terminal_waits_for_yes(
    fake_aws: Path, capsys: pytest.CaptureFixture[str], answer: str, moved: bool
) -> None:
    questions: list[str] = []

    def ask(prompt: str) -> str:
        questions.append(prompt)
        return answer

    code, _ = run_real(
        fake_aws, "run-fanout", "a/", confirmation=Confirmation(assume_yes=False, ask=ask, interactive=True)
    )

    assert len(questions) == 1
    assert "against account 111122223333 in eu-west-1?" in capsys.readouterr().err
    started = any(call[:2] == ["stepfunctions", "start-execution"] for call in fake_calls(fake_aws))
    assert (code == 0, started) == ((True, True) if moved else (False, False))
