"""presign.py against botocore as the oracle: the same inputs must give the same bytes.

Why property-based: the interesting differences hide in corners nobody lists
by hand (a key that is all slashes, a bucket name that is a host label but not
virtual-hostable, a region in another partition). Hypothesis draws keys,
buckets, regions, endpoints, styles, expiries, credentials and clocks; botocore
presigns with its clock pinned to the same instant; the URLs must be equal.

``HYPOTHESIS_PROFILE=thorough`` runs many more examples (``make bench`` does);
the default keeps this file to a few seconds.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import Iterator
from functools import lru_cache
from typing import Any
from unittest import mock

import botocore.auth
import botocore.session
import pytest
from botocore.config import Config
from botocore.credentials import ReadOnlyCredentials
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pdf_manifest import presign
from pdf_manifest.presign import MAX_EXPIRES_IN, S3Presigner

THOROUGH = os.environ.get("HYPOTHESIS_PROFILE", "").strip() == "thorough"
SETTINGS = settings(
    max_examples=4000 if THOROUGH else 120,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# Settings botocore reads from the environment and the config file; any of them
# would change the oracle's URLs behind the test's back.
_BOTOCORE_ENV = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_S3_US_EAST_1_REGIONAL_ENDPOINT",
    "AWS_USE_FIPS_ENDPOINT",
    "AWS_USE_DUALSTACK_ENDPOINT",
    "AWS_S3_USE_ARN_REGION",
    "AWS_S3_DISABLE_MULTIREGION_ACCESS_POINTS",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    "AWS_PROFILE",
)


@pytest.fixture(scope="module", autouse=True)
def _quiet_botocore_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    empty = tmp_path_factory.mktemp("aws") / "config"
    empty.write_text("")
    with pytest.MonkeyPatch.context() as patch:
        for name in _BOTOCORE_ENV:
            patch.delenv(name, raising=False)
        patch.setenv("AWS_CONFIG_FILE", str(empty))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(empty))
        _session.cache_clear()
        _client.cache_clear()
        yield
    _session.cache_clear()
    _client.cache_clear()


@lru_cache(maxsize=1)
def _session() -> Any:
    return botocore.session.get_session()


@lru_cache(maxsize=256)
def _client(region: str, endpoint_url: str | None, style: str, regional: str, creds: tuple[Any, ...]) -> Any:
    s3_config: dict[str, str] = {"us_east_1_regional_endpoint": regional}
    if style != "auto":
        s3_config["addressing_style"] = style
    access_key, secret_key, token = creds
    return _session().create_client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=access_key,
        aws_secret_access_key=secret_key,
        aws_session_token=token,
        config=Config(signature_version="s3v4", s3=s3_config),
    )


def oracle(
    bucket: str,
    key: str,
    *,
    region: str,
    endpoint_url: str | None,
    style: str,
    expires_in: int,
    creds: ReadOnlyCredentials,
    now: dt.datetime,
    regional: str = "legacy",
) -> str:
    """botocore's URL, with its clock pinned to ``now``."""
    client = _client(region, endpoint_url, style, regional, (creds.access_key, creds.secret_key, creds.token))
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=now):
        return client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": key}, ExpiresIn=expires_in)


# --- strategies -------------------------------------------------------------

RESERVED = [*"!#$&'()*+,/:;=?@[]", " ", "%", "~", "+", "\\", '"', "<", ">", "^", "`", "{", "|", "}"]
FRAGMENTS = [
    "/",
    "//",
    "/./",
    "/../",
    ".",
    "..",
    "%20",
    "%2F",
    "a+b",
    "é",
    "ü",
    "日本",
    "😀",
    "\U0010fffd",
    "\x00",
    "\x7f",
    "\t",
    "\n",
    "2026/04/",
    "doc-0000001.pdf",
    *RESERVED,
]
keys = st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=12)), min_size=1, max_size=12).map("".join)
keys = keys.filter(bool)

