"""Concurrent invocations through the local Invoke API (``invoke.py serve``) against one S3 endpoint.

What it proves:

* every result is correct: each invocation scans its own prefix and its
  manifest holds exactly that prefix's PDFs, under a manifest key no other
  invocation used;
* no /tmp name collisions: the server runs with ``--tmp shared``, so every
  environment writes into one directory (the harder case; per-environment /tmp
  would hide collisions), which must be empty afterwards;
* the serving process's memory stays bounded (psutil RSS before, peak, after);
* the server still answers afterwards.

It reports throughput and latency percentiles for a cold wave (every
environment starts) and a warm wave (every environment is reused).

    python -m reliability.load_run --concurrency 50
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from local_dev.embedded_s3 import DUMMY_CREDENTIALS, embedded_s3
from local_dev.venv_guard import ensure_project_python
from local_runtime.config import ACCOUNT_ID  # moto's default account too

ROOT = Path(__file__).resolve().parent.parent

FUNCTION = "pdf-manifest"
SERVER_START_S = 60.0
INVOKE_TIMEOUT_S = 180.0
RSS_GROWTH_LIMIT_MB = 64.0  # the serving process itself: HTTP threads and the pool, not the environments


class LoadError(RuntimeError):
    """The load run could not be set up (server did not start, and so on)."""


@dataclass
class Call:
    prefix: str
    seconds: float
    ok: bool
    error: str = ""
    manifest_key: str = ""


@dataclass
class Wave:
    name: str
    calls: list[Call]
    seconds: float

    def percentile(self, q: float) -> float:
        values = sorted(c.seconds for c in self.calls)
        if not values:
            return 0.0
        rank = min(len(values) - 1, max(0, math.ceil(q / 100 * len(values)) - 1))  # nearest rank
        return values[rank]

    @property
    def throughput(self) -> float:
        return len(self.calls) / self.seconds if self.seconds else 0.0


@dataclass
class LoadReport:
    concurrency: int
    keys_per_prefix: int
    waves: list[Wave] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    rss_before_mb: float = 0.0
    rss_peak_mb: float = 0.0
    rss_after_mb: float = 0.0
    tree_peak_mb: float = 0.0
    tmp_names_seen: int = 0
    answers_after: bool = False

    @property
    def clean(self) -> bool:
        return not self.problems and self.answers_after and all(c.ok for w in self.waves for c in w.calls)

    def table(self) -> str:
        rows = [
            ("concurrent invocations", f"{self.concurrency} per wave, {self.keys_per_prefix} PDFs per prefix"),
        ]
        for wave in self.waves:
            good = sum(c.ok for c in wave.calls)
            rows.append(
                (
                    f"{wave.name} wave",
                    f"{good}/{len(wave.calls)} correct, {wave.throughput:.1f} inv/s, "
                    f"p50 {wave.percentile(50):.2f} s, p90 {wave.percentile(90):.2f} s, "
                    f"p99 {wave.percentile(99):.2f} s, max {wave.percentile(100):.2f} s",
                )
            )
        rows += [
            (
                "serving process RSS",
                f"{self.rss_before_mb:.0f} MB before, {self.rss_peak_mb:.0f} MB peak, {self.rss_after_mb:.0f} MB after",
            ),
            ("server + environments peak RSS", f"{self.tree_peak_mb:.0f} MB"),
            (
                "shared /tmp",
                f"{self.tmp_names_seen} distinct manifest files seen, none left",
            ),
            ("answers afterwards", "yes" if self.answers_after else "NO"),
            ("problems", "; ".join(self.problems[:5]) or "none"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = ["| " + "measure".ljust(width) + " | value |", "|" + "-" * (width + 2) + "|-------|"]
        lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
        return "\n".join(lines)


@contextlib.contextmanager
def invoke_server(env: dict[str, str], concurrency: int, log_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """Start ``invoke.py serve --port 0`` and yield the process and its URL; stop it (SIGTERM, then kill) after."""
    command = [
        sys.executable,
        str(ROOT / "invoke.py"),
        "serve",
        "--port",
        "0",
        "--max-concurrency",
        str(concurrency),
        "--tmp",
        "shared",
        "--timeout",
        "120",
        "--env-file",
        os.devnull,
        "--function-name",
        FUNCTION,
    ]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=log, text=True, start_new_session=True
        )
        try:
            url = _read_url(process)
            yield process, url
        finally:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)  # its own session: only what we started
                    process.wait(timeout=10)
            if process.stdout:
                process.stdout.close()


def _read_url(process: subprocess.Popen[str]) -> str:
    """The first stdout line names the URL; read it with a deadline so a broken server cannot hang the run."""
    found: list[str] = []

    def reader() -> None:
        assert process.stdout is not None
        line = process.stdout.readline()
        found.append(line)

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    thread.join(SERVER_START_S)
    line = found[0] if found else ""
    for word in line.split():
        if word.startswith("http://"):
            return word.rstrip("/")
    raise LoadError(f"invoke.py serve did not print its URL within {SERVER_START_S:.0f} s (got {line!r})")


class _Sampler(threading.Thread):
    """Polls RSS of the server (and its environments) and the names in the shared /tmp."""

    def __init__(self, pid: int, tmp_dir: Path) -> None:
        super().__init__(daemon=True, name="load-sampler")
        import psutil

        self._process = psutil.Process(pid)
        self._tmp_dir = tmp_dir
        self._halt = threading.Event()
        self.peak_mb = 0.0
        self.tree_peak_mb = 0.0
        self.names: set[str] = set()

    def rss_mb(self) -> float:
        return self._process.memory_info().rss / 1e6

    def run(self) -> None:
        import psutil

        while not self._halt.wait(0.1):
            with contextlib.suppress(psutil.Error):
                own = self.rss_mb()
                tree = own
                for child in self._process.children(recursive=True):
                    with contextlib.suppress(psutil.Error):
                        tree += child.memory_info().rss / 1e6
                self.peak_mb = max(self.peak_mb, own)
                self.tree_peak_mb = max(self.tree_peak_mb, tree)
            with contextlib.suppress(OSError):
                self.names.update(p.name for p in self._tmp_dir.iterdir())

    def stop(self) -> None:
        self._halt.set()
        self.join(timeout=5)


def _fill(bucket: str, prefixes: list[str], keys_per_prefix: int) -> dict[str, set[str]]:
    """Fill moto's backend directly: thousands of objects in well under a second."""
    from moto.s3.models import s3_backends

    backend = s3_backends[ACCOUNT_ID]["aws"]
    expected: dict[str, set[str]] = {}
    for prefix in prefixes:
        keys = {f"{prefix}doc-{i:04d}.pdf" for i in range(keys_per_prefix)}
        for key in keys:
            backend.put_object(bucket, key, b"%PDF-1.4 load")
        backend.put_object(bucket, f"{prefix}skip-me.txt", b"not a pdf")
        expected[prefix] = keys
    return expected


