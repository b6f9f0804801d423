"""template.yaml and statemachine/fanout.asl.json: valid, least-privilege, one source of truth.

* cfn-lint (the same check AWS publishes) passes on the SAM template, and on
  the state machine definition inlined into a plain Step Functions resource,
  because cfn-lint does not open a local DefinitionUri by itself.
* The execution role grants exactly the S3 actions the handler's calls need:
  the calls are recorded from a real run against the embedded S3 plus read
  from the source (for the paths a small run does not take: multipart, abort),
  mapped through an explicit operation -> IAM action table, and compared.
* Every environment variable the template sets is one the handler reads.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qs, urlsplit

import botocore.session
import requests
from botocore import xform_name
from cfnlint.decode import decode

from tests.conftest import ROOT
from tools import package

TEMPLATE = ROOT / "template.yaml"
ASL = ROOT / "statemachine" / "fanout.asl.json"

# S3 operation -> the IAM action that authorises it. Explicit on purpose: an
# operation missing here fails the test, so a new call cannot ship without
# someone deciding what permission it needs.
OPERATION_ACTIONS = {
    "ListObjectsV2": "s3:ListBucket",
    "PutObject": "s3:PutObject",
    "CreateMultipartUpload": "s3:PutObject",
    "UploadPart": "s3:PutObject",
    "CompleteMultipartUpload": "s3:PutObject",
    "AbortMultipartUpload": "s3:AbortMultipartUpload",
    # Presigned GETs make no call from the function; the recipient's GET is
    # authorised with the function role's credentials, so the role needs it.
    "GetObject": "s3:GetObject",
    # A failed finish reads its manifest's writer token before deleting it;
    # HeadObject, and a DeleteObject with If-Match: ETag, are authorised by s3:GetObject.
    "HeadObject": "s3:GetObject",
    # Not called today; mapped ahead for the orphan-upload/manifest cleanups
    # tests/tooling/test_faults.py describes. The policy must follow when they land.
    "ListMultipartUploads": "s3:ListBucketMultipartUploads",
    "DeleteObject": "s3:DeleteObject",
}


@cache
def template() -> dict[str, Any]:
    parsed, errors = decode(str(TEMPLATE))
    assert not errors, errors
    return parsed


def resource(name: str) -> dict[str, Any]:
    return template()["Resources"][name]


def cfn_lint(path: Path) -> list[str]:
    """cfn-lint's findings for one file: the engine of the ``cfn-lint`` command, in-process (faster)."""
    from cfnlint.api import lint_file

    return [str(match) for match in lint_file(path)]


# ---------------------------------------------------------------------------
# cfn-lint
# ---------------------------------------------------------------------------


def test_cfn_lint_passes_on_the_sam_template() -> None:
    assert cfn_lint(TEMPLATE) == []


def test_cfn_lint_passes_on_the_state_machine_definition(tmp_path: Path) -> None:
    alias = "arn:aws:lambda:us-east-1:123456789012:function:f:live"
    definition = json.loads(ASL.read_text().replace("${FunctionArn}", alias))
    plain = {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {
            "FanOut": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/fanout", "Definition": definition},
            }
        },
    }
    path = tmp_path / "fanout.json"
    path.write_text(json.dumps(plain))

    assert cfn_lint(path) == []


def test_cfn_lint_would_catch_a_broken_state_machine(tmp_path: Path) -> None:
    # Guards the test above: the inlined definition really is validated.
    definition = json.loads(ASL.read_text())
    definition["States"]["EachPrefix"]["MaxConcurrency"] = "ten"
    plain = {
        "Resources": {
            "FanOut": {
                "Type": "AWS::StepFunctions::StateMachine",
                "Properties": {"RoleArn": "arn:aws:iam::123456789012:role/fanout", "Definition": definition},
            }
        }
    }
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(plain))

    assert any("E3601" in finding for finding in cfn_lint(path))


