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
from botocore.handlers import _handle_200_error, _looks_like_special_case_error
from hypothesis import given, settings
from hypothesis import strategies as st

from pdf_manifest.list_parser import (
    ListObjectsV2Parser,
    ListObjectsV2ParserFactory,
    _Fallback,
    handle_200_error,
    install,
    scan_page,
)

SHAPE = botocore.session.get_session().get_service_model("s3").operation_model("ListObjectsV2").output_shape
NS = "http://s3.amazonaws.com/doc/2006-03-01/"

text = st.text(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff")  # not XML characters
    | st.sampled_from("\t\n&<>\"' "),
    max_size=20,
)
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
                install(session)  # the parser factory and the before-parse check, as the handler uses them
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


# ---------------------------------------------------------------------------
# The byte-level scanner (scan_page) and the before-parse check it replaces.
# ---------------------------------------------------------------------------


def xml_char(c: str) -> bool:
    """XML 1.0's Char: what may stand in a document, raw or as a reference."""
    code = ord(c)
    return c in "\t\n\r" or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or code >= 0x10000


awkward = st.text(
    st.characters(blacklist_categories=("Cs",)).filter(xml_char) | st.sampled_from("&<>\"'\r\n\t]é😀\u2028"),
    max_size=12,
)


@st.composite
def escaped(draw: st.DrawFn, value: str) -> str:
    """``value`` as XML character data, each character written raw, as a named entity or a numeric reference."""
    out: list[str] = []
    for c in value:
        forms = [f"&#{ord(c)};", f"&#x{ord(c):X};", f"&#x{ord(c):04x};"]
        if c not in "&<\r" and not (c == ">" and "".join(out).endswith("]]")):
            forms.append(c)
        forms += [{"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&apos;"}.get(c, c)]
        out.append(draw(st.sampled_from([f for f in forms if f not in "&<\r" or len(f) > 1])))
    return "".join(out)


@st.composite
def uniform_pages(draw: st.DrawFn) -> str:
    """A page whose objects all carry the same tags in the same order (what S3 servers send), awkward text."""

    def leaf(tag: str, value: str) -> str:
        return f"<{tag}>{draw(escaped(value))}</{tag}>"

    layout = draw(
        st.lists(
            st.sampled_from(
                ["Key", "LastModified", "ETag", "Size", "StorageClass", "ChecksumAlgorithm", "ChecksumType"]
            )
            | st.just("Unmodelled"),
            unique=True,
            max_size=8,
        )
    )
    values = {"Size": digits, "LastModified": st.sampled_from(["2026-04-01T00:00:00.000Z", "2009-10-12T17:50:30Z"])}
    objects = [
        "<Contents>" + "".join(leaf(tag, draw(values.get(tag, awkward))) for tag in layout) + "</Contents>"
        for _ in range(draw(st.integers(0, 5)))
    ]
    text_members = draw(st.lists(st.sampled_from(sorted(_TEXT_MEMBERS)), unique=True))
    members = [leaf(tag, draw(awkward)) for tag in text_members]
    members += [
        leaf(tag, draw(digits)) for tag in draw(st.lists(st.sampled_from(["MaxKeys", "KeyCount"]), unique=True))
    ]
    if draw(st.booleans()):
        members.append(leaf("IsTruncated", draw(st.sampled_from(["true", "false"]))))
    members += [
        f"<CommonPrefixes>{leaf('Prefix', draw(awkward))}</CommonPrefixes>" for _ in range(draw(st.integers(0, 3)))
    ]
    if draw(st.booleans()) and "EncodingType" not in text_members:
        members.append("<EncodingType/>")
    parts = draw(st.permutations(members + objects))
    gap = draw(st.sampled_from(["", "\n", "  "]))
    xmlns = draw(st.sampled_from(["", f' xmlns="{NS}"']))
    declaration = draw(st.sampled_from(["", '<?xml version="1.0" encoding="UTF-8"?>\n', "<?xml version='1.0'?>"]))
    return f"{declaration}<ListBucketResult{xmlns}>{gap}{gap.join(parts)}{gap}</ListBucketResult>{gap}"


_TEXT_MEMBERS = {
    "Name",
    "Prefix",
    "Delimiter",
    "EncodingType",
    "ContinuationToken",
    "NextContinuationToken",
    "StartAfter",
}


def botocore_page(body: bytes) -> dict[str, Any]:
    parsed = asyncio.run(
        AioRestXMLParser(timestamp_parser=str).parse({"status_code": 200, "headers": {}, "body": body}, SHAPE)
    )
    parsed.pop("ResponseMetadata", None)
    return parsed


@settings(max_examples=300, deadline=None)
@given(page=uniform_pages())
def test_scanner_reads_what_botocore_reads(page: str) -> None:
    """Pages laid out as S3 lays them out are read by the scanner itself, to botocore's very result."""
    body = page.encode()
    scanned = scan_page(body)
    assert scanned is not None
    assert scanned == botocore_page(body)
    assert not _looks_like_special_case_error(200, body)


