"""Regenerate the parts of docs/index.html that quote the repository.

docs/index.html is hand-written except for regions between marker comments,
which this script rewrites from the live tree so the page cannot drift:

    walkthrough  lambda_function.py, split at its banner comments and top-level
                 definitions, each part quoted (HTML-escaped) with the notes from
                 docs/walkthrough.toml keyed by part name
    config       the environment variables lambda_function.py reads, with defaults
    tree         the repository tree from ``git ls-files``, notes from walkthrough.toml
    timeline     the measured cold/warm figures in docs/graphs/cold_warm_timeline.json
    bench        links to docs/graphs/bench-*.svg, only for plots that are tracked

    python docs/build_docs.py           # rewrite docs/index.html
    python docs/build_docs.py --check   # exit 1 if it is out of date

Standard library only, so ``make docs`` works before the virtualenv exists.
"""

from __future__ import annotations

import argparse
import ast
import html
import json
import re
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
INDEX = DOCS / "index.html"
NOTES = DOCS / "walkthrough.toml"
SOURCE = ROOT / "lambda_function.py"
TIMELINE = DOCS / "graphs" / "cold_warm_timeline.json"

BANNER_RULE = re.compile(r"^# -{10,}\s*$")
BANNER_TITLE = re.compile(r"^# (\d+)\. (.+?)\s*$")


@dataclass
class Part:
    """A run of source lines quoted as one block, with the name its note is filed under."""

    names: list[str]  # lookup keys, most specific first
    kind: str  # "preamble", "def", "class" or "statements"
    start: int  # 1-based, inclusive
    end: int  # 1-based, inclusive
    docstring: str | None = None


@dataclass
class Section:
    number: str
    title: str
    key: str
    start: int
    end: int
    parts: list[Part]
    detail: str = ""  # the banner's continuation lines


# ---------------------------------------------------------------------------
# Splitting lambda_function.py
# ---------------------------------------------------------------------------


def section_key(title: str) -> str:
    """'Configuration, read once per ...' -> 'configuration'; 'The handler: ...' -> 'the-handler'."""
    head = re.split(r"[,:.;(]", title, maxsplit=1)[0]
    return re.sub(r"[^a-z0-9]+", "-", head.lower()).strip("-")


def find_banners(lines: list[str]) -> list[tuple[int, int, str, str]]:
    """(first line, last line, number, title) of every banner block, 1-based."""
    banners = []
    i = 0
    while i < len(lines) - 1:
        title = BANNER_TITLE.match(lines[i + 1]) if BANNER_RULE.match(lines[i]) else None
        if title:
            j = i + 2
            while j < len(lines) and not BANNER_RULE.match(lines[j]) and lines[j].startswith("#"):
                j += 1
            last = j if j < len(lines) and BANNER_RULE.match(lines[j]) else j - 1
            banners.append((i + 1, last + 1, title.group(1), title.group(2)))
            i = last + 1
        else:
            i += 1
    return banners


def _node_names(node: ast.stmt) -> list[str]:
    if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
        return [node.name]
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, ast.AnnAssign | ast.AugAssign):
        targets = [node.target]
    names = []
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name):
                names.append(sub.id)
    return names


def _first_line(node: ast.stmt, lines: list[str]) -> int:
    """The node's first line, widened upwards over decorators and the comment block right above it."""
    start = min([node.lineno, *(d.lineno for d in getattr(node, "decorator_list", []))])
    while start > 1 and lines[start - 2].lstrip().startswith("#") and not BANNER_RULE.match(lines[start - 2]):
        start -= 1
    return start


def _trim(start: int, end: int, lines: list[str]) -> tuple[int, int]:
    while start <= end and not lines[start - 1].strip():
        start += 1
    while end >= start and not lines[end - 1].strip():
        end -= 1
    return start, end


