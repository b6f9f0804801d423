"""The S3 API call a request line names, for the fault proxy and the bench's stand-in S3."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit


def s3_operation(method: str, target: str) -> str:
    """Name the S3 API call from the request line (path-style addressing)."""
    parts = urlsplit(target)
    query = parse_qs(parts.query, keep_blank_values=True)
    path = parts.path.strip("/")
    has_key = "/" in path
    if method == "GET":
        if not has_key:
            return (
                "ListObjectsV2"
                if query.get("list-type") == ["2"]
                else ("ListMultipartUploads" if "uploads" in query else "ListObjects")
            )
        return "GetObject"
    if method == "PUT":
        if "partNumber" in query and "uploadId" in query:
            return "UploadPart"
        return "PutObject" if has_key else "CreateBucket"
    if method == "POST":
        if "uploads" in query:
            return "CreateMultipartUpload"
        if "uploadId" in query:
            return "CompleteMultipartUpload"
        return "PostObject"
    if method == "DELETE":
        return "AbortMultipartUpload" if "uploadId" in query else "DeleteObject"
    if method == "HEAD":
        return "HeadObject" if has_key else "HeadBucket"
    return method
