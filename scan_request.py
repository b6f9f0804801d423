"""Turn whatever event invoked the function into one validated scan request.

Presigned URLs are bearer tokens for the function role's read access, so the
event may only choose among buckets the operator listed in ``ALLOWED_BUCKETS``.
Every rejection is a ``BadRequest`` whose message says what to fix.

Accepted shapes:

* ``{}``: the configured bucket and prefix;
* direct invoke or a Step Functions Map item: ``{"bucket": ..., "prefix": ...}``,
  either key optional;
* S3 ``ObjectCreated:*`` notifications: the PDFs named in the records;
* API Gateway (REST or HTTP API) and Function URL events:
  ``queryStringParameters.prefix`` and ``.bucket``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

MAX_KEY_BYTES = 1024  # S3's limit for a key, and so for any useful prefix
_DIRECT_KEYS = frozenset({"bucket", "prefix"})


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
            raise BadRequest(f"unknown query parameter(s) {sorted(unknown)}; use 'bucket' and/or 'prefix'")
        return _checked(params, default_bucket, default_prefix, allowed_buckets, source="http")
    if "prefixes" in event:
        raise BadRequest("send one prefix per invocation; fan out over 'prefixes' with the Step Functions Map state")
    unknown = set(event) - _DIRECT_KEYS
    if unknown:
        raise BadRequest(
            f"unrecognised event field(s) {sorted(unknown)}; send {{}}, {{'bucket', 'prefix'}}, "
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
    if len(prefix.encode("utf-8")) > MAX_KEY_BYTES:
        raise BadRequest(f"'prefix' is {len(prefix.encode('utf-8'))} bytes; S3 keys, and so prefixes, end at 1024")
    return ScanRequest(bucket=bucket, prefix=prefix, source=source)


def _check_bucket(bucket: str, allowed: frozenset[str]) -> None:
    # Exact match only: no case folding, no ARN parsing, no trimming. Anything
    # looser is a way round the list.
    if bucket not in allowed:
        hint = " (give the bucket's name, not its ARN)" if bucket.startswith("arn:") else ""
        raise BadRequest(f"bucket {bucket!r} is not in ALLOWED_BUCKETS{hint}")


def _from_s3_notification(records: Any, allowed: frozenset[str]) -> ScanRequest:
    if not isinstance(records, list) or not records:
        raise BadRequest("'Records' must be a non-empty list of S3 notification records")
    buckets: set[str] = set()
    keys: list[str] = []
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
        keys.append(unquote_plus(raw_key))  # S3 form-encodes keys in notifications: '+' is a space
    if len(buckets) > 1:
        raise BadRequest(f"records name {len(buckets)} buckets; one manifest covers one bucket")
    return ScanRequest(bucket=buckets.pop(), prefix="", source="s3-notification", keys=tuple(keys))
