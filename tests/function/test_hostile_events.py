"""Hostile events to the handler, and manifests any JSON Lines reader splits right.

A lone surrogate is a 400, not a ``UnicodeEncodeError`` (a function error Lambda
retries); notification keys over S3's 1024 bytes are refused, not presigned;
error messages show a bounded part of a value, so an 800k-backslash bucket name
cannot overflow the response nor a 6 MB value make a 6 MB log line. Manifest
lines escape U+2028, U+2029 and U+0085, which ``str.splitlines()`` splits.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from pdf_manifest.scan_request import BadRequest, parse_event


def parse(event: Any) -> Any:
    return parse_event(
        event, default_bucket="reports", default_prefix="2026/04/", allowed_buckets=frozenset({"reports"})
    )


def s3_record(key: str, bucket: str = "reports") -> dict[str, Any]:
    return {
        "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put",
        "s3": {"bucket": {"name": bucket}, "object": {"key": key}},
    }


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({"prefix": "2026/\ud800/"}, "lone surrogate"),
        ({"prefix": "\udfff"}, "lone surrogate"),
        ({"Records": [s3_record("a\udc80.pdf")]}, "lone surrogate"),
        ({"Records": [s3_record("k" * 1021 + ".pdf")]}, "1025 bytes"),
        ({"Records": [s3_record("é" * 511 + ".pdf")]}, "1026 bytes"),
        ({"requestContext": {}, "httpMethod": "GET", "queryStringParameters": {"prefix": "\ud800"}}, "lone surrogate"),
    ],
)
def test_keys_and_prefixes_s3_cannot_hold_are_bad_requests(event, message):
    with pytest.raises(BadRequest, match=message):
        parse(event)


def test_a_notification_key_of_exactly_1024_bytes_is_accepted():
    assert parse({"Records": [s3_record("k" * 1020 + ".pdf")]}).keys == ("k" * 1020 + ".pdf",)


@pytest.mark.parametrize(
    "event",
    [
        {"bucket": "\\" * 800_000},
        {"bucket": "x" * (6 << 20)},
        {"bucket": "\ud800" * 1000},
        {"Records": [s3_record("a.pdf", bucket="\\" * 800_000)]},
        {"x" * 100_000: 1, "y" * 100_000: 2},
        {f"field{i}": i for i in range(10_000)},
        {"requestContext": {}, "httpMethod": "GET", "queryStringParameters": {"z" * 500_000: "1"}},
    ],
    ids=["backslashes", "6mb-bucket", "surrogates", "record-bucket", "long-fields", "many-fields", "long-param"],
)
def test_error_messages_quote_a_bounded_escaped_part_of_hostile_values(event):
    with pytest.raises(BadRequest) as raised:
        parse(event)

    message = str(raised.value)
    assert len(message) < 600
    message.encode("ascii")  # escaped: no surrogates or control characters reach logs


def test_the_handler_answers_hostile_events_with_a_small_400(load_handler, context_factory, bucket, capsys):
    module = load_handler(BUCKET_NAME=bucket)
    capsys.readouterr()

    answers = [
        module.handler(event, context_factory())
        for event in (
            {"bucket": "\\" * 800_000},
            {"prefix": "x" * (6 << 20)},
            {"prefix": "2026/\ud800/"},
            {"Records": [s3_record("\udc80.pdf", bucket=bucket)]},
            {"Records": [s3_record("k" * 2000 + ".pdf", bucket=bucket)]},
        )
    ]

    logged = capsys.readouterr().out
    assert [answer["statusCode"] for answer in answers] == [400] * 5
    assert all(len(json.dumps(answer)) < 1000 for answer in answers)
    assert max(len(line) for line in logged.split("\n")) < 4000


@pytest.mark.parametrize("separator", ["\u2028", "\u2029", "\x85"])
def test_manifest_lines_stay_one_line_per_key_for_splitlines(load_handler, context_factory, bucket, s3, separator):
    keys = {f"2026/04/a{separator}b.pdf", f"2026/04/{separator}.pdf", "2026/04/plain.pdf"}
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"%PDF-")
    module = load_handler(BUCKET_NAME=bucket)

    body = json.loads(module.handler({}, context_factory())["body"])
    text = requests.get(body["manifest_url"], timeout=10).text

    assert body["count"] == 3
    assert separator not in text  # escaped: the same JSON string value
    assert {json.loads(line)["key"] for line in text.splitlines()} == keys
    assert len(text.splitlines()) == len(text.split("\n")[:-1]) == 3
