"""Run the handler under seeded fault schedules and hold every outcome to the rule.

The rule: every invocation ends in exactly one of two states.

* **success**: a 200 whose manifest holds exactly the PDF keys under the
  prefix, each once, each line JSON with ``key`` and ``url``;
* **clean failure**: the error reaches the caller (an exception, as Lambda
  reports it, or a 4xx), no object at the manifest key, no pending multipart
  upload for it, nothing left in the function's /tmp.

Anything else is counted against the run: a **hang** (no answer within the
function timeout plus slack), a **bad manifest** (success with missing,
duplicated or malformed lines), a **dirty failure** (failed but left a
manifest, a pending upload or /tmp files), and **over budget** (finished, but
after the function timeout: on Lambda that is a kill, not a clean failure).

The handler runs exactly as Lambda runs it (``handler(event, context)`` with a
real deadline) on a worker thread; the fault proxy runs on its own loop; moto
runs in-process so buckets fill through its backend in milliseconds.

    python -m reliability.fault_run --schedules 200 --seed 7
    python -m reliability.fault_run --seed 7 --only 42 --verbose   # replay one schedule
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import io
import json
import os
import shutil
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from local_dev.embedded_s3 import DUMMY_CREDENTIALS, embedded_s3
from local_dev.venv_guard import ensure_project_python
from local_runtime.config import ACCOUNT_ID  # moto's default account too
from reliability.fault_proxy import FaultProxy, running_proxy
from reliability.schedules import Schedule, make_schedule
from testkit.cold_import import import_fresh
from testkit.lambda_context import make_context

ROOT = Path(__file__).resolve().parent.parent

DEFAULT_SEED = 20261125
SMALL_PART_BYTES = 64 * 1024  # ~17 parts for 2,500 lines once moto's 5 MiB floor is lifted

# botocore settings under test. One read timeout (1 s) is what a stall costs;
# 3 attempts absorb isolated faults; the worst single call is then about
# 3 x 1 s + up to 2 s + 4 s of backoff, so DEADLINE_MARGIN_MS leaves room for one
# such call after the last deadline check.
HANDLER_ENV = {
    "S3_CONNECT_TIMEOUT_SECONDS": "1",
    "S3_READ_TIMEOUT_SECONDS": "1",
    "S3_MAX_ATTEMPTS": "3",
    "DEADLINE_MARGIN_MS": "10000",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
}
FUNCTION_TIMEOUT_S = 30.0
HANG_SLACK_S = 15.0
# Causes of a dirty failure, counted separately in the table.
TMP_LEAK = "files left in /tmp"
ORPHANED_UPLOAD = "pending multipart upload left"
MANIFEST_AFTER_FAILURE = "manifest object present after a failure"
STATUSES = ("success", "clean-failure", "hang", "bad-manifest", "dirty-failure", "over-budget")


class _Tail(io.TextIOBase):
    """The handler's stdout (log lines, EMF): keep the last few KB for a failing schedule's report."""

    def __init__(self, keep: int = 16_000) -> None:
        self._keep = keep
        self._text = ""
        self._lock = threading.Lock()

    def write(self, text: str) -> int:
        with self._lock:
            self._text = (self._text + text)[-self._keep :]
        return len(text)

    def take(self) -> str:
        with self._lock:
            text, self._text = self._text, ""
        return text


@dataclass
class Outcome:
    schedule: Schedule
    status: str
    seconds: float
    error: str = ""
    faults: collections.Counter[str] = field(default_factory=collections.Counter)
    requests: int = 0
    detail: str = ""
    causes: list[str] = field(default_factory=list)  # for dirty failures: which part of the rule broke

    def line(self) -> str:
        injected = ",".join(f"{name}x{n}" for name, n in sorted(self.faults.items())) or "-"
        error = f" [{self.error}]" if self.error else ""
        return (
            f"#{self.schedule.index:<4} {self.schedule.describe():<58} -> {self.status:<13} "
            f"{self.seconds:6.2f}s {self.requests:3d} req  faults: {injected}{error}"
        )


def load_handler_module(env: dict[str, str]) -> ModuleType:
    """Import a fresh ``lambda_function`` under ``env`` (a cold start), then restore the process env.

    The handler reads its configuration at import, so a fresh module is a fresh
    execution environment; the environment is put back so a pytest worker is
    left as it was found.
    """
    saved = {name: os.environ.get(name) for name in env}
    saved_tempdir = tempfile.tempdir
    try:
        os.environ.update(env)
        tempfile.tempdir = None  # re-read TMPDIR, as a new process would
        return import_fresh("lambda_function_faults")
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        tempfile.tempdir = saved_tempdir


@contextlib.contextmanager
def small_moto_parts() -> Iterator[None]:
    """Let moto accept parts under S3's 5 MiB floor, so multipart runs on a small manifest."""
    import moto.s3.models

    saved = moto.s3.models.S3_UPLOAD_PART_MIN_SIZE
    moto.s3.models.S3_UPLOAD_PART_MIN_SIZE = 1  # type: ignore[misc]
    try:
        yield
    finally:
        moto.s3.models.S3_UPLOAD_PART_MIN_SIZE = saved  # type: ignore[misc]


