"""Cold import of the unpacked zip under Python 3.13, with and without the bytecode it ships.

Lambda's ``/var/task`` is read-only: a zip without ``.pyc`` files is compiled
again in every new execution environment and the result thrown away. This
measures what that costs: the x86_64 zip is unpacked twice, once as built and
once with every ``__pycache__`` removed, and a fresh ``python3.13 -I -S -B``
(no site, never writing bytecode) imports ``lambda_function`` from each, the
two alternating so that machine noise hits both alike. It prints the median
import time of each and their ratio, and checks that neither tree changed.

    python tools/zip_import_time.py [--zip dist/function-x86_64.zip] [--runs 9]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from local_runtime.lambda_python import LambdaPythonError, find_interpreter

ROOT = Path(__file__).resolve().parent.parent

_IMPORT = (
    "import time\n"
    "started = time.perf_counter()\n"
    "import lambda_function\n"
    "print((time.perf_counter() - started) * 1000)\n"
)


def _listing(tree: Path) -> list[str]:
    return sorted(str(path.relative_to(tree)) for path in tree.rglob("*"))


def import_ms(python: str, tree: Path) -> float:
    env = {"PATH": "/usr/bin:/bin", "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1", "TZ": ":UTC"}
    done = subprocess.run(
        # -E -s -S: no PYTHON* variables, no site packages; -c with cwd=tree puts the task root first, as Lambda does
        [python, "-E", "-s", "-S", "-B", "-c", _IMPORT],
        cwd=tree,
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"import from {tree} failed:\n{done.stderr[-2000:]}")
    return float(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python tools/zip_import_time.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--zip", type=Path, default=ROOT / "dist" / "function-x86_64.zip", help="default: %(default)s")
    parser.add_argument("--runs", type=int, default=9, help="imports of each tree, alternating (default: %(default)s)")
    args = parser.parse_args(argv)
    if not args.zip.is_file():
        print(f"zip_import_time: {args.zip} not found; run 'make package' first", file=sys.stderr)
        return 2
    try:
        python = find_interpreter()
    except LambdaPythonError as exc:
        print(f"zip_import_time: {exc}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="zip-import-") as scratch:
        compiled, source_only = Path(scratch) / "with-bytecode", Path(scratch) / "without-bytecode"
        with zipfile.ZipFile(args.zip) as archive:
            archive.extractall(compiled)
            archive.extractall(source_only)
        for cache in sorted(source_only.rglob("__pycache__"), reverse=True):
            shutil.rmtree(cache)
        before = {tree: _listing(tree) for tree in (compiled, source_only)}
        times: dict[Path, list[float]] = {compiled: [], source_only: []}
        import_ms(python, compiled)  # page cache warm for both, so the disk is not what is measured
        import_ms(python, source_only)
        for run in range(args.runs):
            for tree in (compiled, source_only) if run % 2 == 0 else (source_only, compiled):
                times[tree].append(import_ms(python, tree))
            print(f"  run {run + 1}/{args.runs}", file=sys.stderr, flush=True)
        changed = [tree.name for tree in (compiled, source_only) if _listing(tree) != before[tree]]
        if changed:
            print(f"zip_import_time: {', '.join(changed)} changed during the runs", file=sys.stderr)
            return 1
    with_pyc, without_pyc = statistics.median(times[compiled]), statistics.median(times[source_only])
    print(f"cold import of lambda_function from {args.zip.name} under {python} (-I -S -B), median of {args.runs}:")
    print(f"  with the zip's 3.13 bytecode: {with_pyc:7.1f} ms")
    print(f"  source only (no __pycache__): {without_pyc:7.1f} ms")
    print(f"  ratio: {without_pyc / with_pyc:.2f}x slower without bytecode")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