def split_source(text: str) -> tuple[Part | None, list[Section]]:
    """Cut the module into a preamble and banner sections made of quotable parts.

    Every non-blank line of the file lands in exactly one part (banner comments
    become section headings instead), so the walkthrough quotes the whole file.
    """
    lines = text.splitlines()
    tree = ast.parse(text)
    banners = find_banners(lines)
    body_start = banners[0][0] if banners else None

    # Top-level statements with their widened first lines.
    nodes = [(_first_line(node, lines), node.end_lineno or node.lineno, node) for node in tree.body]

    preamble = None
    if body_start is None:
        first_def = next(
            (s for s, _, n in nodes if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)),
            len(lines) + 1,
        )
        body_start = first_def
        banners = [(first_def, first_def - 1, "", "Module body")]
    start, end = _trim(1, body_start - 1, lines)
    if start <= end:
        preamble = Part(["preamble"], "preamble", start, end, ast.get_docstring(tree))

    sections = []
    for index, (b_first, b_last, number, title) in enumerate(banners):
        s_end = banners[index + 1][0] - 1 if index + 1 < len(banners) else len(lines)
        inside = [(s, e, n) for s, e, n in nodes if b_last < n.lineno <= s_end]
        parts: list[Part] = []
        group: list[tuple[int, int, ast.stmt]] = []
        for s, e, node in [*inside, (0, 0, None)]:
            is_def = isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            if (is_def or node is None) and group:
                names = [name for _, _, n in group for name in _node_names(n)]
                g_start, g_end = _trim(max(group[0][0], b_last + 1), group[-1][1], lines)
                parts.append(Part(names, "statements", g_start, g_end))
                group = []
            if node is None:
                break
            if is_def:
                kind = "class" if isinstance(node, ast.ClassDef) else "def"
                d_start, d_end = _trim(max(s, b_last + 1), e, lines)
                parts.append(Part([node.name], kind, d_start, d_end, ast.get_docstring(node)))  # type: ignore[arg-type]
            else:
                group.append((s, e, node))
        detail = " ".join(
            line.lstrip("#").strip() for line in lines[b_first + 1 : b_last - 1] if line.lstrip("#").strip()
        )
        sections.append(Section(number, title, section_key(title), b_first, s_end, parts, detail))
    return preamble, sections


# ---------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------


def _code_block(lines: list[str], start: int, end: int) -> str:
    out = []
    for line in lines[start - 1 : end]:
        escaped = html.escape(line, quote=False)
        if line.lstrip().startswith("#"):
            escaped = f'<span class="c">{escaped}</span>'
        out.append(escaped)
    return "\n".join(out)


def _generic_note(part: Part) -> str:
    """The note for a part walkthrough.toml does not cover yet: its own docstring, never a placeholder.

    A function added to lambda_function.py by someone who never opened the notes
    still reads sensibly; tests/tooling/test_docs.py requires a note or a docstring for
    every definition, so nothing reaches the page unexplained.
    """
    if part.docstring:
        first = part.docstring.strip().split("\n\n", 1)[0]
        return f'<p class="from-doc">{html.escape(" ".join(first.split()))}</p>'
    if part.kind == "statements":
        return (
            "<p>Module-level statements: they run once per execution environment, during the init phase, "
            "and every warm invocation reuses what they built.</p>"
        )
    label = "class" if part.kind == "class" else "function"
    return f"<p>The {label} <code>{html.escape(part.names[0])}</code>.</p>"


STEP = re.compile(r"^(\d+)\. (.+?)(?::|$)", re.MULTILINE)


def docstring_steps(text: str) -> list[tuple[str, str]]:
    """(number, name) of each numbered step the module docstring lists as its reading order."""
    doc = ast.get_docstring(ast.parse(text)) or ""
    return [(number, name.strip()) for number, name in STEP.findall(doc)]


