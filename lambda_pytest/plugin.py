"""Fixtures for testing the function against real HTTP S3 (moto as a server), in process or in the local runtime.

Two ways to run the handler, both against the same moto server on loopback:

* ``load_handler(**env)`` imports a fresh copy of ``lambda_function`` under the
  variables given (a cold start) in the test's own process; call its
  ``handler(event, lambda_context)``. Fast, debuggable, and the only
  configuration is what the test passes.
* ``local_lambda(**env)`` starts the function as ``template.yaml`` deploys it
  (handler, memory, timeout, variables) in the local runtime: Python 3.13 and
  awslambdaric in their own process, each call a real invocation.

moto's in-process ``@mock_aws`` patches botocore's HTTP layer, which aiobotocore
(the handler's client) does not go through; a test that uses it fails with
``TypeError: object bytes can't be used in 'await' expression``. This plugin
adds one line to such a failure that names the fixtures to use instead.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from local_runtime.environment import Invocation
    from local_runtime.pool import EnvironmentPool
    from testkit.lambda_context import LambdaContext

ROOT = Path(__file__).resolve().parent.parent  # the project: lambda_function.py and template.yaml
TEMPLATE = ROOT / "template.yaml"
DEFAULT_PREFIX = "2026/04/"
MOCK_AWS_POINTER = (
    "lambda_pytest: moto's @mock_aws (in-process) cannot answer aiobotocore, the handler's S3 client; drop it "
    "and use the s3_endpoint, bucket and load_handler fixtures (moto as a server): docs/reference/testing.md"
)
_AWAIT_BYTES = "object bytes can't be used in 'await' expression"
_CONTEXT_DEFAULTS: dict[str, Any] = {
    "function_name": "pdf-manifest",
    "memory_mb": 512,
    "timeout_s": 60,
    "region": "us-east-1",
    "log_stream_name": "2026/11/25/[$LATEST]test",
}


def _dummy_credentials() -> dict[str, str]:
    from local_dev.embedded_s3 import DUMMY_CREDENTIALS

    return dict(DUMMY_CREDENTIALS)


# --- S3: a moto server on loopback, buckets, PDFs ------------------------------


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server on a free loopback port, in a thread of this process (one per session)."""
    from local_dev.embedded_s3 import embedded_s3

    with embedded_s3() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def s3(s3_endpoint: str) -> Any:
    """A boto3 S3 client for that server (dummy credentials, path-style addressing)."""
    import boto3
    from botocore.config import Config

    credentials = _dummy_credentials()
    return boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name=credentials["AWS_DEFAULT_REGION"],
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, max_pool_connections=32),
    )


@pytest.fixture
def bucket(s3: Any) -> str:
    """The name of a new, empty bucket (a fresh one for every test)."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def seed_pdfs(s3: Any) -> Callable[..., list[str]]:
    """``seed_pdfs(bucket, prefix="2026/04/", count=5, source_dir=None)``: upload PDFs, return their keys, sorted.

    Without ``source_dir``: ``count`` generated one-page PDFs plus three non-PDF
    decoys (what ``make seed`` uploads). With it: every file below that folder,
    checked as ``make seed SOURCE_DIR=...`` checks it.
    """
    from local_dev.seed import directory_items, generated_items, upload

    def seed(
        bucket: str, prefix: str = DEFAULT_PREFIX, count: int = 5, source_dir: str | Path | None = None
    ) -> list[str]:
        items = directory_items(prefix, Path(source_dir)) if source_dir is not None else generated_items(prefix, count)
        upload(s3, bucket, items, workers=4, progress=False)
        return sorted(item.key for item in items if item.key.lower().endswith(".pdf"))

    return seed


@dataclass(frozen=True)
class SeededBucket:
    name: str
    prefix: str
    pdf_keys: list[str] = field(default_factory=list)


@pytest.fixture
def seeded_bucket(bucket: str, seed_pdfs: Callable[..., list[str]]) -> SeededBucket:
    """A new bucket holding 5 generated PDFs and 3 decoys under ``2026/04/``."""
    return SeededBucket(bucket, DEFAULT_PREFIX, seed_pdfs(bucket))


# --- the handler in this process ---------------------------------------------


@pytest.fixture
def context_factory() -> Callable[..., LambdaContext]:
    """``context_factory(**overrides)``: a context whose clock starts now (``timeout_s``, ``request_id``...)."""
    from testkit.lambda_context import make_context

    def factory(**overrides: Any) -> LambdaContext:
        return make_context(**{**_CONTEXT_DEFAULTS, **overrides})

    return factory


@pytest.fixture
def lambda_context(context_factory: Callable[..., LambdaContext]) -> LambdaContext:
    """A context with the attributes awslambdaric hands a handler (``aws_request_id``, ``memory_limit_in_mb``...)."""
    return context_factory()


@pytest.fixture
def lambda_tmp(tmp_path: Path) -> Path:
    """The handler's /tmp (its TMPDIR) for ``load_handler``: empty at the start of each test."""
    path = tmp_path / "lambda-tmp"
    path.mkdir()
    return path