dns_buckets = st.from_regex(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]", fullmatch=True)
dotted_buckets = st.from_regex(r"[a-z0-9][a-z0-9-]{0,8}(\.[a-z0-9][a-z0-9-]{0,8}){1,3}", fullmatch=True)
path_only_buckets = st.from_regex(r"[A-Za-z0-9._-]{1,70}", fullmatch=True)
buckets = st.one_of(
    dns_buckets,
    dotted_buckets,
    path_only_buckets,
    st.sampled_from(["b", "ab", "my.bucket", "MyBucket", "b_c", "192.168.1.1", "a" * 63, "a" * 64, "xn--abc", "-ab"]),
).filter(lambda name: not name.endswith("--x-s3"))

regions = st.sampled_from(
    [
        "us-east-1",
        "us-east-2",
        "us-west-2",
        "eu-west-1",
        "eu-central-1",
        "ap-southeast-2",
        "sa-east-1",
        "ca-west-1",
        "cn-north-1",
        "us-gov-west-1",
        "us-iso-east-1",
    ]
)
endpoints = st.one_of(
    st.none(),
    st.integers(1, 65535).map(lambda port: f"http://127.0.0.1:{port}"),
    st.sampled_from(
        [
            "https://host:8443",
            "http://minio:9000",
            "http://localhost:9000",
            "http://MinIO.Local:9000",
            "https://s3.example.com",
            "https://s3.example.com:443",
            "http://127.0.0.1:80",
            "http://[::1]:9000",
            "http://minio:9000/prefix/",
        ]
    ),
)
styles = st.sampled_from(["auto", "path", "virtual"])
expiries = st.integers(1, MAX_EXPIRES_IN)
moments = st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31))
# A small pool of credentials keeps the oracle's client cache useful.
CREDENTIALS = [
    ReadOnlyCredentials("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", None),
    ReadOnlyCredentials("ASIAXAMPLEXAMPLE0001", "secret/with+slash=", "IQoJb3JpZ2luX2VjE/+=token" * 30),
    ReadOnlyCredentials("AKID", "ü-secret", "tok en%2F~"),
    ReadOnlyCredentials("AKID", "s", ""),
]
credentials = st.sampled_from(CREDENTIALS)


def presigner(region: str, endpoint_url: str | None, style: str, expires_in: int, regional: str = "legacy") -> Any:
    return S3Presigner(
        region=region,
        endpoint_url=endpoint_url,
        addressing_style=style,
        expires_in=expires_in,
        us_east_1_regional_endpoint=regional,
    )


def assert_same(
    bucket: str,
    key: str,
    region: str,
    endpoint_url: str | None,
    style: str,
    expires_in: int,
    creds: ReadOnlyCredentials,
    now: dt.datetime,
    regional: str = "legacy",
) -> None:
    try:
        expected = oracle(
            bucket,
            key,
            region=region,
            endpoint_url=endpoint_url,
            style=style,
            expires_in=expires_in,
            creds=creds,
            now=now,
            regional=regional,
        )
    except Exception:  # noqa: BLE001 -- botocore refuses: so must we (with our own error)
        with pytest.raises(Exception):  # noqa: B017
            presigner(region, endpoint_url, style, expires_in, regional).presign_get(bucket, key, creds, now)
        return
    actual = presigner(region, endpoint_url, style, expires_in, regional).presign_get(bucket, key, creds, now)
    assert actual == expected


# --- byte-for-byte equality -------------------------------------------------


@SETTINGS
@given(
    bucket=buckets,
    key=keys,
    region=regions,
    endpoint_url=endpoints,
    style=styles,
    expires_in=expiries,
    creds=credentials,
    now=moments,
)
def test_matches_botocore(
    bucket: str,
    key: str,
    region: str,
    endpoint_url: str | None,
    style: str,
    expires_in: int,
    creds: ReadOnlyCredentials,
    now: dt.datetime,
) -> None:
    assert_same(bucket, key, region, endpoint_url, style, expires_in, creds, now)