def _invoke(client: Any, s3: Any, bucket: str, prefix: str, expected: set[str]) -> Call:
    started = time.monotonic()
    try:
        response = client.invoke(FunctionName=FUNCTION, Payload=json.dumps({"prefix": prefix}).encode())
        payload = json.loads(response["Payload"].read())
    except Exception as exc:  # noqa: BLE001 - any failure of the call is a failed result, reported
        return Call(prefix, time.monotonic() - started, False, f"{type(exc).__name__}: {exc}")
    seconds = time.monotonic() - started
    if response.get("FunctionError") or payload.get("statusCode") != 200:
        return Call(prefix, seconds, False, f"function error: {json.dumps(payload)[:200]}")
    body = json.loads(payload["body"])
    key = body["manifest_key"]
    text = s3.get_object(Bucket=bucket, Key=key)["Body"].read().decode("utf-8")
    keys = [json.loads(line)["key"] for line in text.split("\n") if line]
    if len(keys) != len(set(keys)) or set(keys) != expected or body["count"] != len(expected):
        return Call(prefix, seconds, False, f"{key}: {len(keys)} lines, {len(set(keys) ^ expected)} differ", key)
    return Call(prefix, seconds, True, manifest_key=key)


def run_load(*, concurrency: int = 50, keys_per_prefix: int = 300, waves: int = 2, out: Any = None) -> LoadReport:
    """Start moto and the Invoke API server, run ``waves`` waves of ``concurrency`` invocations, check everything."""
    import boto3
    from botocore.config import Config

    out = out or sys.stdout
    report = LoadReport(concurrency, keys_per_prefix)
    for name, value in DUMMY_CREDENTIALS.items():
        os.environ.setdefault(name, value)
    with embedded_s3() as endpoint, tempfile.TemporaryDirectory(prefix="load-") as work:
        tmp_dir = Path(work) / "shared-tmp"
        tmp_dir.mkdir()
        bucket = f"load-{uuid.uuid4().hex[:12]}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            config=Config(s3={"addressing_style": "path"}, max_pool_connections=concurrency + 4),
        )
        s3.create_bucket(Bucket=bucket)
        prefixes = [f"load/{n:03d}/" for n in range(concurrency)]
        expected = _fill(bucket, prefixes, keys_per_prefix)
        env = {
            **os.environ,
            **DUMMY_CREDENTIALS,
            "S3_ENDPOINT_URL": endpoint,
            "BUCKET_NAME": bucket,
            "PREFIX": prefixes[0],
            "TMPDIR": str(tmp_dir),
            "POWERTOOLS_LOG_LEVEL": "WARNING",
        }
        log_path = Path(work) / "serve.log"
        with invoke_server(env, concurrency, log_path) as (process, url):
            sampler = _Sampler(process.pid, tmp_dir)
            report.rss_before_mb = sampler.rss_mb()
            sampler.start()
            client = boto3.client(
                "lambda",
                endpoint_url=url,
                region_name="us-east-1",
                config=Config(
                    read_timeout=INVOKE_TIMEOUT_S,
                    connect_timeout=10,
                    retries={"max_attempts": 1},  # a 429 or a reset must show, not be retried away
                    max_pool_connections=concurrency + 4,
                ),
            )
            with ThreadPoolExecutor(max_workers=concurrency) as pool:
                for number in range(waves):
                    name = "cold" if number == 0 else f"warm {number}" if waves > 2 else "warm"
                    started = time.monotonic()
                    futures = [pool.submit(_invoke, client, s3, bucket, p, expected[p]) for p in prefixes]
                    calls = [f.result(timeout=INVOKE_TIMEOUT_S + 30) for f in futures]
                    wave = Wave(name, calls, time.monotonic() - started)
                    report.waves.append(wave)
                    print(
                        f"{name} wave: {sum(c.ok for c in calls)}/{len(calls)} correct in {wave.seconds:.1f} s",
                        file=out,
                        flush=True,
                    )
                    for call in calls:
                        if not call.ok:
                            report.problems.append(f"{call.prefix}: {call.error}")
            keys = [c.manifest_key for w in report.waves for c in w.calls if c.manifest_key]
            duplicates = [k for k, n in collections.Counter(keys).items() if n > 1]
            if duplicates:
                report.problems.append(f"manifest keys reused: {duplicates[:3]}")
            after = _invoke(client, s3, bucket, prefixes[0], expected[prefixes[0]])
            report.answers_after = after.ok
            if not after.ok:
                report.problems.append(f"after the load: {after.error}")
            sampler.stop()
            report.rss_peak_mb = sampler.peak_mb
            report.tree_peak_mb = sampler.tree_peak_mb
            report.rss_after_mb = sampler.rss_mb()
            manifest_files = {n for n in sampler.names if n.startswith("manifest-")}
            report.tmp_names_seen = len(manifest_files)
            left = sorted(p.name for p in tmp_dir.iterdir())
            if left:
                report.problems.append(f"shared /tmp not empty afterwards: {left[:5]}")
            growth = report.rss_after_mb - report.rss_before_mb
            if growth > RSS_GROWTH_LIMIT_MB:
                report.problems.append(f"serving process grew {growth:.0f} MB (limit {RSS_GROWTH_LIMIT_MB:.0f})")
        if report.problems:
            log_tail = log_path.read_text(errors="replace")[-3000:]
            print(f"--- invoke.py serve log (tail) ---\n{log_tail}", file=out)
    return report


def main(argv: list[str] | None = None) -> int:
    ensure_project_python("reliability.load_run")  # the fault and load runs need the handler's packages
    parser = argparse.ArgumentParser(
        prog="python -m reliability.load_run",
        description="Concurrent invocations through invoke.py serve against one embedded S3.",
        epilog="Exit status: 0 when every result is correct and the server is healthy afterwards; 1 otherwise.",
    )
    parser.add_argument("--concurrency", type=int, default=50, help="invocations at once (default: %(default)s)")
    parser.add_argument("--keys", type=int, default=300, help="PDFs per prefix (default: %(default)s)")
    parser.add_argument("--waves", type=int, default=2, help="waves: 1 cold, then warm (default: %(default)s)")
    args = parser.parse_args(argv)
    if not 1 <= args.concurrency <= 200 or not 0 <= args.keys <= 5000 or not 1 <= args.waves <= 10:
        parser.error("--concurrency must be 1..200, --keys 0..5000, --waves 1..10")
    try:
        report = run_load(concurrency=args.concurrency, keys_per_prefix=args.keys, waves=args.waves)
    except LoadError as exc:
        print(f"load_run: {exc}", file=sys.stderr)
        return 1
    print(report.table(), flush=True)
    return 0 if report.clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