# ---------------------------------------------------------------------------
# The function
# ---------------------------------------------------------------------------


def test_function_runs_the_packaged_handler_on_python_3_13() -> None:
    props = resource("Function")["Properties"]
    module, function = props["Handler"].split(".")
    tree = ast.parse((ROOT / f"{module}.py").read_text())

    assert props["Runtime"] == "python3.13" == f"python{package.LAMBDA_PYTHON}"
    assert function in {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
    assert props["CodeUri"] == f"dist/{package.zip_name('arm64')}"
    assert props["Architectures"] == [{"Ref": "Architecture"}]
    architecture = template()["Parameters"]["Architecture"]
    assert architecture["Default"] == "arm64"
    assert set(architecture["AllowedValues"]) == set(package.MACHINES)
    assert props["AutoPublishAlias"] == "live"


def test_function_has_a_real_timeout_memory_and_json_logs_with_retention() -> None:
    props = resource("Function")["Properties"]
    params = template()["Parameters"]

    assert props["Timeout"] == {"Ref": "Timeout"} and params["Timeout"]["Default"] > 3
    assert props["MemorySize"] == {"Ref": "MemorySize"} and params["MemorySize"]["Default"] >= 256
    assert props["LoggingConfig"]["LogFormat"] == "JSON"
    assert props["LoggingConfig"]["LogGroup"] == {"Ref": "FunctionLogGroup"}
    log_group = resource("FunctionLogGroup")
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert log_group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert params["LogRetentionDays"]["Default"] in params["LogRetentionDays"]["AllowedValues"]


def handler_settings() -> set[str]:
    """Names the shipped code reads from the environment (handler and its local modules)."""
    names: set[str] = set()
    for module in package.local_modules():
        files = [module] if module.is_file() else sorted(module.rglob("*.py"))
        for path in files:
            source = path.read_text()
            names |= set(re.findall(r'os\.environ(?:\.get\(|\[)\s*"([A-Z0-9_]+)"', source))
            names |= set(re.findall(r'_[a-z]+_setting\(\s*"([A-Z0-9_]+)"', source))
    return names


def test_template_environment_sets_only_what_the_handler_reads() -> None:
    variables = set(resource("Function")["Properties"]["Environment"]["Variables"])
    read = handler_settings()

    assert {"BUCKET_NAME", "PREFIX", "URL_EXPIRY_SECONDS"} <= read  # the scan still finds settings
    assert variables - read == set(), "the template sets variables the handler never reads"
    assert {"BUCKET_NAME", "PREFIX", "ALLOWED_BUCKETS"} <= variables
    # Local-only switches: on Lambda the SDK must talk to real S3 with the role's credentials.
    assert not variables & {"S3_ENDPOINT_URL", "S3_PUBLIC_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_REGION"}


# ---------------------------------------------------------------------------
# IAM: exactly the calls the handler makes
# ---------------------------------------------------------------------------


def _statements(role: str, policy_name: str) -> list[dict[str, Any]]:
    for policy in resource(role)["Properties"]["Policies"]:
        if "Fn::If" in policy:
            continue
        if policy["PolicyName"] == policy_name:
            return policy["PolicyDocument"]["Statement"]
    raise AssertionError(f"{role} has no policy {policy_name}")


def _actions(statement: dict[str, Any]) -> set[str]:
    action = statement["Action"]
    return {action} if isinstance(action, str) else set(action)


def policy_s3_actions() -> set[str]:
    actions: set[str] = set()
    for policy in resource("FunctionRole")["Properties"]["Policies"]:
        if "Fn::If" in policy:
            continue
        for statement in policy["PolicyDocument"]["Statement"]:
            assert statement["Effect"] == "Allow"
            actions |= {a for a in _actions(statement) if a.startswith("s3:")}
    return actions


@cache
def _s3_method_operations() -> dict[str, str]:
    model = botocore.session.get_session().get_service_model("s3")
    return {xform_name(name): name for name in model.operation_names}


# Presigning makes no call: these produce URLs whose only use is an HTTP GET of
# an object, so the operation they stand for is GetObject.
PRESIGN_CALLS = {"presign_get": "GetObject", "presign_many": "GetObject"}
# Names the shipped code gives its S3 clients; any method called on them must be an S3 API method.
S3_CLIENT_NAMES = {"s3", "_s3", "client", "signer"}


def _receiver(node: ast.expr) -> str:
    return node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else ""


def operations_in_source() -> set[str]:
    """Every S3 operation the shipped code can call, read from its code (error paths too).

    Parsed with ``ast`` so docstrings and comments that merely mention an
    operation count for nothing.
    """
    methods = _s3_method_operations()
    found: set[str] = set()
    for module in package.local_modules():
        files = [module] if module.is_file() else sorted(module.rglob("*.py"))
        for path in files:
            for node in ast.walk(ast.parse(path.read_text())):
                if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                    continue
                method, receiver = node.func.attr, _receiver(node.func.value)
                if method in PRESIGN_CALLS:
                    found.add(PRESIGN_CALLS[method])
                elif method in {"get_paginator", "generate_presigned_url"}:
                    first = node.args[0] if node.args else None
                    assert isinstance(first, ast.Constant), f"{path.name}:{node.lineno}: operation not a literal"
                    found.add(methods[first.value])
                elif receiver in S3_CLIENT_NAMES and not method.startswith("__"):
                    assert method in methods, f"{path.name}:{node.lineno}: {receiver}.{method}() is not an S3 call"
                    found.add(methods[method])
    return found


def _put_pdfs(s3: Any, bucket: str, prefix: str, count: int) -> None:
    for index in range(count):
        s3.put_object(Bucket=bucket, Key=f"{prefix}{index:03}.pdf", Body=b"%PDF-1.4")
    s3.put_object(Bucket=bucket, Key=f"{prefix}readme.txt", Body=b"skip me")


def _presigned_operation(url: str) -> str:
    """What a URL the function handed out lets its holder do: a SigV4-signed GET of one object."""
    query = parse_qs(urlsplit(url).query)
    assert query.get("X-Amz-Algorithm") == ["AWS4-HMAC-SHA256"] and "X-Amz-Signature" in query, url
    return "GetObject"


def test_operations_recorded_from_a_real_run_are_all_known_and_found_in_the_source(
    load_handler: Callable[..., ModuleType], context_factory: Callable[..., Any], s3: Any, bucket: str
) -> None:
    prefix = "2026/04/"
    _put_pdfs(s3, bucket, prefix, 5)
    module = load_handler(BUCKET_NAME=bucket, PREFIX=prefix)
    recorded: list[str] = []

    def record(model: Any, context: dict[str, Any], **_: Any) -> None:
        recorded.append(model.name)

    # Fires before every API call, on every client the session makes.
    module._SESSION.events.register("before-parameter-build.s3", record)
    response = module.handler({"bucket": bucket, "prefix": prefix}, context_factory())

    assert response["statusCode"] == 200, response
    manifest_url = json.loads(response["body"])["manifest_url"]
    fetched = requests.get(manifest_url, timeout=10)  # the URLs are used with GET, and that works
    fetched.raise_for_status()
    urls = [manifest_url] + [json.loads(line)["url"] for line in fetched.text.split("\n") if line]
    assert len(urls) == 6
    operations = set(recorded) | {_presigned_operation(url) for url in urls}
    assert operations - OPERATION_ACTIONS.keys() == set(), "an S3 operation without an IAM mapping"
    assert {"ListObjectsV2", "GetObject"} <= operations
    assert "GetObject" not in recorded  # the function itself never reads an object
    assert operations <= operations_in_source(), "the source scan misses calls the handler really makes"


def test_role_allows_exactly_the_s3_actions_the_handler_needs() -> None:
    needed = operations_in_source()
    unknown = needed - OPERATION_ACTIONS.keys()

    assert not unknown, f"map these S3 operations to IAM actions: {sorted(unknown)}"
    assert {"CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload", "AbortMultipartUpload"} <= needed
    assert {OPERATION_ACTIONS[op] for op in needed} == policy_s3_actions()


def test_each_s3_action_is_scoped_to_what_it_touches() -> None:
    bucket_arn = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}"}
    manifests = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}/manifests/*"}
    scoped = {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}/${ScopePrefix}*"}
    by_sid = {s["Sid"]: s for s in _statements("FunctionRole", "s3-manifest")}

    listing = by_sid["ListUnderScope"]
    assert _actions(listing) == {"s3:ListBucket"} and listing["Resource"] == bucket_arn
    assert listing["Condition"] == {"StringLike": {"s3:prefix": {"Fn::Sub": "${ScopePrefix}*"}}}
    reads = by_sid["PresignedReads"]
    assert _actions(reads) == {"s3:GetObject"} and reads["Resource"] == [scoped, manifests]
    writes = by_sid["WriteManifests"]
    assert _actions(writes) == {"s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject"}
    assert writes["Resource"] == manifests
    orphans = by_sid["FindOrphanedManifestUploads"]
    assert _actions(orphans) == {"s3:ListBucketMultipartUploads"} and orphans["Resource"] == bucket_arn
    for statement in by_sid.values():
        assert "*" not in json.dumps(statement["Resource"]).replace("/*", "").replace("}*", "")


def test_kms_is_granted_only_when_a_key_is_given_and_only_through_s3() -> None:
    [conditional] = [p for p in resource("FunctionRole")["Properties"]["Policies"] if "Fn::If" in p]
    condition, granted, otherwise = conditional["Fn::If"]
    [statement] = granted["PolicyDocument"]["Statement"]

    assert condition == "HasKmsKey"
    assert template()["Conditions"]["HasKmsKey"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "KmsKeyArn"}, ""]}]}
    assert otherwise == {"Ref": "AWS::NoValue"}
    assert _actions(statement) == {"kms:Decrypt", "kms:GenerateDataKey"}
    assert statement["Resource"] == {"Ref": "KmsKeyArn"}
    assert "kms:ViaService" in statement["Condition"]["StringEquals"]
    assert template()["Parameters"]["KmsKeyArn"]["Default"] == ""


def test_logs_go_only_to_the_functions_own_log_group() -> None:
    [statement] = _statements("FunctionRole", "logs")

    assert _actions(statement) == {"logs:CreateLogStream", "logs:PutLogEvents"}
    assert statement["Resource"] == {"Fn::GetAtt": ["FunctionLogGroup", "Arn"]}


def test_s3_trigger_is_optional_and_limited_to_the_bucket_in_this_account() -> None:
    permission = resource("S3InvokePermission")

    assert permission["Condition"] == "S3TriggerEnabled"
    assert template()["Parameters"]["EnableS3Trigger"]["Default"] == "false"
    props = permission["Properties"]
    assert props["Principal"] == "s3.amazonaws.com"
    assert props["SourceAccount"] == {"Ref": "AWS::AccountId"}
    assert props["SourceArn"] == {"Fn::Sub": "arn:${AWS::Partition}:s3:::${BucketName}"}
    assert props["FunctionName"] == {"Ref": "Function.Alias"}


# ---------------------------------------------------------------------------
# Step Functions fan-out
# ---------------------------------------------------------------------------


def _asl() -> dict[str, Any]:
    return json.loads(ASL.read_text())


def test_state_machine_is_a_distributed_map_over_prefixes() -> None:
    fan_out = _asl()["States"][_asl()["StartAt"]]

    assert fan_out["Type"] == "Map"
    assert fan_out["ItemsPath"] == "$.prefixes"
    assert fan_out["ItemSelector"] == {"prefix.$": "$$.Map.Item.Value"}  # the handler's Map-item shape
    config = fan_out["ItemProcessor"]["ProcessorConfig"]
    assert config["Mode"] == "DISTRIBUTED"
    assert config["ExecutionType"] in {"STANDARD", "EXPRESS"}
    assert isinstance(fan_out["MaxConcurrency"], int) and 0 < fan_out["MaxConcurrency"] <= 1000
    assert fan_out["ToleratedFailurePercentage"] == 0  # tests/tooling/test_fanout.py: why, and what Lab 6 predicts
    assert fan_out["ResultPath"] == "$.manifests" and fan_out["End"] is True


def test_a_failing_prefix_is_caught_and_reported_not_fatal() -> None:
    processor = _asl()["States"]["EachPrefix"]["ItemProcessor"]
    states = processor["States"]
    task = states[processor["StartAt"]]

    assert task["Resource"] == "arn:aws:states:::lambda:invoke"
    assert task["Parameters"] == {"FunctionName": "${FunctionArn}", "Payload.$": "$"}
    [catch] = task["Catch"]
    assert catch["ErrorEquals"] == ["States.ALL"]
    failed = states[catch["Next"]]
    assert failed["Type"] == "Pass" and failed["End"] is True
    assert failed["Parameters"]["status"] == "failed" and "prefix.$" in failed["Parameters"]
    # A 4xx answer (bad prefix, denied) is reported too, distinct from success.
    statuses = {state["Parameters"].get("status") for state in states.values() if state["Type"] == "Pass"}
    assert statuses == {"ok", "rejected", "failed"}


def test_every_transition_lands_on_a_state_and_every_branch_ends() -> None:
    def check(machine: dict[str, Any]) -> None:
        states = machine["States"]
        assert machine["StartAt"] in states
        for name, state in states.items():
            targets = [state.get("Next"), state.get("Default")]
            targets += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
            for target in filter(None, targets):
                assert target in states, f"{name} -> {target}"
            assert state.get("End") or state.get("Next") or state["Type"] == "Choice", name
            if "ItemProcessor" in state:
                check(state["ItemProcessor"])

    check(_asl())


def test_definition_placeholders_are_all_substituted_with_the_live_alias() -> None:
    props = resource("FanOut")["Properties"]
    placeholders = set(re.findall(r"\$\{(\w+)\}", ASL.read_text()))

    assert props["DefinitionUri"] == ASL.relative_to(ROOT).as_posix()
    assert placeholders == set(props["DefinitionSubstitutions"])
    assert props["DefinitionSubstitutions"]["FunctionArn"] == {"Ref": "Function.Alias"}


def test_state_machine_role_can_invoke_the_alias_and_run_its_own_children_only() -> None:
    by_sid = {s["Sid"]: s for s in _statements("StateMachineRole", "fanout")}
    name = resource("FanOut")["Properties"]["Name"]["Fn::Sub"]

    assert by_sid["InvokeLiveAlias"]["Resource"] == {"Ref": "Function.Alias"}
    assert _actions(by_sid["RunChildExecutions"]) == {"states:StartExecution"}
    assert by_sid["RunChildExecutions"]["Resource"]["Fn::Sub"].endswith(f":stateMachine:{name}")
    assert by_sid["WatchChildExecutions"]["Resource"]["Fn::Sub"].endswith(f":execution:{name}/*")


def test_outputs_name_what_deploy_and_invoke_need() -> None:
    outputs = template()["Outputs"]

    assert {"FunctionName", "FunctionArn", "FunctionAliasArn", "StateMachineArn"} <= set(outputs)
    assert outputs["StateMachineArn"]["Value"] == {"Ref": "FanOut"}


def test_the_bucket_must_be_named_at_deploy_time() -> None:
    assert "Default" not in template()["Parameters"]["BucketName"]
