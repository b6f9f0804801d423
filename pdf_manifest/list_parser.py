"""Parse ListObjectsV2 pages from their bytes, to the result botocore's parser gives.

Listing is most of the handler's CPU, and most of a listing's CPU was XML:
botocore builds an ElementTree of every page twice (once to check that a 200
answer is not an ``<Error>`` in disguise or a truncated body, once to parse it)
and then walks it generically, looking each member up in the model. A
ListObjectsV2 page is regular: leaf elements, ``<Contents>`` blocks of leaf
elements (every object of a page usually the same ones, in the same order) and
``<CommonPrefixes>`` blocks. So:

1. ``scan_page`` reads the decoded page with regular expressions: one pattern
   built from the first object's tags splits out every object's texts at once;
   what is left (the page's own members, the folders) is walked tag by tag. It
   accepts only a strict subset of XML: the declaration, one root, elements
   without attributes holding plain text or the five predefined and numeric
   character references; no CDATA, comments, processing instructions, DTD,
   carriage returns or characters XML forbids. Such a body is well formed, so
   the result is the one botocore's parser would give, and its root is no
   ``<Error>``. Anything else (an object laid out unlike the first, an
   ``Owner``, a repeated scalar, a number that does not parse) returns None.
2. ``ListObjectsV2Parser`` uses that result, or else walks botocore's
   ElementTree itself (``parse_page``), or else (``_Fallback``) leaves the page
   to botocore's own parser.
3. ``handle_200_error`` stands in for botocore's before-parse check on S3
   answers: a ListObjectsV2 page the scanner accepts is complete and no error,
   so it is not parsed a second time; every other answer gets botocore's check.

tests/function/test_list_parser.py proves all three equal to botocore on
generated pages, awkward keys and damaged bodies. Only the body is parsed here:
headers, ``ResponseMetadata``, error responses and every other operation go
through botocore unchanged, and the ``EncodingType=url`` decoding botocore
applies after parsing still applies.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import repeat
from typing import Any
from xml.etree import ElementTree as ETree

from aiobotocore.parsers import AioResponseParserFactory, AioRestXMLParser
from botocore.handlers import _handle_200_error

_OPERATION = "ListObjectsV2"
_OUTPUT_SHAPE = "ListObjectsV2Output"
_PAGE_TEXT = frozenset(
    {"Name", "Prefix", "Delimiter", "EncodingType", "ContinuationToken", "NextContinuationToken", "StartAfter"}
)
_PAGE_INTEGER = frozenset({"MaxKeys", "KeyCount"})
_PAGE_FIELDS = _PAGE_TEXT | _PAGE_INTEGER | {"IsTruncated"}
_OBJECT_TEXT = frozenset({"Key", "ETag", "StorageClass", "ChecksumType"})
_OBJECT_KNOWN = _OBJECT_TEXT | {"LastModified", "Size", "ChecksumAlgorithm"}
_OBJECT_COMPLEX = frozenset({"Owner", "RestoreStatus"})  # structures: left to botocore
_BLOCKS = frozenset({"Contents", "CommonPrefixes"})

# Where the scanner stores its reading of a page between the before-parse check and the parser.
_SCANNED = "pdf_manifest.scanned_page"


def _page_field(name: str, text: str) -> str | int | bool:
    """One of the page's own fields, typed as botocore types it (both parsers use this)."""
    if name in _PAGE_INTEGER:
        return int(text)
    if name == "IsTruncated":
        return text == "true"
    return text


class _Fallback(Exception):
    """The page holds something this parser leaves to botocore."""


# ---------------------------------------------------------------------------
# 1. The byte-level scanner.
# ---------------------------------------------------------------------------

