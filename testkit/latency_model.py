"""How long real S3 takes to answer, per operation: the delay the bench stand-in and the fault proxy add.

On loopback every request answers in about a millisecond, so a benchmark there
measures CPU and hides the thing that decides a big scan on AWS: a
ListObjectsV2 page is a round trip of a few hundred milliseconds, and pages
of one listing come one after the other. This model puts that latency back,
per request, by operation. Defaults, and where each comes from:

* ``list_s`` = 0.3 s per ListObjectsV2 page (1,000 keys): ClickHouse issue
  #65572 (A. Milovidov, 2024): "Listing operation in S3 is extremely slow: it
  typically takes 0.3 seconds and gives only 1000 items per request", hence
  ~1 hour for 10M keys. ClickHouse PR #107567 (2026) measured ~75 ms a page
  against one public bucket, so 0.3 s is the slow end of what users see:
  pass ``list=0.075`` for the fast end.
* ``other_s`` = 0.1 s for every other request (HEAD, small PUT, Create/Complete
  multipart, Delete): AWS's "Best Practices Design Patterns: Optimizing Amazon
  S3 Performance" gives "consistent small object latencies (and first-byte-out
  latencies for larger objects) of roughly 100-200 milliseconds"; the low end.
* uploads (PutObject, UploadPart) add ``put_bytes_per_s`` = 85 MB/s on top of
  ``other_s``: the same paper's sizing rule is one concurrent request per
  85-90 MB/s of network throughput, i.e. what one connection carries.

The model is deterministic (no jitter): runs compare like with like, and a
scan's time under it is its zero-latency time plus the waits it cannot hide.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

LIST_OPERATIONS = frozenset({"ListObjectsV2", "ListObjects"})
UPLOAD_OPERATIONS = frozenset({"PutObject", "UploadPart"})


@dataclass(frozen=True)
class LatencyModel:
    list_s: float = 0.3
    other_s: float = 0.1
    put_bytes_per_s: float = 85e6

    def delay(self, operation: str, body_bytes: int = 0) -> float:
        """Seconds to hold a request of ``operation`` carrying ``body_bytes`` before answering it."""
        if operation in LIST_OPERATIONS:
            return self.list_s
        if operation in UPLOAD_OPERATIONS and self.put_bytes_per_s > 0:
            return self.other_s + body_bytes / self.put_bytes_per_s
        return self.other_s

    @property
    def is_zero(self) -> bool:
        return self.list_s == 0 and self.other_s == 0 and self.put_bytes_per_s <= 0

    def describe(self) -> str:
        if self.is_zero:
            return "zero latency"
        return (
            f"LIST page {self.list_s * 1000:.0f} ms, other requests {self.other_s * 1000:.0f} ms, "
            f"uploads +1 s per {self.put_bytes_per_s / 1e6:.0f} MB"
        )

    def spec(self) -> str:
        """The text ``parse`` reads back (how a parent hands the model to a stand-in process)."""
        if self.is_zero:
            return "off"
        return f"list={self.list_s},other={self.other_s},put_mbps={self.put_bytes_per_s / 1e6}"


ZERO = LatencyModel(0.0, 0.0, 0.0)
PUBLISHED = LatencyModel()
_NAMES = {"list": "list_s", "other": "other_s", "put_mbps": "put_bytes_per_s"}


def parse(text: str) -> LatencyModel:
    """``"off"``/``"0"``, ``"published"``, or ``name=value`` pairs over the published defaults.

    Names: ``list`` and ``other`` (seconds), ``put_mbps`` (MB/s an upload moves).
    """
    text = text.strip().lower()
    if text in {"", "0", "off", "none", "zero"}:
        return ZERO
    if text in {"published", "default", "model", "on"}:
        return PUBLISHED
    changes: dict[str, float] = {}
    for item in text.split(","):
        name, sep, value = item.partition("=")
        field_name = _NAMES.get(name.strip())
        if not sep or field_name is None:
            raise ValueError(f"latency spec item {item!r}: expected one of {', '.join(_NAMES)}=NUMBER")
        number = float(value)
        if number < 0:
            raise ValueError(f"latency spec item {item!r}: must not be negative")
        changes[field_name] = number * 1e6 if name.strip() == "put_mbps" else number
    return replace(PUBLISHED, **changes)
