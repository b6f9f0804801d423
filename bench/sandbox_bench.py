"""What Lambda's sandbox costs a cold start: median of 20 cold starts with it on and off, same run.

A cold start here is Init Duration (spawning the runtime, in bubblewrap's
namespaces or not, until awslambdaric's first ``/next``) plus the Duration of a
trivial first invocation (tests/fixtures/sandbox_probe, ``paths``). The two
settings alternate, one cold start each in turn, so a machine that gets busier
during the run slows both alike. The target is at most 20 ms added; it is a
figure to watch, not a timed test.

    python bench/sandbox_bench.py [--runs 20] [--json FILE]

Writes bench/out/sandbox.json; with RECORD=1, the committed bench/results/sandbox.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.output import results_path, write_report
from local_runtime import sandbox
from local_runtime.config import FunctionConfig
from local_runtime.environment import ExecutionEnvironment, Invocation

ROOT = Path(__file__).resolve().parent.parent

PROBE = ROOT / "tests" / "fixtures" / "sandbox_probe"


def cold_start(config: FunctionConfig, payload: bytes) -> Invocation:
    """One invocation of a new execution environment, which is then shut down: its logs only in the result."""
    environment = ExecutionEnvironment(config, lambda line: None)
    try:
        return environment.invoke(payload)
    finally:
        environment.shutdown()


def cold_start_ms(mode: str) -> tuple[float, float]:
    """(init, init + duration) of one cold start, in ms."""
    config = FunctionConfig(name="probe", handler="probe.handler", task_root=PROBE, layers=(), sandbox=mode)
    invocation = cold_start(config, b'{"action": "paths"}')
    if invocation.function_error:
        raise RuntimeError(f"the probe failed with sandbox {mode}: {invocation.payload[:200]!r}")
    init = invocation.report.init_duration_ms or 0.0
    return init, init + invocation.report.duration_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="cold starts per setting (default 20)")
    parser.add_argument("--json", type=Path, default=results_path("sandbox.json"), help="default: %(default)s")
    args = parser.parse_args(argv)
    if sandbox.support().bwrap is None:
        print(f"sandbox_bench: no sandbox here: {sandbox.support().reason}", file=sys.stderr)
        return 2
    samples: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    cold_start_ms("on")  # first run warms the page cache for both
    for _ in range(args.runs):
        for mode in ("on", "off"):
            samples[mode].append(cold_start_ms(mode))
    rows: dict[str, Any] = {}
    for mode, runs in samples.items():
        rows[mode] = {
            "init_ms_median": round(statistics.median(init for init, _ in runs), 2),
            "cold_start_ms_median": round(statistics.median(total for _, total in runs), 2),
            "cold_start_ms_min": round(min(total for _, total in runs), 2),
            "cold_start_ms_max": round(max(total for _, total in runs), 2),
        }
    added = round(rows["on"]["cold_start_ms_median"] - rows["off"]["cold_start_ms_median"], 2)
    print(f"cold start (init + a trivial first invocation), median of {args.runs} each, alternating:")
    for mode, row in rows.items():
        print(
            f"  sandbox {mode:<3}  median {row['cold_start_ms_median']:8.2f} ms  (init {row['init_ms_median']:.2f} ms;"
            f" min {row['cold_start_ms_min']:.2f}, max {row['cold_start_ms_max']:.2f})"
        )
    print(f"  the sandbox adds {added:.2f} ms per cold start (target: at most 20 ms)")
    report = {
        "benchmark": "sandbox",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "bwrap": sandbox.support().bwrap,
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "settings": {"runs": args.runs, "handler": "tests/fixtures/sandbox_probe probe.handler, action paths"},
        "rows": rows,
        "added_ms": added,
    }
    write_report(args.json, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
