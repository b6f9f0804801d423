"""README.md is a landing page; the reference lives in docs/reference/ and must stay complete and linked."""

from __future__ import annotations

import re

from tests.conftest import ROOT

README = ROOT / "README.md"
REFERENCE = ROOT / "docs" / "reference"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def handler_settings() -> set[str]:
    source = (ROOT / "lambda_function.py").read_text()
    return set(re.findall(r'os\.environ\.get\("([A-Z0-9_]+)"', source)) | set(
        re.findall(r'_int_setting\("([A-Z0-9_]+)"', source)
    )


def anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", markdown, flags=re.DOTALL), flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_readme_opens_with_the_two_commands():
    head = "\n".join(README.read_text().splitlines()[:20])

    assert "make demo" in head
    assert "make test" in head


def test_readme_is_a_landing_page():
    text = README.read_text()
    headings = re.findall(r"^## (.+)$", text, flags=re.MULTILINE)

    assert len(text.splitlines()) < 150
    for needed in ("Prerequisites", "The local loop", "Troubleshooting", "Read more"):
        assert needed in headings
    assert not re.search(r"\bIssue \d+ asked|now fixed|xfails? ", text), "changelog lines belong in git history"
    assert (ROOT / "LICENSE").read_text().startswith("\n                                 Apache License")


def test_configuration_reference_covers_every_handler_setting():
    reference = (REFERENCE / "configuration.md").read_text()
    documented = set(re.findall(r"^\| `([A-Z0-9_]+)`", reference, flags=re.MULTILINE))
    documented |= set(re.findall(r"^\| `[A-Z0-9_]+` / `([A-Z0-9_]+)`", reference, flags=re.MULTILINE))

    assert handler_settings() - documented == set()


def test_every_relative_link_of_the_readme_and_the_reference_resolves():
    pages = [README, *sorted(REFERENCE.glob("*.md"))]
    broken = []
    for page in pages:
        for target in LINK.findall(page.read_text()):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            path, _, anchor = target.partition("#")
            resolved = (page.parent / path).resolve() if path else page
            if not resolved.exists():
                broken.append(f"{page.relative_to(ROOT)}: {target}")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved.read_text()):
                broken.append(f"{page.relative_to(ROOT)}: {target} (no such heading)")

    assert broken == []


def test_every_reference_page_is_linked_from_the_readme():
    linked = {
        (README.parent / t.partition("#")[0]).resolve() for t in LINK.findall(README.read_text()) if "://" not in t
    }

    assert sorted(p.name for p in REFERENCE.glob("*.md") if p.resolve() not in linked) == []
