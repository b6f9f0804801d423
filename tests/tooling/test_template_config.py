"""local_dev.template_config: the local function is the deployed one, as template.yaml describes it."""

from __future__ import annotations

from local_dev.template_config import load_template_function
from tests.conftest import ROOT


def test_template_yaml_gives_the_deployed_configuration():
    function = load_template_function(ROOT / "template.yaml")

    assert function.logical_id == "Function"
    assert (function.handler, function.runtime, function.architecture) == (
        "lambda_function.handler",
        "python3.13",
        "arm64",
    )
    assert (function.memory_mb, function.timeout_s) == (512, 120)
    assert function.env["PREFIX"] == "2026/04/"
    assert function.env["URL_EXPIRY_SECONDS"] == "900"
    assert function.env["POWERTOOLS_LOG_LEVEL"] == "INFO"
    assert set(function.unresolved_env) == {"BUCKET_NAME", "ALLOWED_BUCKETS"}  # a parameter with no default


def test_globals_literals_refs_and_deploy_time_values(tmp_path):
    template = tmp_path / "template.yaml"
    template.write_text(
        "Transform: AWS::Serverless-2016-10-31\n"
        "Parameters:\n  Mem: {Type: Number, Default: 1024}\n"
        "Globals:\n  Function:\n    Timeout: 30\n    Environment: {Variables: {SHARED: yes, OWN: global}}\n"
        "Resources:\n  Fn:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      Handler: app.main\n      MemorySize: !Ref Mem\n"
        "      Environment:\n        Variables: {OWN: mine, ARN: !Sub 'arn:${AWS::Partition}:x', N: 5}\n"
    )

    function = load_template_function(template)

    assert (function.handler, function.memory_mb, function.timeout_s) == ("app.main", 1024, 30)
    assert function.env == {"SHARED": "true", "OWN": "mine", "N": "5"}
    assert function.unresolved_env == ("ARN",)
