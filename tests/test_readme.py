"""The README's configuration table lists exactly what the handler reads."""

from __future__ import annotations

import re

from tests.conftest import ROOT


def handler_settings() -> set[str]:
    source = (ROOT / "lambda_function.py").read_text()
    return set(re.findall(r'os\.environ\.get\("([A-Z0-9_]+)"', source)) | set(
        re.findall(r'_int_setting\("([A-Z0-9_]+)"', source)
    )


def test_readme_opens_with_the_two_commands():
    head = "\n".join((ROOT / "README.md").read_text().splitlines()[:20])

    assert "make demo" in head
    assert "make test" in head


def test_readme_configuration_table_covers_every_handler_setting():
    readme = (ROOT / "README.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)`", readme, flags=re.MULTILINE))
    documented |= set(re.findall(r"^\| `[A-Z0-9_]+` / `([A-Z0-9_]+)`", readme, flags=re.MULTILINE))

    assert handler_settings() - documented == set()
