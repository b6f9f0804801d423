"""The study site's static checks: generated regions fresh, graphs rendered, links and sources sound.

The browser checks live in test_docs_browser.py.
"""

from __future__ import annotations

import ast
import importlib.util
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest

from tests.conftest import ROOT

DOCS = ROOT / "docs"
GRAPHS = DOCS / "graphs"
SECTIONS = [
    "overview", "mental-model", "limits",
    "cold-starts", "concurrency", "triggers", "iam", "packaging", "vpc",
    "observability", "async-errors", "step-functions", "cost", "local-dev", "ci-cd",
    "pitfalls", "adjacent", "labs", "repository",
]  # fmt: skip


def _load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def build_docs() -> ModuleType:
    return _load(DOCS / "build_docs.py", "docs_build_docs")


@pytest.fixture(scope="module")
def render() -> ModuleType:
    return _load(GRAPHS / "render.py", "docs_graphs_render")


@pytest.fixture(scope="module")
def measure() -> ModuleType:
    return _load(GRAPHS / "measure_timeline.py", "docs_graphs_measure_timeline")


class _Page(HTMLParser):
    """Collects ids, section ids, and every href/src on a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.sections: list[str] = []
        self.refs: list[tuple[str, str]] = []
        self.nav_hrefs: list[str] = []
        self._in_nav = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "section":
            self.sections.append(values.get("id", ""))
        if tag == "nav" and values.get("id") == "toc":
            self._in_nav = True
        for attr in ("href", "src"):
            if attr in values:
                self.refs.append((tag, values[attr]))
                if self._in_nav and tag == "a":
                    self.nav_hrefs.append(values[attr])

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._in_nav = False


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_index_html_is_up_to_date(build_docs: ModuleType):
    current = (DOCS / "index.html").read_text(encoding="utf-8")

    assert build_docs.build(current) == current, "docs/index.html is out of date with the repository: run `make docs`"


def test_page_has_the_nineteen_sections_in_sidebar_order():
    page = _parse(DOCS / "index.html")

    assert page.sections == SECTIONS
    assert page.nav_hrefs == [f"#{s}" for s in SECTIONS]


def test_every_local_reference_resolves():
    for html_file in (DOCS / "index.html", DOCS / "viewer.html"):
        page = _parse(html_file)
        for tag, ref in page.refs:
            assert not re.match(r"^[a-z][a-z0-9+.-]*:", ref) or ref.startswith("data:"), (
                f"{html_file.name}: <{tag}> points off the machine: {ref}"
            )
            if ref.startswith("#"):
                assert ref[1:] in page.ids, f"{html_file.name}: no element with id {ref}"
                continue
            path, _, query = ref.partition("?")
            assert (DOCS / path).is_file(), f"{html_file.name}: {ref} does not exist"
            if path == "viewer.html" and query:
                assert (DOCS / query.removeprefix("src=")).is_file(), f"viewer target missing: {ref}"


def test_no_remote_fonts_scripts_or_styles():
    for html_file in (DOCS / "index.html", DOCS / "viewer.html"):
        text = html_file.read_text(encoding="utf-8")
        assert "@import" not in text
        assert not re.search(r"url\(\s*['\"]?https?:", text)
        assert not re.search(r"""\s(?:src|href)=["']?(?:https?:)?//""", text)


def test_every_graph_source_has_a_fresh_svg(render: ModuleType):
    dots = sorted(GRAPHS.glob("*.dot"))
    assert {"system_overview", "lifecycle", "cold_warm_timeline"} <= {d.stem for d in dots}
    for dot in dots:
        svg = dot.with_suffix(".svg")
        assert svg.exists(), f"{svg.name} missing: run `make graphs`"
        assert render.stamped_hash(svg) == render.source_hash(dot), f"{svg.name} is stale: run `make graphs`"
        assert "<svg" in svg.read_text(encoding="utf-8")


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz not installed (make docs-deps)")
def test_every_graph_source_renders_with_graphviz():
    for dot in sorted(GRAPHS.glob("*.dot")):
        done = subprocess.run(["dot", "-Tsvg", str(dot)], capture_output=True, text=True)
        assert done.returncode == 0, f"{dot.name}: {done.stderr}"


def test_every_graph_is_shown_on_the_page():
    text = (DOCS / "index.html").read_text(encoding="utf-8")
    for dot in GRAPHS.glob("*.dot"):
        assert f'src="graphs/{dot.stem}.svg"' in text, f"{dot.stem}.svg is not on the page"


