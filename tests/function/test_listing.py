"""Parallel listing (key_ranges.py): every key under the prefix reaches the manifest exactly once.

The handler lists a prefix in order and, when the pages show waiting, as key
ranges at once (``StartAfter`` bounds, folders by ``Prefix`` from one
``Delimiter="/"`` page, cuts learned from the pages). The properties force the
split (``ALWAYS_SPLIT``) whatever the server's speed. Its correctness must
not depend on where the cuts fall, so these properties throw key sets at it
that are built to land on, around, before and after the cuts: keys equal to
the cuts the ladder makes, long shared stems, non-ASCII and astral characters,
``/``-heavy names, one key, none, and a whole bucket (empty prefix). Pages are
shrunk to a few keys (``LIST_PAGE_KEYS``) so a few dozen keys make many
ranges. They run against moto in server mode and against versitygw (a
separate S3 implementation, over real HTTP); the manifest is read back from
S3 and compared with what was put there. The decision itself (stay in order,
split, ramp, settle back) is tested on a simulated server with a virtual clock.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import json
import string
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from pdf_manifest import key_ranges
from pdf_manifest.key_ranges import KeySpace, divide, ladder, pages_left
from reliability.fault_proxy import Action, Fault, RequestInfo, running_proxy
from tests.verifying_s3 import verifier, verifier_s3  # noqa: F401 -- fixtures

PAGE_KEYS = 3  # keys per LIST page in these tests: 40 keys make ~14 pages
CONCURRENCY = 4

# Characters chosen to sit on every side of the cuts: below and around the
# digits, '/', letters, the top of ASCII, Latin-1, CJK and an astral symbol.
CHARS = "!-./0129:AZ_az~\x7fé日\U0001d11e"
segment = st.text(st.sampled_from(CHARS), min_size=1, max_size=6)
suffix = st.sampled_from([".pdf", ".PDF", ".Pdf", ".txt", "", "/x.pdf"])


def _succ(char: str) -> str:
    return key_ranges._successor(char) or char


@st.composite
def key_sets(draw: st.DrawFn, prefix: str) -> list[str]:
    """Keys under ``prefix`` shaped to stress the cuts, plus their near neighbours."""
    stem = draw(st.sampled_from(["", "doc-", "a/" * 6, "x" * 40, "日本/", "é"]))
    names = draw(st.lists(st.builds(lambda *p: "".join(p), segment, suffix), max_size=25))
    if draw(st.booleans()):  # a numbered run, as most real buckets have
        width = draw(st.integers(1, 4))
        names += [f"{n:0{width}d}.pdf" for n in range(draw(st.integers(0, 30)))]
    keys = {prefix + stem + name for name in names}
    # Neighbours of the ladder's cuts: k[:j] + next(k[j]) and what sorts right around it.
    for key in draw(st.lists(st.sampled_from(sorted(keys)), max_size=4)) if keys else []:
        j = draw(st.integers(len(prefix), len(key) - 1)) if len(key) > len(prefix) else len(prefix)
        if j < len(key):
            cut = key[:j] + _succ(key[j])
            keys |= {cut, cut + ".pdf", key[: j + 1] + ".pdf", key[:j] + ".pdf"}
    return sorted(k for k in keys if len(k.encode()) <= 1024)


def _outside_keys(prefix: str) -> list[str]:
    """Keys the scan must not list: just before and just after the prefix's range."""
    if not prefix:
        return []
    return [prefix[:-1] + ".pdf", prefix[:-1] + _succ(prefix[-1]) + ".pdf", prefix]


def _scan(module: ModuleType, s3: Any, bucket: str, prefix: str) -> list[str]:
    """Run the handler's build_manifest and read the manifest's keys back from S3, in manifest order."""
    request = module.ScanRequest(bucket=bucket, prefix=prefix, source="test")
    result, _stats = asyncio.run(module.build_manifest(request, uuid.uuid4().hex))
    body = s3.get_object(Bucket=bucket, Key=result["manifest_key"])["Body"].read().decode()
    keys = [json.loads(line)["key"] for line in body.splitlines()]
    assert result["count"] == len(keys)
    return keys


def _expected(keys: list[str], prefix: str) -> Counter[str]:
    return Counter(k for k in keys if k.startswith(prefix) and k.lower().endswith(".pdf"))


