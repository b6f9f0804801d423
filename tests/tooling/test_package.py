"""make package: the zips Lambda would run, built without Docker, and proven to run.

The run test unpacks the real x86_64 zip (wheels for CPython 3.13,
manylinux2014, plus 3.13 bytecode) into an empty directory and runs the whole
job from it through the local runtime: Python 3.13, AWS's runtime client, no
layer, a clean environment. Its C extensions (aiohttp, multidict, yarl,
frozenlist, propcache) must be the ones the process maps, from the task root,
and no file may appear in the task root: every module it imported had valid
bytecode, as Lambda's read-only /var/task needs. Anything the zip forgot fails
here, not in AWS.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
import requests

from local_runtime.config import FunctionConfig
from local_runtime.lambda_python import find_interpreter
from local_runtime.memory_watch import tree
from local_runtime.pool import EnvironmentPool
from tests.conftest import ROOT
from tools import package


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

    assert "lambda_function.py" in local and "pdf_manifest" in local
    for module in local:
        assert module in names or any(name.startswith(module + "/") for name in names)
    # Repo files that are not imported by the handler stay out.
    for stray in ("invoke.py", "seed.py", "demo.py", "tests/conftest.py", "local_dev/embedded_s3.py"):
        assert stray not in names
    for layer in ("local_runtime/", "local_dev/", "testkit/", "tools/"):
        assert not [name for name in names if name.startswith(layer)]


def test_zip_holds_no_tests_stubs_or_dev_only_packages(built: dict[str, package.BuildResult]) -> None:
    names = _names(built["x86_64"])
    tops = {name.split("/")[0] for name in names}

    assert not [n for n in names if n.endswith((".pyo", ".pyi"))]
    assert not [n for n in names if {"tests", "test", "bin"} & set(n.split("/")[:-1])]
    for dev_only in ("moto", "dotenv", "pytest", "fpdf", "pypdf", "cfnlint", "yaml"):
        assert dev_only not in tops
    # aioboto3 pins botocore: the runtime's own copy would be the wrong version.
    assert {"boto3", "botocore", "aiobotocore", "aioboto3", "aws_lambda_powertools"} <= tops


def test_every_module_has_valid_unchecked_python_3_13_bytecode(built: dict[str, package.BuildResult]) -> None:
    magic = subprocess.run(
        [find_interpreter(), "-c", "import importlib.util, sys; sys.stdout.write(importlib.util.MAGIC_NUMBER.hex())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    with zipfile.ZipFile(built["x86_64"].path) as archive:
        names = set(archive.namelist())
        sources = [n for n in names if n.endswith(".py")]
        compiled = {n for n in names if n.endswith(".pyc")}
        expected = {
            f"{os.path.dirname(n)}/__pycache__/{os.path.basename(n)[:-3]}.cpython-313.pyc".lstrip("/") for n in sources
        }
        assert "lambda_function.py" in sources and len(sources) > 500
        assert compiled == expected  # one per module, and no stray bytecode of another version
        for name in ("__pycache__/lambda_function.cpython-313.pyc", "aiohttp/__pycache__/client.cpython-313.pyc"):
            header = archive.read(name)[:16]
            assert header[:4].hex() == magic
            assert int.from_bytes(header[4:8], "little") == 0b01  # hash-based, source never checked


def test_every_shipped_distribution_is_pinned_with_hashes_in_the_lock(built: dict[str, package.BuildResult]) -> None:
    pins = package.read_lock()
    for result in built.values():
        with zipfile.ZipFile(result.path) as archive:
            shipped = {
                package._normalise(name.split("/")[0].removesuffix(".dist-info").rsplit("-", 1)[0]): name.split("/")[0]
                .removesuffix(".dist-info")
                .rsplit("-", 1)[1]
                for name in archive.namelist()
                if name.split("/")[0].endswith(".dist-info")
            }
        assert shipped == {name: version for name, (version, _) in pins.items()}
    assert all(hashes and all(len(h) == 64 for h in hashes) for _, hashes in pins.values())
    # The direct requirements are pinned to the same versions in both files.
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==")
            assert pins[package._normalise(name)][0] == version.strip()


def test_the_same_inputs_build_a_byte_identical_zip(tmp_path: Path, built: dict[str, package.BuildResult]) -> None:
    first = package.build("x86_64", tmp_path / "one", use_zip_cache=False)
    second = package.build("x86_64", tmp_path / "two", use_zip_cache=False)

    assert first.path.read_bytes() == second.path.read_bytes() == built["x86_64"].path.read_bytes()


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


@pytest.mark.slow
def test_the_unpacked_x86_64_zip_runs_the_whole_job_under_python_3_13_with_its_c_extensions(
    built: dict[str, package.BuildResult], s3: Any, s3_endpoint: str, bucket: str, tmp_path: Path
) -> None:
    task_root = tmp_path / "task"
    task_root.mkdir()
    with zipfile.ZipFile(built["x86_64"].path) as archive:
        archive.extractall(task_root)
    unpacked = sorted(task_root.rglob("*"))
    prefix = "2026/04/"
    for name in ("a.pdf", "b.PDF", "sub/c.pdf", "notes.txt"):
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=b"%PDF-1.4 " + name.encode())
    config = FunctionConfig(
        name="pdf-manifest",
        handler="lambda_function.handler",
        task_root=task_root,
        layers=(),  # only the zip, the runtime client and the standard library
        clean_env=True,  # no host PYTHONPATH, no *_NO_EXTENSIONS switches
        timeout_s=60,
        env={
            "BUCKET_NAME": bucket,
            "PREFIX": prefix,
            "S3_ENDPOINT_URL": s3_endpoint,
            "POWERTOOLS_SERVICE_NAME": "pdf-manifest",
            "POWERTOOLS_METRICS_NAMESPACE": "PdfManifest",
        },
    )
    log: list[str] = []
    with EnvironmentPool(config, log_sink=log.append) as pool:
        invocation = pool.invoke(json.dumps({"bucket": bucket, "prefix": prefix}).encode())
        [environment] = pool._idle
        runtime_pid = tree(environment._process.pid)[-1]  # under bwrap's two processes when sandboxed
        maps = Path(f"/proc/{runtime_pid}/maps").read_text()
        # The environment's /tmp: a tmpfs seen through the runtime's root in the sandbox, else its temp dir.
        lambda_tmp = Path(f"/proc/{runtime_pid}/root/tmp") if environment.sandboxed else Path(str(environment.tmp_dir))
        assert list(lambda_tmp.iterdir()) == []

    assert log[0] == "INIT_START Runtime Version: python:3.13.local"
    response = json.loads(invocation.payload)
    assert response["statusCode"] == 200, (response, log[-20:])
    body = json.loads(response["body"])
    assert body["count"] == 3
    fetched = requests.get(body["manifest_url"], timeout=10)
    fetched.raise_for_status()
    keys = sorted(json.loads(line)["key"] for line in fetched.text.split("\n") if line)
    assert keys == [prefix + "a.pdf", prefix + "b.PDF", prefix + "sub/c.pdf"]

    loaded = {Path(line.split()[-1]) for line in maps.splitlines() if line.split()[-1].endswith(".so")}
    if environment.sandboxed:  # the zip is mounted at /var/task
        loaded = {task_root / path.relative_to("/var/task") for path in loaded if path.is_relative_to("/var/task")}
    from_zip = {path.relative_to(task_root).parts[0] for path in loaded if path.is_relative_to(task_root)}
    assert {"aiohttp", "multidict", "yarl", "frozenlist", "propcache"} <= from_zip
    assert all("cpython-313-x86_64-linux-gnu" in path.name for path in loaded if path.is_relative_to(task_root))
    # Nothing written into the task root: every imported module had usable 3.13 bytecode.
    assert sorted(task_root.rglob("*")) == unpacked


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
    command = package.pip_command("arm64", "3.13", tmp_path / "t", ROOT / "requirements.lock")

    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    flags = " ".join(command[4:])
    for expected in (
        "--platform manylinux2014_aarch64",
        "--only-binary=:all:",
        "--python-version 3.13",
        "--implementation cp",
        f"--target {tmp_path / 't'}",
        "--no-compile",
        "--require-hashes",
        "--no-deps",
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
