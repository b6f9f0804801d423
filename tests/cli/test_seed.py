"""seed.py as a user runs it: generated or given PDFs, idempotent, and hostile input refused before any upload."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from pypdf import PdfReader

from tests.cli.conftest import assert_one_line_error, run
from tests.conftest import ROOT


def test_seed_names_the_variables_the_environment_shadows(s3_endpoint, bucket, tmp_path):
    env_file = tmp_path / "local.env"
    env_file.write_text("AWS_ACCESS_KEY_ID=minioadmin\n")
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "exported-key", "S3_ENDPOINT_URL": s3_endpoint, "BUCKET_NAME": bucket}

    done = subprocess.run(
        [sys.executable, "seed.py", "--count", "1", "-q", "--env-file", str(env_file)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    assert f"seed.py: the environment overrides {env_file} for AWS_ACCESS_KEY_ID" in done.stderr
    assert "exported-key" not in done.stderr and "minioadmin" not in done.stderr


def test_seed_twice_uploads_nothing_new(cli_env):
    first = run("seed.py", "--count", "5", "-q", "--env-file", os.devnull, env=cli_env)
    second = run("seed.py", "--count", "5", "-q", "--env-file", os.devnull, env=cli_env)

    assert first.returncode == second.returncode == 0
    assert "0 uploaded, 8 already there" in second.stdout


def test_seed_generates_pdfs_that_open(cli_env, s3, bucket):
    run("seed.py", "--count", "2", "-q", "--env-file", os.devnull, env=cli_env)

    body = s3.get_object(Bucket=bucket, Key="2026/04/report-0001.pdf")["Body"].read()

    reader = PdfReader(io.BytesIO(body))
    assert len(reader.pages) == 1
    assert "Report 1 of 2" in reader.pages[0].extract_text()


def test_seed_uploads_a_source_directory(cli_env, s3, bucket, tmp_path):
    source = tmp_path / "src"
    (source / "nested").mkdir(parents=True)
    (source / "a.pdf").write_bytes(b"%PDF-a")
    (source / "nested" / "b.PDF").write_bytes(b"%PDF-b")

    done = run("seed.py", "--source-dir", str(source), "-q", "--env-file", os.devnull, env=cli_env)

    assert done.returncode == 0, done.stderr
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]  # under their own prefix, not the generated PDFs'
    assert sorted(obj["Key"] for obj in listed) == ["mine/a.pdf", "mine/nested/b.PDF"]
    assert "PREFIX=mine/ make invoke" in done.stdout


def test_seed_puts_a_source_directory_where_prefix_or_source_prefix_says(cli_env, s3, bucket, tmp_path):
    source = tmp_path / "src"
    source.mkdir()
    (source / "a.pdf").write_bytes(b"%PDF-a")

    by_option = run(
        "seed.py", "--source-dir", str(source), "--prefix", "x/", "-q", "--env-file", os.devnull, env=cli_env
    )
    by_env = run(
        "seed.py", "--source-dir", str(source), "-q", "--env-file", os.devnull, env={**cli_env, "SOURCE_PREFIX": "y/"}
    )

    assert by_option.returncode == by_env.returncode == 0, by_option.stderr + by_env.stderr
    assert sorted(obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket)["Contents"]) == ["x/a.pdf", "y/a.pdf"]


@pytest.mark.parametrize("content", [{}, {"notes.txt": b"x", "scan.pdf.bak": b"y"}], ids=["empty", "no-pdf"])
def test_seed_a_source_directory_without_a_pdf_is_a_one_line_error_and_uploads_nothing(
    cli_env, s3, bucket, tmp_path, content
):
    source = tmp_path / "src"
    source.mkdir()
    for name, body in content.items():
        (source / name).write_bytes(body)

    done = run("seed.py", "--source-dir", str(source), "-q", "--env-file", os.devnull, env=cli_env)

    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "holds no PDF" in done.stderr
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket)


def test_seed_missing_directory_is_a_one_line_error(cli_env, tmp_path):
    done = run("seed.py", "--source-dir", str(tmp_path / "nope"), "--env-file", os.devnull, env=cli_env)

    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "does not exist" in done.stderr


def test_seed_unreachable_endpoint_is_a_one_line_error(cli_env):
    started = time.monotonic()
    done = run("seed.py", "--endpoint-url", "http://127.0.0.1:9", "-q", "--env-file", os.devnull, env=cli_env)

    assert done.returncode == 1
    assert done.stderr.strip().count("\n") == 0
    assert "cannot reach S3" in done.stderr
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("args", [["--count", "-1"], ["--workers", "0"], ["--count", "many"]])
def test_seed_rejects_bad_numbers(cli_env, args):
    done = run("seed.py", *args, "--env-file", os.devnull, env=cli_env)

    assert done.returncode == 2
    assert "error:" in done.stderr


def seed(tmp_path: Path, endpoint: str, bucket: str, *args: str) -> subprocess.CompletedProcess[str]:
    return run(
        "seed.py",
        "--bucket",
        bucket,
        "--endpoint-url",
        endpoint,
        "--quiet",
        "--env-file",
        os.devnull,
        *args,
        env={"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "TMPDIR": str(tmp_path)},
    )


def objects(s3: Any, bucket: str) -> list[str]:
    return [obj["Key"] for obj in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


@pytest.fixture
def source(tmp_path: Path) -> Path:
    tree = tmp_path / "source"
    (tree / "sub").mkdir(parents=True)
    for name in ("a.pdf", "b.pdf", "sub/c.pdf"):
        (tree / name).write_bytes(b"%PDF-1.4 " + name.encode())
    return tree


def test_seed_refuses_a_file_link_out_of_the_tree_before_uploading_anything(source, tmp_path, s3_endpoint, s3, bucket):
    secret = tmp_path / "secret.txt"
    secret.write_text("not for the bucket")
    (source / "z-link.pdf").symlink_to(secret)
    (source / "inside.pdf").symlink_to(source / "a.pdf")  # a link that stays in the tree is fine

    done = seed(tmp_path, s3_endpoint, bucket, "--source-dir", str(source))

    assert_one_line_error(done, "links out of the source directory")
    assert objects(s3, bucket) == []


def test_seed_refuses_a_directory_link_out_of_the_tree(source, tmp_path, s3_endpoint, s3, bucket):
    (source / "elsewhere").symlink_to(tmp_path)

    done = seed(tmp_path, s3_endpoint, bucket, "--source-dir", str(source))

    assert_one_line_error(done, "links out of the source directory")
    assert objects(s3, bucket) == []


def test_seed_refuses_a_non_utf8_file_name_before_uploading_anything(source, tmp_path, s3_endpoint, s3, bucket):
    os.close(os.open(os.fsencode(source) + b"/zz-caf\xe9.pdf", os.O_CREAT | os.O_WRONLY))

    done = seed(tmp_path, s3_endpoint, bucket, "--source-dir", str(source))

    assert_one_line_error(done, "not UTF-8")
    assert objects(s3, bucket) == []


def test_seed_refuses_a_fifo_in_the_tree_before_uploading_anything(source, tmp_path, s3_endpoint, s3, bucket):
    os.mkfifo(source / "zz.pdf")

    done = seed(tmp_path, s3_endpoint, bucket, "--source-dir", str(source))

    assert_one_line_error(done, "not a regular file")
    assert objects(s3, bucket) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_seed_refuses_an_unreadable_file_before_uploading_anything(source, tmp_path, s3_endpoint, s3, bucket):
    locked = source / "zz.pdf"
    locked.write_bytes(b"%PDF-")
    locked.chmod(0)

    done = seed(tmp_path, s3_endpoint, bucket, "--source-dir", str(source))

    assert_one_line_error(done, "cannot read")
    assert objects(s3, bucket) == []


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--endpoint-url", "http://[::1"], "is not a URL"),
        (["--endpoint-url", "http://127.0.0.1:99999"], "is not a URL"),
        (["--bucket", "Not_A_Bucket"], "bucket name"),
        (["--bucket", "ab"], "bucket name"),
        (["--bucket", "192.168.0.1"], "bucket name"),
        (["--prefix", "\udc80/"], "prefix"),
    ],
)
def test_seed_names_a_bad_endpoint_bucket_or_prefix_instead_of_blaming_the_network(tmp_path, s3_endpoint, args, needle):
    done = seed(tmp_path, s3_endpoint, "fine-bucket", *args)

    assert_one_line_error(done, needle)
    assert "cannot reach S3" not in done.stderr


def test_seed_hashes_and_uploads_files_without_holding_them_in_memory(tmp_path):
    import tracemalloc

    from local_dev import seed as seed_module

    sparse = tmp_path / "big.pdf"
    with sparse.open("wb") as stream:
        stream.truncate(256 << 20)
    item = seed_module.directory_items("p/", tmp_path)[0]
    sent: list[Any] = []

    class Client:
        def put_object(self, **kwargs: Any) -> None:
            sent.append(type(kwargs["Body"]))

    tracemalloc.start()
    try:
        etag = item.etag
        seed_module.upload(Client(), "bucket", [item], workers=1, progress=False)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert item.body is None and etag.startswith('"')
    assert peak < 16 << 20, peak
    assert sent and sent[0] is not bytes


def test_seed_names_the_key_s3_refused(tmp_path, source):
    import boto3
    from botocore.stub import Stubber

    from local_dev import seed as seed_module

    client = boto3.client("s3", region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing")
    items = seed_module.directory_items("2026/04/", source)
    with Stubber(client) as stubber:
        stubber.add_client_error("put_object", service_error_code="AccessDenied", service_message="Access Denied")
        with pytest.raises(seed_module.UploadError, match=r"s3://bucket/2026/04/a\.pdf: AccessDenied"):
            seed_module.upload(client, "bucket", items[:1], workers=1, progress=False)
