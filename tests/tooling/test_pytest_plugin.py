"""The pytest plugin (lambda_pytest) as a user meets it: docs/reference/testing.md's examples, run outside tests/.

The sample files are cut from the page's code blocks (a block whose first line
is ``# test_<name>.py``), so the page and what passes cannot drift apart; they
run in a subprocess, in pytester's scratch folder, where the only way to the
fixtures is the installed plugin's pytest11 entry point.
"""

from __future__ import annotations

import re
from importlib.metadata import entry_points

import pytest

from lambda_pytest.plugin import MOCK_AWS_POINTER
from tests.conftest import ROOT

PAGE = ROOT / "docs" / "reference" / "testing.md"
SAMPLE = re.compile(r"^```python\n# (test_\w+\.py)\n(.*?)^```", flags=re.MULTILINE | re.DOTALL)


def page_files() -> dict[str, str]:
    files: dict[str, str] = {}
    for name, body in SAMPLE.findall(PAGE.read_text(encoding="utf-8")):
        files[name] = files.get(name, "") + body
    return files


def test_the_plugin_is_registered_through_the_pytest11_entry_point():
    (plugin,) = [entry for entry in entry_points(group="pytest11") if entry.name == "lambda_pytest"]

    assert plugin.value == "lambda_pytest.plugin"


def test_the_pages_examples_pass_outside_the_repository_and_the_mock_aws_mistake_gets_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    files = page_files()
    assert set(files) == {"test_my_function.py", "test_my_function_runtime.py", "test_mock_aws_mistake.py"}
    for name in ("S3_ENDPOINT_URL", "BUCKET_NAME", "PREFIX", "ALLOWED_BUCKETS"):  # a user's shell may hold .env's
        monkeypatch.delenv(name, raising=False)
    pytester.makepyfile(**{name.removesuffix(".py"): body for name, body in files.items()})
    assert ROOT not in pytester.path.parents and not list(pytester.path.glob("conftest.py"))

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rf", timeout=240)

    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*test_mock_aws_mistake.py::test_the_usual_moto_pattern*TypeError*"])
    assert result.stdout.str().count(MOCK_AWS_POINTER) == 1
    assert MOCK_AWS_POINTER in PAGE.read_text(encoding="utf-8")


def test_a_handler_that_caught_the_mistake_still_gets_the_pointer_and_other_errors_do_not(pytester: pytest.Pytester):
    pytester.makepyfile(
        test_caught="""
        def test_caught_and_answered_500():
            print('{"level": "ERROR", "error": "object bytes can\\'t be used in \\'await\\' expression"}')
            assert 500 == 200

        def test_another_type_error():
            raise TypeError("unsupported operand")
        """
    )

    result = pytester.runpytest_inprocess("-p", "no:cacheprovider")

    result.assert_outcomes(failed=2)
    assert result.stdout.str().count(MOCK_AWS_POINTER) == 1
