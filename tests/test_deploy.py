"""tools/deploy.py and mk/deploy.mk: the exact sam/aws command lines, without AWS.

There is no AWS account here, so the commands are checked two ways: a dry run
prints them (and must start no process at all), and a real run is pointed at a
fake ``aws`` executable that records its arguments and answers like the CLI,
which exercises the parts that read answers (versions, out.json).
"""

from __future__ import annotations

import io
import json
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tools import deploy
from tools.package import zip_name

REGION = ["--region", "eu-west-1"]


def dry_run(*argv: str) -> list[str]:
    out = io.StringIO()
    assert deploy.main(["--dry-run", "--stack-name", "reports", *REGION, *argv], out=out) == 0
    return out.getvalue().splitlines()


def commands(lines: list[str]) -> list[list[str]]:
    return [shlex.split(line[2:]) for line in lines if line.startswith("+ ")]


@pytest.fixture
def allow_processes() -> None:
    """Marks a test that may start processes (make, cfn-lint, the fake aws CLI)."""


@pytest.fixture(autouse=True)
def no_processes(monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> None:
    """A dry run must never start sam or aws; only tests asking for it may run anything."""
    if {"fake_aws", "allow_processes"} & set(request.fixturenames):
        return

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"a dry run started a process: {args}")

    monkeypatch.setattr(subprocess, "run", refuse)


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
            str(deploy.RENDERED_DIR / "template-x86_64.yaml"),
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
        "KmsKeyArn=arn:aws:kms:eu-west-1:111122223333:key/abc",
        "EnableS3Trigger=true",
    ]


def test_deploy_without_a_bucket_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert deploy.main(["--dry-run", "deploy"], out=io.StringIO()) == 1
    assert "--bucket" in capsys.readouterr().err


def test_invoke_calls_the_live_alias_with_raw_json_payload() -> None:
    lines = dry_run("invoke", "--function-name", "reports-Function-1", "--prefix", "2026/05/", "--bucket", "b")

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
            '{"bucket":"b","prefix":"2026/05/"}',
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
    lines = dry_run("run-fanout", "2026/04/", "2026/05/", "--state-machine-arn", "arn:sm")

    assert commands(lines) == [
        [
            "aws",
            "stepfunctions",
            "start-execution",
            "--state-machine-arn",
            "arn:sm",
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
    rendered = deploy.render_template("x86_64", tmp_path)
    original = deploy.TEMPLATE.read_text().splitlines()
    changed = [(a, b) for a, b in zip(original, rendered.read_text().splitlines(), strict=True) if a != b]

    assert [b.strip() for _, b in changed] == [
        f"CodeUri: {(ROOT / 'dist' / zip_name('x86_64')).as_posix()}",
        f"DefinitionUri: {(ROOT / 'statemachine' / 'fanout.asl.json').as_posix()}",
    ]
    from cfnlint.api import lint_file

    assert [str(match) for match in lint_file(rendered)] == []


# ---------------------------------------------------------------------------
# Real mode against a fake aws CLI
# ---------------------------------------------------------------------------

_FAKE_AWS = textwrap.dedent(
    """
    import json, sys
    args = sys.argv[1:]
    with open(sys.argv[0] + ".log", "a") as log:
        log.write(json.dumps(args) + "\\n")
    if args[:2] == ["cloudformation", "describe-stacks"]:
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
    return [json.loads(line) for line in Path(f"{fake_aws}.log").read_text().splitlines()]


def run_real(fake_aws: Path, *argv: str) -> tuple[int, list[str]]:
    out = io.StringIO()
    code = deploy.main(["--stack-name", "reports", *REGION, *argv], out=out, tools={"aws": str(fake_aws)})
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

    code, _ = run_real(fake_aws, "deploy", "--bucket", "b", "--config-file", str(tmp_path / "samconfig.toml"))

    assert code == 1
    assert "make package" in capsys.readouterr().err


def test_make_targets_pass_dry_run_through(allow_processes: None) -> None:
    done = subprocess.run(
        ["make", "-s", "-o", "install", "rollback", "run-fanout", "DRY_RUN=1", "STACK_NAME=reports", "PREFIXES=a/ b/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr
    assert "+ aws lambda update-alias" in done.stdout
    assert '{"prefixes":["a/","b/"]}' in done.stdout
    assert "--stack-name reports" in done.stdout