class FaultHarness:
    """One moto bucket with a multi-page prefix, one proxy, one handler module; many schedules."""

    def __init__(
        self,
        *,
        keys: int = 2500,
        endpoint: str | None = None,
        function_timeout_s: float = FUNCTION_TIMEOUT_S,
        hang_slack_s: float = HANG_SLACK_S,
        work_dir: Path | None = None,
    ) -> None:
        self.keys = keys
        self._endpoint = endpoint
        self.function_timeout_s = function_timeout_s
        self.hang_slack_s = hang_slack_s
        self._work_dir = work_dir
        self._stack = contextlib.ExitStack()
        self.sink = _Tail()
        # run() swaps sys.stdout for the handler's output; harnesses running in
        # parallel threads must not (the caller redirects once for all of them).
        self.redirect = True
        self.bucket = f"faults-{uuid.uuid4().hex[:16]}"
        self.prefix = "scan/"
        self.expected: set[str] = set()
        self.proxy: FaultProxy
        self.module: ModuleType
        self.tmp_dir: Path
        self.direct: Any

    def __enter__(self) -> FaultHarness:
        # What is started before a failure (moto's server thread, the proxy) must be
        # stopped here: __exit__ never runs for a failed __enter__, and a live
        # server thread kept the process from exiting (a failed handler import hung the run).
        try:
            return self._start()
        except BaseException:
            self._stack.close()
            raise

    def _start(self) -> FaultHarness:
        import boto3
        from botocore.config import Config
        from moto.s3.models import s3_backends

        for name, value in DUMMY_CREDENTIALS.items():
            os.environ.setdefault(name, value)
        endpoint = self._endpoint or self._stack.enter_context(embedded_s3())
        self._stack.enter_context(small_moto_parts())
        self.proxy, proxy_url = self._stack.enter_context(running_proxy(endpoint, stall_s=1.6))
        base = self._work_dir or Path(self._stack.enter_context(tempfile.TemporaryDirectory(prefix="faults-")))
        self.tmp_dir = base / "lambda-tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 5})
        self.direct = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", config=config)
        self.direct.create_bucket(Bucket=self.bucket)
        backend = s3_backends[ACCOUNT_ID]["aws"]
        for i in range(self.keys):
            key = f"{self.prefix}doc-{i:05d}" + (".PDF" if i % 7 == 0 else ".pdf")
            backend.put_object(self.bucket, key, b"%PDF-1.4 x")
            self.expected.add(key)
        for i in range(max(1, self.keys // 50)):  # decoys the manifest must skip
            backend.put_object(self.bucket, f"{self.prefix}notes-{i:04d}.txt", b"not a pdf")
        backend.put_object(self.bucket, "scanned-neighbour/doc.pdf", b"%PDF-1.4 outside the prefix")
        env = {
            **HANDLER_ENV,
            "S3_ENDPOINT_URL": proxy_url,
            "BUCKET_NAME": self.bucket,
            "PREFIX": self.prefix,
            "TMPDIR": str(self.tmp_dir),
            "AWS_REGION": "us-east-1",
        }
        with contextlib.redirect_stdout(self.sink):
            self.module = load_handler_module(env)
        return self

    def __exit__(self, *exc: object) -> None:
        self._stack.close()

    def run(self, schedule: Schedule) -> Outcome:
        """One invocation under one schedule, judged against the rule."""
        self.module.MANIFEST_PART_BYTES = SMALL_PART_BYTES if schedule.multipart else 8 * 1024 * 1024
        self.proxy.reset_schedule(schedule.decider())
        context = make_context(
            function_name="pdf-manifest",
            memory_mb=512,
            timeout_s=self.function_timeout_s,
            region="us-east-1",
            log_stream_name="faults",
        )
        box: dict[str, Any] = {}

        def invoke() -> None:
            try:
                box["result"] = self.module.handler({}, context)
            except BaseException as exc:  # noqa: BLE001 - an exception is how Lambda reports failure
                box["error"] = exc

        started = time.monotonic()
        worker = threading.Thread(target=invoke, name=f"invoke-{schedule.index}", daemon=True)
        with contextlib.redirect_stdout(self.sink) if self.redirect else contextlib.nullcontext():
            worker.start()
            worker.join(self.function_timeout_s + self.hang_slack_s)
        seconds = time.monotonic() - started
        log = list(self.proxy.log)
        outcome = Outcome(
            schedule,
            "hang",
            seconds,
            faults=collections.Counter(a.fault.value for _, a in log if a.fault.value != "none"),
            requests=len(log),
        )
        if worker.is_alive():
            outcome.detail = self.sink.take()
            return outcome
        self._judge(outcome, context.aws_request_id, box)
        if outcome.status in ("success", "clean-failure") and seconds > self.function_timeout_s:
            outcome.status = "over-budget"
        if outcome.status not in ("success", "clean-failure"):
            outcome.detail += "\n--- handler output ---\n" + self.sink.take()
        else:
            self.sink.take()
        return outcome

    def _judge(self, outcome: Outcome, request_id: str, box: dict[str, Any]) -> None:
        manifest_key = f"manifests/{request_id}.jsonl"
        leftovers = sorted(p.name for p in self.tmp_dir.iterdir())
        for path in self.tmp_dir.iterdir():  # so one leak is counted once, not in every later schedule
            shutil.rmtree(path) if path.is_dir() else path.unlink()
        pending = [
            u["UploadId"]
            for u in self.direct.list_multipart_uploads(Bucket=self.bucket, Prefix=manifest_key).get("Uploads", [])
        ]
        problems = []
        if leftovers:
            problems.append(f"/tmp not empty: {leftovers}")
            outcome.causes.append(TMP_LEAK)
        if pending:
            problems.append(f"{len(pending)} pending multipart upload(s)")
            outcome.causes.append(ORPHANED_UPLOAD)
            for upload_id in pending:  # tidy up, for the same reason
                self.direct.abort_multipart_upload(Bucket=self.bucket, Key=manifest_key, UploadId=upload_id)
        result = box.get("result")
        if result is not None and result.get("statusCode") == 200:
            body = json.loads(result["body"])
            missing, extra = self._check_manifest(body, manifest_key)
            if missing or extra:
                outcome.status = "bad-manifest"
                outcome.detail = f"manifest {manifest_key}: {missing}; {extra}"
            elif problems:
                outcome.status = "dirty-failure"
                outcome.error = "success, but " + "; ".join(problems)
            else:
                outcome.status = "success"
            return
        if result is not None:
            outcome.error = f"HTTP {result.get('statusCode')}: {str(result.get('body'))[:120]}"
        else:
            exc = box["error"]
            outcome.error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:140] if str(exc) else ''}"
        if self._exists(manifest_key):
            problems.append(f"failed, yet {manifest_key} exists")
            outcome.causes.append(MANIFEST_AFTER_FAILURE)
        if problems:
            outcome.status = "dirty-failure"
            outcome.error += " | " + "; ".join(problems)
        else:
            outcome.status = "clean-failure"

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.direct.head_object(Bucket=self.bucket, Key=key)
        except ClientError:
            return False
        return True

    def _check_manifest(self, body: dict[str, Any], manifest_key: str) -> tuple[str, str]:
        """Read the manifest straight from moto (not through the proxy) and compare it with the bucket."""
        text = self.direct.get_object(Bucket=self.bucket, Key=manifest_key)["Body"].read().decode("utf-8")
        keys: list[str] = []
        malformed = 0
        for line in text.split("\n")[:-1]:  # JSON Lines end with "\n"; only "\n" ends a line
            try:
                entry = json.loads(line)
                ok = isinstance(entry, dict) and isinstance(entry.get("url"), str) and isinstance(entry.get("key"), str)
            except ValueError:
                ok = False
            if not ok:
                malformed += 1
                continue
            if f"/{self.bucket}/" not in entry["url"]:
                malformed += 1
            keys.append(entry["key"])
        seen = collections.Counter(keys)
        duplicates = sorted(k for k, n in seen.items() if n > 1)
        missing = sorted(self.expected - seen.keys())
        unexpected = sorted(seen.keys() - self.expected)
        problems_a = f"{len(missing)} missing {missing[:3]}" if missing else ""
        bits = []
        if duplicates:
            bits.append(f"{len(duplicates)} duplicated {duplicates[:3]}")
        if unexpected:
            bits.append(f"{len(unexpected)} unexpected {unexpected[:3]}")
        if malformed:
            bits.append(f"{malformed} malformed lines")
        if body.get("count") != len(self.expected):
            bits.append(f"count {body.get('count')} != {len(self.expected)}")
        return problems_a, "; ".join(bits)


