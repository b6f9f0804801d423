"""Seeded fault schedules: which request of which S3 operation gets which fault.

A schedule is a pure function of ``(seed, index)``, and each decision a pure
function of ``(seed, index, operation, nth request of that operation)``: no
shared random stream, so the concurrent part uploads cannot reorder the
draws, and ``--seed S --only I`` replays schedule I exactly.

Three kinds, because they prove different halves of the rule:

* ``transient``: each request independently faulted with a small probability.
  Retries should absorb these; the expected outcome is success.
* ``burst``: every request (any operation) in a window of consecutive ones is
  faulted, like a brief S3 brown-out. Short bursts are absorbed, long ones fail.
* ``persistent``: one operation fails from its n-th request on, like a broken
  permission or a dead partition. The expected outcome is a clean failure
  within the function's time budget.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from reliability.fault_proxy import Action, Decider, Fault, RequestInfo

# How often each fault is picked when a request is faulted. Latency is the
# commonest fault in practice; stalls are rare but cost a full read timeout.
FAULT_WEIGHTS: dict[Fault, int] = {
    Fault.LATENCY: 3,
    Fault.SLOWDOWN_503: 2,
    Fault.INTERNAL_500: 2,
    Fault.RESET_BEFORE_HEADERS: 1,
    Fault.RESET_AFTER_HEADERS: 1,
    Fault.TRUNCATED_BODY: 1,
    Fault.STALL: 1,
}
BREAKING_FAULTS = [fault for fault in FAULT_WEIGHTS if fault is not Fault.LATENCY]
SINGLE_PUT_OPS = ["ListObjectsV2", "PutObject"]
MULTIPART_OPS = ["ListObjectsV2", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"]


@dataclass(frozen=True)
class Schedule:
    seed: int
    index: int
    kind: str  # transient | burst | persistent
    multipart: bool  # manifest streamed in small multipart parts, or one put_object
    rate: float = 0.0  # transient: chance that a request is faulted
    operation: str = "*"  # persistent: the operation that breaks
    start: int = 0  # burst: first faulted request overall; persistent: first faulted nth of `operation`
    length: int = 0  # burst: how many consecutive requests are faulted; persistent: how many (0 = all from start)
    fault: Fault | None = None  # burst/persistent: the fault (None = drawn per request)

    def describe(self) -> str:
        mode = "multipart" if self.multipart else "single-put"
        if self.kind == "transient":
            return f"transient p={self.rate:.2f} {mode}"
        fault = self.fault.value if self.fault else "mixed"
        if self.kind == "burst":
            return f"burst requests {self.start}..{self.start + self.length - 1} {fault} {mode}"
        span = f"{self.start}+" if not self.length else f"{self.start}..{self.start + self.length - 1}"
        return f"persistent {self.operation}#{span} {fault} {mode}"

    def decider(self) -> Decider:
        """The per-request decision function the proxy calls."""
        overall = iter(range(1 << 62))  # requests seen in this schedule, in arrival order (bursts only)

        def decide(info: RequestInfo) -> Action:
            draw = random.Random(f"{self.seed}:{self.index}:{info.operation}:{info.nth}")
            position = next(overall)
            if self.kind == "transient":
                if draw.random() >= self.rate:
                    return Action()
                return _action(draw, _weighted(draw))
            if self.kind == "burst":
                if self.start <= position < self.start + self.length:
                    return _action(draw, self.fault or _weighted(draw))
                return Action()
            last = self.start + self.length if self.length else 1 << 62  # length 0: for ever
            if info.operation == self.operation and self.start <= info.nth < last:
                return _action(draw, self.fault or draw.choice(BREAKING_FAULTS))
            return Action()

        return decide


def _weighted(draw: random.Random) -> Fault:
    return draw.choices(list(FAULT_WEIGHTS), weights=list(FAULT_WEIGHTS.values()))[0]


def _action(draw: random.Random, fault: Fault) -> Action:
    if fault is Fault.LATENCY:
        return Action(fault, delay_s=round(draw.uniform(0.05, 0.4), 3))
    return Action(fault)


def make_schedule(seed: int, index: int) -> Schedule:
    """Schedule ``index`` of the run seeded with ``seed``."""
    draw = random.Random(f"schedule:{seed}:{index}")
    multipart = index % 2 == 1
    roll = draw.random()
    if roll < 0.6:
        return Schedule(seed, index, "transient", multipart, rate=round(draw.uniform(0.05, 0.25), 3))
    if roll < 0.8:
        fault = draw.choice([None, *BREAKING_FAULTS])
        return Schedule(
            seed, index, "burst", multipart, start=draw.randrange(0, 12), length=draw.randint(1, 6), fault=fault
        )
    operation = draw.choice(MULTIPART_OPS if multipart else SINGLE_PUT_OPS)
    start = (
        draw.randrange(0, 8)
        if operation == "UploadPart"
        else draw.randrange(0, 3 if operation == "ListObjectsV2" else 1)
    )
    return Schedule(
        seed,
        index,
        "persistent",
        multipart,
        operation=operation,
        start=start,
        fault=draw.choice([None, *BREAKING_FAULTS]),
    )