def render_walkthrough(text: str, notes: dict[str, str], used: set[str]) -> str:
    lines = text.splitlines()
    preamble, sections = split_source(text)

    def note_for(keys: list[str]) -> str | None:
        for key in keys:
            if key in notes:
                used.add(key)
                return notes[key]
        return None

    out = []
    if preamble:
        out.append('<div class="walk-part" id="walk-preamble">')
        out.append(f'<h4>Header <span class="lines">lines {preamble.start}–{preamble.end}</span></h4>')
        out.append(note_for(["preamble"]) or "<p>The module docstring and imports.</p>")
        out.append(f"<pre><code>{_code_block(lines, preamble.start, preamble.end)}</code></pre>")
        out.append("</div>")
    for section in sections:
        heading = f"{section.number}. {section.title}" if section.number else section.title
        out.append(f'<h3 id="walk-{section.key}">{html.escape(heading)}</h3>')
        if section.detail:
            out.append(f'<p class="banner">{html.escape(section.detail)}</p>')
        out.append(note_for([f"section:{section.key}"]) or "")
        if not section.parts:
            raise SystemExit(f"build_docs.py: banner {heading!r} in lambda_function.py has no code under it")
        for part in section.parts:
            anchor = re.sub(r"[^a-z0-9]+", "-", part.names[0].lower()).strip("-") if part.names else "part"
            label = part.names[0] if part.kind in ("def", "class") else ", ".join(part.names[:3]) or "statements"
            if part.kind == "statements" and len(part.names) > 3:
                label += ", …"
            out.append(f'<div class="walk-part" id="walk-{section.key}-{anchor}">')
            out.append(
                f'<h4><code>{html.escape(label)}</code> <span class="lines">lines {part.start}–{part.end}</span></h4>'
            )
            out.append(note_for(part.names) or _generic_note(part))
            out.append(f"<pre><code>{_code_block(lines, part.start, part.end)}</code></pre>")
            out.append("</div>")
    return "\n".join(line for line in out if line)


def _env_name(node: ast.AST) -> str | None:
    """The variable name if ``node`` is ``os.environ.get("NAME", ...)`` or ``*_setting("NAME", ...)``."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    first = node.args[0]
    if not (isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.isupper()):
        return None
    func = node.func
    if isinstance(func, ast.Name) and func.id.endswith("_setting"):
        return first.value
    if (
        isinstance(func, ast.Attribute)
        and func.attr == "get"
        and isinstance(func.value, ast.Attribute)
        and func.value.attr == "environ"
    ):
        return first.value
    return None


def _arith(node: ast.AST) -> int | float | None:
    """Value of a constant arithmetic expression such as ``8 * 1024 * 1024``, else None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return node.value
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mult | ast.Add | ast.Pow):
        left, right = _arith(node.left), _arith(node.right)
        if left is None or right is None:
            return None
        if isinstance(node.op, ast.Mult):
            return left * right
        if isinstance(node.op, ast.Add):
            return left + right
        return left**right if abs(right) < 64 else None
    return None


def _show(value: ast.AST | None) -> str:
    number = _arith(value) if value is not None and not isinstance(value, ast.Constant) else None
    if number is not None:
        return f"{number:,}"
    if isinstance(value, ast.Constant):
        if value.value in ("", None):
            return "unset"
        return repr(value.value) if isinstance(value.value, str) else str(value.value)
    return "computed" if value is not None else "unset"


def config_settings(text: str) -> list[tuple[str, str]]:
    """(variable, default) for every setting the module reads, sorted by name.

    ``os.environ.get("X", "").strip() or "fallback"`` reports the fallback, and
    ``_int_setting("X", 900, ...)`` reports 900.
    """
    tree = ast.parse(text)
    found: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.Or):
            fallback = node.values[-1]
            for value in node.values[:-1]:
                for sub in ast.walk(value):
                    name = _env_name(sub)
                    if name and isinstance(fallback, ast.Constant):
                        found.setdefault(name, _show(fallback))
    for node in ast.walk(tree):
        name = _env_name(node)
        if name and name not in found:
            found[name] = _show(node.args[1] if len(node.args) > 1 else None)  # type: ignore[attr-defined]
    return sorted(found.items())


def render_config(text: str) -> str:
    rows = [
        f'<tr><td><code>{html.escape(name)}</code></td><td class="num">{html.escape(default)}</td></tr>'
        for name, default in config_settings(text)
    ]
    return (
        '<table class="tbl"><thead><tr><th>variable read at import</th><th>default in the code</th></tr></thead>'
        f"<tbody>\n{chr(10).join(rows)}\n</tbody></table>"
    )


