"""make package: the zips Lambda would run, built without Docker, and proven importable.

The import test unpacks the real x86_64 zip (wheels for CPython 3.13,
manylinux2014) into an empty directory and runs the handler from it in a
``python -I -S`` subprocess whose sys.path is that directory plus the standard
library: anything the zip forgot fails here, not in AWS. Our interpreter is
3.11, so the cp313 C extensions cannot load; aiohttp, multidict, yarl,
frozenlist, propcache and wrapt all ship pure-Python twins, selected with their
*_NO_EXTENSIONS switches. That checks every import and the whole job, but not
the compiled extensions themselves (their platform tags are checked instead).
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.conftest import ROOT
from tools import package

# Pure-Python fallbacks of the C-extension dependencies (see the module docstring).
NO_EXTENSIONS = {
    "AIOHTTP_NO_EXTENSIONS": "1",
    "MULTIDICT_NO_EXTENSIONS": "1",
    "YARL_NO_EXTENSIONS": "1",
    "FROZENLIST_NO_EXTENSIONS": "1",
    "PROPCACHE_NO_EXTENSIONS": "1",
    "WRAPT_DISABLE_EXTENSIONS": "1",
}


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, package.BuildResult]:
    """Both Lambda zips, built once per session (dependency installs are cached in build/)."""
    out = tmp_path_factory.mktemp("dist")
    return {arch: package.build(arch, out) for arch in ("x86_64", "arm64")}


def _names(result: package.BuildResult) -> list[str]:
    with zipfile.ZipFile(result.path) as archive:
        return archive.namelist()


def test_both_zips_are_named_for_lambda_and_within_its_limits(built: dict[str, package.BuildResult]) -> None:
    for arch, result in built.items():
        assert result.path.name == f"function-{arch}.zip"
        assert result.python_version == "3.13"
        assert 0 < result.zipped_bytes < package.ZIP_LIMIT
        assert result.zipped_bytes < result.unzipped_bytes < package.UNZIPPED_LIMIT
        assert "of Lambda's 50 MB" in result.report() and "of 250 MB" in result.report()


def test_handler_and_every_local_module_it_imports_sit_at_the_zip_root(built: dict[str, package.BuildResult]) -> None:
    names = set(_names(built["x86_64"]))
    local = [path.relative_to(ROOT).as_posix() for path in package.local_modules()]

    assert "lambda_function.py" in local
    for module in local:
        assert module in names or any(name.startswith(module + "/") for name in names)
    # Repo files that are not imported by the handler stay out.
    for stray in ("invoke.py", "seed.py", "demo.py", "tests/conftest.py", "local_runtime/embedded_s3.py"):
        assert stray not in names


def test_zip_holds_no_caches_tests_stubs_or_dev_only_packages(built: dict[str, package.BuildResult]) -> None:
    names = _names(built["x86_64"])
    tops = {name.split("/")[0] for name in names}

    assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo", ".pyi"))]
    assert not [n for n in names if {"tests", "test", "bin"} & set(n.split("/")[:-1])]
    for dev_only in ("moto", "dotenv", "pytest", "fpdf", "pypdf", "cfnlint", "yaml"):
        assert dev_only not in tops
    # aioboto3 pins botocore: the runtime's own copy would be the wrong version.
    assert {"boto3", "botocore", "aiobotocore", "aioboto3", "aws_lambda_powertools"} <= tops


def test_extensions_are_built_for_lambda_python_and_the_right_machine(built: dict[str, package.BuildResult]) -> None:
    for arch, machine in package.MACHINES.items():
        extensions = [n for n in _names(built[arch]) if n.endswith(".so")]
        assert extensions, arch
        assert all(f"cpython-313-{machine}-linux-gnu" in n for n in extensions), extensions


def test_every_file_is_world_readable_and_timestamps_are_fixed(built: dict[str, package.BuildResult]) -> None:
    with zipfile.ZipFile(built["arm64"].path) as archive:
        infos = archive.infolist()
    assert {(info.external_attr >> 16) & 0o777 for info in infos} == {0o644}
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}


_RUN_FROM_ZIP = textwrap.dedent(
    """
    import json, sys
    task_root = sys.argv[1]
    sys.path.insert(0, task_root)
    import lambda_function, aioboto3, aiohttp, botocore

    class Context:
        function_name = "pdf-manifest"
        function_version = "$LATEST"
        invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:pdf-manifest"
        memory_limit_in_mb = 512
        aws_request_id = "0f7c1c1e-2d3a-4c55-9a0b-6a1d2e3f4a5b"
        log_group_name = "/aws/lambda/pdf-manifest"
        log_stream_name = "2026/11/25/[$LATEST]zip"

        def get_remaining_time_in_millis(self):
            return 60_000

    event = json.loads(sys.argv[2])
    response = lambda_function.handler(event, Context())
    loaded = {name: getattr(mod, "__file__", None) for name, mod in list(sys.modules.items())}
    print("RESULT " + json.dumps({"response": response, "modules": loaded, "site": "site" in sys.modules}))
    """
)


def test_handler_runs_from_the_unpacked_x86_64_zip_alone(
    built: dict[str, package.BuildResult], s3: Any, s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    task_root = tmp_path / "task"
    task_root.mkdir()
    with zipfile.ZipFile(built["x86_64"].path) as archive:
        archive.extractall(task_root)
    prefix = "2026/04/"
    for name in ("a.pdf", "b.PDF", "sub/c.pdf", "notes.txt"):
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=b"%PDF-1.4 " + name.encode())
    lambda_tmp = tmp_path / "lambda-tmp"
    lambda_tmp.mkdir()
    env = {
        **NO_EXTENSIONS,
        "PATH": "/usr/bin:/bin",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_REGION": "us-east-1",
        "BUCKET_NAME": bucket,
        "PREFIX": prefix,
        "S3_ENDPOINT_URL": s3_endpoint,
        "TMPDIR": str(lambda_tmp),
        "POWERTOOLS_SERVICE_NAME": "pdf-manifest",
        "POWERTOOLS_METRICS_NAMESPACE": "PdfManifest",
    }
    event = {"bucket": bucket, "prefix": prefix}

    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", _RUN_FROM_ZIP, str(task_root), json.dumps(event)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 0, done.stderr[-4000:]
    [line] = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    run = json.loads(line.removeprefix("RESULT "))
    assert run["site"] is False  # no site-packages, no .venv: only the zip and the stdlib
    stdlib = Path(sys.base_prefix).resolve()
    for name, file in run["modules"].items():
        if file:
            where = Path(file).resolve()
            assert where.is_relative_to(task_root.resolve()) or where.is_relative_to(stdlib), (name, file)
    for name in ("lambda_function", "aioboto3", "aiohttp", "botocore", "aws_lambda_powertools"):
        assert Path(run["modules"][name]).resolve().is_relative_to(task_root.resolve()), name

    response = run["response"]
    assert response["statusCode"] == 200, response
    body = json.loads(response["body"])
    assert body["count"] == 3
    fetched = requests.get(body["manifest_url"], timeout=10)
    fetched.raise_for_status()
    keys = sorted(json.loads(line)["key"] for line in fetched.text.split("\n") if line)
    assert keys == [prefix + "a.pdf", prefix + "b.PDF", prefix + "sub/c.pdf"]
    assert list(lambda_tmp.iterdir()) == []


def test_local_modules_follow_imports_so_a_new_module_ships_by_itself(tmp_path: Path) -> None:
    (tmp_path / "lambda_function.py").write_text("import os\nimport presign\nfrom helpers.sub import x\nimport boto3\n")
    (tmp_path / "presign.py").write_text("from botocore import session\nimport shared\n")
    (tmp_path / "shared.py").write_text("import json\n")
    (tmp_path / "helpers").mkdir()
    (tmp_path / "helpers" / "__init__.py").write_text("")
    (tmp_path / "helpers" / "sub.py").write_text("import deep\n")
    (tmp_path / "deep.py").write_text("")
    (tmp_path / "unused.py").write_text("")

    found = [path.relative_to(tmp_path).as_posix() for path in package.local_modules(tmp_path)]

    assert found == ["deep.py", "helpers", "lambda_function.py", "presign.py", "shared.py"]


def test_dev_only_packages_are_computed_from_the_requirement_files_and_refused(tmp_path: Path) -> None:
    dev_only = package.dev_only_packages()
    assert {"moto", "python-dotenv", "pytest"} <= dev_only
    assert not dev_only & {"aioboto3", "aiofiles", "aws-lambda-powertools"}

    site = tmp_path / "site"
    (site / "python_dotenv-1.2.2.dist-info").mkdir(parents=True)
    with pytest.raises(package.PackageError, match="python-dotenv"):
        package.check_no_dev_only(site)


def test_zip_bytes_are_reproducible(tmp_path: Path) -> None:
    source = tmp_path / "mod.py"
    source.write_text("x = 1\n")
    first, second = tmp_path / "one.zip", tmp_path / "two.zip"
    package.write_zip({"mod.py": source}, first)
    source.touch()  # a newer mtime must not change the bytes
    package.write_zip({"mod.py": source}, second)

    assert first.read_bytes() == second.read_bytes()


def test_pip_command_asks_for_lambda_platform_wheels_only(tmp_path: Path) -> None:
    command = package.pip_command("arm64", "3.13", tmp_path / "t", ROOT / "requirements.txt")

    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    flags = " ".join(command[4:])
    for expected in (
        "--platform manylinux2014_aarch64",
        "--only-binary=:all:",
        "--python-version 3.13",
        "--implementation cp",
        f"--target {tmp_path / 't'}",
        "--no-compile",
    ):
        assert expected in flags


def test_cli_help_and_module_listing() -> None:
    helped = subprocess.run(
        [sys.executable, "tools/package.py", "--help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "--arch" in helped.stdout and "--out" in helped.stdout

    listed = subprocess.run(
        [sys.executable, "tools/package.py", "--list-modules"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "lambda_function.py" in listed.stdout.split()


def test_other_python_versions_get_a_marked_name() -> None:
    assert package.zip_name("x86_64") == "function-x86_64.zip"
    assert package.zip_name("x86_64", "3.11") == "function-x86_64-py311.zip"
    with pytest.raises(package.PackageError, match="architecture"):
        package.build("sparc", Path("unused"))