@pytest.fixture(scope="module")
def moto_handler(s3_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    yield from _handler_for(s3_endpoint, tmp_path_factory)


def _handler_for(endpoint: str, tmp_path_factory: pytest.TempPathFactory, **env: str) -> Iterator[ModuleType]:
    """A cold-started handler with small pages; module-scoped (hypothesis runs many examples on it)."""
    mp = pytest.MonkeyPatch()
    try:
        settings_env = {
            "S3_ENDPOINT_URL": endpoint,
            "TMPDIR": str(tmp_path_factory.mktemp("lambda-tmp")),
            "LIST_CONCURRENCY": str(CONCURRENCY),
            "S3_MAX_ATTEMPTS": "2",
            "POWERTOOLS_LOG_LEVEL": "WARNING",
            **env,
        }
        for name, value in settings_env.items():
            mp.setenv(name, value)
        mp.setattr("tempfile.tempdir", None)
        from testkit.cold_import import import_fresh

        module = import_fresh("lambda_function_listing_test")
        module.LIST_PAGE_KEYS = PAGE_KEYS
        module.LIST_POLICY = key_ranges.ALWAYS_SPLIT  # a local server would be listed in order: cut anyway
        yield module
    finally:
        mp.undo()


PROPERTY = settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)


@pytest.mark.slow
@PROPERTY
@given(data=st.data(), prefix=st.sampled_from(["", "p/", "p", "2026/04/", "日/"]))
def test_every_pdf_exactly_once_on_moto(moto_handler: ModuleType, s3: Any, data: st.DataObject, prefix: str) -> None:
    keys = data.draw(key_sets(prefix))
    bucket = f"list-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    for key in [*keys, *_outside_keys(prefix)]:
        s3.put_object(Bucket=bucket, Key=key, Body=b"%PDF-")

    listed = _scan(moto_handler, s3, bucket, prefix)

    assert Counter(listed) == _expected(keys + _outside_keys(prefix), prefix)


# --- versitygw: a POSIX backend, so keys must also be valid paths -------------


def _posix_safe(keys: list[str]) -> list[str]:
    """Drop what a file system cannot hold next to each other: ``a`` beside ``a/b``, empty or dot segments."""
    kept = []
    for key in keys:
        parts = key.split("/")
        if any(p in ("", ".", "..") for p in parts) or any(len(p.encode()) > 200 for p in parts):
            continue
        kept.append(key)
    dirs = {k[: i + 1] for k in kept for i, c in enumerate(k) if c == "/"}
    return [k for k in kept if k + "/" not in dirs]


@pytest.fixture(scope="module")
def versitygw_handler(verifier: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:  # noqa: F811
    yield from _handler_for(
        verifier.endpoint,
        tmp_path_factory,
        AWS_ACCESS_KEY_ID=verifier.access_key,
        AWS_SECRET_ACCESS_KEY=verifier.secret_key,
        AWS_REGION="us-east-1",
    )


@pytest.mark.slow
@PROPERTY
@given(data=st.data(), prefix=st.sampled_from(["", "p/", "p", "2026/04/", "日/"]))
def test_every_pdf_exactly_once_on_versitygw(
    versitygw_handler: ModuleType,
    verifier_s3: Any,  # noqa: F811
    data: st.DataObject,
    prefix: str,
) -> None:
    keys = _posix_safe(data.draw(key_sets(prefix)))
    outside = _posix_safe(_outside_keys(prefix))
    bucket = f"list-{uuid.uuid4().hex[:16]}"
    verifier_s3.create_bucket(Bucket=bucket)
    for key in [*keys, *outside]:
        verifier_s3.put_object(Bucket=bucket, Key=key, Body=b"%PDF-")

    listed = _scan(versitygw_handler, verifier_s3, bucket, prefix)

    expected = _expected(_posix_safe(keys + outside), prefix)
    assert Counter(listed) == expected


# --- the cut functions alone --------------------------------------------------

texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)


@settings(max_examples=300)
@given(prefix=st.sampled_from(["", "p/", "日"]), low=texts, high=texts, seen=st.lists(texts, max_size=5))
def test_divide_cuts_strictly_between_in_order(prefix: str, low: str, high: str, seen: list[str]) -> None:
    low, high = prefix + low, prefix + high
    assume(low < high)
    space = KeySpace(prefix)
    for key in seen:
        space.learn(prefix + key)
    cuts = divide(space, low, high, 7)
    assert cuts == sorted(set(cuts)) and all(low < cut < high for cut in cuts)


