"""Save to first invocation on the new code, with ``invoke.py serve --watch``: median of 10.

A scratch task root holds a one-line handler; ``serve --watch`` runs it. Each
round writes a new value into the handler file, then invokes as fast as it can
until the answer is the new value: the time from the write to that answer is
what a developer waits after saving (the watcher's notice, the retirement of
the warm environment, a cold start on the new code, the invocation).
LocalStack documents about 700 ms for its hot reload.

    .venv/bin/python bench/reload_bench.py            # writes bench/out/reload.json
    RECORD=1 .venv/bin/python bench/reload_bench.py   # writes bench/results/reload.json
"""

from __future__ import annotations

import argparse
import json
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from bench.output import results_path

ROOT = Path(__file__).resolve().parent.parent
HANDLER = "VALUE = {value}\n\n\ndef handler(event, context):\n    return {{'value': VALUE}}\n"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def invoke(session: requests.Session, url: str) -> int:
    answer = session.post(f"{url}/2015-03-31/functions/bench/invocations", data=b"{}", timeout=60)
    answer.raise_for_status()
    return int(answer.json()["value"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="reload-bench-") as scratch:
        root = Path(scratch)
        (root / "app.py").write_text(HANDLER.format(value=0))
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        command = [sys.executable, "invoke.py", "serve", "--watch", "--port", str(port), "--template", ""]
        command += ["--task-root", str(root), "--handler", "app.handler", "--function-name", "bench", "--env-file", ""]
        server = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        session = requests.Session()
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    invoke(session, url)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise SystemExit("invoke.py serve did not start") from None
                    time.sleep(0.1)
            times_ms = []
            for value in range(1, args.rounds + 1):
                invoke(session, url)  # warm, on the old code
                time.sleep(0.5)  # nothing pending in the watcher
                started = time.perf_counter()
                (root / "app.py").write_text(HANDLER.format(value=value))
                while invoke(session, url) != value:
                    pass
                times_ms.append((time.perf_counter() - started) * 1000)
                print(f"round {value}: {times_ms[-1]:.0f} ms", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(30)
    result = {
        "what": "save to first invocation on the new code, invoke.py serve --watch",
        "rounds": args.rounds,
        "median_ms": round(statistics.median(times_ms), 1),
        "min_ms": round(min(times_ms), 1),
        "max_ms": round(max(times_ms), 1),
        "samples_ms": [round(t, 1) for t in times_ms],
        "machine": f"{platform.system()} {platform.machine()}, Python {platform.python_version()}",
    }
    out = results_path("reload.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"save -> new code served: median {result['median_ms']} ms over {args.rounds} rounds ({out})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
