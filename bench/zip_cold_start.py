"""Cold start of the deploy zip: Init Duration under the local runtime beside two floors, same run.

Median and p90 of 20 of each kind, taken in turn (the order rotates every
round) so that a machine that gets busier during the run slows all alike:

* **Init Duration** of the unpacked x86_64 zip (tools/package.py: 3.13 bytecode
  beside every module) run by awslambdaric on Python 3.13 through the local
  runtime, read from the REPORT line of a first invocation that the handler
  rejects without touching S3 (a bucket outside ALLOWED_BUCKETS);
* a bare ``python3.13 -c pass``, the floor of any Python cold start;
* ``python3.13 -c "import lambda_function"`` from the task root with the
  environment the function gets (its variables, Lambda's reserved ones,
  PYTHONPATH), timed by the parent from spawn to exit; the import alone, as
  timed inside the process, is recorded beside it;
* the first S3 client the handler opens (``_s3_client``), timed inside a
  process that imported it: what a cold start's first invocation adds.

``--baseline OTHER.zip`` (another build, e.g. before a change) adds its Init,
import and first client to the same rounds. Then ``python3.13 -X importtime -c
"import lambda_function"`` (median of a few runs per module) gives the imports
that cost most.

    python bench/zip_cold_start.py [--zip dist/function-x86_64.zip] [--baseline OLD.zip] [--runs 20]

Writes bench/out/zip_cold_start.json; with RECORD=1, the committed bench/results/zip_cold_start.json.
``make bench-cold-start`` builds the zip first.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.output import results_path, write_report
from bench.sandbox_bench import cold_start
from local_runtime.config import FunctionConfig, new_log_stream_name, process_environment
from local_runtime.lambda_python import LambdaPythonError, check_runtime_installed, find_interpreter

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ZIP = ROOT / "dist" / "function-x86_64.zip"
HANDLER = "lambda_function.handler"
# What template.yaml gives the function (BucketName, Prefix, LogLevel at their defaults), JSON logs included.
FUNCTION_ENV = {
    "BUCKET_NAME": "my-company-reports-bucket",
    "ALLOWED_BUCKETS": "my-company-reports-bucket",
    "PREFIX": "2026/04/",
    "URL_EXPIRY_SECONDS": "900",
    "POWERTOOLS_SERVICE_NAME": "pdf-manifest",
    "POWERTOOLS_METRICS_NAMESPACE": "PdfManifest",
    "POWERTOOLS_LOG_LEVEL": "INFO",
}
MEMORY_MB = 512  # template.yaml's MemorySize default
# Answered without S3: parse_event refuses a bucket outside ALLOWED_BUCKETS with a 400.
PAYLOAD = b'{"bucket": "not-an-allowed-bucket"}'
_IMPORT = (
    "import time\n"
    "started = time.perf_counter()\n"
    "import lambda_function\n"
    "print((time.perf_counter() - started) * 1000)\n"
)
# What the first invocation pays for its S3 client (the handler opens one per job), the import untimed.
_FIRST_CLIENT = (
    "import asyncio, time\n"
    "import lambda_function\n"
    "async def first_client():\n"
    "    async with lambda_function._s3_client(lambda_function.S3_ENDPOINT_URL):\n"
    "        pass\n"
    "started = time.perf_counter()\n"
    "asyncio.run(first_client())\n"
    "print((time.perf_counter() - started) * 1000)\n"
)
_TEXT_INIT = re.compile(r"\tInit Duration: (\d+(?:\.\d+)?) ms")
_IMPORTTIME = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)\s*$")


def report_init_ms(log: str) -> float | None:
    """Init Duration from the REPORT line in a log, text or JSON (``platform.report``); None without one."""
    for line in reversed(log.splitlines()):
        if line.startswith("REPORT RequestId: "):
            found = _TEXT_INIT.search(line)
            return float(found.group(1)) if found else None
        if line.startswith("{") and '"platform.report"' in line:
            record = json.loads(line).get("record", {})
            value = record.get("metrics", {}).get("initDurationMs")
            return float(value) if value is not None else None
    return None


@dataclass(frozen=True)
class ImportTime:
    """One line of ``-X importtime``: microseconds in the module itself and with what it imported."""

    module: str
    depth: int  # 0: imported by the script itself
    self_us: int
    cumulative_us: int


def parse_importtime(stderr: str) -> list[ImportTime]:
    """The ``import time:`` lines of a ``python -X importtime`` run, in the order printed (children first)."""
    rows = []
    for line in stderr.splitlines():
        found = _IMPORTTIME.match(line)
        if found:
            self_us, cumulative_us, indent, module = found.groups()
            rows.append(ImportTime(module, (len(indent) - 1) // 2, int(self_us), int(cumulative_us)))
    return rows


def handler_subtree(rows: list[ImportTime], root: str = "lambda_function") -> list[ImportTime]:
    """What importing ``root`` (at depth 0) loaded itself: its row and those printed just before it.

    importtime prints a module after what it imported, so the subtree runs back to the previous
    top-level row; what the interpreter imported before (site, encodings) is the bare floor's.
    """
    for index, row in enumerate(rows):
        if row.module == root and row.depth == 0:
            start = index
            while start > 0 and rows[start - 1].depth > 0:
                start -= 1
            return rows[start : index + 1]
    return []


def _largest_child_us(rows: list[ImportTime]) -> dict[int, int]:
    """For each row (by index), the cumulative time of its costliest direct import (0 for a leaf)."""
    largest: dict[int, int] = {}
    open_children: dict[int, int] = {}  # depth -> largest cumulative among rows waiting for their parent
    for index, row in enumerate(rows):
        largest[index] = open_children.pop(row.depth + 1, 0)
        for depth in [d for d in open_children if d > row.depth + 1]:
            del open_children[depth]
        open_children[row.depth] = max(open_children.get(row.depth, 0), row.cumulative_us)
    return largest


def importtime_summary(runs: list[list[ImportTime]], top: int) -> dict[str, list[dict[str, Any]]]:
    """Median per module over the runs, within lambda_function's subtree.

    ``top``: by cumulative time, leaving out a module whose own cost is nearly all one import's
    (``aioboto3`` is ``aioboto3.session``), so a chain of wrappers shows once, at its costliest
    real step. ``self``: by time in the module's own code. ``direct``: what lambda_function
    imports first under its own name (a module another import loaded first is counted there).
    """
    by_module: dict[str, list[tuple[ImportTime, int]]] = {}
    for rows in runs:
        subtree = handler_subtree(rows)
        largest = _largest_child_us(subtree)
        for index, row in enumerate(subtree):
            by_module.setdefault(row.module, []).append((row, largest[index]))

    def summary(module: str) -> dict[str, Any]:
        rows = by_module[module]
        return {
            "module": module,
            "depth": rows[0][0].depth,
            "cumulative_ms": round(statistics.median(r.cumulative_us for r, _ in rows) / 1000, 2),
            "self_ms": round(statistics.median(r.self_us for r, _ in rows) / 1000, 2),
            "largest_import_ms": round(statistics.median(child for _, child in rows) / 1000, 2),
        }

    everything = sorted((summary(module) for module in by_module), key=lambda row: -row["cumulative_ms"])
    real_steps = [row for row in everything if row["largest_import_ms"] < 0.9 * row["cumulative_ms"]]
    return {
        "top": real_steps[:top],
        "self": sorted(everything, key=lambda row: -row["self_ms"])[:top],
        "direct": [row for row in everything if row["depth"] == 1][:top],
    }


def spawn_ms(argv: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, str]:
    """Wall time from spawn to exit of one process, and its stdout; a failed run raises."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    elapsed = (time.perf_counter() - started) * 1000
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:3])} failed in {cwd}:\n{done.stderr[-2000:]}")
    return elapsed, done.stdout