_DECLARATION = re.compile(
    r"""<\?xml[ \t\n]+version=(["'])1\.0\1"""
    r"""(?:[ \t\n]+encoding=(["'])(?i:utf-8)\2)?(?:[ \t\n]+standalone=(["'])(?:yes|no)\3)?[ \t\n]*\?>"""
)
_ROOT_OPEN = re.compile(r'[ \t\n]*<ListBucketResult(?:[ \t\n]+xmlns="[^"<&}]*")?[ \t\n]*>')
_ROOT_CLOSE = re.compile(r"[ \t\n]*</ListBucketResult>[ \t\n]*\Z")
# Bytes XML 1.0 forbids or this scanner does not read: control characters, and
# CR (the parser turns CR LF into LF). U+FFFE and U+FFFF, "]]>" in text are
# refused too. Markup other than elements (CDATA, comments, DTD, processing
# instructions) needs no search: every "<" must open a tag the patterns expect.
_CONTROL_BYTES = bytes([*range(0x09), 0x0B, 0x0C, *range(0x0D, 0x20)])
_NOT_CHARACTERS = re.compile("[\ufffe\uffff]")
# One leaf of a <Contents> block; the first object's run of them names the template.
_LEAF_RUN = re.compile(r"(?:<([A-Za-z]+)>[^<]*</\1>)*")
_LEAF_NAME = re.compile(r"<([A-Za-z]+)>[^<]*</\1>")
# The rest of the page, one token at a time: a leaf, an empty leaf, a
# <CommonPrefixes> tag, or the marks left where objects were cut out (one run for a page's objects).
_OBJECT_MARK = "\x00"  # _CONTROL_BYTES keeps it out of any page the scanner reads
_TOKEN = re.compile(r"[ \t\n]*(?:<([A-Za-z]+)>([^<]*)</\1>|<([A-Za-z]+)/>|(</?CommonPrefixes>)|(\x00+))")
_REFERENCE = re.compile(r"&(#[0-9]{1,7}|#x[0-9A-Fa-f]{1,6}|amp|lt|gt|quot|apos);")
_NAMED = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'"}

_TEMPLATES: dict[tuple[str, ...], tuple[re.Pattern[str], tuple[str, ...]]] = {}


def _character(reference: str) -> str:
    """The character an XML reference names, if XML allows it (``&#0;`` is not well formed)."""
    if reference[0] != "#":
        return _NAMED[reference]
    code = int(reference[2:], 16) if reference[1] == "x" else int(reference[1:])
    if code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0xD7FF or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF:
        return chr(code)
    raise _Fallback


def _unescape(text: str) -> str:
    """XML character data to its text: references resolved, a bare ``&`` refused."""
    if "&" not in text:
        return text
    parts = _REFERENCE.split(text)  # text, reference, text, ..., text
    if "&" in "".join(parts[::2]):
        raise _Fallback
    parts[1::2] = [_character(reference) for reference in parts[1::2]]
    return "".join(parts)


def _template(names: tuple[str, ...]) -> tuple[re.Pattern[str], tuple[str, ...]]:
    """A pattern matching one whole ``<Contents>`` block of these leaves, capturing the modelled ones."""
    found = _TEMPLATES.get(names)
    if found is None:
        leaves = (f"<{n}>([^<]*)</{n}>" if n in _OBJECT_KNOWN else f"<{n}>[^<]*</{n}>" for n in names)
        pattern = re.compile("<Contents>" + "".join(leaves) + "</Contents>")
        found = pattern, tuple(n for n in names if n in _OBJECT_KNOWN)
        if len(_TEMPLATES) < 64:  # pages of made-up layouts cannot grow it without bound
            _TEMPLATES[names] = found
    return found


def scan_page(body: bytes) -> dict[str, Any] | None:
    """The ListObjectsV2Output members of a page, as botocore returns them; None if not this scanner's to read.

    ``LastModified`` stays the text S3 sent (botocore's ``timestamp_parser=str``);
    ``with_timestamps`` applies another parser.
    """
    try:
        return _scan(body)
    except (_Fallback, UnicodeDecodeError, ValueError):
        return None


def with_timestamps(page: dict[str, Any], timestamp: Callable[[str], Any]) -> dict[str, Any]:
    """``page`` with each object's ``LastModified`` text parsed by ``timestamp``."""
    if timestamp is not str:
        for entry in page.get("Contents", ()):
            if "LastModified" in entry:
                entry["LastModified"] = timestamp(entry["LastModified"])
    return page