@SETTINGS
@given(key=keys, bucket=st.one_of(dns_buckets, dotted_buckets), style=styles, region=regions, creds=credentials)
def test_matches_botocore_on_aws_endpoints(
    key: str, bucket: str, style: str, region: str, creds: ReadOnlyCredentials
) -> None:
    """No endpoint_url: virtual host, global host and regional path style all come from botocore."""
    assert_same(bucket, key, region, None, style, 900, creds, dt.datetime(2026, 4, 1, 12, 0, 0))


@SETTINGS
@given(
    key=keys,
    bucket=st.one_of(dns_buckets, dotted_buckets),
    style=styles,
    regional=st.sampled_from(["legacy", "regional"]),
)
def test_matches_botocore_us_east_1_regional_setting(key: str, bucket: str, style: str, regional: str) -> None:
    creds = CREDENTIALS[1]
    assert_same(bucket, key, "us-east-1", None, style, 3600, creds, dt.datetime(2026, 4, 1), regional)


@pytest.mark.parametrize(
    ("bucket", "region", "endpoint_url", "style", "url_prefix"),
    [
        ("reports-bucket", "us-east-1", None, "auto", "https://reports-bucket.s3.amazonaws.com/"),
        ("reports-bucket", "eu-west-1", None, "auto", "https://reports-bucket.s3.amazonaws.com/"),
        ("reports-bucket", "eu-west-1", None, "virtual", "https://reports-bucket.s3.eu-west-1.amazonaws.com/"),
        ("reports-bucket", "eu-west-1", None, "path", "https://s3.eu-west-1.amazonaws.com/reports-bucket/"),
        ("reports.bucket", "eu-west-1", None, "auto", "https://s3.eu-west-1.amazonaws.com/reports.bucket/"),
        ("Reports", "us-east-1", None, "auto", "https://s3.amazonaws.com/Reports/"),
        ("reports-bucket", "cn-north-1", None, "auto", "https://reports-bucket.s3.cn-north-1.amazonaws.com.cn/"),
        ("b", "us-east-1", "http://127.0.0.1:9000", "path", "http://127.0.0.1:9000/b/"),
        ("bkt", "us-east-1", "http://minio:9000", "virtual", "http://bkt.minio:9000/"),
    ],
)
def test_bucket_urls_documented(
    bucket: str, region: str, endpoint_url: str | None, style: str, url_prefix: str
) -> None:
    """What botocore 1.40.61 does, spelled out (and checked against it)."""
    signer = presigner(region, endpoint_url, style, 900)
    assert signer.bucket_url(bucket) == url_prefix
    now = dt.datetime(2026, 4, 1, 12, 0, 0)
    assert signer.presign_get(bucket, "a b/ü.pdf", CREDENTIALS[1], now) == oracle(
        bucket,
        "a b/ü.pdf",
        region=region,
        endpoint_url=endpoint_url,
        style=style,
        expires_in=900,
        creds=CREDENTIALS[1],
        now=now,
    )


def test_keys_are_not_normalised() -> None:
    signer = presigner("us-east-1", "http://127.0.0.1:9000", "path", 60)
    url = signer.presign_get("b", "/a//b/./c/../d/", CREDENTIALS[0], dt.datetime(2026, 1, 1))
    assert url.startswith("http://127.0.0.1:9000/b//a//b/./c/../d/?X-Amz-Algorithm=AWS4-HMAC-SHA256&")


def test_presign_many_is_presign_get_at_one_instant() -> None:
    signer = presigner("eu-west-1", "http://minio:9000", "path", 900)
    now = dt.datetime(2026, 4, 1, 23, 59, 59)
    many = signer.presign_many("bkt", ["a.pdf", "b c.pdf", "ü/😀.pdf"], CREDENTIALS[1], now)
    assert many == [signer.presign_get("bkt", key, CREDENTIALS[1], now) for key in ["a.pdf", "b c.pdf", "ü/😀.pdf"]]


