"""Presign S3 GET URLs fast, byte-identical to botocore's ``generate_presigned_url``.

Why this exists: botocore 1.40 (pinned by aioboto3 15.5) spends ~650 µs per
``generate_presigned_url("get_object", ...)``, almost all of it in per-call
endpoint-rule resolution and event dispatch, so a million-PDF manifest spends
over ten minutes just presigning. A SigV4 query signature for one key is one
SHA-256 and one HMAC over a few hundred bytes; everything else is constant for
a bucket, a set of credentials and a timestamp. This module computes those
constant parts once and only the per-key part per URL (well over 100,000 URLs/s
on one core; ``make bench`` measures it).

botocore stays the oracle: the property tests in ``tests/function/test_presign.py``
compare every URL byte for byte with botocore's own, for arbitrary keys,
bucket names, regions, expiries, endpoints, addressing styles and session
tokens. To make that possible the bucket's base URL is resolved with
botocore's own S3 endpoint ruleset (``botocore.endpoint_provider``), fed the
same parameters botocore's client feeds it when presigning, once per bucket.

API::

    presigner = S3Presigner(region="us-east-1", endpoint_url=None, addressing_style="auto", expires_in=900)
    presigner = S3Presigner.from_client(client, expires_in=900)  # boto3 or aiobotocore S3 client
    url = presigner.presign_get(bucket, key, credentials, now=None)
    urls = presigner.presign_many(bucket, keys, credentials, now=None)  # one timestamp for the batch
    presigner.bucket_url(bucket)        # the URL keys are appended to, e.g. "http://127.0.0.1:9000/bucket/"
    signing_key(secret, "20260401", region)  # the cached SigV4 key (tests, diagnostics)

``credentials`` is a frozen ``botocore.credentials.ReadOnlyCredentials`` (or
anything with ``access_key``, ``secret_key`` and ``token``): the caller fetches
it (``await creds.get_frozen_credentials()`` with aiobotocore) once per batch,
so rotating Lambda role credentials keep working. ``now`` defaults to the
current UTC time; a naive datetime is taken as UTC.

Equivalence, as botocore 1.40.61 behaves (the tests pin it):

* The URL equals ``client.generate_presigned_url("get_object",
  Params={"Bucket": b, "Key": k}, ExpiresIn=n)`` of a client made with
  ``Config(signature_version="s3v4", s3={"addressing_style": style})``, the same
  ``region_name`` and ``endpoint_url``, and ``s3.us_east_1_regional_endpoint``
  as given (default ``"legacy"``).
* ``addressing_style``: ``"auto"`` (botocore's default, also what an unset
  style means), ``"path"`` or ``"virtual"``. With a custom endpoint botocore
  uses path style unless ``"virtual"`` is asked for. On AWS (partition
  ``aws``, style not ``"virtual"``, not us-east-1 with the ``"regional"``
  setting) botocore presigns on the *global* host whatever the region, signed
  for the configured region: ``https://bucket.s3.amazonaws.com/key`` for
  virtual-hostable names, ``https://s3.amazonaws.com/Bucket/key`` for host
  labels that are not (uppercase, shorter than 3); names that are not host
  labels (dots, underscores) use regional path style
  (``https://s3.eu-west-1.amazonaws.com/my.bucket/key``). Other partitions
  (``cn-*``, ``us-gov-*``) are regional. All of it comes from botocore's
  ruleset plus the presign rules of its handlers, reproduced in ``_resolve``.
* Keys are not normalised: every UTF-8 byte except ``A-Za-z0-9-_.~/`` is
  percent-encoded, and ``//``, ``/./``, ``/../``, leading and trailing ``/``
  are signed and sent as they are (S3 does not normalise the path either).
* Not supported (``ValueError``): ARNs and S3 Express (``--x-s3``) buckets,
  FIPS, dual-stack and accelerate endpoints, and clients that presign with
  SigV2 (botocore's default without ``signature_version="s3v4"``).
* Expiry must be 1..604800 seconds (SigV4's 7-day cap); botocore does not
  check it, this module refuses to make URLs S3 would reject.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import hmac
import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol
from urllib.parse import quote, quote_from_bytes, urlsplit

from botocore.endpoint_provider import EndpointProvider
from botocore.loaders import create_loader
from botocore.utils import is_valid_ipv6_endpoint_url

__all__ = ["MAX_EXPIRES_IN", "Credentials", "S3Presigner", "check_expires_in", "signing_key"]

MAX_EXPIRES_IN = 604_800  # SigV4 query signatures live 7 days at most.
ADDRESSING_STYLES = ("auto", "path", "virtual")

# botocore.handlers.VALID_BUCKET (searched there; full match here, so a trailing
# newline that botocore would let through is refused).
_VALID_BUCKET = re.compile(r"[a-zA-Z0-9.\-_]{1,255}")
# botocore.endpoint_provider.VALID_HOST_LABEL_RE: names that are not host
# labels (dots, underscores) must use path style, which disables the global
# presign endpoint (botocore.handlers.customize_endpoint_resolver_builtins).
_HOST_LABEL = re.compile(r"^(?!-)[a-zA-Z\d-]{1,63}(?<!-)$")
_SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
_UNRESERVED = "-_.~"  # botocore.utils.percent_encode's default safe set
_SIGNING_KEY_CACHE_MAX = 64
# Bytes botocore leaves alone in a key: quote()'s always-safe set plus "/~"
# (botocore.serialize: percent_encode(key, safe="/~")).
_KEY_SAFE_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~/"


class Credentials(Protocol):
    """What ``botocore.credentials.ReadOnlyCredentials`` offers."""

    @property
    def access_key(self) -> str: ...

    @property
    def secret_key(self) -> str: ...

    @property
    def token(self) -> str | None: ...


@dataclass(frozen=True)
class _Target:
    """A bucket's resolved URL: everything before the encoded key, and the signed Host."""

    url_prefix: str  # scheme://netloc/path/ : the URL up to the key
    path_prefix: str  # /path/ : the canonical URI up to the key
    host: str  # the Host header value SigV4 signs


