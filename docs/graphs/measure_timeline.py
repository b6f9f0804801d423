"""Measure one cold and two warm invocations and draw them as docs/graphs/cold_warm_timeline.dot.

    .venv/bin/python docs/graphs/measure_timeline.py      # or: make timeline

What runs: an embedded S3 (moto) on loopback, seeded with 10 PDFs by seed.py,
then ``invoke.py --repeat 3``: one process, so the first invocation pays the
init phase and the next two find the module already loaded. The figures come
from the Lambda-style ``REPORT`` lines invoke.py prints on stderr.

If this invoke.py cannot repeat or prints no REPORT lines, the script falls back
to timing the same thing itself in a child process (import time as "init",
handler wall time as "duration") and says so in the JSON and on the graph.

Writes cold_warm_timeline.json (the numbers, read by docs/build_docs.py) and
cold_warm_timeline.dot (rendered to .svg by ``make graphs``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

GRAPHS = Path(__file__).resolve().parent
ROOT = GRAPHS.parent.parent
REPEAT = 3
BUCKET = "timeline-bucket"
PREFIX = "2026/04/"
PDF_COUNT = 10

REPORT_FIELDS = {
    "Duration": "duration_ms",
    "Billed Duration": "billed_ms",
    "Memory Size": "memory_mb",
    "Max Memory Used": "max_memory_mb",
    "Init Duration": "init_ms",
}


def function_python(env: dict[str, str]) -> str:
    """The interpreter invoke.py ran the function under: Lambda's Python 3.13, through awslambdaric."""
    finder = [sys.executable, "-m", "local_runtime.lambda_python"]
    found = subprocess.run(finder, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True)
    version = [found.stdout.strip(), "-c", "import platform; print(platform.python_version())"]
    done = subprocess.run(version, capture_output=True, text=True, timeout=60, check=True)
    return f"{done.stdout.strip()} under awslambdaric"


def parse_report_lines(text: str) -> list[dict[str, Any]]:
    """Pull the figures out of every ``REPORT RequestId: ...`` line, in order.

    Fields are tab-separated ``Name: value unit`` pairs; their order is not
    relied on (the emulator prints Init Duration first, production last).
    """
    runs = []
    for line in text.splitlines():
        if not line.startswith("REPORT RequestId:"):
            continue
        run: dict[str, Any] = {}
        for part in line.split("\t"):
            name, _, value = part.partition(":")
            name = name.strip()
            if name == "REPORT RequestId":
                run["request_id"] = value.strip()
            elif name in REPORT_FIELDS:
                number = re.match(r"\s*([0-9.]+)", value)
                if number:
                    run[REPORT_FIELDS[name]] = float(number.group(1))
        if "duration_ms" in run:
            run.setdefault("init_ms", None)
            runs.append(run)
    return runs


def _child_fallback(repeat: int) -> None:
    """Run inside a fresh interpreter: time the import, then each handler call."""
    import resource

    from testkit.lambda_context import make_context

    started = time.perf_counter()
    import lambda_function

    init_ms = (time.perf_counter() - started) * 1000
    runs = []
    for i in range(repeat):
        context = make_context(
            function_name="pdf-manifest", memory_mb=512, timeout_s=30, region="us-east-1", log_stream_name="local"
        )
        t0 = time.perf_counter()
        lambda_function.handler({}, context)
        duration = (time.perf_counter() - t0) * 1000
        max_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        runs.append(
            {
                "request_id": context.aws_request_id,
                "duration_ms": round(duration, 2),
                "billed_ms": None,
                "memory_mb": 512.0,
                "max_memory_mb": round(max_rss_mb),
                "init_ms": round(init_ms, 2) if i == 0 else None,
            }
        )
    print(json.dumps(runs))