def test_walkthrough_quotes_every_top_level_definition(build_docs: ModuleType):
    source = (ROOT / "lambda_function.py").read_text(encoding="utf-8")
    names = [
        node.name
        for node in ast.parse(source).body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    ]
    html = build_docs.render_walkthrough(source, {}, set())

    for name in names:
        assert re.search(rf"(^|<code>)(async )?(def|class) {name}\b", html, flags=re.MULTILINE), name


def test_walkthrough_covers_every_source_line(build_docs: ModuleType):
    source = (ROOT / "lambda_function.py").read_text(encoding="utf-8")
    lines = source.splitlines()
    preamble, sections = build_docs.split_source(source)
    covered = set(range(preamble.start, preamble.end + 1))
    for section in sections:
        covered |= set(range(section.start, section.parts[0].start if section.parts else section.end + 1))
        for part in section.parts:
            covered |= set(range(part.start, part.end + 1))
    missing = [n for n, line in enumerate(lines, 1) if line.strip() and n not in covered]

    assert missing == []


SAMPLE = '''"""Doc."""
import os

# ---------------------------------------------------------------------------
# 1. Setup, once.
# ---------------------------------------------------------------------------

LIMIT = int(os.environ.get("LIMIT", "5"))


# a comment that belongs to old_name
def old_name():
    """Still here."""


@decorator
def brand_new(x):
    """Arrived after the notes were written."""
    return x
'''


def test_notes_follow_names_and_unknown_parts_get_a_generic_line(build_docs: ModuleType):
    used: set[str] = set()
    notes = {"old_name": "<p>NOTE-OLD</p>", "gone": "<p>NOTE-GONE</p>", "section:setup": "<p>NOTE-SETUP</p>"}
    html = build_docs.render_walkthrough(SAMPLE, notes, used)

    assert "NOTE-OLD" in html and "NOTE-SETUP" in html
    assert "NOTE-GONE" not in html and used == {"old_name", "section:setup"}
    assert "<code>brand_new</code> has no study note yet" in html
    assert "Arrived after the notes were written." in html
    assert "# a comment that belongs to old_name\ndef old_name" in html.replace('<span class="c">', "").replace(
        "</span>", ""
    )
    assert "@decorator" in html


def test_quoted_code_is_escaped(build_docs: ModuleType):
    html = build_docs.render_walkthrough('def f():\n    return "<b>&"\n', {}, set())

    assert "&lt;b&gt;&amp;" in html and "<b>&" not in html


def test_config_table_reads_defaults_from_the_code(build_docs: ModuleType):
    settings = dict(
        build_docs.config_settings(
            'import os\nA = os.environ.get("A", "").strip() or "x"\nB = _int_setting("B", 8 * 1024, 1)\n'
        )
    )

    assert settings == {"A": "'x'", "B": "8,192"}


def test_report_lines_are_parsed_in_any_field_order(measure: ModuleType):
    text = (
        "START RequestId: a Version: $LATEST\n"
        "REPORT RequestId: a\tInit Duration: 265.72 ms\tDuration: 395.99 ms\tBilled Duration: 662 ms\t"
        "Memory Size: 512 MB\tMax Memory Used: 301 MB\n"
        "REPORT RequestId: b\tDuration: 12.5 ms\tBilled Duration: 13 ms\tMemory Size: 512 MB\tMax Memory Used: 301 MB\n"
    )
    runs = measure.parse_report_lines(text)

    assert [r["init_ms"] for r in runs] == [265.72, None]
    assert [r["duration_ms"] for r in runs] == [395.99, 12.5]
    assert runs[0]["billed_ms"] == 662 and runs[1]["request_id"] == "b"


def test_timeline_dot_is_drawn_to_scale(measure: ModuleType):
    data = {
        "method": "test",
        "pdfs": 1,
        "python": "3",
        "machine": "x",
        "runs": [{"init_ms": 300.0, "duration_ms": 100.0}, {"init_ms": None, "duration_ms": 50.0}],
    }
    dot = measure.timeline_dot(data)
    widths = {m[0]: float(m[1]) for m in re.findall(r"  (init0|run0|run1) \[label=\"\", width=([0-9.]+)", dot)}

    assert widths["init0"] == pytest.approx(3 * widths["run0"], rel=0.01)
    assert widths["run0"] == pytest.approx(2 * widths["run1"], rel=0.01)


def test_task_specification_is_complete():
    text = (ROOT / "def" / "task.md").read_text(encoding="utf-8")

    for heading in ("## Inputs", "## Outputs", "## Constraints", "## Acceptance criteria"):
        assert heading in text
    for fact in ("6 MB", "604,800", "/tmp", "manifest_url"):
        assert fact in text
