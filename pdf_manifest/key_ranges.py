"""List one S3 prefix in order, and as many key ranges at once when the server is slow to answer.

ListObjectsV2 hands out 1,000 keys a page and each page names where the next
begins, so one listing is a chain of round trips: at ~0.3 s a page, 10M keys
take ~50 minutes however fast the client is. But a LIST may begin anywhere:
``StartAfter=k`` returns the keys that sort after ``k``. So the prefix is cut
into ranges, each ``after < key <= until``, and the ranges are listed at the
same time. Correctness never depends on where the cuts fall: ranges that
touch end to end cover every key once whatever the keys look like; good cuts
only make it faster. When to cut at all is measured, not configured (``Policy``):

* **In order first.** Every listing begins as one plain sequential LIST. Most
  prefixes end within a few pages, and a local server (moto, versitygw on a
  laptop) spends its own CPU on each page: neither gains anything from
  concurrency, and every range costs a request and up to a page read twice.
* **Split only what is waiting.** After ``sequential_pages`` pages, if a page
  takes longer than ``latency_bound_s`` and the client spent less than
  ``1 - wait_share`` of it on CPU, the pages are mostly waiting (S3's round
  trips): the rest of the key space, after the last key received, is cut.
* **Ramp while it pays.** Concurrency starts at ``first_step`` (4) and is
  multiplied by it after each round whose throughput (keys a second) beats
  the best so far by ``ramp_gain``; the first round that does not settles it
  (back to where it was best), and ``LIST_CONCURRENCY`` caps it. A server that
  does not answer faster when asked four times at once (its CPU is the limit)
  is listed in order again.
* **No range below ``min_range_pages``.** A range reads up to one page past
  its end (the page that runs into the next range); long ranges keep that
  re-read near 1/``min_range_pages`` of the keys. A range that runs into a
  neighbour not started yet takes it over instead (nothing read twice).

Where the cuts come from:

* **Folders.** The first request after the decision asks with
  ``Delimiter="/"``, after the last key received. If the prefix holds
  sub-folders, their names (common prefixes) are the cuts, grouped so that
  each range holds about ``min_range_pages`` pages at the folder size seen so
  far. Without folders that page is an ordinary page.
* **What the pages show.** A range still truncated after a page is long; if
  fewer than ``concurrency`` ranges are running, its rest is cut again:
  - a bounded rest ``(last key, until]`` is divided evenly by treating keys as
    numbers whose digits are the characters seen at each position
    (``KeySpace``), so cuts land between real-looking keys;
  - the open rest at the end of the prefix is cut at growing distances (the
    "ladder": ``doc-0000999`` gives ``doc-0001``, ``doc-001``, ``doc-01``,
    ``doc-1``, ...), plus every character seen after the prefix, since
    nothing says how far the keys go.
* Each range stops at its ``until`` (the next range's start): a page that
  runs past it is cut there, and that range ends.

Ranges are listed concurrently, so the keys of different ranges interleave:
a range's keys come in S3's (UTF-8 byte) order, the whole listing does not.
A listing that never splits (``concurrency=1``, a short listing, a server
that answers quickly) is in S3's order from first key to last.
Python compares ``str`` by code point, which is UTF-8 byte order, so the
comparisons here agree with S3's.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import statistics
import string
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

# keys of one page, common prefixes of one page (only with a delimiter), whether more follow
Page = tuple[list[str], list[str], bool]
ListPage = Callable[[str, str, bool], Awaitable[Page]]  # (prefix, start_after or "", use Delimiter="/") -> Page
Emit = Callable[[list[str]], Awaitable[None]]

MAX_POSITIONS = 64  # characters after the prefix whose alphabets are learned
DIVIDE_DEPTH = 8  # characters past the common prefix of a range's ends that a cut may use
_CLASSES = (string.digits, string.ascii_lowercase, string.ascii_uppercase)


@dataclass(frozen=True)
class Policy:
    """When a listing stops going in order, and how far its concurrency grows (module docstring)."""

    sequential_pages: int = 3  # pages listed in order before splitting is considered
    latency_bound_s: float = 0.02  # a page quicker than this is never worth waiting on in parallel
    wait_share: float = 0.5  # at least this share of a page's time must be waiting, not client CPU
    first_step: int = 4  # concurrency once split; each step up multiplies it by this
    ramp_gain: float = 1.25  # a step up is kept only if keys/s grows this much
    min_range_pages: float = 10  # smallest range cut by key, in pages: each re-reads at most one, so <= 1.1 keys a key


ADAPTIVE = Policy()
ALWAYS_SPLIT = Policy(sequential_pages=1, latency_bound_s=0.0, wait_share=0.0, ramp_gain=0.0, min_range_pages=0)


@dataclass
class KeyRange:
    """The keys under ``prefix`` with ``after < key <= until``.

    ``after=""`` starts at the beginning, ``until=None`` runs to the end.

    A folder's range has the folder as its prefix: its last page says it is
    the last, so it never reads into the next folder.
    """

    after: str
    until: str | None
    prefix: str


class KeySpace:
    """The characters seen at each position after the prefix: the digits cuts are made of.

    A digit, lower- or upper-case letter seen at a position brings its whole
    class with it (``doc-0000999`` says digits live there, not just 0 and 9).
    """

    def __init__(self, prefix: str) -> None:
        self.offset = len(prefix)
        self._seen: list[set[str]] = []
        self._any: set[str] = set()

    def learn(self, key: str) -> None:
        for position, char in enumerate(key[self.offset : self.offset + MAX_POSITIONS]):
            if position == len(self._seen):
                self._seen.append(set())
            if char not in self._seen[position]:
                self._seen[position].add(char)
                self._any.add(char)

    def alphabet(self, index: int, *extra: str) -> list[str]:
        """Sorted characters for absolute string position ``index``, plus ``extra``."""
        position = index - self.offset
        seen = self._seen[position] if 0 <= position < len(self._seen) else self._any
        chars = set(seen).union(c for c in extra if c)
        for group in _CLASSES:
            if not chars.isdisjoint(group):
                chars.update(group)
        return sorted(chars)


def _successor(char: str) -> str | None:
    """The next code point that can appear in a key (no surrogates), or None past the last."""
    code = ord(char) + 1
    if 0xD800 <= code <= 0xDFFF:
        code = 0xE000
    return chr(code) if code <= 0x10FFFF else None


def _common_length(a: str, b: str) -> int:
    limit = min(len(a), len(b))
    for index in range(limit):
        if a[index] != b[index]:
            return index
    return limit


def _thin(points: Sequence[str], n: int) -> list[str]:
    """At most ``n`` of the sorted ``points``, evenly spread, the last one kept."""
    if n <= 0:
        return []
    if len(points) <= n:
        return list(points)
    step = len(points) / n
    return [points[min(len(points) - 1, int(step * (i + 1)) - 1)] for i in range(n)]


class _Digits:
    """Keys read as numbers: from position ``start`` on, each character is a digit of a mixed radix.

    At each position, digit 0 means "the key ended" and 1.. the learned
    characters in order, so the numbers sort as the keys do (ties only past
    ``depth`` positions, or for characters not learned there).
    """

    def __init__(self, space: KeySpace, start: int, depth: int, *keys: str) -> None:
        self.start = start
        self.alphabets = [space.alphabet(i, *(k[i] for k in keys if i < len(k))) for i in range(start, start + depth)]

    def value(self, text: str) -> int:
        number = 0
        for offset, chars in enumerate(self.alphabets):
            index = self.start + offset
            digit = 0 if index >= len(text) else 1 + bisect.bisect_left(chars, text[index])
            number = number * (len(chars) + 1) + digit
        return number


def pages_left(space: KeySpace, page_first: str, page_last: str, until: str) -> float:
    """How many more pages like the last one ``(page_last, until]`` holds, if keys are spread evenly."""
    if not page_first < page_last < until:
        return 0.0
    start = _common_length(page_first, until)
    depth = min(MAX_POSITIONS, _common_length(page_first, page_last) - start + 3)
    digits = _Digits(space, start, max(depth, DIVIDE_DEPTH), page_first, page_last, until)
    first, last, end = (digits.value(k) for k in (page_first, page_last, until))
    return (end - last) / (last - first) if last > first else float(MAX_POSITIONS)


def divide(space: KeySpace, low: str, high: str, n: int) -> list[str]:
    """Up to ``n`` cuts strictly between ``low`` and ``high``, evenly spaced as numbers (``_Digits``)."""
    if n <= 0 or not low < high:
        return []
    start = _common_length(low, high)
    numbers = _Digits(space, start, DIVIDE_DEPTH, low, high)

    def text_of(number: int) -> str:
        places = []
        for chars in reversed(numbers.alphabets):
            number, digit = divmod(number, len(chars) + 1)
            places.append(digit)
        out = []
        for chars, digit in zip(numbers.alphabets, reversed(places), strict=True):
            if digit == 0:  # the key ends here
                break
            out.append(chars[digit - 1])
        return high[:start] + "".join(out)

    lo, hi = numbers.value(low), numbers.value(high)
    cuts: list[str] = []
    for i in range(1, n + 1):
        cut = text_of(lo + (hi - lo) * i // (n + 1))
        if low < cut < high and (not cuts or cut > cuts[-1]):
            cuts.append(cut)
    return cuts


def ladder(space: KeySpace, first: str, last: str, n: int) -> list[str]:
    """Up to ``n`` cuts after ``last`` for a range with no known end, nearest first.

    ``first``..``last`` is what the range has shown so far. Replacing the
    character of ``last`` at position j by the next one jumps past everything
    that shares ``last[:j+1]``: from the position where the page's keys
    differ back to the prefix, these jumps grow like the place values of a
    number. Every learned character at the first position after the prefix
    is a cut too (the top-level "folders" of a flat name space).
    """
    top = space.offset
    deepest = min(_common_length(first, last), len(last) - 1)
    cuts: list[str] = []
    for index in range(deepest, top - 1, -1):
        nxt = _successor(last[index])
        if nxt is not None:
            cuts.append(last[:index] + nxt)
    if len(last) > top:
        cuts += [last[:top] + c for c in space.alphabet(top) if c > last[top]]
    cuts = sorted(set(c for c in cuts if c > last))
    if len(cuts) <= n:
        return cuts
    near = cuts[: max(1, n // 2)]  # the nearest jumps matter most, the rest spread out
    return near + _thin(cuts[len(near) :], n - len(near))


class ParallelListing:
    """List a prefix in order, then as concurrent key ranges if that pays; ``emit`` gets every key once.

    ``run`` returns when every range is done. The first range that fails
    (an S3 error after botocore's retries, or ``emit`` raising, e.g. the
    deadline check) cancels all the others and its exception is raised as is,
    so callers see the same ``ClientError`` a sequential listing would raise.
    ``clock`` and ``cpu_clock`` (wall and process CPU seconds) are what the
    decision measures; tests pass fake ones.
    """

    def __init__(
        self,
        prefix: str,
        list_page: ListPage,
        emit: Emit,
        *,
        concurrency: int,
        policy: Policy = ADAPTIVE,
        clock: Callable[[], float] = time.perf_counter,
        cpu_clock: Callable[[], float] = time.process_time,
    ) -> None:
        self.prefix = prefix
        self.concurrency = max(1, concurrency)  # the ceiling (LIST_CONCURRENCY)
        self.policy = policy
        self.space = KeySpace(prefix)
        self.limit = 1  # LISTs allowed in flight now: 1 until the pages show waiting, then ramped
        self.ranges = 0
        self.requests = 0
        self.keys_received = 0  # keys in the pages S3 sent, before any cut at a range's end
        self.peak_limit = 1
        self._list_page = list_page
        self._emit = emit
        self._clock = clock
        self._cpu_clock = cpu_clock
        self._running: set[asyncio.Task[None]] = set()
        self._waiting: collections.deque[KeyRange] = collections.deque()
        self._failure: BaseException | None = None
        self._finished: asyncio.Event | None = None
        self._closing = False
        self._learned_first_page = False
        # The decision: "sequential" -> (a folder probe) -> "ramp" -> "settled".
        self._phase = "sequential" if self.concurrency > 1 else "settled"
        self._want_folders = False
        self._recent: collections.deque[tuple[float, float]] = collections.deque(maxlen=policy.sequential_pages)
        self._window_start = 0.0
        self._window_keys = 0
        self._window_pages = 0
        self._best_rate = 0.0
        self._best_limit = 1

    async def run(self) -> None:
        self._finished = asyncio.Event()
        self._window_start = self._clock()
        self._start(KeyRange("", None, self.prefix))
        try:
            await self._finished.wait()
            if self._failure is not None:
                raise self._failure
        finally:
            self._closing = True  # a range cancelled now must not start a waiting one
            running = list(self._running)
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    def _start(self, part: KeyRange) -> None:
        if len(self._running) >= self.limit:
            self._waiting.append(part)
            return
        self.ranges += 1
        task = asyncio.create_task(self._list_range(part), name=f"list-range-{self.ranges}")
        self._running.add(task)
        task.add_done_callback(self._range_done)

    def _fill(self) -> None:
        while self._waiting and len(self._running) < self.limit and not self._closing:
            self._start(self._waiting.popleft())

    def _range_done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        assert self._finished is not None
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()
            self._closing = True
            self._finished.set()
            return
        self._fill()
        if not self._running and not self._waiting:
            self._finished.set()

    async def _list_range(self, part: KeyRange) -> None:
        first: str | None = None
        while True:
            by_folder, self._want_folders = self._want_folders, False
            wall, cpu = self._clock(), self._cpu_clock()
            keys, folders, truncated = await self._list_page(part.prefix, part.after, by_folder)
            self._measure(len(keys), self._clock() - wall, self._cpu_clock() - cpu)
            if by_folder:
                truncated = self._cut_at_folders(part, keys, folders, truncated)
                if keys:
                    self._learn(keys)
                    await self._emit(keys)  # the top-level keys of the page's stretch, all of them
                if not truncated:
                    return
                continue
            if part.until is not None and keys and keys[-1] > part.until:
                self._take_over_neighbour(part, keys[-1])
            if part.until is not None and keys and keys[-1] > part.until:
                keys = keys[: bisect.bisect_right(keys, part.until)]  # the rest belongs to the next range
                truncated = False
            if keys:
                self._learn(keys)
                await self._emit(keys)
            if not truncated:
                return
            if not keys:
                raise RuntimeError(f"S3 returned a truncated page with no keys after {part.after!r}")
            first = first or keys[0]
            part.after = keys[-1]
            self._split(part, first, keys[0])

    def _take_over_neighbour(self, part: KeyRange, page_last: str) -> None:
        """Extend ``part`` over the waiting ranges its page ran into: their keys are not read twice."""
        while part.until is not None and page_last > part.until:
            neighbour = next((w for w in self._waiting if w.after == part.until), None)
            if neighbour is None:
                return
            self._waiting.remove(neighbour)
            part.until = neighbour.until

    # --- the decision: measured on every page ---------------------------------

    def _measure(self, keys: int, wall_s: float, cpu_s: float) -> None:
        self.requests += 1
        self.keys_received += keys
        self._window_keys += keys
        self._window_pages += keys > 0  # an empty range's one page says nothing about speed
        if self._phase == "sequential":
            self._recent.append((wall_s, cpu_s))
            if len(self._recent) >= self.policy.sequential_pages and self._waits(self._recent):
                self._phase = "ramp"
                self._want_folders = True
                self._best_rate = self._rate()
                self._set_limit(self.policy.first_step)
        elif self._phase == "ramp" and len(self._running) < self.limit:
            self._rate()  # slots still empty (cuts not made yet): this is not the new level's speed
        elif self._phase == "ramp" and self._window_pages >= self.limit:
            rate = self._rate()
            if rate >= self.policy.ramp_gain * self._best_rate and self.limit < self.concurrency:
                self._best_rate, self._best_limit = rate, self.limit
                self._set_limit(self.limit * self.policy.first_step)
            elif rate >= self.policy.ramp_gain * self._best_rate:
                self._phase = "settled"  # at the ceiling
            else:
                self._phase = "settled"
                self._set_limit(self._best_limit)  # no gain: back to the best level (1 = in order)

    def _waits(self, pages: Sequence[tuple[float, float]]) -> bool:
        """Pages look like waiting on the network: slow enough, and not the client's own CPU."""
        wall = statistics.median(w for w, _ in pages)
        spent = sum(c for _, c in pages) / max(1e-9, sum(w for w, _ in pages))
        waiting = spent <= 1 - self.policy.wait_share or self.policy.wait_share <= 0
        return wall >= self.policy.latency_bound_s and waiting

    def _rate(self) -> float:
        """Keys a second since the last measurement; starts the next window."""
        now = self._clock()
        rate = self._window_keys / max(1e-9, now - self._window_start)
        self._window_start, self._window_keys, self._window_pages = now, 0, 0
        return rate

    def _set_limit(self, limit: int) -> None:
        self.limit = max(1, min(self.concurrency, limit))
        self.peak_limit = max(self.peak_limit, self.limit)
        self._fill()

    # --- where to cut ----------------------------------------------------------

    def _learn(self, keys: list[str]) -> None:
        if not self._learned_first_page:
            self._learned_first_page = True
            for key in keys:
                self.space.learn(key)
        else:
            self.space.learn(keys[0])
            self.space.learn(keys[-1])

    def _split(self, part: KeyRange, first: str, page_first: str) -> None:
        """Cut the rest of a long range into pieces, at most one per idle LIST slot.

        A bounded rest is cut into pieces of at least ``min_range_pages``
        pages as far as the last page's spread tells; the open rest at the end
        by the ladder, dropping cuts closer than that to the one before.
        """
        idle = self.limit - len(self._running) - len(self._waiting)
        if idle <= 0 or self._want_folders:  # the folder probe comes first
            return
        least = max(1.0, self.policy.min_range_pages)
        if part.until is None:
            cuts = []
            previous = 0.0
            for cut in ladder(self.space, first, part.after, 64):
                if not cut.startswith(part.prefix):
                    break  # past the folder this range lists
                pages = pages_left(self.space, page_first, part.after, cut)
                if pages - previous >= least or self.policy.min_range_pages <= 0:
                    cuts.append(cut)
                    previous = pages
                if len(cuts) == idle:
                    break
        else:
            pieces = min(idle + 1, int(pages_left(self.space, page_first, part.after, part.until) / least)) - 1
            cuts = divide(self.space, part.after, part.until, pieces)
        if not cuts:
            return
        ends: list[str | None] = [*cuts[1:], part.until]
        part.until = cuts[0]
        for after, until in zip(cuts, ends, strict=True):
            self._start(KeyRange(after, until, part.prefix))

    def _cut_at_folders(self, part: KeyRange, keys: list[str], folders: list[str], truncated: bool) -> bool:
        """A ``Delimiter="/"`` page: each folder it names becomes a range of its own.

        The page holds the top-level keys of its stretch (returned, to emit)
        and the folders in it. The rest of the folder the last key received
        was in, and each folder named, are listed with the folder as prefix.
        If the page is truncated, ``part`` goes on after its last entry, which
        it lists itself when that is a folder. Returns whether ``part`` goes on.
        """
        top = len(part.prefix)
        current, slash, _ = part.after[top:].partition("/")
        if slash:  # the rest of the folder listed so far (servers differ on whether the page names it)
            self._start(KeyRange(part.after, None, part.prefix + current + "/"))
        after = [f for f in folders if f > part.after]
        last = max([*after[-1:], *keys[-1:]], default=part.after)
        if truncated and last == part.after:
            raise RuntimeError(f"S3 returned a truncated page with nothing after {part.after!r}")
        for folder in after:
            if not (truncated and folder == last):
                self._start(KeyRange("", None, folder))
        part.after = last  # when it is a folder, its keys sort after it: the rest of ``part`` lists them
        return truncated
