"""list_parser.py returns exactly what botocore's own parser returns for any ListObjectsV2 page.

Pages are generated with every member S3 documents (and some it does not),
in any order and number, with text that needs XML escaping; each is parsed
by botocore's rest-xml parser and by ``ListObjectsV2Parser`` and the whole
results, ``ResponseMetadata`` included, must be equal. A real page from moto
through a real client is checked the same way.
"""

from __future__ import annotations

import asyncio
from typing import Any
from xml.sax.saxutils import escape

import botocore.session
import pytest
from aiobotocore.parsers import AioRestXMLParser
from hypothesis import given, settings
from hypothesis import strategies as st

from pdf_manifest.list_parser import ListObjectsV2Parser, ListObjectsV2ParserFactory, _Fallback

SHAPE = botocore.session.get_session().get_service_model("s3").operation_model("ListObjectsV2").output_shape
NS = "http://s3.amazonaws.com/doc/2006-03-01/"

text = st.text(st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from("\t\n&<>\"' "), max_size=20)
digits = st.integers(0, 10**12).map(str)


QUOTES = {'"': "&quot;"}


def element(tag: str, value: str) -> str:
    """``<tag>value</tag>``, escaped; some empty values as ``<tag/>`` (S3 sends both)."""
    if value == "" and len(tag) % 2:
        return f"<{tag}/>"
    return f"<{tag}>{escape(value, QUOTES)}</{tag}>"


object_field = st.one_of(
    st.tuples(st.sampled_from(["Key", "ETag", "StorageClass", "ChecksumType"]), text),
    st.tuples(st.just("LastModified"), st.sampled_from(["2026-04-01T00:00:00.000Z", "2009-10-12T17:50:30Z"])),
    st.tuples(st.just("Size"), digits),
    st.tuples(st.just("ChecksumAlgorithm"), st.sampled_from(["CRC32", "CRC64NVME", "SHA256"])),
    st.tuples(st.just("Unmodelled"), text),
)
REPEATABLE = ("ChecksumAlgorithm", "Unmodelled")  # a list member, and a tag botocore ignores


def scalars_once(fields: list[tuple[str, str]]) -> bool:
    """botocore turns a repeated scalar into a list of XML nodes: no answer to match (see the fallback test)."""
    tags = [t for t, _ in fields if t not in REPEATABLE]
    return len(tags) == len(set(tags))


contents = (
    st.lists(object_field, max_size=7)
    .filter(scalars_once)
    .map(lambda fields: "<Contents>" + "".join(element(t, v) for t, v in fields) + "</Contents>")
)
owner = st.just("<Contents><Key>k</Key><Owner><ID>id</ID><DisplayName>n</DisplayName></Owner></Contents>")
folder = text.map(lambda p: f"<CommonPrefixes>{element('Prefix', p)}</CommonPrefixes>")
page_field = st.one_of(
    st.tuples(
        st.sampled_from(
            ["Name", "Prefix", "Delimiter", "EncodingType", "ContinuationToken", "NextContinuationToken", "StartAfter"]
        ),
        text,
    ).map(lambda tv: element(*tv)),
    st.tuples(st.sampled_from(["MaxKeys", "KeyCount"]), digits).map(lambda tv: element(*tv)),
    st.sampled_from(["true", "false"]).map(lambda v: element("IsTruncated", v)),
    text.map(lambda v: element("SomethingNew", v)),
)
pages = st.lists(st.one_of(page_field, contents, contents, folder), max_size=12).filter(
    lambda parts: scalars_once(
        [
            (p[1 : p.index(">")].rstrip("/"), "")
            for p in parts
            if p.startswith("<") and not p.startswith(("<Contents", "<CommonPrefixes", "<SomethingNew"))
        ]
    )
)


def parse_both(body: bytes, **defaults: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    response = {"status_code": 200, "headers": {"x-amz-request-id": "r1", "x-amz-request-charged": "requester"}}
    response["body"] = body

    async def both() -> tuple[dict[str, Any], dict[str, Any]]:
        expected = await AioRestXMLParser(**defaults).parse(dict(response), SHAPE)
        actual = await ListObjectsV2Parser(**defaults).parse(dict(response), SHAPE)
        return expected, actual

    return asyncio.run(both())


@settings(max_examples=400, deadline=None)
@given(parts=pages, timestamps=st.sampled_from(["str", "default"]), namespaced=st.booleans())
def test_same_result_as_botocore(parts: list[str], timestamps: str, namespaced: bool) -> None:
    xmlns = f' xmlns="{NS}"' if namespaced else ""
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult{xmlns}>{"".join(parts)}</ListBucketResult>'
    defaults = {"timestamp_parser": str} if timestamps == "str" else {}
    expected, actual = parse_both(body.encode(), **defaults)
    assert actual == expected


@given(parts=st.lists(st.one_of(contents, owner), min_size=1, max_size=3))
def test_pages_with_owners_are_left_to_botocore(parts: list[str]) -> None:
    body = f"<ListBucketResult>{''.join(parts)}</ListBucketResult>".encode()
    expected, actual = parse_both(body, timestamp_parser=str)
    assert actual == expected


@pytest.mark.parametrize(
    "page",
    [
        "<Name>a</Name><Name>b</Name>",
        "<Contents><Key>a</Key><Key>b</Key></Contents>",
        "<CommonPrefixes><Prefix>a</Prefix><Prefix>b</Prefix></CommonPrefixes>",
        "<Contents><Key>k</Key><RestoreStatus><IsRestoreInProgress>true</IsRestoreInProgress></RestoreStatus></Contents>",
    ],
)
def test_what_botocore_answers_oddly_is_left_to_it(page: str) -> None:
    with pytest.raises(_Fallback):
        ListObjectsV2Parser(timestamp_parser=str).parse_page(f"<ListBucketResult>{page}</ListBucketResult>".encode())


def test_other_operations_and_errors_use_botocore(s3: Any, bucket: str) -> None:
    """A real client built on the factory lists, fails and heads exactly as a stock one does."""
    import aiobotocore.session

    for n in range(5):
        s3.put_object(Bucket=bucket, Key=f"p/&<{n}>\u00e9 x.pdf", Body=b"%PDF-")
    endpoint = s3.meta.endpoint_url

    async def listings() -> list[Any]:
        results = []
        for factory in (None, ListObjectsV2ParserFactory()):
            session = aiobotocore.session.get_session()
            if factory is not None:
                session.register_component("response_parser_factory", factory)
            session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=str)
            async with session.create_client("s3", endpoint_url=endpoint, region_name="us-east-1") as client:
                page = await client.list_objects_v2(Bucket=bucket, Prefix="p/", MaxKeys=3)
                for volatile in ("HTTPHeaders", "RetryAttempts"):
                    page["ResponseMetadata"].pop(volatile, None)
                page["ResponseMetadata"].pop("RequestId", None)
                head = await client.head_object(Bucket=bucket, Key=page["Contents"][0]["Key"])
                with pytest.raises(client.exceptions.NoSuchBucket) as missing:
                    await client.list_objects_v2(Bucket=bucket + "-missing")
                results.append((page, head["ContentLength"], missing.value.response["Error"]["Code"]))
        return results

    stock, fast = asyncio.run(listings())
    assert fast == stock
    assert [c["Key"] for c in fast[0]["Contents"]] == [f"p/&<{n}>\u00e9 x.pdf" for n in range(3)]  # url-decoded
