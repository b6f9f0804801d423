"""Turn whatever event invoked the function into one validated scan request.

Presigned URLs are bearer tokens for the function role's read access, so the
event may only choose among buckets the operator listed in ``ALLOWED_BUCKETS``.
Every rejection is a ``BadRequest`` whose message says what to fix.

Accepted shapes:

* ``{}``: the configured bucket and prefix;
* direct invoke or a Step Functions Map item: ``{"bucket": ..., "prefix": ...}``,
  either key optional;
* S3 ``ObjectCreated:*`` notifications: the PDFs named in the records, each
  once however many records name it;
* API Gateway (REST or HTTP API) and Function URL events:
  ``queryStringParameters.prefix`` and ``.bucket``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

MAX_KEY_BYTES = 1024  # S3's limit for a key, and so for any useful prefix
SHOWN_CHARS = 64  # how much of a caller's value an error message (and so a log line) quotes
_DIRECT_KEYS = frozenset({"bucket", "prefix"})


def shown(value: Any, limit: int = SHOWN_CHARS) -> str:
    """A caller's value as an error message quotes it: ASCII-escaped and cut to ``limit`` characters.

    Messages go back in the response and into the log; echoing a value whole
    would let an 800k-character bucket name overflow the response limit.
    """
    text = str(value)
    if len(text) <= limit:
        return ascii(text)
    return f"{text[:limit]!a}... ({len(text)} characters)"


def _shown_names(names: set[Any]) -> str:
    listed = ", ".join(shown(name, 32) for name in sorted(names, key=str)[:5])
    return f"[{listed}{', ...' if len(names) > 5 else ''}]"


def _key_error(what: str, value: str) -> str | None:
    """Why ``value`` cannot be an S3 key (or prefix), or None: valid UTF-8 of at most 1024 bytes."""
    try:
        size = len(value.encode("utf-8"))
    except UnicodeEncodeError:
        return f"{what} {shown(value)} is not valid Unicode (it holds a lone surrogate)"
    if size > MAX_KEY_BYTES:
        return f"{what} is {size} bytes; S3 keys, and so prefixes, end at {MAX_KEY_BYTES}"
    return None


class BadRequest(ValueError):
    """The event cannot be served as sent; the caller should fix it, not retry."""


@dataclass(frozen=True)
class ScanRequest:
    """What to put in the manifest: a prefix to scan, or an explicit list of keys."""

    bucket: str
    prefix: str
    source: str  # which event shape it came from, for logs
    keys: tuple[str, ...] | None = None  # set for S3 notifications: no listing needed


def parse_event(
    event: Any, *, default_bucket: str, default_prefix: str, allowed_buckets: frozenset[str]
) -> ScanRequest:
    """Recognise the event's shape and check every value it carries."""
    if event is None:
        event = {}
    if not isinstance(event, Mapping):
        raise BadRequest(f"the event must be a JSON object, got {type(event).__name__}")

    if "Records" in event:
        return _from_s3_notification(event["Records"], allowed_buckets)
    if "requestContext" in event and ("httpMethod" in event or "rawPath" in event or "routeKey" in event):
        params = event.get("queryStringParameters") or {}
        if not isinstance(params, Mapping):
            raise BadRequest("queryStringParameters must be an object")
        unknown = set(params) - _DIRECT_KEYS
        if unknown:
            raise BadRequest(f"unknown query parameter(s) {_shown_names(unknown)}; use 'bucket' and/or 'prefix'")
        return _checked(params, default_bucket, default_prefix, allowed_buckets, source="http")
    if "prefixes" in event:
        raise BadRequest("send one prefix per invocation; fan out over 'prefixes' with the Step Functions Map state")
    unknown = set(event) - _DIRECT_KEYS
    if unknown:
        raise BadRequest(
            f"unrecognised event field(s) {_shown_names(unknown)}; send {{}}, {{'bucket', 'prefix'}}, "
            "an S3 ObjectCreated notification or an API Gateway request"
        )
    return _checked(event, default_bucket, default_prefix, allowed_buckets, source="direct" if event else "defaults")


def parse_allowed_buckets(raw: str, default_bucket: str) -> frozenset[str]:
    """``ALLOWED_BUCKETS`` is comma-separated; the configured bucket is always allowed."""
    return frozenset(name.strip() for name in raw.split(",") if name.strip()) | {default_bucket}


def _checked(
    fields: Mapping[str, Any], default_bucket: str, default_prefix: str, allowed: frozenset[str], source: str
) -> ScanRequest:
    bucket = fields.get("bucket", default_bucket)
    prefix = fields.get("prefix", default_prefix)
    if not isinstance(bucket, str):
        raise BadRequest(f"'bucket' must be a string, got {type(bucket).__name__}")
    if not isinstance(prefix, str):
        raise BadRequest(f"'prefix' must be a string, got {type(prefix).__name__}")
    _check_bucket(bucket, allowed)
    problem = _key_error("'prefix'", prefix)
    if problem:
        raise BadRequest(problem)
    return ScanRequest(bucket=bucket, prefix=prefix, source=source)


def _check_bucket(bucket: str, allowed: frozenset[str]) -> None:
    # Exact match only: no case folding, no ARN parsing, no trimming. Anything
    # looser is a way round the list.
    if bucket not in allowed:
        hint = " (give the bucket's name, not its ARN)" if bucket.startswith("arn:") else ""
        raise BadRequest(f"bucket {shown(bucket)} is not in ALLOWED_BUCKETS{hint}")


def _from_s3_notification(records: Any, allowed: frozenset[str]) -> ScanRequest:
    if not isinstance(records, list) or not records:
        raise BadRequest("'Records' must be a non-empty list of S3 notification records")
    buckets: set[str] = set()
    keys: dict[str, None] = {}  # each key once, in the order first named (S3 may deliver a record twice)
    for index, record in enumerate(records):
        try:
            if record["eventSource"] != "aws:s3" or not str(record["eventName"]).startswith("ObjectCreated:"):
                raise BadRequest(f"record {index} is not an S3 ObjectCreated event")
            bucket = record["s3"]["bucket"]["name"]
            raw_key = record["s3"]["object"]["key"]
        except (KeyError, TypeError):
            raise BadRequest(f"record {index} lacks s3.bucket.name or s3.object.key") from None
        if not isinstance(bucket, str) or not isinstance(raw_key, str):
            raise BadRequest(f"record {index} has a non-string bucket or key")
        _check_bucket(bucket, allowed)
        buckets.add(bucket)
        try:
            # S3 form-encodes keys in notifications ('+' is a space); a key is UTF-8, so bytes that
            # do not decode name no object, and must not become U+FFFD (another key).
            key = unquote_plus(raw_key, errors="strict")
        except UnicodeDecodeError:
            raise BadRequest(f"record {index}: key {shown(raw_key)} does not URL-decode to UTF-8") from None
        problem = _key_error(f"record {index}: key", key)
        if problem:
            raise BadRequest(problem)
        keys[key] = None
    if len(buckets) > 1:
        raise BadRequest(f"records name {len(buckets)} buckets; one manifest covers one bucket")
    return ScanRequest(bucket=buckets.pop(), prefix="", source="s3-notification", keys=tuple(keys))