@settings(max_examples=300)
@given(prefix=st.sampled_from(["", "p/"]), first=texts, last=texts, n=st.integers(1, 40))
def test_ladder_cuts_come_after_the_last_key_in_order(prefix: str, first: str, last: str, n: int) -> None:
    first, last = prefix + first, prefix + last
    assume(first <= last)
    space = KeySpace(prefix)
    space.learn(first)
    space.learn(last)
    cuts = ladder(space, first, last, n)
    assert len(cuts) <= n and cuts == sorted(set(cuts)) and all(cut > last for cut in cuts)


def test_cuts_follow_the_shape_of_the_keys() -> None:
    """Numbered keys are cut at growing powers of ten; a folder's rest within a page is not split."""
    space = KeySpace("2026/04/")
    for n in range(1000):
        space.learn(f"2026/04/doc-{n:07d}.pdf")
    near = ladder(space, "2026/04/doc-0000000.pdf", "2026/04/doc-0000999.pdf", 6)
    assert near[:3] == ["2026/04/doc-0000:", "2026/04/doc-0001", "2026/04/doc-001"]
    everything = ladder(space, "2026/04/doc-0000000.pdf", "2026/04/doc-0000999.pdf", 40)
    assert {"2026/04/doc-01", "2026/04/doc-1", "2026/04/e", "2026/04/z"} <= set(everything)
    [middle] = divide(space, "2026/04/doc-1000999.pdf", "2026/04/doc.", 1)
    assert middle.startswith("2026/04/doc-5")  # halfway through the digits, not the alphabet
    assert pages_left(space, "2026/04/doc-1000000.pdf", "2026/04/doc-1000999.pdf", "2026/04/doc-1001999.pdf") < 2


# --- the decision: when to split, measured on a simulated server ---------------


class SimulatedS3:
    """ListObjectsV2 over a sorted key list, on a virtual clock (no timing of the real machine).

    Each page takes ``page_s`` virtual seconds. ``waits=True`` is S3: the time
    is a round trip, so pages in flight at once overlap. ``waits=False`` is a
    local server: the time is its CPU, pages in flight share it, so asking
    twice at once lists no faster. The client spends ``client_s`` of CPU a page.
    """

    def __init__(self, keys: list[str], prefix: str, *, page_s: float, waits: bool, client_s: float = 0.001) -> None:
        self.keys, self.prefix, self.page_s, self.waits, self.client_s = sorted(keys), prefix, page_s, waits, client_s
        self.now = self.cpu = self.busy_until = 0.0
        self.answers: list[float] = []
        self.page_keys = 1000

    def clock(self) -> float:
        return self.now

    def cpu_clock(self) -> float:
        return self.cpu

    async def list_page(self, prefix: str, after: str, by_folder: bool) -> key_ranges.Page:
        # Discrete events: a request answers at ``end``; the clock jumps to the earliest answer
        # once every task has had its turn (so requests sent together overlap).
        if self.waits:
            end = self.now + self.page_s
        else:
            end = self.busy_until = max(self.now, self.busy_until) + self.page_s
        heapq.heappush(self.answers, end)
        while True:
            for _ in range(3):
                await asyncio.sleep(0)
            if self.answers[0] == end:
                heapq.heappop(self.answers)
                self.now = max(self.now, end)
                break
        self.cpu += self.client_s
        i = bisect.bisect_right(self.keys, max(after, prefix))
        keys: list[str] = []
        folders: list[str] = []
        while i < len(self.keys) and self.keys[i].startswith(prefix) and len(keys) + len(folders) < self.page_keys:
            rest = self.keys[i][len(prefix) :]
            if by_folder and "/" in rest:
                folder = prefix + rest.partition("/")[0] + "/"
                folders.append(folder)
                i = bisect.bisect_left(self.keys, folder[:-1] + "0")  # '0' follows '/': past the folder
            else:
                keys.append(self.keys[i])
                i += 1
        return keys, folders, i < len(self.keys) and self.keys[i].startswith(prefix)

    def run(self, concurrency: int = 32) -> tuple[key_ranges.ParallelListing, list[str]]:
        listed: list[str] = []

        async def emit(keys: list[str]) -> None:
            listed.extend(keys)

        listing = key_ranges.ParallelListing(
            self.prefix, self.list_page, emit, concurrency=concurrency, clock=self.clock, cpu_clock=self.cpu_clock
        )
        asyncio.run(listing.run())
        return listing, listed


FLAT = [f"2026/04/doc-{n:07d}.pdf" for n in range(100_000)]
FOLDERS = [f"2026/04/batch-{n // 1000:05d}/doc-{n:07d}.pdf" for n in range(100_000)]