@dataclass(frozen=True)
class _Batch:
    """Everything a URL needs except its key, for one bucket, credentials and second."""

    url_prefix: str
    path_prefix: str
    query: str  # the URL's query string before X-Amz-Signature
    canonical_tail: str  # canonical request after the path
    sts_head: str  # string to sign before the canonical request's hash
    inner: Any  # sha256 state primed with the signing key XOR ipad
    outer: Any  # sha256 state primed with the signing key XOR opad


@lru_cache(maxsize=4)
def _endpoint_provider(loader: Any = None) -> tuple[EndpointProvider, list[dict[str, Any]]]:
    """botocore's S3 endpoint ruleset and partition table, loaded once (~15 ms).

    Given a botocore session's own loader (``session.get_component("data_loader")``),
    the files are read once for the presigner and the S3 client together.
    """
    loader = loader or create_loader()
    ruleset = loader.load_service_model("s3", "endpoint-rule-set-1")
    partitions = loader.load_data("partitions")
    return EndpointProvider(ruleset, partitions), partitions["partitions"]


def _partition_of(region: str, loader: Any = None) -> str:
    """The partition botocore's client reports in ``client.meta.partition``."""
    _, partitions = _endpoint_provider(loader)
    for partition in partitions:
        if region in partition.get("regions", {}):
            return str(partition["id"])
    for partition in partitions:
        if re.match(partition["regionRegex"], region):
            return str(partition["id"])
    return "aws"


# (secret, yyyymmdd, region) -> SigV4 signing key. Shared by all presigners;
# a new secret (credential rotation) or a new UTC day simply adds an entry.
_signing_keys: dict[tuple[str, str, str], bytes] = {}


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode("utf-8"), hashlib.sha256).digest()


def signing_key(secret_key: str, date: str, region: str) -> bytes:
    """The SigV4 signing key for S3, derived once per (secret, date, region) and cached."""
    cache_key = (secret_key, date, region)
    key = _signing_keys.get(cache_key)
    if key is None:
        k_date = _hmac(f"AWS4{secret_key}".encode(), date)
        key = _hmac(_hmac(_hmac(k_date, region), "s3"), "aws4_request")
        if len(_signing_keys) >= _SIGNING_KEY_CACHE_MAX:
            _signing_keys.clear()  # rotated secrets and past days: nothing worth keeping
        _signing_keys[cache_key] = key
    return key


