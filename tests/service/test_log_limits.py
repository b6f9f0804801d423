"""The function's output is streamed, not hoarded: bounded memory, linear reading, CloudWatch-sized events.

Only the last 4 KB of an invocation's log is kept (for ``LogType=Tail``);
everything else goes to the log sink as it arrives. A line or record longer
than CloudWatch Logs' event size limit (1 MB including 26 bytes of overhead,
PutLogEvents API reference) becomes several events, cut on character
boundaries, and a 100 MB line without a newline is read in linear time.
"""

from __future__ import annotations

import base64
import os
import threading
from pathlib import Path

import psutil
import pytest

from local_runtime.api_server import log_tail
from local_runtime.config import FunctionConfig
from local_runtime.logs import EVENT_MAX_BYTES, TAIL_BYTES, FunctionLogReader, cut_point
from local_runtime.pool import EnvironmentPool

MB = 1024 * 1024


class Counting:
    """A log sink that keeps sizes, not lines."""

    def __init__(self) -> None:
        self.events = 0
        self.chars = 0
        self.largest = 0
        self.replaced = 0
        self.last = ""

    def __call__(self, line: str) -> None:
        self.events += 1
        self.chars += len(line)
        self.largest = max(self.largest, len(line.encode("utf-8")))
        self.replaced += "\ufffd" in line
        self.last = line[-200:]


def test_a_100_mb_line_without_newline_is_read_whole_in_events_cloudwatch_accepts():
    stdout_read, stdout_write = os.pipe()
    telemetry_read, telemetry_write = os.pipe()
    os.close(telemetry_write)
    sink = Counting()
    reader = FunctionLogReader(stdout_read, telemetry_read, sink, "test")
    chunk = ("é" * (MB // 2) + "x").encode()  # 1 MB + 1 byte: cuts fall in the middle of characters
    total = 0

    def write() -> None:
        nonlocal total
        with os.fdopen(stdout_write, "wb") as pipe:
            for _ in range(100):
                pipe.write(chunk)
                total += len(chunk)

    writer = threading.Thread(target=write)
    writer.start()
    writer.join()
    reader.wait_closed(100)

    assert sink.chars == 100 * (MB // 2 + 1)  # every character arrived, none replaced
    assert sink.replaced == 0
    assert sink.largest <= EVENT_MAX_BYTES
    assert sink.events == -(-total // EVENT_MAX_BYTES) or sink.events == -(-total // EVENT_MAX_BYTES) + 1


def test_cut_point_keeps_characters_whole():
    data = "aé☕".encode() * 10
    for limit in range(1, len(data) - 1):
        cut = cut_point(data, limit)
        assert cut <= limit
        data[:cut].decode("utf-8")  # no half character


@pytest.mark.slow
def test_300_mb_of_stdout_keeps_the_service_memory_bounded_and_tail_is_the_last_4_kb(tmp_path: Path):
    (tmp_path / "flood.py").write_text(
        "import sys\n"
        "def handler(event, context):\n"
        "    block = ('y' * 1023 + '\\n') * 1024\n"
        "    for _ in range(300):\n"
        "        sys.stdout.write(block)\n"
        "    print('LAST LINE', flush=True)\n"
        "    return 'done'\n"
    )
    sink = Counting()
    config = FunctionConfig(name="flood", handler="flood.handler", task_root=tmp_path, timeout_s=100)
    me = psutil.Process()
    baseline = me.memory_info().rss
    peak = baseline
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.05):
            peak = max(peak, me.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        with EnvironmentPool(config, sink) as pool:
            invocation = pool.invoke(b"{}")
    finally:
        done.set()
        sampler.join()

    assert invocation.payload == b'"done"'
    assert sink.chars >= 300 * MB - 300 * 1024  # every line but its newline
    assert peak - baseline < 100 * MB, f"RSS grew by {(peak - baseline) / MB:.0f} MB"
    assert len(invocation.log.encode()) < 3 * TAIL_BYTES
    tail = base64.b64decode(log_tail(invocation.log)).decode()
    assert (
        len(tail.encode()) == TAIL_BYTES and "LAST LINE" in tail and tail.rstrip().split("\n")[-1].startswith("REPORT")
    )
