"""A configuration-only deploy publishes a new version: checked with the SAM transform itself.

``AutoPublishAlias`` publishes a version only when the ``AWS::Lambda::Version``
resource SAM generates gets a new logical id, and SAM derives that id from the
template's text (the code location, the environment and MemorySize as
written), so a value that arrives through ``!Ref`` changes nothing it hashes.
These tests take exactly what ``make deploy`` would hand to ``sam deploy`` (the
template ``tools/deploy.py`` writes under build/sam/ and the parameter
overrides it prints), do what ``sam deploy`` does before CloudFormation sees
them (upload the local files and put their S3 locations in), and run
aws-sam-translator, the library that performs the transform in CloudFormation,
offline: no AWS call, no network.
"""

from __future__ import annotations

import hashlib
import io
import re
import shlex
import socket
from pathlib import Path
from typing import Any

import pytest
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from tools import deploy

REGION = "eu-west-1"
ARTIFACTS = "s3://sam-artifacts-bucket"
# What the deploy sees, and what the code zip's upload key would be: only the
# configuration differs between the runs compared here.
ZIP_BYTES = b"the same zip for every configuration"


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """The transform must work without AWS: any connection attempt fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"the SAM transform tried to reach the network: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    for name in deploy.SETTINGS.values():
        monkeypatch.delenv(name, raising=False)


def make_deploy(tmp_path: Path, *options: str) -> tuple[Path, list[str]]:
    """The template and the ``--parameter-overrides`` of ``make deploy DRY_RUN=1 BUCKET_NAME=acme-reports ...``."""
    out = io.StringIO()
    argv = ["--dry-run", "--region", REGION, "deploy", "--bucket", "acme-reports", "--render-dir", str(tmp_path)]
    assert deploy.main([*argv, *options], out=out) == 0
    [sam] = [shlex.split(line[2:]) for line in out.getvalue().splitlines() if line.startswith("+ sam deploy")]
    template = Path(sam[sam.index("--template-file") + 1])
    overrides = sam[sam.index("--parameter-overrides") + 1 :]
    return template, overrides


def sam_parameter_values(overrides: list[str]) -> dict[str, str]:
    """``Key=Value`` and ``Key=""`` as the SAM CLI reads them (it strips one pair of wrapping quotes)."""
    values = {}
    for item in overrides:
        key, _, value = item.partition("=")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        values[key] = value
    return values


def packaged(template: Path) -> dict[str, Any]:
    """The template as ``sam deploy`` hands it over: local files uploaded, their S3 URIs in their place."""
    parsed = deploy.load_template(template)
    function = parsed["Resources"]["Function"]["Properties"]
    assert Path(function["CodeUri"]).name.startswith("function-")
    function["CodeUri"] = f"{ARTIFACTS}/{hashlib.md5(ZIP_BYTES).hexdigest()}"  # SAM's upload key
    machine = parsed["Resources"]["FanOut"]["Properties"]
    definition = Path(machine["DefinitionUri"]).read_bytes()
    machine["DefinitionUri"] = f"{ARTIFACTS}/{hashlib.md5(definition).hexdigest()}.json"
    return parsed


def no_managed_policies() -> dict[str, str]:
    raise AssertionError("the template names no managed policy; the transform must not look any up")


def transform(template: Path, overrides: list[str]) -> dict[str, Any]:
    translator = Translator(managed_policy_map={}, sam_parser=Parser())
    return translator.translate(
        packaged(template), parameter_values=sam_parameter_values(overrides), get_managed_policy_map=no_managed_policies
    )


def version_id(tmp_path: Path, *options: str) -> str:
    template, overrides = make_deploy(tmp_path, *options)
    resources = transform(template, overrides)["Resources"]
    [version] = [name for name, body in resources.items() if body["Type"] == "AWS::Lambda::Version"]
    assert resources["FunctionAliaslive"]["Properties"]["FunctionVersion"] == {"Fn::GetAtt": [version, "Version"]}
    return version


def test_the_same_configuration_keeps_its_version(tmp_path: Path) -> None:
    assert version_id(tmp_path / "a") == version_id(tmp_path / "b")
    assert version_id(tmp_path / "c", "--memory-size", "1024") == version_id(tmp_path / "d", "--memory-size", "1024")


@pytest.mark.parametrize(
    "change",
    [
        ("--memory-size", "1024"),
        ("--timeout", "300"),
        ("--url-expiry-seconds", "3600"),
        ("--log-level", "DEBUG"),
        ("--prefix", "2026/05/"),
        ("--arch", "x86_64"),
    ],
    ids=lambda change: change[0].lstrip("-"),
)
def test_a_configuration_only_change_publishes_a_new_version(tmp_path: Path, change: tuple[str, str]) -> None:
    before = version_id(tmp_path / "before")
    after = version_id(tmp_path / "after", *change)

    assert before != after


def test_without_the_digest_sam_would_keep_the_old_version(tmp_path: Path) -> None:
    """The failure the digest prevents, shown with the same transform on the template as written."""

    def bare(*options: str) -> str:
        template, overrides = make_deploy(tmp_path, *options)
        text = re.sub(r"(?m)^\s+AutoPublishCodeSha256: .*\n", "", template.read_text(encoding="utf-8"))
        template.write_text(text, encoding="utf-8")
        resources = transform(template, overrides)["Resources"]
        return next(name for name, body in resources.items() if body["Type"] == "AWS::Lambda::Version")

    assert bare() == bare("--memory-size", "1024") == bare("--log-level", "DEBUG")


def test_the_digest_reaches_the_function_description(tmp_path: Path) -> None:
    """SAM appends it to the description, so $LATEST differs and Lambda has something to publish."""
    template, overrides = make_deploy(tmp_path, "--timeout", "300")
    digest = re.search(r"AutoPublishCodeSha256: ([0-9a-f]{64})", template.read_text(encoding="utf-8"))
    function = transform(template, overrides)["Resources"]["Function"]["Properties"]

    assert digest and function["Description"].endswith(" " + digest.group(1))
    assert len(function["Description"]) <= 256  # Lambda's limit on a description
    assert function["Timeout"] == {"Ref": "Timeout"}  # the value itself still comes from the parameter
