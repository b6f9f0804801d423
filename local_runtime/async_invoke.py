"""Lambda's asynchronous invocation, as the service runs it for S3 and other event sources.

An asynchronous caller (S3 for a bucket notification) gets its answer at once;
the event waits in the function's own queue and the service invokes the
function from there (invocation-async.html, "How Lambda handles asynchronous
invocations"):

* **Retries.** A function error (an unhandled exception, a timeout, a runtime
  crash) is retried twice by default (``MaximumRetryAttempts`` 0-2), one minute
  after the first attempt and two minutes after the second. ``time_scale``
  shortens those waits for local runs; the order and the count stay Lambda's.
* **Throttles and service errors** (429, the Invoke API not answering) do not
  count as attempts: the event goes back to the queue with a growing delay,
  for as long as its age allows.
* **Maximum event age** (``MaximumEventAgeInSeconds``, 60 s to 6 h, default
  6 h): an event still queued past it is discarded.
* **On-failure destination.** A discarded event is written as the record
  Lambda sends to an on-failure destination (``requestContext.condition``
  ``RetriesExhausted`` or ``EventAgeExceeded``), one JSON line per event in a
  local file.
* **Recursive loop detection** (invocation-recursion.html): Lambda follows a
  chain of invocations caused by the function's own writes and, once the same
  chain has invoked it 16 times, stops the next invocation, logs it, and sends
  the event to the on-failure destination. The caller tells :meth:`submit`
  how deep in a chain an event is (:meth:`AsyncQueue.chain_depth` measures it
  from the invocations this queue ran).

The queue is bounded, unlike Lambda's: past ``queue_limit`` waiting events a
new one is not kept but written to the on-failure file at once (condition
``EventAgeExceeded``, as the service would age it out), with one log line per
overflow. The service itself is what :class:`Delivery` reaches: a callable
that runs one synchronous invocation and says how it went.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

RETRY_DELAYS_S = (60.0, 120.0)  # after the first and the second failed attempt
MAX_RETRY_ATTEMPTS = 2
MAX_EVENT_AGE_S = 21_600.0  # six hours
MIN_EVENT_AGE_S = 60.0
RECURSION_LIMIT = 16  # invocations of one chain; the next one is stopped
QUEUE_LIMIT = 1000
THROTTLE_FIRST_S, THROTTLE_MAX_S = 1.0, 300.0  # backoff for throttles and service errors: 1 s doubling to 5 min
UNAVAILABLE_POLL_S = 2.0
CHAIN_GRACE_S = 2.0  # an event this soon after an invocation ended still counts as caused by it


@dataclass(frozen=True)
class Outcome:
    """One synchronous invocation as the service saw it.

    ``kind``: ``ok``; ``function_error`` (the function ran and failed: retried
    as an attempt); ``throttled`` or ``unavailable`` (it did not run: back to
    the queue, no attempt counted).
    """

    kind: str
    status: int = 200
    payload: bytes = b""
    function_error: str | None = None
    request_id: str = ""
    detail: str = ""


Delivery = Callable[["QueuedEvent"], Outcome]


@dataclass
class QueuedEvent:
    """An event in the function's queue, with what the service tracks about it."""

    payload: bytes
    depth: int = 1  # invocations so far in the chain of writes that caused this event
    label: str = ""  # what the log names (for S3: bucket/key)
    request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    received: float = field(default_factory=time.monotonic)
    attempts: int = 0
    throttles: int = 0
    last: Outcome | None = None


@dataclass(frozen=True)
class AsyncSettings:
    """The function's EventInvokeConfig, plus the local knobs (time scale, queue bound)."""

    function_arn: str
    max_retry_attempts: int = MAX_RETRY_ATTEMPTS
    max_event_age_s: float = MAX_EVENT_AGE_S
    on_failure: Path | None = None
    time_scale: float = 1.0  # 0.01: a retry one minute later becomes 0.6 s later
    queue_limit: int = QUEUE_LIMIT
    workers: int = 2
    recursion_limit: int = RECURSION_LIMIT

    def __post_init__(self) -> None:
        if not 0 <= self.max_retry_attempts <= MAX_RETRY_ATTEMPTS:
            raise ValueError(f"maximum retry attempts must be 0, 1 or 2, got {self.max_retry_attempts}")
        if not MIN_EVENT_AGE_S <= self.max_event_age_s <= MAX_EVENT_AGE_S:
            raise ValueError(f"maximum event age must be 60 to 21600 seconds, got {self.max_event_age_s:g}")
        if not 0 < self.time_scale <= 1:
            raise ValueError(f"time scale must be above 0 and at most 1, got {self.time_scale:g}")
        if self.queue_limit < 1 or self.workers < 1:
            raise ValueError("the queue needs room for one event and one worker")