@dataclass
class Summary:
    outcomes: list[Outcome]
    seconds: float

    def counts(self) -> dict[str, int]:
        counter = collections.Counter(o.status for o in self.outcomes)
        return {status: counter.get(status, 0) for status in STATUSES}

    @property
    def clean(self) -> bool:
        counts = self.counts()
        return all(counts[s] == 0 for s in STATUSES[2:])

    def table(self) -> str:
        counts = self.counts()
        durations = sorted(o.seconds for o in self.outcomes) or [0.0]
        injected = sum(sum(o.faults.values()) for o in self.outcomes)
        requests = sum(o.requests for o in self.outcomes)
        by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        for o in self.outcomes:
            by_kind[o.schedule.kind][o.status] += 1
        rows = [
            ("schedules", len(self.outcomes)),
            ("successes", counts["success"]),
            ("clean failures", counts["clean-failure"]),
            ("hangs", counts["hang"]),
            ("bad manifests", counts["bad-manifest"]),
            ("dirty failures", counts["dirty-failure"]),
            ("over budget", counts["over-budget"]),
            ("S3 requests / faults injected", f"{requests} / {injected}"),
            ("slowest invocation", f"{durations[-1]:.2f} s (budget {FUNCTION_TIMEOUT_S:.0f} s)"),
            ("wall time", f"{self.seconds:.0f} s"),
        ]
        causes = collections.Counter(cause for o in self.outcomes for cause in o.causes)
        rows[6:6] = [(f"  {cause}", n) for cause, n in sorted(causes.items())]
        for kind in ("transient", "burst", "persistent"):
            c = by_kind.get(kind, collections.Counter())
            rows.append((f"  {kind}", f"{sum(c.values())}: {c['success']} ok, {c['clean-failure']} clean failures"))
        width = max(len(name) for name, _ in rows)
        lines = ["| " + "measure".ljust(width) + " | value |", "|" + "-" * (width + 2) + "|-------|"]
        lines += [f"| {name.ljust(width)} | {value} |" for name, value in rows]
        return "\n".join(lines)