@pytest.mark.parametrize("keys", [FLAT, FOLDERS], ids=["flat", "folders"])
def test_a_fast_server_is_listed_in_order(keys: list[str]) -> None:
    server = SimulatedS3(keys, "2026/04/", page_s=0.005, waits=False)
    listing, listed = server.run()
    assert listed == keys  # S3's order, every key once
    assert (listing.ranges, listing.peak_limit, listing.requests, listing.keys_received) == (1, 1, 100, len(keys))


@pytest.mark.parametrize("keys", [FLAT, FOLDERS], ids=["flat", "folders"])
def test_a_server_busy_on_its_own_cpu_gains_nothing_and_goes_back_in_order(keys: list[str]) -> None:
    """Slow pages that do not overlap (moto: its own CPU): one probe at 4, then in order again."""
    server = SimulatedS3(keys, "2026/04/", page_s=0.2, waits=False)
    listing, listed = server.run()
    assert sorted(listed) == keys and len(listed) == len(keys)
    assert listing.limit == 1 and listing.peak_limit == 4
    assert listing.keys_received <= 1.1 * len(keys)


@pytest.mark.parametrize("keys", [FLAT, FOLDERS], ids=["flat", "folders"])
@pytest.mark.parametrize("page_s", [0.075, 0.3])
def test_a_latency_bound_server_is_split_and_ramped_without_reading_twice(keys: list[str], page_s: float) -> None:
    server = SimulatedS3(keys, "2026/04/", page_s=page_s, waits=True)
    listing, listed = server.run(concurrency=32)
    assert sorted(listed) == keys and len(listed) == len(keys)
    assert listing.ranges > 4 and listing.peak_limit >= 8
    assert listing.keys_received <= 1.1 * len(keys)
    assert server.now < 0.2 * 100 * page_s  # virtual time: under a fifth of 100 pages in order


def test_a_short_listing_is_never_split() -> None:
    server = SimulatedS3(FLAT[:2500], "2026/04/", page_s=0.3, waits=True)
    listing, listed = server.run()
    assert listed == FLAT[:2500] and listing.ranges == 1 and listing.requests == 3


def test_the_ceiling_holds() -> None:
    server = SimulatedS3(FLAT, "2026/04/", page_s=0.3, waits=True)
    listing, listed = server.run(concurrency=4)
    assert sorted(listed) == FLAT and listing.peak_limit == 4


# --- many producers, one outcome ----------------------------------------------


@pytest.fixture
def filled_bucket(s3: Any) -> Iterator[tuple[str, list[str]]]:
    bucket = f"list-{uuid.uuid4().hex[:16]}"
    s3.create_bucket(Bucket=bucket)
    keys = [f"r/{c}{n:03d}.pdf" for c in string.ascii_lowercase[:6] for n in range(40)]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"%PDF-")
    yield bucket, keys


def test_sequential_listing_keeps_s3_order(
    load_handler: Callable[..., ModuleType], s3: Any, filled_bucket: tuple[str, list[str]]
) -> None:
    """``LIST_CONCURRENCY=1`` never splits: the manifest comes in S3's (lexicographic) order."""
    bucket, keys = filled_bucket
    module = load_handler(BUCKET_NAME=bucket, LIST_CONCURRENCY="1")
    module.LIST_PAGE_KEYS = PAGE_KEYS
    assert _scan(module, s3, bucket, "r/") == keys


def test_parallel_listing_uses_many_ranges_and_counts_them(
    load_handler: Callable[..., ModuleType], s3: Any, filled_bucket: tuple[str, list[str]]
) -> None:
    bucket, keys = filled_bucket
    module = load_handler(BUCKET_NAME=bucket, LIST_CONCURRENCY="8")
    module.LIST_PAGE_KEYS = 10
    module.LIST_POLICY = key_ranges.ALWAYS_SPLIT
    request = module.ScanRequest(bucket=bucket, prefix="r/", source="test")
    result, stats = asyncio.run(module.build_manifest(request, "many-ranges"))
    assert result["count"] == len(keys)
    assert stats.ranges > 1 and stats.pages >= len(keys) // 10 and stats.concurrency > 1
    assert stats.keys_received >= len(keys)


