"""List one S3 prefix as many key ranges at once, every key exactly once.

ListObjectsV2 hands out 1,000 keys a page and each page names where the next
begins, so one listing is a chain of round trips: at ~0.3 s a page, 10M keys
take ~50 minutes however fast the client is. But a LIST may begin anywhere:
``StartAfter=k`` returns the keys that sort after ``k``. So the prefix is cut
into ranges, each ``after < key <= until``, and the ranges are listed at the
same time. Correctness never depends on where the cuts fall: ranges that
touch end to end cover every key once whatever the keys look like; good cuts
only make it faster. Where the cuts come from:

* **Folders.** The first request asks with ``Delimiter="/"``. If the prefix
  holds sub-folders, their names (common prefixes) are the first cuts.
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
With ``concurrency=1`` nothing is ever split and the order is S3's.
Python compares ``str`` by code point, which is UTF-8 byte order, so the
comparisons here agree with S3's.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import string
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise

# keys of one page, common prefixes of one page (only with a delimiter), whether more follow
Page = tuple[list[str], list[str], bool]
ListPage = Callable[[str, bool], Awaitable[Page]]  # (start_after or "", use Delimiter="/") -> Page
Emit = Callable[[list[str]], Awaitable[None]]

MAX_POSITIONS = 64  # characters after the prefix whose alphabets are learned
DIVIDE_DEPTH = 8  # characters past the common prefix of a range's ends that a cut may use
FOLDER_PARTS_PER_SLOT = 4  # folder cuts kept per concurrent LIST (each range costs one page past its end)
_CLASSES = (string.digits, string.ascii_lowercase, string.ascii_uppercase)


@dataclass
class KeyRange:
    """The keys ``after < key <= until`` (``after=""``: from the start; ``until=None``: to the end)."""

    after: str
    until: str | None


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
    """List a prefix as concurrent key ranges; ``emit`` gets every key once, a page at a time.

    ``run`` returns when every range is done. The first range that fails
    (an S3 error after botocore's retries, or ``emit`` raising, e.g. the
    deadline check) cancels all the others and its exception is raised as is,
    so callers see the same ``ClientError`` a sequential listing would raise.
    """

    def __init__(self, prefix: str, list_page: ListPage, emit: Emit, *, concurrency: int) -> None:
        self.prefix = prefix
        self.concurrency = max(1, concurrency)
        self.space = KeySpace(prefix)
        self.ranges = 0
        self._list_page = list_page
        self._emit = emit
        self._running: set[asyncio.Task[None]] = set()
        self._waiting: collections.deque[KeyRange] = collections.deque()
        self._failure: BaseException | None = None
        self._finished: asyncio.Event | None = None
        self._closing = False
        self._learned_first_page = False

    async def run(self) -> None:
        self._finished = asyncio.Event()
        self._start(KeyRange("", None), seed=True)
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

    def _start(self, part: KeyRange, seed: bool = False) -> None:
        if len(self._running) >= self.concurrency:
            self._waiting.append(part)
            return
        self.ranges += 1
        task = asyncio.create_task(self._list_range(part, seed), name=f"list-range-{self.ranges}")
        self._running.add(task)
        task.add_done_callback(self._range_done)

    def _range_done(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        assert self._finished is not None
        if not task.cancelled() and task.exception() is not None and self._failure is None:
            self._failure = task.exception()
            self._closing = True
            self._finished.set()
            return
        while self._waiting and len(self._running) < self.concurrency and not self._closing:
            self._start(self._waiting.popleft())
        if not self._running and not self._waiting:
            self._finished.set()

    async def _list_range(self, part: KeyRange, seed: bool) -> None:
        first: str | None = None
        while True:
            keys, folders, truncated = await self._list_page(part.after, seed)
            if seed and folders:
                self._cut_at_folders(folders)  # the new ranges cover this page's keys too
                return
            seed = False
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

        A bounded rest is cut into about as many pieces as the pages it seems
        to hold: a range that ends within a page is not split (every range
        costs a request, and the page that runs past its end is parsed too).
        """
        idle = self.concurrency - len(self._running) - len(self._waiting)
        if idle <= 0:
            return
        if part.until is None:
            cuts = ladder(self.space, first, part.after, idle)
        else:
            pieces = min(idle, int(pages_left(self.space, page_first, part.after, part.until)))
            cuts = divide(self.space, part.after, part.until, pieces)
        if not cuts:
            return
        ends: list[str | None] = [*cuts[1:], part.until]
        part.until = cuts[0]
        for after, until in zip(cuts, ends, strict=True):
            self._start(KeyRange(after, until))

    def _cut_at_folders(self, folders: list[str]) -> None:
        cuts = _thin(sorted(folders), self.concurrency * FOLDER_PARTS_PER_SLOT)
        for after, until in pairwise(["", *cuts, None]):
            self._start(KeyRange(after or "", until))