def test_aware_datetimes_are_converted_to_utc() -> None:
    signer = presigner("us-east-1", None, "auto", 900)
    utc = dt.datetime(2026, 4, 1, 22, 30, tzinfo=dt.UTC)
    paris = utc.astimezone(dt.timezone(dt.timedelta(hours=2)))
    naive = dt.datetime(2026, 4, 1, 22, 30)
    urls = {signer.presign_get("bkt-1", "k", CREDENTIALS[0], moment) for moment in (utc, paris, naive)}
    assert len(urls) == 1
    assert "X-Amz-Date=20260401T223000Z" in urls.pop()


def test_default_clock_is_now() -> None:
    signer = presigner("us-east-1", None, "auto", 900)
    before = dt.datetime.now(dt.UTC).replace(microsecond=0, tzinfo=None)
    url = signer.presign_get("bkt-1", "k", CREDENTIALS[0])
    after = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    stamp = dt.datetime.strptime(url.split("X-Amz-Date=")[1][:16], "%Y%m%dT%H%M%SZ")
    assert before <= stamp <= after


# --- signing key cache and credential refresh --------------------------------


def test_signing_key_cache_follows_date_secret_and_region() -> None:
    presign._signing_keys.clear()
    first = presign.signing_key("secret-1", "20260401", "us-east-1")
    assert presign.signing_key("secret-1", "20260401", "us-east-1") is first  # cached
    assert presign.signing_key("secret-1", "20260402", "us-east-1") != first  # new day
    assert presign.signing_key("secret-2", "20260401", "us-east-1") != first  # rotated secret
    assert presign.signing_key("secret-1", "20260401", "eu-west-1") != first  # other region
    assert len(presign._signing_keys) == 4


def test_signing_key_cache_stays_bounded() -> None:
    presign._signing_keys.clear()
    for day in range(1, 200):
        presign.signing_key("s", f"2026{day:04d}", "us-east-1")
    assert len(presign._signing_keys) <= presign._SIGNING_KEY_CACHE_MAX


def test_rotated_credentials_and_midnight_still_match_botocore() -> None:
    """Lambda role credentials rotate; the UTC date rolls over mid-scan: both change the key."""
    signer = presigner("eu-west-1", "http://127.0.0.1:9000", "path", 900)
    old = ReadOnlyCredentials("ASIAOLD", "old-secret", "old-token")
    new = ReadOnlyCredentials("ASIANEW", "new-secret", "new-token")
    for creds in (old, new, old):
        for now in (dt.datetime(2026, 4, 1, 23, 59, 59), dt.datetime(2026, 4, 2, 0, 0, 0)):
            expected = oracle(
                "bkt",
                "2026/04/a.pdf",
                region="eu-west-1",
                endpoint_url="http://127.0.0.1:9000",
                style="path",
                expires_in=900,
                creds=creds,
                now=now,
            )
            assert signer.presign_get("bkt", "2026/04/a.pdf", creds, now) == expected


# --- from_client --------------------------------------------------------------


@pytest.mark.parametrize(
    ("region", "endpoint_url", "s3_config"),
    [
        ("us-east-1", "http://127.0.0.1:9000", {"addressing_style": "path"}),
        ("eu-west-1", "http://minio:9000", {"addressing_style": "virtual"}),
        ("eu-west-1", None, {}),
        ("us-east-1", None, {"us_east_1_regional_endpoint": "regional"}),
        ("ap-southeast-2", None, {"addressing_style": "path"}),
    ],
)
def test_from_client_mirrors_sync_client(region: str, endpoint_url: str | None, s3_config: dict[str, str]) -> None:
    creds = CREDENTIALS[1]
    client = _session().create_client(
        "s3",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key,
        aws_session_token=creds.token,
        config=Config(signature_version="s3v4", s3=s3_config),
    )
    now = dt.datetime(2026, 4, 1, 12)
    with mock.patch.object(botocore.auth, "get_current_datetime", return_value=now):
        for bucket in ("reports-bucket", "my.bucket", "b"):
            expected = client.generate_presigned_url(
                "get_object", Params={"Bucket": bucket, "Key": "x/ü y.pdf"}, ExpiresIn=900
            )
            assert S3Presigner.from_client(client, 900).presign_get(bucket, "x/ü y.pdf", creds, now) == expected