def test_a_local_server_is_listed_in_order(
    load_handler: Callable[..., ModuleType], s3: Any, filled_bucket: tuple[str, list[str]]
) -> None:
    """moto answers in milliseconds: the default policy never splits, the manifest is in S3's order."""
    bucket, keys = filled_bucket
    module = load_handler(BUCKET_NAME=bucket)
    module.LIST_PAGE_KEYS = 10
    module.LIST_POLICY = key_ranges.Policy(latency_bound_s=10.0)  # no loopback page takes 10 s
    request = module.ScanRequest(bucket=bucket, prefix="r/", source="test")
    result, stats = asyncio.run(module.build_manifest(request, "in-order"))
    assert (result["count"], stats.ranges, stats.concurrency, stats.keys_received) == (len(keys), 1, 1, len(keys))


def test_one_failing_range_stops_the_whole_scan_cleanly(
    load_handler: Callable[..., ModuleType],
    s3: Any,
    s3_endpoint: str,
    filled_bucket: tuple[str, list[str]],
    lambda_tmp: Any,
) -> None:
    """A LIST that keeps failing in one range fails the scan with S3's error; no range is left running."""
    bucket, _ = filled_bucket
    with running_proxy(s3_endpoint) as (proxy, url):

        def decide(info: RequestInfo) -> Action:
            failing = info.operation == "ListObjectsV2" and info.nth >= 4 and "start-after=r%2Fc" in info.target
            return Action(Fault.INTERNAL_500 if failing else Fault.NONE)

        proxy.reset_schedule(decide)
        module = load_handler(BUCKET_NAME=bucket, LIST_CONCURRENCY="8", S3_ENDPOINT_URL=url, S3_MAX_ATTEMPTS="2")
        module.LIST_PAGE_KEYS = 10
        module.LIST_POLICY = key_ranges.ALWAYS_SPLIT
        request = module.ScanRequest(bucket=bucket, prefix="r/", source="test")

        async def scan() -> set[asyncio.Task[Any]]:
            with pytest.raises(module.ClientError) as failure:
                await module.build_manifest(request, "fails")
            assert failure.value.response["Error"]["Code"] == "InternalError"
            return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}

        assert asyncio.run(scan()) == set()  # every range task ended with the scan
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="manifests/")
    assert not s3.list_multipart_uploads(Bucket=bucket).get("Uploads")
    assert list(lambda_tmp.iterdir()) == []


def test_deadline_stops_every_range(
    load_handler: Callable[..., ModuleType], s3: Any, filled_bucket: tuple[str, list[str]], lambda_tmp: Any
) -> None:
    bucket, _ = filled_bucket
    module = load_handler(BUCKET_NAME=bucket, LIST_CONCURRENCY="8", DEADLINE_MARGIN_MS="1000")
    module.LIST_PAGE_KEYS = 10
    module.LIST_POLICY = key_ranges.ALWAYS_SPLIT
    calls = iter(range(10**6))

    def time_left_ms() -> int:
        return 60_000 if next(calls) < 6 else 500  # the deadline arrives after six pages

    request = module.ScanRequest(bucket=bucket, prefix="r/", source="test")
    with pytest.raises(module.ScanDeadlineExceeded):
        asyncio.run(module.build_manifest(request, "late", time_left_ms=time_left_ms))
    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="manifests/")
    assert list(lambda_tmp.iterdir()) == []


def test_fault_proxy_adds_the_latency_model(s3_endpoint: str, s3: Any, filled_bucket: tuple[str, list[str]]) -> None:
    """The proxy holds a LIST for the model's LIST time and any other request for its ``other`` time."""
    import time

    import boto3

    from testkit.latency_model import parse

    bucket, _ = filled_bucket
    with running_proxy(s3_endpoint, latency=parse("list=0.25,other=0.05")) as (_, url):
        client = boto3.client("s3", endpoint_url=url, region_name="us-east-1", config=s3.meta.config)
        started = time.perf_counter()
        assert client.list_objects_v2(Bucket=bucket, Prefix="r/", MaxKeys=1)["KeyCount"] == 1
        listed = time.perf_counter() - started
        started = time.perf_counter()
        client.head_object(Bucket=bucket, Key="r/a000.pdf")
        headed = time.perf_counter() - started
    assert listed >= 0.25 and headed >= 0.05


def test_the_listing_modules_ship_in_the_zip() -> None:
    """tools/package.py follows the handler's imports: the new modules go into the Lambda zip."""
    from tools.package import ROOT, _local_files, local_modules

    shipped = {name for name, _ in _local_files(local_modules(), ROOT)}
    assert {"lambda_function.py", "pdf_manifest/key_ranges.py", "pdf_manifest/list_parser.py"} <= shipped
    assert not {
        name for name in shipped if name.endswith(("latency_model.py", "s3_standin.py"))
    }  # bench code stays out