def run_schedules(
    seed: int,
    indices: list[int],
    *,
    keys: int = 2500,
    endpoint: str | None = None,
    out: Any = None,
    verbose: bool = False,
    parallel: int = 1,
) -> Summary:
    """Run the given schedules of ``seed``; print one line per schedule to ``out``.

    ``parallel`` harnesses (each its own bucket, proxy, handler module and
    /tmp) run side by side: most of a faulted invocation is retry backoff and
    read timeouts, i.e. sleeping, so this cuts wall time almost linearly.
    """
    out = out or sys.stdout
    started = time.monotonic()
    outcomes: dict[int, Outcome] = {}
    pending = list(reversed(indices))
    lock = threading.Lock()

    def report(outcome: Outcome) -> None:
        with lock:
            outcomes[outcome.schedule.index] = outcome
            print(outcome.line(), file=out, flush=True)
            bad = outcome.status not in ("success", "clean-failure")
            if (bad or verbose) and outcome.detail:
                print(outcome.detail[-4000:], file=out, flush=True)
            if bad:
                replay = f"python -m reliability.fault_run --seed {seed} --only {outcome.schedule.index} --verbose"
                print(f"    replay: {replay}", file=out, flush=True)

    def work(harness: FaultHarness) -> None:
        while True:
            with lock:
                if not pending:
                    return
                index = pending.pop()
            report(harness.run(make_schedule(seed, index)))

    with contextlib.ExitStack() as stack:
        harnesses = [
            stack.enter_context(FaultHarness(keys=keys, endpoint=endpoint))
            for _ in range(max(1, min(parallel, len(indices))))
        ]
        sink = _Tail()
        stack.enter_context(contextlib.redirect_stdout(sink))
        threads = []
        for number, harness in enumerate(harnesses):
            harness.redirect = False
            thread = threading.Thread(target=work, args=(harness,), name=f"harness-{number}", daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
    return Summary([outcomes[i] for i in indices if i in outcomes], time.monotonic() - started)


def main(argv: list[str] | None = None) -> int:
    ensure_project_python("reliability.fault_run")  # the fault and load runs need the handler's packages
    parser = argparse.ArgumentParser(
        prog="python -m reliability.fault_run",
        description="Run the handler through a fault-injecting proxy under seeded schedules.",
        epilog="Exit status: 0 when no hang, bad manifest, dirty failure or over-budget run; 1 otherwise.",
    )
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SEED") or DEFAULT_SEED))
    parser.add_argument("--schedules", type=int, default=200, help="how many schedules (default: %(default)s)")
    parser.add_argument("--only", type=int, action="append", help="run just this schedule index (repeatable)")
    parser.add_argument("--keys", type=int, default=2500, help="PDFs under the prefix (default: %(default)s)")
    parser.add_argument("--verbose", action="store_true", help="print the handler output of every schedule")
    parser.add_argument(
        "--parallel", type=int, default=4, help="harnesses side by side, 1 to 16 (default: %(default)s)"
    )
    parser.add_argument("--summary-json", type=Path, help="also write the counts here")
    args = parser.parse_args(argv)
    if not 1 <= args.schedules <= 10_000 or not 1 <= args.keys <= 100_000 or not 1 <= args.parallel <= 16:
        parser.error("--schedules must be 1..10000, --keys 1..100000 and --parallel 1..16")
    indices = args.only or list(range(args.schedules))
    warnings.filterwarnings("ignore", message="No application metrics to publish")  # Powertools, on failures
    print(
        f"fault run: seed {args.seed}, {len(indices)} schedules, {args.keys} PDFs, "
        f"{args.parallel} in parallel, handler env {HANDLER_ENV}, function timeout {FUNCTION_TIMEOUT_S:.0f} s",
        flush=True,
    )
    summary = run_schedules(args.seed, indices, keys=args.keys, verbose=args.verbose, parallel=args.parallel)
    print(f"\nseed {args.seed}\n{summary.table()}", flush=True)
    if args.summary_json:
        args.summary_json.write_text(json.dumps({"seed": args.seed, **summary.counts()}) + "\n")
    return 0 if summary.clean else 1


if __name__ == "__main__":
    raise SystemExit(main())