def test_from_client_mirrors_aiobotocore_client() -> None:
    from aiobotocore.session import get_session

    async def run() -> tuple[str, str]:
        config = Config(signature_version="s3v4", s3={"addressing_style": "path"})
        async with get_session().create_client(
            "s3",
            region_name="us-east-1",
            endpoint_url="http://127.0.0.1:9000",
            aws_access_key_id="AKID",
            aws_secret_access_key="SECRET",
            aws_session_token="TOKEN/+=",
            config=config,
        ) as client:
            frozen = await client._get_credentials().get_frozen_credentials()
            now = dt.datetime(2026, 4, 1, 12)
            with mock.patch.object(botocore.auth, "get_current_datetime", return_value=now):
                expected = await client.generate_presigned_url(
                    "get_object", Params={"Bucket": "bkt", "Key": "2026/04/a b.pdf"}, ExpiresIn=900
                )
            return S3Presigner.from_client(client, 900).presign_get("bkt", "2026/04/a b.pdf", frozen, now), expected

    actual, expected = asyncio.run(run())
    assert actual == expected


def test_from_client_refuses_a_sigv2_client() -> None:
    client = _session().create_client("s3", region_name="eu-west-1", aws_access_key_id="A", aws_secret_access_key="S")
    with pytest.raises(ValueError, match="SigV2"):
        S3Presigner.from_client(client, 900)


# --- refusals -----------------------------------------------------------------


@pytest.mark.parametrize("expires_in", [0, -1, MAX_EXPIRES_IN + 1, 10**9])
def test_expiry_outside_sigv4_range_is_rejected(expires_in: int) -> None:
    with pytest.raises(ValueError, match="between 1 and 604800"):
        S3Presigner(region="us-east-1", expires_in=expires_in)


@pytest.mark.parametrize("expires_in", [True, 1.5, "900", None])
def test_expiry_must_be_an_int(expires_in: Any) -> None:
    with pytest.raises(TypeError):
        S3Presigner(region="us-east-1", expires_in=expires_in)


@pytest.mark.parametrize("expires_in", [1, MAX_EXPIRES_IN])
def test_expiry_bounds_are_accepted(expires_in: int) -> None:
    url = S3Presigner(region="us-east-1", expires_in=expires_in).presign_get(
        "bkt-1", "k", CREDENTIALS[0], dt.datetime(2026, 1, 1)
    )
    assert f"X-Amz-Expires={expires_in}&" in url


@pytest.mark.parametrize(
    "bucket",
    [
        "",
        "bad/bucket",
        "bad bucket",
        "bucket\n",
        "arn:aws:s3:us-east-1:123456789012:accesspoint/ap",
        "dir-bucket--use1-az4--x-s3",
    ],
)
def test_unsupported_buckets_are_rejected(bucket: str) -> None:
    with pytest.raises(ValueError):
        S3Presigner(region="us-east-1").presign_get(bucket, "k", CREDENTIALS[0])


def test_empty_key_and_lone_surrogate_are_rejected() -> None:
    signer = S3Presigner(region="us-east-1")
    with pytest.raises(ValueError):
        signer.presign_get("bkt-1", "", CREDENTIALS[0])
    with pytest.raises(UnicodeEncodeError):
        signer.presign_get("bkt-1", "a\ud800", CREDENTIALS[0])


@pytest.mark.parametrize("kwargs", [{"region": ""}, {"region": "us-east-1", "addressing_style": "vhost"}])
def test_bad_settings_are_rejected(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        S3Presigner(**kwargs)