def _scan(body: bytes) -> dict[str, Any] | None:
    # (A one-byte search runs at memchr speed: the rarer longer ones only when it finds something.)
    if len(body.translate(None, _CONTROL_BYTES)) != len(body) or (b"]" in body and b"]]>" in body):
        return None
    text = body.decode("utf-8")  # botocore's parser reads S3 as UTF-8 whatever the declaration says
    if b"\xef" in body and _NOT_CHARACTERS.search(text):
        return None
    if "&" in text:
        _unescape(text)  # every reference in the page, read or not, must be one XML allows
    declaration = _DECLARATION.match(text)
    root = _ROOT_OPEN.match(text, declaration.end() if declaration else 0)
    if root is None:
        return None
    contents, rest = _objects(text)
    members = _page_members(rest, root.end())
    if members is None or members[1] != len(contents):
        return None  # an object sat where the walk does not read it (in a folder, in another element)
    page = members[0]
    if contents:
        page["Contents"] = contents
    return page


def _objects(text: str) -> tuple[list[dict[str, Any]], str]:
    """Every ``<Contents>`` laid out like the first, and the page with each cut down to a mark."""
    first = text.find("<Contents>")
    if first < 0:
        return [], text
    inner = text[first + len("<Contents>") : text.find("</Contents>", first)]
    if _LEAF_RUN.fullmatch(inner) is None:
        return [], text  # the rest walk meets this <Contents> and refuses the page
    names = tuple(_LEAF_NAME.findall(inner))
    if len(set(names)) != len(names) or _OBJECT_COMPLEX.intersection(names) or _BLOCKS.intersection(names):
        return [], text
    pattern, captured = _template(names)
    parts = pattern.split(text)  # rest, texts of object 1, rest, texts of object 2, ..., rest
    stride = len(captured) + 1
    rest = _OBJECT_MARK.join(parts[::stride])
    columns: list[list[Any]] = [parts[1 + i :: stride] for i in range(len(captured))]
    if "&" in text:
        columns = [[_unescape(value) for value in column] for column in columns]
    for i, name in enumerate(captured):  # converted a column at a time: map and comprehensions run in C
        if name == "Size":
            columns[i] = list(map(int, columns[i]))
        elif name == "ChecksumAlgorithm":  # a list in the model (flattened): one element here
            columns[i] = [[value] for value in columns[i]]
    # The columns are as long as each other and each row as the names: strict checks would only cost.
    rows = zip(*columns, strict=False) if columns else [()] * (len(parts) - 1)  # no modelled tag: {} each
    return list(map(dict, map(zip, repeat(captured), rows))), rest  # dict(zip(captured, row)) for each row


def _page_members(rest: str, position: int) -> tuple[dict[str, Any], int] | None:
    """Walk what is left after the objects: the page's own members and folders, and count the objects' marks."""
    page: dict[str, Any] = {}
    folders: list[dict[str, str]] = []
    folder: dict[str, str] | None = None
    marks = 0
    while (token := _TOKEN.match(rest, position)) is not None:
        position = token.end()
        name, value, empty, folder_tag, mark = token.groups()
        if mark:
            if folder is not None:
                return None
            marks += len(mark)
            continue
        if folder_tag:
            if (folder_tag == "<CommonPrefixes>") != (folder is None):
                return None
            if folder is None:
                folder = {}
            else:
                folders.append(folder)
                folder = None
            continue
        if empty:
            name, value = empty, ""
        if name in _BLOCKS:
            return None
        if folder is not None:
            if name == "Prefix":
                if "Prefix" in folder:
                    return None
                folder["Prefix"] = _unescape(value)
            continue  # not in the model: botocore ignores it too
        if name in _PAGE_FIELDS:
            if name in page:
                return None
            page[name] = _page_field(name, _unescape(value))
    if folder is not None or _ROOT_CLOSE.match(rest, position) is None:
        return None
    if folders:
        page["CommonPrefixes"] = folders
    return page, marks


# ---------------------------------------------------------------------------
# 2. The parser: the scanner's reading, or a walk of the ElementTree, or botocore.
# ---------------------------------------------------------------------------

_LOCAL_NAMES: dict[str, str] = {}  # "{namespace}Key" -> "Key": a page has ~7,000 tags of ~15 names


def _tag(element: ETree.Element) -> str:
    name = element.tag.rpartition("}")[2]
    if len(_LOCAL_NAMES) < 256:  # a page of made-up tags cannot grow it without bound
        _LOCAL_NAMES[element.tag] = name
    return name