class AsyncQueue:
    """The function's asynchronous event queue and the workers that invoke from it."""

    def __init__(self, settings: AsyncSettings, deliver: Delivery) -> None:
        self.settings = settings
        self._deliver = deliver
        self._lock = threading.Condition()
        self._heap: list[tuple[float, int, QueuedEvent]] = []  # (ready at, order, event)
        self._order = itertools.count()
        self._running: dict[int, int] = {}  # invocation number -> chain depth
        self._ended: deque[tuple[float, int]] = deque(maxlen=256)  # (ended at, depth)
        self._closed = False
        self._overflowing = False
        self._file_lock = threading.Lock()
        self.counts: dict[str, int] = {"succeeded": 0, "failed": 0, "dropped": 0, "recursion_stopped": 0}
        self._threads = [
            threading.Thread(target=self._work, name=f"async-invoke-{n}", daemon=True) for n in range(settings.workers)
        ]
        for thread in self._threads:
            thread.start()

    # -- what callers use ------------------------------------------------------

    def chain_depth(self) -> int:
        """How deep a new event is: one more than the invocations running or just ended, else 1.

        Lambda follows a chain through the trace header the SDK sends with the
        function's writes; a local S3 does not pass it on, so an event that
        arrives while (or just after) this queue runs an invocation is taken as
        caused by it.
        """
        now = time.monotonic()
        with self._lock:
            depths = list(self._running.values())
            depths += [depth for ended, depth in self._ended if now - ended <= CHAIN_GRACE_S]
        return max(depths, default=0) + 1

    def submit(self, event: QueuedEvent) -> bool:
        """Queue an event (as the 202 of an Event invoke); False when it was not kept."""
        if event.depth > self.settings.recursion_limit:
            self._count("recursion_stopped")
            _log.warning(
                "Lambda stopped a recursive invocation of %s: the event %s is invocation %d of a chain caused by "
                "the function's own writes (limit %d); event sent to the on-failure destination",
                self.settings.function_arn,
                event.label,
                event.depth,
                self.settings.recursion_limit,
            )
            self._fail(event, "RecursiveInvocationDetected")
            return False
        with self._lock:
            if self._closed:
                return False
            waiting = len(self._heap) + len(self._running)
            if self._overflowing and waiting < self.settings.queue_limit // 2:
                self._overflowing = False  # drained to half: the next overflow is a new one, logged again
            if waiting >= self.settings.queue_limit or self._overflowing:
                first = not self._overflowing
                self._overflowing = True
            else:
                heapq.heappush(self._heap, (time.monotonic(), next(self._order), event))
                self._lock.notify()
                return True
        self._count("dropped")
        if first:
            _log.warning(
                "async event queue of %s is full (%d events): new events go to the on-failure destination "
                "as aged out (EventAgeExceeded) until it drains to half",
                self.settings.function_arn,
                self.settings.queue_limit,
            )
        self._fail(event, "EventAgeExceeded")
        return False

    def _count(self, name: str) -> None:
        with self._lock:
            self.counts[name] += 1

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._heap) + len(self._running)

    def wait_idle(self, timeout: float) -> bool:
        """True once nothing is queued or running (tests and shutdown)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._heap or self._running:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.1))
        return True

    def close(self) -> int:
        """Stop the workers; what is still queued is returned as a count (and logged) and not run."""
        with self._lock:
            self._closed = True
            left = len(self._heap)
            self._heap.clear()
            self._lock.notify_all()
        for thread in self._threads:
            thread.join(timeout=5)
        return left

    # -- the workers -------------------------------------------------------------

    def _next(self) -> tuple[int, QueuedEvent] | None:
        with self._lock:
            while not self._closed:
                now = time.monotonic()
                if self._heap and self._heap[0][0] <= now:
                    event = heapq.heappop(self._heap)[2]
                    number = next(self._order)
                    self._running[number] = event.depth
                    return number, event
                self._lock.wait(min(self._heap[0][0] - now, 1.0) if self._heap else 1.0)
        return None

    def _work(self) -> None:
        while True:
            taken = self._next()
            if taken is None:
                return
            number, event = taken
            try:
                self._attempt(event)
            except Exception:  # noqa: BLE001 - a bug in one event must not end the worker
                _log.exception("async invocation of %s failed in the runner", event.label)
            finally:
                with self._lock:
                    self._running.pop(number, None)
                    self._ended.append((time.monotonic(), event.depth))
                    self._lock.notify_all()

    def _requeue(self, event: QueuedEvent, delay_s: float) -> None:
        with self._lock:
            if not self._closed:
                heapq.heappush(self._heap, (time.monotonic() + delay_s, next(self._order), event))
                self._lock.notify()

    def _attempt(self, event: QueuedEvent) -> None:
        age = time.monotonic() - event.received
        if age > self.settings.max_event_age_s * self.settings.time_scale:
            _log.warning(
                "async event %s discarded: older than the maximum event age (%gs)",
                event.label,
                self.settings.max_event_age_s,
            )
            self._fail(event, "EventAgeExceeded")
            return
        outcome = self._deliver(event)
        if outcome.kind in ("throttled", "unavailable"):
            event.throttles += 1
            delay = min(THROTTLE_FIRST_S * 2 ** (event.throttles - 1), THROTTLE_MAX_S)
            if event.throttles == 1:
                _log.warning("async event %s not invoked yet (%s): kept in the queue", event.label, outcome.detail)
            # Throttles back off as Lambda's do; an Invoke API that is down (serve restarting) is polled
            # every few seconds, so the event runs soon after it is back.
            if outcome.kind == "unavailable":
                delay = min(delay, UNAVAILABLE_POLL_S)
            self._requeue(event, delay * self.settings.time_scale if outcome.kind == "throttled" else delay)
            return
        event.attempts += 1
        event.last = outcome
        if outcome.kind == "ok":
            self._count("succeeded")
            return
        if event.attempts <= self.settings.max_retry_attempts:
            delay = RETRY_DELAYS_S[event.attempts - 1]
            _log.warning(
                "async invocation %d of %s failed (%s); retry in %gs%s",
                event.attempts,
                event.label,
                outcome.function_error,
                delay * self.settings.time_scale,
                "" if self.settings.time_scale == 1 else f" (Lambda waits {delay:g}s)",
            )
            self._requeue(event, delay * self.settings.time_scale)
            return
        _log.warning(
            "async event %s failed %d times (%s): sent to the on-failure destination",
            event.label,
            event.attempts,
            outcome.function_error,
        )
        self._fail(event, "RetriesExhausted")

    # -- the on-failure destination --------------------------------------------

    def _fail(self, event: QueuedEvent, condition: str) -> None:
        self._count("failed")
        if self.settings.on_failure is None:
            return
        record = failure_record(self.settings.function_arn, event, condition)
        line = json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"
        with self._file_lock:
            try:
                self.settings.on_failure.parent.mkdir(parents=True, exist_ok=True)
                with self.settings.on_failure.open("a", encoding="utf-8") as out:
                    out.write(line)
            except OSError as exc:
                _log.error("cannot write the on-failure record for %s: %s", event.label, exc)


def _json_or_text(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except ValueError:
        return raw.decode("utf-8", "replace")


def failure_record(function_arn: str, event: QueuedEvent, condition: str) -> dict[str, Any]:
    """What Lambda sends an on-failure destination for an asynchronous invocation."""
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": event.request_id,
            "functionArn": f"{function_arn}:$LATEST",
            "condition": condition,
            "approximateInvokeCount": event.attempts,
        },
        "requestPayload": _json_or_text(event.payload),
    }
    if event.last is not None:
        record["responseContext"] = {
            "statusCode": event.last.status,
            "executedVersion": "$LATEST",
            **({"functionError": "Unhandled"} if event.last.function_error else {}),
        }
        record["responsePayload"] = _json_or_text(event.last.payload)
    return record