def measure() -> dict[str, Any]:
    from local_dev.embedded_s3 import DUMMY_CREDENTIALS, embedded_s3

    with embedded_s3() as endpoint:
        env = {
            **os.environ,
            **DUMMY_CREDENTIALS,
            "AWS_REGION": DUMMY_CREDENTIALS["AWS_DEFAULT_REGION"],
            "S3_ENDPOINT_URL": endpoint,
            "BUCKET_NAME": BUCKET,
            "PREFIX": PREFIX,
            "LOG_LEVEL": "WARNING",
        }
        env.pop("S3_PUBLIC_ENDPOINT_URL", None)
        seed = [sys.executable, "seed.py", "--count", str(PDF_COUNT), "-q", "--env-file", "/dev/null"]
        subprocess.run(seed, cwd=ROOT, env=env, check=True, capture_output=True, timeout=120)

        invoke = [sys.executable, "invoke.py", "--repeat", str(REPEAT), "--env-file", "/dev/null", "--timeout", "30"]
        done = subprocess.run(invoke, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        runs = parse_report_lines(done.stderr) if done.returncode == 0 else []
        method = "invoke.py --repeat 3: REPORT lines"
        if len(runs) < 2 or runs[0].get("init_ms") is None:
            child = [sys.executable, str(Path(__file__).resolve()), "--child", str(REPEAT)]
            done = subprocess.run(child, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=True)
            runs = json.loads(done.stdout.strip().splitlines()[-1])
            method = "fallback: import time and handler wall time timed in a child process (no REPORT lines)"
    return {
        "method": method,
        "pdfs": PDF_COUNT,
        "python": function_python(env) if method.startswith("invoke.py") else platform.python_version(),
        "machine": platform.machine(),
        "runs": runs,
    }


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f} ms"