def _stats(samples: list[float]) -> dict[str, float]:
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p90_ms": round(statistics.quantiles(samples, n=10, method="inclusive")[-1], 2),
        "min_ms": round(min(samples), 2),
        "max_ms": round(max(samples), 2),
    }


def _unpack(zip_path: Path, tree: Path) -> None:
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        if "__pycache__/lambda_function.cpython-313.pyc" not in names:
            raise SystemExit(f"zip_cold_start: {zip_path} carries no 3.13 bytecode; build it with tools/package.py")
        archive.extractall(tree)


@dataclass(frozen=True)
class Function:
    """One unpacked zip, as the runtime and the plain interpreter see it."""

    label: str  # "" for the zip under test, "baseline." for --baseline
    config: FunctionConfig
    env: dict[str, str]  # what the function's process gets: its variables, the reserved ones, PYTHONPATH

    @classmethod
    def unpacked(cls, zip_path: Path, scratch: Path, label: str, sandbox: str) -> Function:
        tree, tmp = scratch / f"{label}task", scratch / f"{label}tmp"
        tmp.mkdir()
        _unpack(zip_path, tree)
        config = FunctionConfig(
            name="pdf-manifest",
            handler=HANDLER,
            task_root=tree,
            layers=(),  # the zip brings its dependencies
            memory_mb=MEMORY_MB,
            env=FUNCTION_ENV,
            log_format="json",
            clean_env=True,
            sandbox=sandbox,
        )
        return cls(label, config, process_environment(config, new_log_stream_name(), str(tmp)))

    def measures(self, python: str, inside: dict[str, list[float]]) -> dict[str, Callable[[], float]]:
        """One sample of each kind, in ms; what a process times itself goes to ``inside`` too."""
        tree = self.config.task_root

        def init() -> float:
            invocation = cold_start(self.config, PAYLOAD)
            init_ms = report_init_ms(invocation.log)
            if init_ms is None or b'"statusCode": 400' not in invocation.payload:
                raise RuntimeError(f"no cold start with a 400 answer: {invocation.payload[:300]!r}\n{invocation.log}")
            return init_ms

        def imported() -> float:
            elapsed, stdout = spawn_ms([python, "-c", _IMPORT], tree, self.env)
            inside.setdefault(f"{self.label}import_inside_process", []).append(float(stdout.strip().splitlines()[-1]))
            return elapsed

        def first_client() -> float:
            return float(spawn_ms([python, "-c", _FIRST_CLIENT], tree, self.env)[1].strip().splitlines()[-1])

        return {
            f"{self.label}init": init,
            f"{self.label}import_lambda_function": imported,
            f"{self.label}first_client": first_client,
        }


