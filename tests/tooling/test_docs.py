"""The study site's static checks: generated regions fresh, graphs rendered, links and sources sound.

The browser checks live in test_docs_browser.py.
"""

from __future__ import annotations

import ast
import importlib.util
import json
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
    "observability", "async-errors", "step-functions", "cost", "local-dev", "local-runtime", "deploy", "ci-cd",
    "pitfalls", "adjacent", "labs", "walkthrough", "repository", "sources",
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
    """Collects ids, section ids, every href/src, and the citations and sources of a page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.sections: list[str] = []
        self.refs: list[tuple[str, str]] = []
        self.external: list[tuple[str, str, str]] = []  # (source item id, href, rel)
        self.nav_hrefs: list[str] = []
        self.cites: list[tuple[str, str]] = []  # (section, source id)
        self.sources: dict[str, list[str]] = {}  # source item id -> its hrefs
        self._in_nav = False
        self._source: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "section":
            self.sections.append(values.get("id", ""))
        if tag == "nav" and values.get("id") == "toc":
            self._in_nav = True
        if tag == "li" and values.get("id", "").startswith("src-"):
            self._source = values["id"]
            self.sources[self._source] = []
        if tag == "a" and "cite" in values.get("class", "").split():
            self.cites.append((self.sections[-1] if self.sections else "", values.get("href", "")[1:]))
        if tag == "a" and self._source and "href" in values:
            self.sources[self._source].append(values["href"])
            if re.match(r"^https?:", values["href"]):
                self.external.append((self._source, values["href"], values.get("rel", "")))
                return
        for attr in ("href", "src"):
            if attr in values:
                self.refs.append((tag, values[attr]))
                if self._in_nav and tag == "a":
                    self.nav_hrefs.append(values[attr])

    def handle_endtag(self, tag: str) -> None:
        if tag == "nav":
            self._in_nav = False
        if tag == "li":
            self._source = None


def _parse(path: Path) -> _Page:
    page = _Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def test_index_html_is_up_to_date(build_docs: ModuleType):
    current = (DOCS / "index.html").read_text(encoding="utf-8")

    assert build_docs.build(current) == current, "docs/index.html is out of date with the repository: run `make docs`"


def test_page_has_its_sections_in_sidebar_order():
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
        assert not re.search(r"""\ssrc=["']?(?:https?:)?//""", text)
        assert not re.search(r"""<link\b""", text)
    # The only way off the machine is a link the reader clicks, and only from the sources list.
    assert 'href="http' not in (DOCS / "viewer.html").read_text(encoding="utf-8")
    page = _parse(DOCS / "index.html")
    outside = [ref for tag, ref in page.refs if re.match(r"^[a-z][a-z0-9+.-]*:", ref) and not ref.startswith("data:")]
    assert outside == [], f"off-machine references outside the sources list: {outside}"
    for source, href, rel in page.external:
        assert href.startswith("https://"), f"{source}: {href} is not https"
        assert {"external", "noopener", "noreferrer"} <= set(rel.split()), f"{source}: {href} needs rel=external"


def test_every_citation_has_a_source_and_every_source_is_cited_and_linked():
    page = _parse(DOCS / "index.html")
    cited = {source for _, source in page.cites}

    assert page.sources, "the page has no sources list"
    assert cited - set(page.sources) == set(), "citations without a source entry"
    assert set(page.sources) - cited == set(), "sources nobody cites"
    assert all(page.sources.values()), "a source entry without a link"
    assert len(page.cites) >= 100


NUMBER = re.compile(r"\d[\d,.]*\s*(?:%|ms|s\b|MB|GB|KB|MiB|h\b|minutes|seconds|×|\$)|\$\d|\d,\d{3}")