def _hmac_pads(key: bytes) -> tuple[Any, Any]:
    """Pre-hash the HMAC key pads, so each signature costs two ``copy()`` + updates.

    This is RFC 2104 HMAC exactly (the key is 32 bytes, shorter than the block),
    about 25 % faster per URL than ``hmac.new`` and 3x faster than ``hmac.digest``.
    """
    block = key.ljust(64, b"\0")
    return hashlib.sha256(block.translate(_XOR_IPAD)), hashlib.sha256(block.translate(_XOR_OPAD))


_XOR_IPAD = bytes(b ^ 0x36 for b in range(256))
_XOR_OPAD = bytes(b ^ 0x5C for b in range(256))


def _encode(value: str) -> str:
    """botocore.utils.percent_encode: UTF-8, then everything but unreserved escaped."""
    return quote(value.encode("utf-8"), safe=_UNRESERVED)


def _host_header(url: str) -> str:
    """botocore.auth._host_from_url: lowercase host, default port dropped, IPv6 bracketed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_valid_ipv6_endpoint_url(url):
        host = f"[{host}]"
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    if parts.port is not None and parts.port != default_port:
        host = f"{host}:{parts.port}"
    return host


def _timestamp(now: _dt.datetime | None) -> str:
    if now is None:
        now = _dt.datetime.now(_dt.UTC)
    elif now.tzinfo is not None:
        now = now.astimezone(_dt.UTC)
    return now.strftime(_SIGV4_TIMESTAMP)


def check_expires_in(expires_in: int) -> int:
    """SigV4 query signatures are valid for 1 second to 7 days; S3 rejects anything else."""
    if isinstance(expires_in, bool) or not isinstance(expires_in, int):
        raise TypeError(f"expires_in must be an int, got {type(expires_in).__name__}")
    if not 1 <= expires_in <= MAX_EXPIRES_IN:
        raise ValueError(f"expires_in must be between 1 and {MAX_EXPIRES_IN} seconds, got {expires_in}")
    return expires_in


class S3Presigner:
    """SigV4 query presigner for S3 GetObject URLs with the constant work hoisted out.

    One instance per (region, endpoint, addressing style, expiry); it is cheap
    to keep for the life of an execution environment. Bucket URLs are resolved
    on first use and cached; signing keys are cached per (secret, day, region).
    Not thread-safe to mutate concurrently, but the caches only ever grow with
    deterministic values, so a race costs a duplicate computation at worst.
    """

    def __init__(
        self,
        *,
        region: str,
        endpoint_url: str | None = None,
        addressing_style: str = "auto",
        expires_in: int = 3600,
        us_east_1_regional_endpoint: str = "legacy",
        data_loader: Any = None,
    ) -> None:
        if not region:
            raise ValueError("region is required: SigV4 signs it into every URL")
        if addressing_style not in ADDRESSING_STYLES:
            raise ValueError(f"addressing_style must be one of {ADDRESSING_STYLES}, got {addressing_style!r}")
        if us_east_1_regional_endpoint not in ("legacy", "regional"):
            raise ValueError("us_east_1_regional_endpoint must be 'legacy' or 'regional'")
        self.region = region
        self.endpoint_url = endpoint_url or None
        self.addressing_style = addressing_style
        self.expires_in = check_expires_in(expires_in)
        self.us_east_1_regional_endpoint = us_east_1_regional_endpoint
        # The builtins botocore's client computes (botocore.args
        # compute_endpoint_resolver_builtin_defaults) ...
        if self.endpoint_url is not None:
            self._force_path_style = addressing_style != "virtual"
        else:
            self._force_path_style = addressing_style == "path"
        self._use_global_builtin = us_east_1_regional_endpoint == "legacy" and region == "us-east-1"
        # ... and what generate_presigned_url adds (botocore.signers._should_use_global_endpoint),
        # worked out on first use: reading the ruleset at import would lengthen every cold start.
        self._data_loader = data_loader
        self._presign_global_unless_partition = (
            not (us_east_1_regional_endpoint == "regional" and region == "us-east-1") and addressing_style != "virtual"
        )
        self._targets: dict[str, _Target] = {}
        self._last_batch: tuple[tuple[str, str, str, str | None, str], _Batch] | None = None

    @classmethod
    def from_client(cls, client: Any, expires_in: int) -> S3Presigner:
        """Mirror a boto3/aiobotocore S3 client's region, endpoint and addressing style.

        The endpoint the client was *given* (not the one it resolved for its
        region) is only kept in its endpoint resolver's builtins, a botocore
        internal; the tests compare the result with the client's own URLs so
        a botocore upgrade that moves it fails loudly instead of signing wrong.
        """
        meta = client.meta
        if meta.service_model.service_name != "s3":
            raise ValueError(f"need an S3 client, got {meta.service_model.service_name}")
        config = meta.config
        s3_config = dict(config.s3 or {})
        resolver = getattr(client, "_ruleset_resolver", None)
        builtins = getattr(resolver, "_builtins", None)
        if not isinstance(builtins, dict):
            raise ValueError("cannot read the client's endpoint settings (botocore internals changed)")
        values = {getattr(name, "value", name): value for name, value in builtins.items()}
        for flag in ("AWS::UseFIPS", "AWS::UseDualStack", "AWS::S3::Accelerate"):
            if values.get(flag):
                raise ValueError(f"{flag} endpoints are not supported by S3Presigner")
        if _presigns_with_sigv2(client):
            raise ValueError("the client presigns with SigV2: create it with Config(signature_version='s3v4')")
        return cls(
            region=meta.region_name,
            endpoint_url=values.get("SDK::Endpoint"),
            addressing_style=s3_config.get("addressing_style") or "auto",
            expires_in=expires_in,
            us_east_1_regional_endpoint=s3_config.get("us_east_1_regional_endpoint") or "legacy",
        )

    # -- per bucket -----------------------------------------------------------

    def _target(self, bucket: str) -> _Target:
        target = self._targets.get(bucket)
        if target is None:
            target = self._targets[bucket] = self._resolve(bucket)
        return target

    def _resolve(self, bucket: str) -> _Target:
        """Ask botocore's ruleset where ``bucket`` lives, with the parameters a presign uses."""
        if not isinstance(bucket, str) or not _VALID_BUCKET.fullmatch(bucket):
            raise ValueError(f"invalid bucket name {bucket!r} (ARNs are not supported)")
        if bucket.endswith("--x-s3"):
            raise ValueError(f"S3 Express directory buckets are not supported: {bucket!r}")
        region, use_global = self.region, self._use_global_builtin
        path_style_required = not _HOST_LABEL.match(bucket)
        in_aws_partition = _partition_of(self.region, self._data_loader) == "aws"
        presign_global = self._presign_global_unless_partition and in_aws_partition
        if presign_global and not path_style_required and not self._force_path_style:
            region, use_global = "aws-global", True
        params: dict[str, Any] = {
            "Bucket": bucket,
            "Region": region,
            "UseFIPS": False,
            "UseDualStack": False,
            "ForcePathStyle": self._force_path_style,
            "Accelerate": False,
            "UseGlobalEndpoint": use_global,
            "UseArnRegion": True,
            "DisableMultiRegionAccessPoints": False,
        }
        if self.endpoint_url is not None:
            params["Endpoint"] = self.endpoint_url
        provider, _ = _endpoint_provider(self._data_loader)
        endpoint = provider.resolve_endpoint(**params)
        schemes = endpoint.properties.get("authSchemes") or [{"name": "sigv4", "signingName": "s3"}]
        if schemes[0].get("name") != "sigv4" or schemes[0].get("signingName") != "s3":
            raise ValueError(f"bucket {bucket!r} needs {schemes[0]}, which S3Presigner does not implement")
        # botocore.awsrequest._urljoin(endpoint, "/" + key): one slash between them.
        parts = urlsplit(endpoint.url)
        path_prefix = (parts.path[:-1] if parts.path.endswith("/") else parts.path) + "/"
        return _Target(
            url_prefix=f"{parts.scheme}://{parts.netloc}{path_prefix}",
            path_prefix=path_prefix,
            host=_host_header(endpoint.url),
        )

    def bucket_url(self, bucket: str) -> str:
        """The URL every key of ``bucket`` is appended to (handy in logs and tests)."""
        return self._target(bucket).url_prefix

    # -- per batch ------------------------------------------------------------

    def _batch(self, bucket: str, credentials: Credentials, now: _dt.datetime | None) -> _Batch:
        """The batch constants, reused while bucket, credentials and second stay the same.

        That reuse is what makes one-key ``presign_get`` calls cheap too: the
        constants change at most once a second (or when credentials rotate).
        """
        stamp = _timestamp(now)
        cache_key = (bucket, credentials.access_key, credentials.secret_key, credentials.token, stamp)
        last = self._last_batch
        if last is not None and last[0] == cache_key:
            return last[1]
        batch = self._new_batch(bucket, credentials, stamp)
        self._last_batch = (cache_key, batch)
        return batch

    def _new_batch(self, bucket: str, credentials: Credentials, stamp: str) -> _Batch:
        target = self._target(bucket)
        date = stamp[:8]
        scope = f"{date}/{self.region}/s3/aws4_request"
        credential = _encode(f"{credentials.access_key}/{scope}")
        # URL order is botocore's insertion order; the canonical query is sorted
        # (X-Amz-Security-Token sorts before X-Amz-SignedHeaders).
        head = (
            f"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential={credential}"
            f"&X-Amz-Date={stamp}&X-Amz-Expires={self.expires_in}"
        )
        if credentials.token is not None:
            token = f"&X-Amz-Security-Token={_encode(credentials.token)}"
            query = f"{head}&X-Amz-SignedHeaders=host{token}"
            canonical_query = f"{head}{token}&X-Amz-SignedHeaders=host"
        else:
            query = canonical_query = f"{head}&X-Amz-SignedHeaders=host"
        inner, outer = _hmac_pads(signing_key(credentials.secret_key, date, self.region))
        return _Batch(
            url_prefix=target.url_prefix,
            path_prefix=target.path_prefix,
            query=query,
            canonical_tail=f"\n{canonical_query}\nhost:{target.host}\n\nhost\nUNSIGNED-PAYLOAD",
            sts_head=f"AWS4-HMAC-SHA256\n{stamp}\n{scope}\n",
            inner=inner,
            outer=outer,
        )

    # -- per key --------------------------------------------------------------

    def presign_get(self, bucket: str, key: str, credentials: Credentials, now: _dt.datetime | None = None) -> str:
        """One presigned GET URL (``presign_many`` saves the per-call overhead on batches)."""
        return self.presign_many(bucket, (key,), credentials, now)[0]

    def presign_many(
        self, bucket: str, keys: Iterable[str], credentials: Credentials, now: _dt.datetime | None = None
    ) -> list[str]:
        """Presigned GET URLs for ``keys``, all signed at the same second.

        The loop body is the whole per-URL cost: percent-encode the key, hash
        the canonical request, HMAC the string to sign, concatenate.
        """
        batch = self._batch(bucket, credentials, now)
        url_prefix, query = batch.url_prefix, batch.query
        # What is the same for every key is encoded (and hashed) once per batch:
        # the canonical request around the path, and the string to sign up to the hash.
        canonical_head = ("GET\n" + batch.path_prefix).encode()
        canonical_tail = batch.canonical_tail.encode()
        inner = batch.inner.copy()
        inner.update(batch.sts_head.encode())
        outer = batch.outer
        sha256 = hashlib.sha256
        urls: list[str] = []
        append = urls.append
        for key in keys:
            if not key:
                raise ValueError("an S3 key is at least one character long")
            raw = key.encode("utf-8")  # strict, as botocore: a lone surrogate raises
            # quote()'s own fast path, minus its per-call overhead: most keys need no escaping.
            if raw.rstrip(_KEY_SAFE_BYTES):
                encoded = quote_from_bytes(raw, "/~")
                path = encoded.encode()
            else:
                encoded, path = key, raw
            digest = sha256(canonical_head + path + canonical_tail).hexdigest()
            mac = inner.copy()
            mac.update(digest.encode())
            signature = outer.copy()
            signature.update(mac.digest())
            append(f"{url_prefix}{encoded}?{query}&X-Amz-Signature={signature.hexdigest()}")
        return urls


def _presigns_with_sigv2(client: Any) -> bool:
    """botocore defaults S3 presigning to SigV2 unless s3v4 was asked for.

    It does so by registering ``_default_s3_presign_to_sigv2`` on
    ``choose-signer.s3``; look for that handler (sync or aio emitter alike).
    """
    emitter = getattr(client.meta.events, "_emitter", client.meta.events)
    handlers = getattr(emitter, "_handlers", None)
    if handlers is None:
        return False
    found = handlers.prefix_search("choose-signer.s3.GetObject")
    return any(getattr(handler, "__name__", "") == "_default_s3_presign_to_sigv2" for handler in found)
