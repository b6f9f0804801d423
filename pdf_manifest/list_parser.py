"""Parse ListObjectsV2 pages in a third of botocore's time, to the same result.

Listing is most of the handler's CPU, and most of a listing's CPU is
botocore's generic XML walk: for every ``<Contents>`` it looks each member of
the ``Object`` shape up in the model, builds a dict of nodes and dispatches on
the member's type. The shape of a ListObjectsV2 page is fixed, so this parser
walks the same ElementTree once, knowing what each tag is. Anything it does not
expect in a member it must read (``Owner``, ``RestoreStatus``, a repeated
scalar) hands the page back to botocore's own parser, so the result is always
botocore's; tests/function/test_list_parser.py proves the two equal on generated pages.

Only the body is parsed here: headers, ``ResponseMetadata``, error responses
and every other operation go through botocore unchanged, and the
``EncodingType=url`` decoding botocore applies after parsing still applies.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree as ETree

from aiobotocore.parsers import AioResponseParserFactory, AioRestXMLParser

_OUTPUT_SHAPE = "ListObjectsV2Output"
_PAGE_TEXT = frozenset(
    {"Name", "Prefix", "Delimiter", "EncodingType", "ContinuationToken", "NextContinuationToken", "StartAfter"}
)
_PAGE_INTEGER = frozenset({"MaxKeys", "KeyCount"})
_OBJECT_TEXT = frozenset({"Key", "ETag", "StorageClass", "ChecksumType"})
_OBJECT_KNOWN = _OBJECT_TEXT | {"LastModified", "Size", "ChecksumAlgorithm"}
_OBJECT_COMPLEX = frozenset({"Owner", "RestoreStatus"})  # structures: left to botocore


class _Fallback(Exception):
    """The page holds something this parser leaves to botocore."""


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
            try:
                final_parsed.update(self.parse_page(body))
                return
            except _Fallback:
                pass
        super()._parse_payload(response, shape, member_shapes, final_parsed)

    def parse_page(self, body: bytes) -> dict[str, Any]:
        """The ListObjectsV2Output members a page's XML carries, as botocore would return them."""
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
            elif tag in _PAGE_TEXT or tag in _PAGE_INTEGER or tag == "IsTruncated":
                if tag in page or len(element):
                    raise _Fallback
                text = element.text or ""
                if tag in _PAGE_TEXT:
                    page[tag] = text
                elif tag in _PAGE_INTEGER:
                    page[tag] = int(text)
                else:
                    page[tag] = text == "true"
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