def timeline_dot(data: dict[str, Any]) -> str:
    """A to-scale timeline: one row per invocation, init in amber, handler in green.

    The axis runs to the first tick at or past the longest bar, the summary of each
    run sits under its bar (so the figure stays narrow and its text large), and the
    legend draws its own swatches.
    """
    runs = data["runs"]
    longest = max((run.get("init_ms") or 0) + run["duration_ms"] for run in runs) or 1.0
    ticks = _ticks(longest)
    inches_per_ms = 6.4 / ticks[-1]
    row_gap = 1.05
    lines = [
        "// Generated by docs/graphs/measure_timeline.py from measured invocations: do not edit by hand.",
        "digraph cold_warm_timeline {",
        '  graph [layout=neato, bgcolor="#0b1020", pad=0.3, fontname="Helvetica,Arial,sans-serif",',
        '         fontcolor="#e6e9f2", fontsize=17, labelloc=t,',
        '         label="Cold vs warm invocations, measured on this machine (not Lambda)"];',
        '  node [shape=box, style=filled, fixedsize=true, height=0.36, fontname="Helvetica,Arial,sans-serif",',
        '        fontsize=14, fontcolor="#e6e9f2", penwidth=1.2];',
        '  edge [color="#8fa0c8", arrowhead=none];',
    ]
    x0 = 1.3
    for index, run in enumerate(runs):
        y = -index * row_gap
        kind = "cold" if run.get("init_ms") is not None else "warm"
        lines.append(
            f'  label{index} [shape=plaintext, style="", width=1.1, pos="{x0 - 0.65:.3f},{y:.3f}!", '
            f'label="#{index + 1} {kind}"];'
        )
        x = x0
        if run.get("init_ms"):
            width = max(run["init_ms"] * inches_per_ms, 0.02)
            lines.append(
                f'  init{index} [label="", width={width:.3f}, pos="{x + width / 2:.3f},{y:.3f}!", '
                f'fillcolor="#5c4813", color="#fab005", tooltip="init {_ms(run["init_ms"])}"];'
            )
            x += width
        width = max(run["duration_ms"] * inches_per_ms, 0.02)
        lines.append(
            f'  run{index} [label="", width={width:.3f}, pos="{x + width / 2:.3f},{y:.3f}!", '
            f'fillcolor="#1f4d2a", color="#40c057", tooltip="handler {_ms(run["duration_ms"])}"];'
        )
        if run.get("init_ms") is not None:
            summary = f"init {_ms(run['init_ms'])} + handler {_ms(run['duration_ms'])}"
        else:
            summary = f"handler {_ms(run['duration_ms'])}, no init: module already loaded"
        if run.get("billed_ms") is not None:
            summary += f" · billed {_ms(run['billed_ms'])}"
        lines.append(
            f'  text{index} [shape=plaintext, style="", width=6.4, pos="{x0 + 3.2:.3f},{y - 0.38:.3f}!", '
            f'fontcolor="#b8c2dc", label="{summary}\\l"];'
        )
    axis_y = -len(runs) * row_gap + 0.35
    for i, tick in enumerate(ticks):
        tx = x0 + tick * inches_per_ms
        lines.append(
            f'  tick{i} [shape=plaintext, style="", width=1.0, fontsize=14, fontcolor="#b8c2dc", '
            f'pos="{tx:.3f},{axis_y - 0.25:.3f}!", label="{tick:,.0f} ms"];'
        )
        lines.append(f'  mark{i} [shape=point, width=0.06, color="#8fa0c8", pos="{tx:.3f},{axis_y:.3f}!"];')
    lines.append("  " + " -> ".join(f"mark{i}" for i in range(len(ticks))) + ";")
    legend_y = axis_y - 0.75
    lines += [
        f'  key_init [label="", width=0.45, height=0.26, pos="{x0 + 0.225:.3f},{legend_y:.3f}!", '
        'fillcolor="#5c4813", color="#fab005"];',
        f'  key_init_text [shape=plaintext, style="", width=2.6, pos="{x0 + 1.85:.3f},{legend_y:.3f}!", '
        'label="init: module import, once\\l"];',
        f'  key_run [label="", width=0.45, height=0.26, pos="{x0 + 3.4:.3f},{legend_y:.3f}!", '
        'fillcolor="#1f4d2a", color="#40c057"];',
        f'  key_run_text [shape=plaintext, style="", width=2.4, pos="{x0 + 4.9:.3f},{legend_y:.3f}!", '
        'label="handler, every request\\l"];',
        f'  source [shape=plaintext, style="", width=6.6, height=0.9, fontcolor="#b8c2dc", '
        f'pos="{x0 + 3.3:.3f},{legend_y - 0.75:.3f}!", label="{data["pdfs"]} PDFs on an embedded S3, Python '
        f"{data['python']}, this machine's {data['machine']} CPU:\\l"
        "Lambda gives CPU in proportion to memory, so its times differ.\\l"
        f'source: {data["method"]}\\l"];',
    ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _ticks(longest: float) -> list[float]:
    """Round ticks from 0 to the first one at or beyond ``longest``, so no bar runs past the axis."""
    for step in (10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000):
        if longest / step <= 6:
            break
    count = -(-int(longest) // step)  # ceiling division
    if step * count < longest:
        count += 1
    return [float(step * i) for i in range(max(count, 1) + 1)]


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        _child_fallback(int(argv[1]))
        return 0
    parser = argparse.ArgumentParser(
        description="Measure a cold and two warm invocations (invoke.py --repeat 3 on an embedded S3) and "
        "rewrite docs/graphs/cold_warm_timeline.json and .dot; `make timeline` also renders and rebuilds the page.",
    )
    parser.add_argument(
        "--redraw", action="store_true", help="measure nothing: redraw the .dot from the existing .json"
    )
    args = parser.parse_args(argv)
    if args.redraw:
        data = json.loads((GRAPHS / "cold_warm_timeline.json").read_text(encoding="utf-8"))
        (GRAPHS / "cold_warm_timeline.dot").write_text(timeline_dot(data), encoding="utf-8")
        return 0
    data = measure()
    (GRAPHS / "cold_warm_timeline.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    (GRAPHS / "cold_warm_timeline.dot").write_text(timeline_dot(data), encoding="utf-8")
    print(f"measured ({data['method']}):", file=sys.stderr)
    for run in data["runs"]:
        print(f"  init {_ms(run.get('init_ms'))}  handler {_ms(run['duration_ms'])}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
