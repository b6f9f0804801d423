"""Render docs/graphs/*.dot to .svg with Graphviz, stamping each SVG with its source's hash.

The stamp (``<!-- dot-source-sha256: ... -->``) lets a test tell whether an SVG
is stale without needing the same Graphviz version as whoever rendered it.

    python docs/graphs/render.py            # every .dot in this folder
    python docs/graphs/render.py a.dot ...  # just these
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

GRAPHS = Path(__file__).resolve().parent
STAMP_PREFIX = "<!-- dot-source-sha256: "


def source_hash(dot_path: Path) -> str:
    return hashlib.sha256(dot_path.read_bytes()).hexdigest()


def stamped_hash(svg_path: Path) -> str | None:
    """The source hash recorded in an SVG, or None when it carries no stamp."""
    for line in svg_path.read_text(encoding="utf-8").splitlines()[:12]:
        if line.startswith(STAMP_PREFIX):
            return line[len(STAMP_PREFIX) :].split(" ", 1)[0]
    return None


def render(dot_path: Path, dot_binary: str) -> Path:
    done = subprocess.run([dot_binary, "-Tsvg", str(dot_path)], capture_output=True, text=True, encoding="utf-8")
    if done.returncode != 0:
        raise SystemExit(f"render.py: dot failed on {dot_path.name}: {done.stderr.strip()}")
    svg = done.stdout
    # Keep the XML declaration first; the stamp goes right after it.
    head, _, rest = svg.partition("\n")
    if not head.startswith("<?xml"):
        head, rest = "", svg
    stamp = f"{STAMP_PREFIX}{source_hash(dot_path)} ({dot_path.name}) -->"
    out = dot_path.with_suffix(".svg")
    out.write_text("\n".join(part for part in (head, stamp, rest) if part), encoding="utf-8")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Render docs/graphs/*.dot (or the given .dot files) to .svg with Graphviz, "
        "stamping each SVG with the hash of its source so staleness is testable."
    )
    parser.add_argument("dot_files", nargs="*", help="the .dot files to render (default: every one in docs/graphs/)")
    args = parser.parse_args(argv)
    dot_binary = shutil.which("dot")
    if dot_binary is None:
        print("render.py: Graphviz 'dot' not found; run `make docs-deps` (apt-get install graphviz)", file=sys.stderr)
        return 2
    targets = [Path(arg).resolve() for arg in args.dot_files] or sorted(GRAPHS.glob("*.dot"))
    missing = [str(path) for path in targets if not path.is_file()]
    if missing:
        print(f"render.py: no such .dot file: {', '.join(missing)}", file=sys.stderr)
        return 2
    for dot_path in targets:
        out = render(dot_path, dot_binary)
        print(f"rendered {out.relative_to(GRAPHS.parent.parent)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
