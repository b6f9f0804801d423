"""Every event shape, the bucket allow-list, error mapping, retries, observability."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
import requests

from pdf_manifest import scan_request
from pdf_manifest.scan_request import BadRequest, parse_event

ALLOWED = frozenset({"reports", "archive"})


def parse(event: Any) -> scan_request.ScanRequest:
    return parse_event(event, default_bucket="reports", default_prefix="2026/04/", allowed_buckets=ALLOWED)


def s3_record(bucket: str, key: str, event_name: str = "ObjectCreated:Put") -> dict[str, Any]:
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventName": event_name,
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": key, "size": 5, "eTag": "0" * 32, "sequencer": "0A1B2C3D4E5F678901"},
        },
    }


def rest_api_event(params: dict[str, str] | None) -> dict[str, Any]:
    return {
        "resource": "/manifest",
        "path": "/manifest",
        "httpMethod": "GET",
        "queryStringParameters": params,
        "requestContext": {"requestId": "r", "stage": "prod"},
        "body": None,
    }


def http_api_event(params: dict[str, str] | None) -> dict[str, Any]:
    event = {
        "version": "2.0",
        "routeKey": "GET /manifest",
        "rawPath": "/manifest",
        "rawQueryString": "",
        "requestContext": {"http": {"method": "GET"}},
    }
    if params is not None:
        event["queryStringParameters"] = params
    return event


# --- parsing: valid shapes ---------------------------------------------------


@pytest.mark.parametrize("event", [{}, None])
def test_parse_empty_event_uses_the_defaults(event):
    assert parse(event) == scan_request.ScanRequest("reports", "2026/04/", source="defaults")


def test_parse_direct_invoke_takes_bucket_and_prefix():
    assert parse({"bucket": "archive", "prefix": "2025/"}) == scan_request.ScanRequest("archive", "2025/", "direct")


def test_parse_step_functions_map_item_takes_the_prefix():
    assert parse({"prefix": "2026/05/"}) == scan_request.ScanRequest("reports", "2026/05/", "direct")


@pytest.mark.parametrize("make_event", [rest_api_event, http_api_event])
def test_parse_http_events_read_query_parameters(make_event):
    assert parse(make_event({"prefix": "x/", "bucket": "archive"})) == scan_request.ScanRequest("archive", "x/", "http")


@pytest.mark.parametrize("make_event", [rest_api_event, http_api_event])
def test_parse_http_events_without_parameters_use_defaults(make_event):
    assert parse(make_event(None)) == scan_request.ScanRequest("reports", "2026/04/", "http")


@pytest.mark.parametrize(
    ("encoded", "decoded"),
    [
        ("2026/04/my+report.pdf", "2026/04/my report.pdf"),
        ("2026/04/a%2Bb.pdf", "2026/04/a+b.pdf"),
        ("2026/04/r%C3%A9sum%C3%A9.pdf", "2026/04/résumé.pdf"),
        ("2026/04/100%25.pdf", "2026/04/100%.pdf"),
    ],
)
def test_parse_s3_notification_decodes_keys(encoded, decoded):
    request = parse({"Records": [s3_record("reports", encoded)]})

    assert request.keys == (decoded,)
    assert request.bucket == "reports"


def test_parse_s3_notification_lists_each_key_once_in_first_named_order():
    named = ["b.pdf", "a.pdf", "b.pdf", "a%2Epdf", "c+d.pdf", "c%20d.pdf"] * 250  # 1,500 records, 3 keys

    request = parse({"Records": [s3_record("reports", key) for key in named]})

    assert request.keys == ("b.pdf", "a.pdf", "c d.pdf")


@pytest.mark.parametrize("encoded", ["2026/04/%ff.pdf", "a%C3.pdf", "%ED%A0%80.pdf", "%C0%AF.pdf"])
def test_parse_s3_notification_refuses_a_key_that_is_not_utf8_once_decoded(encoded):
    """%ff is no UTF-8: decoding it to U+FFFD would name another object than the one S3 created."""
    with pytest.raises(BadRequest) as refused:
        parse({"Records": [s3_record("reports", "fine.pdf"), s3_record("reports", encoded)]})

    assert str(refused.value) == f"record 1: key {encoded!a} does not URL-decode to UTF-8"


# --- parsing: rejected shapes ------------------------------------------------


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ([], "must be a JSON object"),
        ("2026/04/", "must be a JSON object"),
        ({"prefix": 5}, "'prefix' must be a string"),
        ({"bucket": None}, "'bucket' must be a string"),
        ({"prefix": "é" * 513}, "1024"),
        ({"prefixes": ["a/", "b/"]}, "Map state"),
        ({"Prefix": "a/"}, "unrecognised event field"),
        ({"Records": []}, "non-empty list"),
        ({"Records": [{"eventSource": "aws:sqs", "eventName": "x"}]}, "not an S3 ObjectCreated"),
        ({"Records": [s3_record("reports", "a.pdf", "ObjectRemoved:Delete")]}, "not an S3 ObjectCreated"),
        ({"Records": [{"eventSource": "aws:s3", "eventName": "ObjectCreated:Put"}]}, "lacks s3.bucket.name"),
        ({"Records": [s3_record("reports", "a.pdf"), s3_record("archive", "b.pdf")]}, "one manifest covers one bucket"),
        (rest_api_event({"prefix": "a/", "limit": "3"}), "unknown query parameter"),
    ],
)
def test_parse_rejects_with_a_message_that_says_what_to_fix(event, message):
    with pytest.raises(BadRequest, match=message):
        parse(event)


@pytest.mark.parametrize(
    "bucket",
    [
        "secrets",
        "REPORTS",
        "Reports",
        " reports",
        "reports ",
        "reports/",
        "arn:aws:s3:::reports",
        "reports,archive",
        "",
    ],
)
def test_allow_list_cannot_be_escaped(bucket):
    for event in ({"bucket": bucket}, rest_api_event({"bucket": bucket}), {"Records": [s3_record(bucket, "a.pdf")]}):
        with pytest.raises(BadRequest, match="not in ALLOWED_BUCKETS"):
            parse(event)


def test_allowed_buckets_always_include_the_configured_bucket():
    assert scan_request.parse_allowed_buckets("", "reports") == {"reports"}
    assert scan_request.parse_allowed_buckets(" archive , other,", "reports") == {"reports", "archive", "other"}


def test_prefix_of_exactly_1024_bytes_is_accepted():
    assert parse({"prefix": "a" * 1024}).prefix == "a" * 1024


# --- the handler with real S3 ------------------------------------------------


def body_of(response: dict[str, Any]) -> dict[str, Any]:
    return json.loads(response["body"])


def test_handler_scans_the_bucket_and_prefix_named_in_the_event(load_handler, context_factory, s3, bucket):
    other = f"{bucket}-b"
    s3.create_bucket(Bucket=other)
    s3.put_object(Bucket=other, Key="elsewhere/x.pdf", Body=b"%PDF-x")
    module = load_handler(BUCKET_NAME=bucket, ALLOWED_BUCKETS=other)

    response = module.handler({"bucket": other, "prefix": "elsewhere/"}, context_factory())

    body = body_of(response)
    assert response["statusCode"] == 200 and body["count"] == 1
    assert s3.head_object(Bucket=other, Key=body["manifest_key"])  # the manifest goes where the PDFs are


def test_handler_refuses_a_bucket_outside_the_allow_list_without_touching_it(load_handler, context_factory, s3, bucket):
    forbidden = f"{bucket}-secret"
    s3.create_bucket(Bucket=forbidden)
    s3.put_object(Bucket=forbidden, Key="2026/04/payroll.pdf", Body=b"%PDF-")
    module = load_handler(BUCKET_NAME=bucket)

    response = module.handler({"bucket": forbidden}, context_factory())

    assert response["statusCode"] == 400
    assert "ALLOWED_BUCKETS" in body_of(response)["error"]
    assert "Contents" not in s3.list_objects_v2(Bucket=forbidden, Prefix="manifests/")


def test_handler_builds_the_manifest_from_s3_notification_records(load_handler, context_factory, s3, bucket):
    keys = {
        "2026/04/my report.pdf": "2026/04/my+report.pdf",
        "2026/04/a+b.PDF": "2026/04/a%2Bb.PDF",
        "2026/04/résumé.pdf": "2026/04/r%C3%A9sum%C3%A9.pdf",
    }
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=f"%PDF- {key}".encode())
    records = [s3_record(bucket, encoded) for encoded in keys.values()] + [s3_record(bucket, "2026/04/notes.txt")]
    records *= 3  # S3 may deliver a record more than once; the manifest lists each PDF once
    module = load_handler(BUCKET_NAME=bucket)

    body = body_of(module.handler({"Records": records}, context_factory()))

    lines = [json.loads(line) for line in requests.get(body["manifest_url"], timeout=10).text.split("\n") if line]
    assert sorted(line["key"] for line in lines) == sorted(keys)
    assert body["count"] == len(keys)
    for line in lines:
        assert requests.get(line["url"], timeout=10).content == f"%PDF- {line['key']}".encode()


def test_handler_answers_bad_events_with_400(load_handler, context_factory, bucket):
    module = load_handler(BUCKET_NAME=bucket)

    response = module.handler({"prefix": 42}, context_factory())

    assert response == {"statusCode": 400, "body": json.dumps({"error": "'prefix' must be a string, got int"})}


def test_handler_maps_access_denied_to_403(load_handler, context_factory, s3, bucket, s3_endpoint, monkeypatch):
    # moto checks IAM only when told to; turn it on for this test's requests.
    iam = boto3.client("iam", endpoint_url=s3_endpoint, region_name="us-east-1")
    user = f"reader-{bucket}"
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="only-other-things",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    module = load_handler(
        BUCKET_NAME=bucket, AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"]
    )
    monkeypatch.setattr("moto.settings.INITIAL_NO_AUTH_ACTION_COUNT", 0)

    response = module.handler({}, context_factory())

    assert response["statusCode"] == 403
    assert "Access Denied" in body_of(response)["error"] or "AccessDenied" in body_of(response)["error"]


def test_retry_with_the_same_request_id_overwrites_its_own_manifest(load_handler, context_factory, s3, bucket):
    s3.put_object(Bucket=bucket, Key="2026/04/a.pdf", Body=b"%PDF-")
    module = load_handler(BUCKET_NAME=bucket)
    request_id = "0f3e7c1a-0000-4000-8000-00000000beef"

    first = body_of(module.handler({}, context_factory(request_id=request_id)))
    s3.put_object(Bucket=bucket, Key="2026/04/b.pdf", Body=b"%PDF-")
    second = body_of(module.handler({}, context_factory(request_id=request_id)))

    assert first["manifest_key"] == second["manifest_key"] == f"manifests/{request_id}.jsonl"
    manifests = s3.list_objects_v2(Bucket=bucket, Prefix="manifests/")["Contents"]
    assert [obj["Key"] for obj in manifests] == [second["manifest_key"]]
    assert second["count"] == 2


def test_scan_stops_cleanly_when_the_timeout_is_near(
    load_handler, context_factory, bucket, moto_backend, s3, lambda_tmp
):
    for i in range(2500):
        moto_backend.put_object(bucket, f"2026/04/{i:05d}.pdf", b"%PDF-")
    module = load_handler(BUCKET_NAME=bucket, DEADLINE_MARGIN_MS=5000)

    with pytest.raises(module.ScanDeadlineExceeded, match=r"ms left \(1 pages listed, 1000 PDFs found so far\)"):
        module.handler({}, context_factory(timeout_s=4))

    assert "Contents" not in s3.list_objects_v2(Bucket=bucket, Prefix="manifests/")
    assert list(lambda_tmp.iterdir()) == []


# --- observability -------------------------------------------------------------


def stdout_records(captured: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in captured.splitlines() if line.strip()]


def test_logs_are_json_lines_with_context_and_no_urls(load_handler, context_factory, s3, bucket, capsys):
    s3.put_object(Bucket=bucket, Key="2026/04/a.pdf", Body=b"%PDF-")
    module = load_handler(BUCKET_NAME=bucket)
    capsys.readouterr()

    body = body_of(module.handler({}, context_factory(request_id="11111111-2222-4333-8444-555555555555")))

    out = capsys.readouterr().out
    records = stdout_records(out)  # every line parses
    assert "X-Amz-Signature" not in out and body["manifest_url"] not in out
    [ready] = [r for r in records if r.get("message") == "manifest ready"]
    assert ready["function_request_id"] == "11111111-2222-4333-8444-555555555555"
    assert ready["bucket"] == bucket and ready["prefix"] == "2026/04/" and ready["count"] == 1
    assert "cold_start" in ready and ready["duration_ms"] >= 0


def test_emf_metrics_carry_the_scan_figures(load_handler, context_factory, s3, bucket, capsys):
    for name in ("a.pdf", "b.PDF", "c.txt"):
        s3.put_object(Bucket=bucket, Key=f"2026/04/{name}", Body=b"%PDF-")
    module = load_handler(BUCKET_NAME=bucket, POWERTOOLS_METRICS_NAMESPACE="TestNamespace")
    capsys.readouterr()

    body = body_of(module.handler({}, context_factory()))

    [emf] = [r for r in stdout_records(capsys.readouterr().out) if "_aws" in r and "PdfsInManifest" in r]
    directive = emf["_aws"]["CloudWatchMetrics"][0]
    assert directive["Namespace"] == "TestNamespace"
    assert {m["Name"] for m in directive["Metrics"]} >= {
        "PdfsInManifest",
        "ObjectsSkipped",
        "PagesListed",
        "ManifestBytes",
        "ScanDuration",
    }
    manifest_size = s3.head_object(Bucket=bucket, Key=body["manifest_key"])["ContentLength"]
    assert emf["PdfsInManifest"] in (2, [2.0], 2.0)
    assert emf["ObjectsSkipped"] in (1, [1.0], 1.0)
    assert emf["PagesListed"] in (1, [1.0], 1.0)
    assert emf["ManifestBytes"] in (manifest_size, [float(manifest_size)], float(manifest_size))


# --- the sample events in events/ (shared with invoke.py and the docs) ----------


@pytest.mark.parametrize(
    ("name", "source", "prefix", "keys"),
    [
        ("direct", "direct", None, None),
        ("stepfunctions-map-item", "direct", None, None),
        ("apigateway-proxy", "http", None, None),
        ("s3-object-created", "s3-notification", "", ("2026/04/quarterly report.pdf",)),
    ],
)
def test_every_sample_event_is_a_valid_request(name, source, prefix, keys):
    from local_dev.events import load_event

    event = load_event(name)
    request = parse_event(
        event,
        default_bucket="my-company-reports-bucket",
        default_prefix="2026/04/",
        allowed_buckets=frozenset({"my-company-reports-bucket"}),
    )

    assert request.source == source
    assert request.bucket == "my-company-reports-bucket"
    if prefix is not None:
        assert request.prefix == prefix
    if keys is not None:
        assert request.keys == keys


def test_the_sample_events_cover_every_shape():
    from local_dev.events import sample_events

    assert set(sample_events()) >= {"direct", "stepfunctions-map-item", "apigateway-proxy", "s3-object-created"}