def test_every_number_or_limit_on_the_page_carries_a_source():
    """Table rows and list items that state a figure cite where it comes from.

    The walkthrough and the repository page are exempt (their figures are
    generated from the files), and so are the measured timeline and code blocks.
    """
    text = (DOCS / "index.html").read_text(encoding="utf-8")
    exempt = {"walkthrough", "repository", "sources"}
    missing = []
    for section_id, body in re.findall(r'<section id="([^"]+)".*?>(.*?)</section>', text, flags=re.DOTALL):
        if section_id in exempt:
            continue
        body = re.sub(r"<!-- timeline:start -->.*?<!-- timeline:end -->", "", body, flags=re.DOTALL)
        body = re.sub(r"<pre.*?</pre>|<figure.*?</figure>|<thead>.*?</thead>", "", body, flags=re.DOTALL)
        for item in re.findall(r"<(tr|li|p)(?:\s[^>]*)?>(.*?)</\1>", body, flags=re.DOTALL):
            item = item[1]
            plain = re.sub(r"<code>.*?</code>|<[^>]+>", " ", item)
            if NUMBER.search(plain) and 'class="cite"' not in item:
                missing.append(f"{section_id}: {' '.join(plain.split())[:90]}")
    assert missing == []


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


def test_walkthrough_steps_match_the_docstring_and_every_part_is_explained(build_docs: ModuleType):
    source = (ROOT / "lambda_function.py").read_text(encoding="utf-8")
    notes = build_docs.tomllib.loads((DOCS / "walkthrough.toml").read_text(encoding="utf-8"))["walkthrough"]
    _, sections = build_docs.split_source(source)
    steps = build_docs.docstring_steps(source)

    assert [number for number, _ in steps] == [section.number for section in sections], (
        "the module docstring's numbered steps and the banner comments disagree"
    )
    for (_, name), section in zip(steps, sections, strict=True):
        assert section.parts, f"banner {section.number} has no code under it"
        assert section.title.lower().startswith(name.lower().strip("`")), (name, section.title)
    for section in sections:
        assert f"section:{section.key}" in notes, f"no introduction for section {section.key}"
        for part in section.parts:
            assert any(name in notes for name in part.names) or part.docstring, f"{part.names[0]} has no note"
    html = (DOCS / "index.html").read_text(encoding="utf-8")
    assert "no study note" not in html


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
    assert "no study note" not in html
    assert '<p class="from-doc">Arrived after the notes were written.</p>' in html
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


def test_timeline_axis_reaches_past_the_longest_bar(measure: ModuleType):
    data = {
        "method": "test",
        "pdfs": 1,
        "python": "3",
        "machine": "x",
        "runs": [{"init_ms": 392.0, "duration_ms": 284.0}, {"init_ms": None, "duration_ms": 100.0}],
    }
    dot = measure.timeline_dot(data)
    ticks = [float(t.replace(",", "")) for t in re.findall(r'label="([\d,]+) ms"', dot)]

    assert ticks[0] == 0 and ticks[-1] >= 676
    assert "key_init" in dot and "key_run" in dot  # the legend draws its swatches
    assert "not scale" in dot or "proportion to memory" in dot


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


def test_the_measured_timeline_ran_on_the_functions_runtime():
    """The cold/warm figures are the function's own: Python 3.13 through awslambdaric, as on Lambda."""
    data = json.loads((GRAPHS / "cold_warm_timeline.json").read_text(encoding="utf-8"))

    assert data["method"].startswith("invoke.py"), data["method"]
    assert data["python"].startswith("3.13.") and data["python"].endswith("under awslambdaric"), data["python"]
    assert data["runs"][0]["init_ms"] and all(run["init_ms"] is None for run in data["runs"][1:])


def test_lab_3_says_what_a_foreign_zip_does():
    """A zip built for the other architecture runs on pure-Python fallbacks; the page must not predict an ELF error."""
    text = (DOCS / "index.html").read_text(encoding="utf-8")
    lab = text[text.index('<h3 id="lab-3">') : text.index('<h3 id="lab-4">')]

    assert "ELF" not in lab and "ImportModuleError" not in lab
    assert "bench/foreign_arch.py" in lab and (ROOT / "bench" / "foreign_arch.py").is_file()