class ListObjectsV2Parser(AioRestXMLParser):
    """botocore's rest-xml parser, with a direct path for ListObjectsV2 bodies."""

    def _parse_payload(
        self, response: dict[str, Any], shape: Any, member_shapes: Any, final_parsed: dict[str, Any]
    ) -> None:
        body = response.get("body")
        if shape is not None and shape.name == _OUTPUT_SHAPE and body:
            page = response.pop(_SCANNED, None) or scan_page(body)
            if page is not None:
                final_parsed.update(with_timestamps(page, self._timestamp_parser))
                return
            try:
                final_parsed.update(self.parse_page(body))
                return
            except _Fallback:
                pass
        super()._parse_payload(response, shape, member_shapes, final_parsed)

    def parse_page(self, body: bytes) -> dict[str, Any]:
        """The ListObjectsV2Output members a page's XML carries, as botocore would return them (ElementTree)."""
        root = self._parse_xml_string_to_dom(body)
        page: dict[str, Any] = {}
        contents: list[dict[str, Any]] = []
        folders: list[dict[str, str]] = []
        timestamp = self._timestamp_parser
        local = _LOCAL_NAMES.get
        for element in root:
            tag = local(element.tag) or _tag(element)
            if tag == "Contents":
                entry: dict[str, Any] = {}
                for field in element:
                    name = local(field.tag) or _tag(field)
                    if name not in _OBJECT_KNOWN:
                        if name in _OBJECT_COMPLEX:
                            raise _Fallback
                        continue  # not in the model: botocore ignores it too
                    if name == "ChecksumAlgorithm":
                        entry.setdefault(name, []).append(field.text or "")
                        continue
                    if name in entry:
                        raise _Fallback  # a repeated scalar: botocore's answer is odd, let it give it
                    text = field.text or ""
                    if name in _OBJECT_TEXT:
                        entry[name] = text
                    elif name == "Size":
                        entry[name] = int(text)
                    else:
                        entry[name] = timestamp(text)
                contents.append(entry)
            elif tag == "CommonPrefixes":
                folder: dict[str, str] = {}
                for field in element:
                    if _tag(field) == "Prefix":
                        if "Prefix" in folder:
                            raise _Fallback
                        folder["Prefix"] = field.text or ""
                folders.append(folder)
            elif tag in _PAGE_FIELDS:
                if tag in page or len(element):
                    raise _Fallback
                page[tag] = _page_field(tag, element.text or "")
        if contents:
            page["Contents"] = contents
        if folders:
            page["CommonPrefixes"] = folders
        return page


class ListObjectsV2ParserFactory(AioResponseParserFactory):
    """Hands out ``ListObjectsV2Parser`` for S3's protocol, botocore's parsers for the rest."""

    def create_parser(self, protocol_name: str) -> Any:
        if protocol_name == "rest-xml":
            return ListObjectsV2Parser(**self._defaults)
        return super().create_parser(protocol_name)


# ---------------------------------------------------------------------------
# 3. The before-parse check, once per page instead of a second ElementTree.
# ---------------------------------------------------------------------------


def handle_200_error(operation_model: Any, response_dict: dict[str, Any], **kwargs: Any) -> None:
    """botocore's ``_handle_200_error``, skipped for a ListObjectsV2 page the scanner accepts.

    botocore builds a whole ElementTree of every S3 200 answer to see whether
    it is well formed and not an ``<Error>`` (then it turns the status into 500
    and the answer is retried). A page the scanner accepts is both; its
    reading is kept for the parser, which comes next.
    """
    if response_dict and operation_model.name == _OPERATION and response_dict.get("status_code") == 200:
        body = response_dict.get("body")
        if isinstance(body, bytes) and body:
            page = scan_page(body)
            if page is not None:
                response_dict[_SCANNED] = page
                return
    _handle_200_error(operation_model, response_dict, **kwargs)


def install(session: Any) -> None:
    """Parse ListObjectsV2 pages with this module in the clients ``session`` creates from now on."""
    session.register_component("response_parser_factory", ListObjectsV2ParserFactory())
    session.unregister("before-parse.s3.*", _handle_200_error)
    session.get_component("event_emitter").register_first("before-parse.s3.*", handle_200_error)
