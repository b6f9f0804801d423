"""The handler's listing against a sequential LIST on real S3 servers, with and without S3's latency.

One table: for each server (moto, versitygw, the generated stand-in), layout (flat, folders of 1,000
keys), size and LIST latency, the handler's time over a bare sequential LIST's
(aiobotocore's paginator) in the same run, the keys the handler received per
key under the prefix (read amplification) and the LIST requests it made.

Each server runs in its own process, seeded with one bucket of ``size`` keys
(every 10th a ``.txt`` decoy, the keys of ``bench/s3_standin.py``): moto
through its backend, versitygw by writing the files into its POSIX root.
Both spend their own CPU on every page (moto sorts the bucket, versitygw's
POSIX backend reads the directory), which real S3 does not; the stand-in
generates its pages in a couple of milliseconds, so under latency it answers
like S3: a page is almost all waiting. It is the only one that reaches 1M
keys in minutes. Latency is added by ``testkit/latency_proxy.py`` in front of
moto and versitygw, and by the stand-in's own latency model (the same rule,
held without CPU, so a 1 GB manifest does not go through a proxy): only LIST
pages wait (``list=<s>,other=0,put_mbps=0``), so the same server is measured
fast and slow. Every run is a fresh child process
(``bench/scan_bench.py --child``), imports excluded from its time.

    python bench/listing_matrix.py        # moto 10k; versitygw and the stand-in 10k and 100k; 0/75/150/300 ms
    python bench/listing_matrix.py --servers standin --sizes 1000000          # the 1M cells, S3-like server
    python bench/listing_matrix.py --sizes 1000000 --servers versitygw --cap 1800
    python bench/listing_matrix.py --report bench/results/listing/matrix*.json   # the recorded runs, one table

Writes ``listing/matrix.json`` under bench/out/ (bench/results/ with RECORD=1).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from bench.output import results_dir, write_report
from bench.s3_standin import GeneratedBucket
from bench.scan_bench import _DROP_ENV, CHILD_ENV, PREFIX, StandInProcess

ROOT = Path(__file__).resolve().parent.parent

SERVERS = ("moto", "versitygw", "standin")
SIZES = (10_000, 100_000, 1_000_000)
LATENCIES_MS = (0, 75, 150, 300)
ACCESS_KEY, SECRET_KEY = "bench-root", "bench-root-secret"  # loopback only
BUCKET = "listing-bench"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError):
            urllib.request.urlopen(url, timeout=1).close()  # noqa: S310 -- loopback
            return
        time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s")


def _keys(count: int, layout: str) -> Iterator[str]:
    bucket = GeneratedBucket(count, PREFIX, 10, layout)
    return (bucket.key(i) for i in range(count))


def serve_moto(count: int, layout: str) -> None:
    """Child: a moto server with the bucket seeded through its backend (no HTTP per key)."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    backend.create_bucket(BUCKET, "us-east-1")
    for key in _keys(count, layout):
        backend.put_object(BUCKET, key, b"%PDF-")
    server = ThreadedMotoServer(port=_free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    print(f"S3_ENDPOINT_URL=http://{host}:{port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        while True:
            time.sleep(3600)


def _versitygw_binary() -> Path:
    override = os.environ.get("VERSITYGW_BIN", "").strip()
    if override:
        return Path(override)
    cache = Path(os.environ.get("XDG_CACHE_HOME", "").strip() or Path.home() / ".cache")
    found = sorted((cache / "lambda-local-runner" / "versitygw").glob("*/versitygw"))
    if not found:
        raise SystemExit("no versitygw binary: run make s3-verifier (or set VERSITYGW_BIN)")
    return found[-1]


@contextlib.contextmanager
def server(name: str, count: int, layout: str) -> Iterator[tuple[str, dict[str, str]]]:
    """Start ``name`` seeded with ``count`` keys; yield its endpoint and the credentials children use.

    The stand-in generates its keys and takes its latency at start, so it starts per latency
    (``slowed``): here it yields no endpoint.
    """
    if name == "standin":
        yield "", {}
        return
    if name == "moto":
        command = [sys.executable, __file__, "--serve-moto", str(count), layout]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        try:
            if not line.startswith("S3_ENDPOINT_URL="):
                raise RuntimeError(f"moto did not start: {line!r}")
            yield line.split("=", 1)[1], {}
        finally:
            process.terminate()
            process.wait(30)
        return
    root = Path(tempfile.mkdtemp(prefix="listing-versitygw-"))
    port = _free_port()
    env = {**os.environ, "ROOT_ACCESS_KEY": ACCESS_KEY, "ROOT_SECRET_KEY": SECRET_KEY}
    command = [str(_versitygw_binary()), "--port", f"127.0.0.1:{port}", "--health", "/health", "--quiet"]
    process = subprocess.Popen(
        [*command, "posix", str(root)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_http(f"{endpoint}/health")
        import boto3

        boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
        ).create_bucket(Bucket=BUCKET)
        made: set[Path] = set()
        for key in _keys(count, layout):  # the POSIX backend lists the files it finds
            path = root / BUCKET / key
            if path.parent not in made:
                path.parent.mkdir(parents=True, exist_ok=True)
                made.add(path.parent)
            path.write_bytes(b"%PDF-")
        yield endpoint, {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
    finally:
        process.terminate()
        process.wait(30)
        shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def latency(upstream: str, ms: int) -> Iterator[str]:
    if ms == 0:
        yield upstream
        return
    spec = f"list={ms / 1000},other=0,put_mbps=0"
    command = [sys.executable, "-m", "testkit.latency_proxy", upstream, spec]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None
    line = process.stdout.readline().strip()
    try:
        if not line.startswith("PROXY_URL="):
            raise RuntimeError(f"the latency proxy did not start: {line!r}")
        yield line.split("=", 1)[1]
    finally:
        process.terminate()
        process.wait(30)


@contextlib.contextmanager
def slowed(name: str, endpoint: str, ms: int, count: int, layout: str) -> Iterator[str]:
    """The endpoint to list through at ``ms`` a LIST page: the proxy, or a stand-in holding pages itself."""
    if name != "standin":
        with latency(endpoint, ms) as url:
            yield url
        return
    spec = f"list={ms / 1000},other=0,put_mbps=0" if ms else "off"
    with StandInProcess({BUCKET: (count, layout)}, latency=spec) as standin:
        yield standin.endpoint


def run_child(
    mode: str, endpoint: str, credentials: dict[str, str], cap: float, profile: Path | None = None
) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env.update(CHILD_ENV)
    if credentials:  # versitygw: its root user, no session token
        env.pop("AWS_SESSION_TOKEN", None)
        env.update(credentials)
    tmp = tempfile.mkdtemp(prefix=f"listing-{mode}-")
    env.update(
        {"TMPDIR": tmp, "S3_ENDPOINT_URL": endpoint, "BUCKET_NAME": BUCKET, "ALLOWED_BUCKETS": BUCKET, "PREFIX": PREFIX}
    )
    command = [sys.executable, str(ROOT / "bench" / "scan_bench.py"), "--child", mode, "--endpoint", endpoint]
    if profile is not None and mode == "handler":  # cProfile slows it: its times are not the table's
        command[1:1] = ["-m", "cProfile", "-o", str(profile)]
    try:
        done = subprocess.run(
            [*command, "--bucket", BUCKET], env=env, cwd=ROOT, capture_output=True, text=True, timeout=cap
        )
    except subprocess.TimeoutExpired:
        return {"error": f"over the {cap:.0f} s cap"}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    load_before = os.getloadavg()
    for name in args.servers:
        for layout in args.layouts:
            for count in args.sizes:
                if name == "moto" and count > args.moto_max:
                    continue  # moto's LIST walks the whole bucket per page: 100k keys take minutes a run
                expected = GeneratedBucket(count, PREFIX, 10, layout).pdf_count
                started = time.perf_counter()
                with server(name, count, layout) as (endpoint, credentials):
                    print(f"{name} {layout} {count:,}: seeded in {time.perf_counter() - started:.0f} s", flush=True)
                    for ms in args.latency_ms:
                        with slowed(name, endpoint, ms, count, layout) as url:
                            for mode in args.modes:
                                result = run_child(mode, url, credentials, args.cap, args.profile)
                                row = {"server": name, "layout": layout, "keys": count, "latency_ms": ms, "mode": mode}
                                row.update(result)
                                row["load_average"] = os.getloadavg()[0]
                                if "count" in result and result["count"] != expected:
                                    row["error"] = f"{result['count']} PDFs, expected {expected}"
                                if "cpu_seconds" in result:
                                    row["cpu_us_per_pdf"] = round(result["cpu_seconds"] * 1e6 / max(1, expected), 2)
                                rows.append(row)
                                print("  " + _describe(row), flush=True)
    return {
        "benchmark": "listing-matrix",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/listing_matrix.py", *sys.argv[1:]]),
        "machine": {"cpus": os.cpu_count(), "load_average_before": load_before, "load_average_after": os.getloadavg()},
        "prefix": PREFIX,
        "rows": rows,
    }


def _describe(row: dict[str, Any]) -> str:
    head = f"{row['mode']:>7} {row['latency_ms']:>3} ms"
    if "error" in row:
        return f"{head}: ERROR {row['error']}"
    extra = ""
    if row["mode"] == "handler":
        extra = (
            f", {row.get('pages')} LISTs, {row.get('keys_received')} keys received, "
            f"{row.get('ranges')} ranges, concurrency {row.get('concurrency')}"
        )
    return f"{head}: {row['seconds']:.2f} s, CPU {row.get('cpu_us_per_pdf', 0):.1f} µs/PDF{extra}"


def table(report: dict[str, Any]) -> list[str]:
    """One line per server, layout and size; one cell per latency: ratio (keys received per key, LISTs)."""
    rows = report["rows"]
    latencies = sorted({r["latency_ms"] for r in rows} | set(LATENCIES_MS))
    lines = [
        "| server | layout | keys | " + " | ".join(f"{ms} ms a page" for ms in latencies) + " |",
        "|---|---|---|" + "---|" * len(latencies),
    ]
    servers = list(dict.fromkeys(r["server"] for r in rows))
    layouts = list(dict.fromkeys(r["layout"] for r in rows))
    for name in servers:
        for layout in layouts:
            for count in SIZES:
                cells = []
                for ms in latencies:
                    found = {
                        r["mode"]: r
                        for r in rows
                        if (r["server"], r["layout"], r["keys"], r["latency_ms"]) == (name, layout, count, ms)
                    }
                    handler, bare = found.get("handler"), found.get("list")
                    if handler is None or bare is None:
                        cells.append("not run")
                    elif "error" in handler or "error" in bare:
                        cells.append("error: " + str(handler.get("error") or bare.get("error")))
                    else:
                        ratio = handler["seconds"] / bare["seconds"]
                        amplification = handler.get("keys_received", 0) / count
                        cells.append(
                            f"**{ratio:.2f}×** ({handler['seconds']:.1f} / {bare['seconds']:.1f} s; "
                            f"{amplification:.2f} keys/key, {handler.get('pages')} LISTs vs {bare.get('pages')})"
                        )
                lines.append(f"| {name} | {layout} | {count:,} | " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--servers", nargs="*", choices=SERVERS, default=list(SERVERS))
    parser.add_argument("--layouts", nargs="*", choices=("flat", "folders"), default=["flat", "folders"])
    parser.add_argument("--sizes", nargs="*", type=int, default=[10_000, 100_000])
    parser.add_argument("--latency-ms", nargs="*", type=int, default=list(LATENCIES_MS))
    parser.add_argument("--modes", nargs="*", choices=("list", "handler"), default=["list", "handler"])
    parser.add_argument("--moto-max", type=int, default=10_000, help="largest size run on moto (default: %(default)s)")
    parser.add_argument("--cap", type=float, default=900.0, help="seconds one run may take")
    parser.add_argument("--json", type=Path, default=results_dir() / "listing" / "matrix.json")
    parser.add_argument("--profile", type=Path, help="run the handler under cProfile, stats to this file")
    parser.add_argument(
        "--report", type=Path, nargs="+", help="print one table of earlier runs (their rows together) and stop"
    )
    parser.add_argument("--serve-moto", nargs=2, metavar=("COUNT", "LAYOUT"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_moto:
        serve_moto(int(args.serve_moto[0]), args.serve_moto[1])
        return 0
    if args.report:
        runs = [json.loads(path.read_text()) for path in args.report]
        report = {**runs[0], "rows": [row for run in runs for row in run["rows"]]}
        for run in runs:
            load = run["machine"]
            print(
                f"{run['when']}: {run['command']} (load average {load['load_average_before'][0]:.1f} before, "
                f"{load['load_average_after'][0]:.1f} after)"
            )
    else:
        report = measure(args)
        write_report(args.json, report)
    machine = report["machine"]
    if args.report:
        print(f"\nhandler ÷ sequential LIST ({machine['cpus']} CPUs):\n")
    else:
        print(
            f"\nhandler ÷ sequential LIST ({report['when']}, {machine['cpus']} CPUs, load average "
            f"{machine['load_average_before'][0]:.1f} before, {machine['load_average_after'][0]:.1f} after):\n"
        )
    print("\n".join(table(report)))
    return 1 if any("error" in r for r in report["rows"]) else 0


if __name__ == "__main__":
    raise SystemExit(main())
