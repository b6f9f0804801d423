"""Summarise the parallel-listing benchmarks: tables, a bar chart, the Lambda memory estimate.

Reads what ``make bench-listing`` and ``make bench-10m`` wrote (scan_bench.py
JSON) and prints Markdown tables: every 1M scan side by side with the
sequential LIST and s5cmd of the same layout and latency, and the 10M run
against Lambda's limits (900 s, the memory and /tmp sizes). It also draws
``listing-1m-bars.svg`` next to the JSON.

The memory estimate: Lambda gives a function CPU in proportion to its memory,
one vCPU at 1,769 MB; the handler is one Python thread, so it can use at most
one. With ``cpu`` seconds of CPU measured and ``wall`` seconds of wall time
with a whole core, a function with ``m`` MB takes about
``wall + cpu * (1769 / m - 1)`` (the CPU part stretches, the waits do not);
the smallest ``m`` that keeps this under 900 s minus the deadline margin is
reported. It assumes a Lambda vCPU is as fast as one core of this machine.

    python bench/listing_report.py [--dir bench/results/listing]
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from testkit.latency_model import parse

ROOT = Path(__file__).resolve().parent.parent
LISTING_DIR = ROOT / "bench" / "results" / "listing"  # where make bench-listing / bench-10m write
ONE_VCPU_MB = 1769
LAMBDA_TIMEOUT_S = 900
DEADLINE_MARGIN_S = 1.5
MODES = ("list", "s5cmd", "handler")
NAMES = {"list": "sequential LIST", "s5cmd": "s5cmd ls + presign", "handler": "handler (parallel)"}


def smallest_memory_mb(cpu_s: float, wall_s: float) -> int | None:
    """Smallest Lambda memory (MB) at which ``wall + cpu * (1769 / m - 1)`` fits the timeout."""
    budget = LAMBDA_TIMEOUT_S - DEADLINE_MARGIN_S - wall_s + cpu_s
    if budget <= 0:
        return None
    return max(128, math.ceil(ONE_VCPU_MB * cpu_s / budget))


def _load(path: Path) -> dict[str, Any] | None:
    return json.loads(path.read_text()) if path.exists() else None


def _seconds(row: dict[str, Any]) -> str:
    if row["completed"]:
        return f"{row['seconds']:.1f} s"
    return f"capped; ~{row['keys'] / row['keys_per_second']:.0f} s at its rate"


def table_1m(report: dict[str, Any]) -> list[str]:
    rows = report["rows"]
    lines = [
        "| layout | latency | sequential LIST | s5cmd ls + presign | handler | handler / LIST | handler / s5cmd "
        "| handler CPU µs/PDF | handler peak RSS / /tmp |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for layout in dict.fromkeys(r["layout"] for r in rows):
        for latency in dict.fromkeys(r["latency"] for r in rows):
            by_mode = {r["mode"]: r for r in rows if r["layout"] == layout and r["latency"] == latency}
            handler = by_mode.get("handler")
            if not handler:
                continue
            label = "zero" if latency == "off" else "model"
            lines.append(
                f"| {layout} | {label} | "
                + " | ".join(_seconds(by_mode[m]) if m in by_mode else "–" for m in MODES)
                + f" | **{handler.get('vs_bare_list', '–')}×** | {handler.get('vs_s5cmd', '–')}× "
                f"| {handler.get('cpu_us_per_pdf', '–')} "
                f"| {handler['peak_rss_bytes'] / 2**20:.0f} MiB / {handler['peak_tmp_bytes'] / 2**20:.1f} MiB |"
            )
    return lines


def table_10m(report: dict[str, Any]) -> list[str]:
    lines = []
    for row in report["rows"]:
        if row["mode"] != "handler":
            continue
        model = row.get("latency_model", "the latency model")
        if row["completed"]:
            cpu = row["cpu_seconds"]
            waits = math.ceil(row["keys"] / 1000) * parse(row["latency"]).list_s
            memory = smallest_memory_mb(cpu, row["seconds"])
            lines += [
                f"- {row['keys']:,} keys ({row['count']:,} PDFs) in **{row['seconds']:.0f} s** at "
                f"{model} (limit 900 s), manifest {row.get('manifest_bytes', 0) / 1e9:.1f} GB in "
                f"{row.get('manifest_parts', '?')} parts;",
                f"- peak RSS **{row['peak_rss_bytes'] / 2**20:.0f} MiB** (target ≤ 256), peak /tmp "
                f"**{row['peak_tmp_bytes'] / 2**20:.1f} MiB** (target ≤ 512);",
                f"- a sequential LIST waits at least {waits:.0f} s "
                "on its pages alone (1,000 keys a page, one after another: arithmetic, not run);",
                f"- CPU {cpu:.0f} s, **{row['cpu_us_per_pdf']:.1f} µs per PDF**; smallest Lambda memory that fits "
                f"10M in 900 s on these figures: **{memory or 'none'} MB**"
                + (f" ({memory / ONE_VCPU_MB:.2f} vCPU)." if memory else "."),
            ]
        else:
            rate = row["keys_per_second"]
            lines.append(
                f"- {model}: capped at {row['capped_at_seconds']:.0f} s after ~{row['keys_reached']:,} keys "
                f"({rate:,.0f} keys/s): 10M would take ~{row['keys'] / rate:.0f} s at that rate."
            )
    return lines


def bars(report: dict[str, Any], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "listing-report"
    import matplotlib.pyplot as plt

    rows = report["rows"]
    groups = [
        (layout, latency)
        for layout in dict.fromkeys(r["layout"] for r in rows)
        for latency in dict.fromkeys(r["latency"] for r in rows)
    ]
    fig, ax = plt.subplots(figsize=(8, 4.4))
    width = 0.8 / len(MODES)
    for i, mode in enumerate(MODES):
        values = []
        for layout, latency in groups:
            match = [r for r in rows if (r["layout"], r["latency"], r["mode"]) == (layout, latency, mode)]
            row = match[0] if match else None
            values.append(
                0
                if row is None
                else (row["seconds"] if row["completed"] else row["keys"] / max(1.0, row.get("keys_per_second", 1)))
            )
        xs = [g + (i - 1) * width for g in range(len(groups))]
        drawn = ax.bar(xs, values, width, label=NAMES[mode])
        ax.bar_label(drawn, fmt="%.0f", fontsize=7)
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{layout}\n{'zero latency' if lat == 'off' else 'latency model'}" for layout, lat in groups])
    ax.set_ylabel("seconds for 1M keys (900k PDFs)")
    ax.set_title("1M keys: parallel listing vs sequential LIST and s5cmd (one run)")
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    return path


def scaling(one_m: dict[str, Any], ten_m: dict[str, Any], path: Path) -> Path:
    """Seconds vs keys under the latency model (flat): the handler measured at 1M and 10M, the
    sequential LIST and s5cmd measured at 1M and drawn on to 10M in proportion (dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "listing-report"
    import matplotlib.pyplot as plt

    def row(report: dict[str, Any], mode: str) -> dict[str, Any] | None:
        found = [
            r
            for r in report["rows"]
            if r["mode"] == mode and r["layout"] == "flat" and r["latency"] == "published" and r["completed"]
        ]
        return found[0] if found else None

    fig, ax = plt.subplots(figsize=(7, 4.4))
    for mode, color in (("list", "tab:blue"), ("s5cmd", "tab:orange")):
        base = row(one_m, mode)
        if base:
            ax.plot([base["keys"]], [base["seconds"]], "o", color=color, label=f"{NAMES[mode]} (measured)")
            ax.plot(
                [base["keys"], 10 * base["keys"]],
                [base["seconds"], 10 * base["seconds"]],
                "--",
                color=color,
                label=f"{NAMES[mode]} (x10 in proportion)",
            )
    points = [r for r in (row(one_m, "handler"), row(ten_m, "handler")) if r]
    xs, ys = [r["keys"] for r in points], [r["seconds"] for r in points]
    ax.plot(xs, ys, "o-", color="tab:green", label=NAMES["handler"])
    for r in points:
        ax.annotate(f"{r['seconds']:.0f} s", (r["keys"], r["seconds"]), textcoords="offset points", xytext=(6, -12))
    ax.axhline(LAMBDA_TIMEOUT_S, color="grey", linestyle=":", linewidth=1)
    ax.text(1.05e6, LAMBDA_TIMEOUT_S * 1.05, "Lambda's 900 s limit", fontsize=8, color="grey")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("keys under the prefix (flat layout, 10 % non-PDF)")
    ax.set_ylabel("seconds under the latency model")
    ax.set_title("One invocation: parallel listing vs sequential listing (0.3 s per LIST page)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=LISTING_DIR, help="where the JSON is (default: %(default)s)")
    args = parser.parse_args(argv)
    one_m = _load(args.dir / "listing-1m.json")
    ten_m = _load(args.dir / "listing-10m.json")
    if one_m is None and ten_m is None:
        raise SystemExit(f"no listing-1m.json or listing-10m.json in {args.dir}: run make bench-listing / bench-10m")
    if one_m is not None:
        print(f"1M keys ({one_m['when']}, load average {one_m['machine']['load_average'][0]:.1f}):\n")
        print("\n".join(table_1m(one_m)))
        print(f"\n{bars(one_m, args.dir / 'listing-1m-bars.svg')}\n")
    if ten_m is not None:
        print(f"10M keys ({ten_m['when']}):\n")
        print("\n".join(table_10m(ten_m)))
    if one_m is not None and ten_m is not None:
        print(f"\n{scaling(one_m, ten_m, args.dir / 'listing-scaling.svg')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