damage = st.one_of(
    st.tuples(st.just("cut"), st.integers(0, 10**6), st.just("")),
    st.tuples(
        st.just("insert"),
        st.integers(0, 10**6),
        st.sampled_from(
            [
                "<",
                ">",
                "&",
                "&#0;",
                "&#xD800;",
                "&bogus;",
                "]]>",
                "\r",
                "\x01",
                "\ufffe",
                "<!-- c -->",
                "<![CDATA[x]]>",
                "<?pi x?>",
                "<Key>",
                "</Contents>",
                "<Contents>",
                "<Owner><ID>i</ID></Owner>",
                '<Key a="1">k</Key>',
                "<s3:Key>k</s3:Key>",
                "\x00",
                "<Error><Code>x</Code></Error>",
                " ",
                "/",
            ]
        ),
    ),
    st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 12).map(str)),
)


@settings(max_examples=400, deadline=None)
@given(page=uniform_pages(), edits=st.lists(damage, min_size=1, max_size=3))
def test_scanner_refuses_what_botocore_would_not_read_the_same(page: str, edits: list[tuple[str, int, str]]) -> None:
    """Damage a page anywhere: the scanner either refuses it, or it is still well formed and botocore reads the same."""
    for kind, where, what in edits:
        where %= len(page) + 1
        if kind == "cut":
            page = page[:where]
        elif kind == "insert":
            page = page[:where] + what + page[where:]
        else:
            page = page[:where] + page[where + int(what) :]
    body = page.encode("utf-8", "surrogatepass")
    scanned = scan_page(body)
    if scanned is not None:
        assert not _looks_like_special_case_error(200, body)
        assert scanned == botocore_page(body)


@pytest.mark.parametrize(
    ("key_xml", "key"),
    [
        ("a&amp;b", "a&b"),
        ("&lt;tag&gt;", "<tag>"),
        ("line&#xD;end", "line\rend"),
        ("line&#13;&#10;end", "line\r\nend"),
        ("caf\u00e9 &#233;", "caf\u00e9 \u00e9"),
        ("\U0001f600&#x1F600;&#128512;", "\U0001f600" * 3),
        ("&quot;q&apos; ]]&gt; > ]>", "\"q' ]]> > ]>"),
    ],
)
def test_awkward_keys_are_scanned_as_botocore_reads_them(key_xml: str, key: str) -> None:
    page = f'<ListBucketResult xmlns="{NS}"><Contents><Key>{key_xml}</Key><Size>1</Size></Contents></ListBucketResult>'
    body = f'<?xml version="1.0" encoding="UTF-8"?>\n{page}'.encode()
    assert scan_page(body) == botocore_page(body) == {"Contents": [{"Key": key, "Size": 1}]}


@pytest.mark.parametrize(
    "key_xml",
    ["<![CDATA[a&b]]>", "a&#0;b", "a&#xFFFE;b", "a&nbsp;b", "a & b", "a\r\nb", "a<!-- c -->b", "a]]>b"],
)
def test_what_the_scanner_does_not_read_still_parses_as_botocore(key_xml: str) -> None:
    body = f"<ListBucketResult><Contents><Key>{key_xml}</Key></Contents></ListBucketResult>".encode()
    assert scan_page(body) is None
    assert outcome(ListObjectsV2Parser, body) == outcome(AioRestXMLParser, body)


def outcome(parser: type[AioRestXMLParser], body: bytes) -> Any:
    """What ``parser`` makes of a ListObjectsV2 body: the result, or the error it raises (not well formed)."""
    try:
        return asyncio.run(parser(timestamp_parser=str).parse({"status_code": 200, "headers": {}, "body": body}, SHAPE))
    except Exception as exc:  # noqa: BLE001 -- the very exception is what is compared
        return repr(exc)


def test_a_page_with_objects_laid_out_differently_is_left_to_the_tree_walk() -> None:
    objects = b"<Contents><Key>a</Key><Size>1</Size></Contents><Contents><Size>2</Size><Key>b</Key></Contents>"
    body = b"<ListBucketResult>" + objects + b"</ListBucketResult>"
    assert scan_page(body) is None
    expected, actual = parse_both(body, timestamp_parser=str)
    assert actual == expected


@pytest.mark.parametrize(
    "body",
    [
        b"<?xml version='1.0'?>\n<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult>",
        b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Contents><Key>a</Key></Contents></ListBucke',
        b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Contents><Key>a</Key></Contents>',
        b'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>InternalError</Code><Message>m</Message></Error>',
        b"",
        b"<ListBucketResult><Contents><Key>a</Key></Contents></ListBucketResult><x/>",
    ],
)
def test_the_before_parse_check_answers_as_botocore(body: bytes) -> None:
    """A ListObjectsV2 200 answer the scanner accepts is no error; every other gets botocore's own check."""
    model = botocore.session.get_session().get_service_model("s3").operation_model("ListObjectsV2")
    ours = {"status_code": 200, "headers": {}, "body": body}
    stock = dict(ours)
    handle_200_error(model, ours)
    _handle_200_error(model, stock)
    assert ours["status_code"] == stock["status_code"]


def test_install_replaces_the_second_tree_of_each_page() -> None:
    import aiobotocore.session

    session = aiobotocore.session.get_session()
    emitter = session.get_component("event_emitter")
    assert _handle_200_error in list(emitter._emitter._handlers.prefix_search("before-parse.s3.ListObjectsV2"))
    install(session)
    handlers = list(emitter._emitter._handlers.prefix_search("before-parse.s3.ListObjectsV2"))
    assert handle_200_error in handlers
    assert _handle_200_error not in handlers
    assert isinstance(session.get_component("response_parser_factory"), ListObjectsV2ParserFactory)