def tracked_files() -> list[str]:
    git = shutil.which("git")
    if git is None:
        raise SystemExit("build_docs.py: git is needed to list the repository's files")
    done = subprocess.run([git, "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, encoding="utf-8")
    if done.returncode != 0:
        raise SystemExit(f"build_docs.py: `git ls-files` failed ({done.stderr.strip()}); run it inside the git clone")
    return sorted(path for path in done.stdout.split("\0") if path and (ROOT / path).exists())


def render_tree(files: list[str], notes: dict[str, str]) -> str:
    tree: dict[str, Any] = {}
    for path in files:
        node = tree
        for piece in path.split("/"):
            node = node.setdefault(piece, {})

    def label(name: str, path: str, is_dir: bool) -> str:
        text = f'<span class="t-dir">{html.escape(name)}/</span>' if is_dir else html.escape(name)
        note = notes.get(path + ("/" if is_dir else ""))
        return text + (f' <span class="t-note">— {note}</span>' if note else "")

    out = ['<span class="t-root">lambda_local_runner/</span>']

    def walk(node: dict[str, Any], prefix: str, base: str) -> None:
        names = sorted(node, key=lambda n: (not node[n], n.lower()))
        # A .dot next to its rendered .svg is one line: "x.dot → .svg".
        stems = {n[:-4] for n in names if n.endswith(".dot")}
        names = [n for n in names if not (n.endswith(".svg") and n[:-4] in stems)]
        for i, name in enumerate(names):
            last = i == len(names) - 1
            path = base + name
            is_dir = bool(node[name])
            shown = label(name, path, is_dir)
            if name.endswith(".dot") and name[:-4] + ".svg" in node:
                shown = f"{html.escape(name)} → .svg" + (
                    f' <span class="t-note">— {notes[path]}</span>' if path in notes else ""
                )
            out.append(f"{prefix}{'└── ' if last else '├── '}{shown}")
            if is_dir:
                walk(node[name], prefix + ("    " if last else "│   "), path + "/")

    walk(tree, "", "")
    return '<pre class="repo-tree">' + "\n".join(out) + "</pre>"


def render_timeline() -> str:
    if not TIMELINE.exists():
        return "<p>No measurement yet: run <code>make timeline</code>.</p>"
    data = json.loads(TIMELINE.read_text(encoding="utf-8"))

    def ms(value: float | None) -> str:
        return "—" if value is None else f"{value:,.0f} ms"

    rows = []
    for i, run in enumerate(data["runs"], 1):
        kind = "cold" if run.get("init_ms") is not None else "warm"
        rows.append(
            f'<tr><td>#{i} {kind}</td><td class="num">{ms(run.get("init_ms"))}</td>'
            f'<td class="num">{ms(run["duration_ms"])}</td><td class="num">{ms(run.get("billed_ms"))}</td>'
            f'<td class="num">{run.get("max_memory_mb") or "—"} MB</td></tr>'
        )
    return (
        '<table class="tbl"><thead><tr><th>invocation</th><th>init</th><th>handler</th><th>billed</th>'
        "<th>max memory</th></tr></thead><tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>\n"
        + f'<p class="small">Source: {html.escape(data["method"])}; {data["pdfs"]} PDFs on the embedded S3, '
        f"Python {html.escape(data['python'])} on this machine's {html.escape(data['machine'])} CPU. "
        "These are local timings, not Lambda's: Lambda runs Python 3.13 and gives a function CPU in proportion "
        "to its memory, so compare cold with warm here, not these milliseconds with AWS. "
        "Regenerate with <code>make timeline</code>.</p>"
    )


# What each plot of `make bench` shows, in the order the page lists them (HTML).
BENCH_CAPTIONS = {
    "docs/graphs/bench-scan-throughput.svg": (
        "Keys per second against the number of keys under the prefix",
        "Both axes are logarithmic. <i>build_manifest</i> is the handler's whole job (list, presign, write, "
        "upload); the two <i>bare LIST</i> lines only page through the listing, with stock aiobotocore and with "
        "the handler's tuned client, so the gap between them and the handler is what presigning and writing cost; "
        "the <i>naive baseline</i> is the obvious script: list everything into memory, presign each key with "
        "botocore, write the whole file, upload it in one go.",
    ),
    "docs/graphs/bench-scan-rss.svg": (
        "Peak memory (RSS, MiB) against the number of keys",
        "The bounded queue and the streamed upload keep the handler's line flat as the prefix grows: memory does "
        "not depend on how many PDFs there are.",
    ),
    "docs/graphs/bench-scan-tmp.svg": (
        "Peak /tmp use (MiB) against the number of keys",
        "The manifest passes through /tmp one part at a time (<code>MANIFEST_PART_BYTES</code>), so /tmp use "
        "stops growing at a couple of parts however large the manifest gets.",
    ),
}
BENCH_COMMON = (
    "A cross (the plot's “x = capped by time”) marks a run stopped by the benchmark's time cap "
    "(<code>BENCH_TIME_CAP</code>, 60 s by default) before it finished: it shows the rate reached by then. "
    "Measured by <code>make bench</code> on this machine against a local S3 stand-in: this CPU is not "
    "Lambda's, whose CPU grows with memory, so compare the lines with each other, not the numbers with AWS."
)


def render_bench(files: list[str]) -> str:
    plots = [path for path in files if re.fullmatch(r"docs/graphs/bench-[^/]+\.svg", path)]
    plots.sort(
        key=lambda path: (list(BENCH_CAPTIONS).index(path) if path in BENCH_CAPTIONS else len(BENCH_CAPTIONS), path)
    )
    if not plots:
        return (
            '<p class="small">No benchmark plots are checked in yet; once <code>make bench</code> has written '
            "<code>docs/graphs/bench-*.svg</code> and they are committed, <code>make docs</code> lists them here.</p>"
        )
    items = []
    for path in plots:
        rel = path.removeprefix("docs/")
        name = Path(path).stem.removeprefix("bench-").replace("-", " ").replace("_", " ")
        title, caption = BENCH_CAPTIONS.get(path, (f"Benchmark: {name}", ""))
        items.append(
            f'<figure class="graph chart"><a href="viewer.html?src={rel}" title="open full screen">'
            f'<img src="{rel}" alt="{html.escape(title)}"></a>'
            f"<figcaption><b>{html.escape(title)}.</b> {caption} {BENCH_COMMON} "
            f"(<code>{html.escape(path)}</code>)</figcaption></figure>"
        )
    return "\n".join(items)


# ---------------------------------------------------------------------------
# Splicing into index.html
# ---------------------------------------------------------------------------


def splice(page: str, region: str, content: str) -> str:
    pattern = re.compile(rf"(<!-- {region}:start -->)(.*?)(<!-- {region}:end -->)", re.DOTALL)
    if not pattern.search(page):
        raise SystemExit(f"build_docs.py: docs/index.html has no <!-- {region}:start/end --> markers")
    return pattern.sub(lambda m: f"{m.group(1)}\n{content}\n{m.group(3)}", page, count=1)


def build(page: str, warn: Callable[[str], None] = lambda _msg: None) -> str:
    notes_file = tomllib.loads(NOTES.read_text(encoding="utf-8"))
    notes: dict[str, str] = notes_file.get("walkthrough", {})
    source = SOURCE.read_text(encoding="utf-8")
    files = tracked_files()
    used: set[str] = set()
    page = splice(page, "walkthrough", render_walkthrough(source, notes, used))
    page = splice(page, "config", render_config(source))
    page = splice(page, "tree", render_tree(files, notes_file.get("tree", {})))
    page = splice(page, "timeline", render_timeline())
    page = splice(page, "bench", render_bench(files))
    stale = sorted(set(notes) - used)
    if stale:
        warn(f"build_docs.py: notes for parts that no longer exist were left out: {', '.join(stale)}")
    return page


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Regenerate the generated regions of docs/index.html (walkthrough of lambda_function.py, "
        "repository tree, configuration table, measured figures, benchmark plots)."
    )
    parser.add_argument("--check", action="store_true", help="only report (exit 1) if the page is out of date")
    args = parser.parse_args(argv)
    current = INDEX.read_text(encoding="utf-8")
    fresh = build(current, warn=lambda msg: print(msg, file=sys.stderr))
    if args.check:
        if fresh != current:
            print("docs/index.html is out of date with the repository: run `make docs`", file=sys.stderr)
            return 1
        return 0
    if fresh != current:
        INDEX.write_text(fresh, encoding="utf-8")
        print("updated docs/index.html")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