@pytest.fixture
def load_handler(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str, lambda_tmp: Path) -> Callable[..., ModuleType]:
    """``load_handler(**env)``: import a fresh ``lambda_function`` under those variables (a cold start).

    It talks to ``s3_endpoint`` with dummy credentials unless ``env`` says
    otherwise; a value of None unsets a variable. The environment is put back
    after the test.
    """
    from testkit.cold_import import forget_powertools_logger, import_fresh

    def load(**env: Any) -> ModuleType:
        settings = {
            **_dummy_credentials(),
            "AWS_SESSION_TOKEN": None,
            "AWS_PROFILE": None,
            "S3_ENDPOINT_URL": s3_endpoint,
            "TMPDIR": str(lambda_tmp),
            **env,
        }
        for name, value in settings.items():
            if value is None:
                monkeypatch.delenv(name, raising=False)
            else:
                monkeypatch.setenv(name, str(value))
        monkeypatch.setattr("tempfile.tempdir", None)  # re-read TMPDIR, as a new process would
        forget_powertools_logger(str(settings.get("POWERTOOLS_SERVICE_NAME") or "pdf-manifest"))
        return import_fresh("lambda_function_under_test")

    return load


# --- the function in the local runtime (Python 3.13, awslambdaric) ------------


class LambdaFunctionError(AssertionError):
    """The invocation ended in a function error; ``.invocation`` holds the payload and the log."""

    def __init__(self, invocation: Invocation) -> None:
        try:
            error = json.loads(invocation.payload)
            message = f"{error.get('errorType')}: {error.get('errorMessage')}"
        except (ValueError, AttributeError):
            message = invocation.payload.decode("utf-8", "replace")[:300]
        super().__init__(f"function error: {message}")
        self.invocation = invocation


@dataclass
class LocalFunction:
    """The function in the local runtime. Call it with an event for the decoded response."""

    pool: EnvironmentPool
    log: list[str] = field(default_factory=list)  # every log line so far, platform lines (START, REPORT) included

    def invoke(self, event: Any = None) -> Invocation:
        """One invocation: the service's record of it (``payload``, ``function_error``, ``log``, ``report``)."""
        return self.pool.invoke(json.dumps(event if event is not None else {}))

    def __call__(self, event: Any = None) -> Any:
        invocation = self.invoke(event)
        if invocation.function_error:
            raise LambdaFunctionError(invocation)
        return json.loads(invocation.payload)


@pytest.fixture
def local_lambda(s3_endpoint: str) -> Iterator[Callable[..., LocalFunction]]:
    """``local_lambda(**env)``: the function as template.yaml configures it, run by awslambdaric on Python 3.13.

    Its variables are the template's, then a clean Lambda environment's, then
    ``env`` (S3_ENDPOINT_URL points at ``s3_endpoint``). Environments stay warm
    between calls, as on Lambda, and end with the test.
    """
    from local_dev.template_config import load_template_function
    from local_runtime.config import FunctionConfig
    from local_runtime.lambda_python import LambdaPythonError
    from local_runtime.pool import EnvironmentPool

    started: list[EnvironmentPool] = []

    def start(**env: Any) -> LocalFunction:
        template = load_template_function(TEMPLATE)
        variables = {**template.env, **_dummy_credentials(), "S3_ENDPOINT_URL": s3_endpoint}
        variables.update({name: str(value) for name, value in env.items()})
        config = FunctionConfig(
            name=_CONTEXT_DEFAULTS["function_name"],
            task_root=ROOT,
            handler=template.handler or "lambda_function.handler",
            runtime=template.runtime or "python3.13",
            memory_mb=int(template.memory_mb or 128),
            timeout_s=template.timeout_s or 3.0,
            env=variables,
            clean_env=True,
        )
        log: list[str] = []
        try:
            pool = EnvironmentPool(config, log_sink=log.append)
        except LambdaPythonError as exc:
            pytest.fail(f"local_lambda: {exc} (then make lambda-python)", pytrace=False)
        started.append(pool)
        return LocalFunction(pool, log)

    yield start
    for pool in started:
        pool.close()


# --- the @mock_aws mistake: one line that points to the fixtures ---------------


def _is_mock_aws_mistake(excinfo: pytest.ExceptionInfo[BaseException] | None, report: pytest.TestReport) -> bool:
    error = excinfo.value if excinfo is not None else None
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        if isinstance(error, TypeError) and _AWAIT_BYTES in str(error):
            return True
        error = error.__cause__ or error.__context__
    # A handler that caught it and answered 500: the test failed on the answer, the log names the error.
    return any(_AWAIT_BYTES in content for _, content in report.sections)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(call: pytest.CallInfo[None]) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed and _is_mock_aws_mistake(call.excinfo, report):
        longrepr = report.longrepr
        if hasattr(longrepr, "addsection"):
            longrepr.addsection("lambda_pytest", MOCK_AWS_POINTER)
        else:
            report.sections.append(("lambda_pytest", MOCK_AWS_POINTER))
    return report