LABELS = {
    "init": "Init Duration, local runtime (awslambdaric)",
    "import_lambda_function": 'python3.13 -c "import lambda_function"',
    "import_inside_process": "  of which the import itself (in-process)",
    "first_client": "first S3 client, after the import (in-process)",
    "bare_python": "python3.13 -c pass",
}


def table(rows: dict[str, dict[str, float]], runs: int, zip_name: str, load: float, baseline: str | None) -> str:
    floor = rows["bare_python"]["median_ms"]
    against = f" against {baseline} (baseline)" if baseline else ""
    lines = [f"cold start of {zip_name}{against}, median of {runs} each, interleaved (load average {load:.2f}):"]
    header = f"  {'':<47} {'median':>9} {'p90':>9} {'÷ bare':>7}"
    if baseline:
        header += f"   {'baseline':>10}  {'change':>9}"
    lines.append(header)
    for name, label in LABELS.items():
        row = rows[name]
        line = f"  {label:<47} {row['median_ms']:7.1f}ms {row['p90_ms']:7.1f}ms {row['median_ms'] / floor:6.2f}x"
        if baseline and f"baseline.{name}" in rows:
            before = rows[f"baseline.{name}"]["median_ms"]
            line += f"   {before:10.1f}ms  {row['median_ms'] - before:+7.1f}ms"
        lines.append(line)
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python bench/zip_cold_start.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--zip", type=Path, default=DEFAULT_ZIP, help="the deploy zip (default: %(default)s)")
    parser.add_argument(
        "--baseline", type=Path, help="another build of the zip (before a change), measured in the same rounds"
    )
    parser.add_argument("--runs", type=int, default=20, help="cold starts of each kind (default: %(default)s)")
    parser.add_argument(
        "--importtime-runs", type=int, default=5, help="-X importtime runs, median per module (default: %(default)s)"
    )
    parser.add_argument("--top", type=int, default=10, help="imports to list (default: %(default)s)")
    parser.add_argument(
        "--sandbox",
        choices=("off", "on", "auto"),
        default="off",
        help="Lambda's sandbox for the runtime (default: off, like the two floors; make bench-sandbox measures it)",
    )
    parser.add_argument("--json", type=Path, default=results_path("zip_cold_start.json"), help="default: %(default)s")
    args = parser.parse_args(argv)
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    for path in (args.zip, args.baseline):
        if path is not None and not path.is_file():
            print(f"zip_cold_start: {path} not found; run 'make package' or tools/package.py first", file=sys.stderr)
            return 2
    try:
        python = find_interpreter()
        check_runtime_installed()
    except LambdaPythonError as exc:
        print(f"zip_cold_start: {exc}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="zip-cold-start-") as scratch:
        function = Function.unpacked(args.zip, Path(scratch), "", args.sandbox)
        inside: dict[str, list[float]] = {}
        kinds: dict[str, Callable[[], float]] = {
            "bare_python": lambda: spawn_ms([python, "-c", "pass"], function.config.task_root, function.env)[0],
            **function.measures(python, inside),
        }
        if args.baseline is not None:
            kinds.update(
                Function.unpacked(args.baseline, Path(scratch), "baseline.", args.sandbox).measures(python, inside)
            )
        samples: dict[str, list[float]] = {name: [] for name in kinds}
        for measure in kinds.values():  # warm the page cache for every kind
            measure()
        inside.clear()
        names = list(kinds)
        for run in range(args.runs):
            shift = run % len(names)
            for name in names[shift:] + names[:shift]:
                samples[name].append(kinds[name]())
            shown = ", ".join(f"{name} {values[-1]:.1f}" for name, values in samples.items())
            print(f"  run {run + 1}/{args.runs} (ms): {shown}", file=sys.stderr, flush=True)
        importtime_runs = []
        for run in range(args.importtime_runs):
            done = subprocess.run(
                [python, "-X", "importtime", "-c", "import lambda_function"],
                cwd=function.config.task_root,
                env=function.env,
                capture_output=True,
                text=True,
                check=True,
            )
            importtime_runs.append(parse_importtime(done.stderr))
            print(f"  importtime {run + 1}/{args.importtime_runs}", file=sys.stderr, flush=True)

    rows = {name: _stats(values) for name, values in {**samples, **inside}.items()}
    floor = rows["bare_python"]["median_ms"]
    ratios = {
        "init_over_bare_python": round(rows["init"]["median_ms"] / floor, 2),
        "import_over_bare_python": round(rows["import_lambda_function"]["median_ms"] / floor, 2),
        "init_over_import": round(rows["init"]["median_ms"] / rows["import_lambda_function"]["median_ms"], 2),
    }
    imports = importtime_summary(importtime_runs, args.top)
    load = os.getloadavg()

    print(table(rows, args.runs, args.zip.name, load[0], args.baseline.name if args.baseline else None))
    print(f"under import lambda_function, -X importtime, median of {args.importtime_runs} (wrappers left out):")
    print(f"  {'cumulative':>10} {'self':>8}")
    for row in imports["top"]:
        print(f"  {row['cumulative_ms']:7.1f} ms {row['self_ms']:5.1f} ms  {'  ' * row['depth']}{row['module']}")
    print("by time in the module's own code:")
    for row in imports["self"]:
        print(f"  {row['self_ms']:7.1f} ms  {row['module']}")
    print("lambda_function's own imports, by cumulative time:")
    for row in imports["direct"]:
        print(f"  {row['cumulative_ms']:7.1f} ms  {row['module']}")

    report = {
        "benchmark": "zip_cold_start",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python bench/zip_cold_start.py", *(argv if argv is not None else sys.argv[1:])]),
        "python": python,
        "runner_python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "load_average": load},
        "settings": {
            "zip": args.zip.name,
            "baseline": args.baseline.name if args.baseline else None,
            "runs": args.runs,
            "sandbox": args.sandbox,
            "memory_mb": MEMORY_MB,
            "payload": PAYLOAD.decode(),
        },
        "rows": rows,
        "ratios": ratios,
        "importtime": imports,
    }
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
