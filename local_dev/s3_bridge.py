"""The local S3's bucket notifications, delivered to the function as S3 delivers them on AWS.

    python -m local_dev.s3_bridge --port 9010 --invoke-url http://127.0.0.1:9009

``make up`` starts this bridge first, then the local S3 with its webhook
pointed here (versitygw: ``--event-webhook-url``; MinIO: a webhook target and a
bucket notification). For each object event it:

1. reads the webhook body, versitygw's or MinIO's, and rewrites each record
   into the shape S3 hands Lambda: ``eventVersion`` 2.1, ``eventName`` without
   the ``s3:`` prefix, the key URL-encoded as S3 encodes it (``+`` for a space,
   ``%2B`` for a plus), ``principalId``, the bucket's own ARN;
2. keeps only the records the trigger would send (:mod:`local_dev.s3_trigger`,
   the same rules ``make s3-trigger`` deploys) for the configured bucket;
3. answers the S3 server at once and queues the event with Lambda's
   asynchronous semantics (:mod:`local_runtime.async_invoke`: two retries one
   and two minutes apart, maximum event age, on-failure JSON lines, the stop
   after 16 invocations of a recursive chain);
4. invokes the function through the Invoke API of ``invoke.py serve``, as a
   RequestResponse call, so the queue sees the function's own outcome.

The bridge runs apart from ``serve``: the S3 server refuses to start when its
webhook does not answer, and events that arrive while ``serve`` restarts wait
in the queue (retried every few seconds, within the maximum event age)
instead of being lost.

Whatever the webhook sends that is not an S3 object event (another body, a
record for another bucket, a key that does not decode) is answered and logged
in one line; only S3's test event is answered silently.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus

from aiohttp import web

from local_dev.s3_trigger import TriggerRules, trigger_rules
from local_runtime.async_invoke import AsyncQueue, AsyncSettings, Outcome, QueuedEvent
from local_runtime.config import ACCOUNT_ID
from local_runtime.display import shown
from local_runtime.http_guard import allowed_hosts, is_loopback, log_refusal, refusal

_log = logging.getLogger("s3-bridge")
PATH = "/s3-events"
BODY_LIMIT = 1 << 20  # one webhook POST carries one record; S3 batches none
MAX_KEY_BYTES = 1024
NOTIFICATION_ID = "local-s3-trigger"
INVOKE_TIMEOUT_S = 960.0  # Lambda's longest timeout (900 s) and some
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never through a proxy


class NotAnEvent(ValueError):
    """A webhook body or record the bridge cannot hand to the function (one log line)."""


@dataclass(frozen=True)
class ObjectEvent:
    """One record, already in the shape Lambda receives it, and what the filter needs."""

    bucket: str
    key: str  # as stored
    event_name: str  # S3's spelling, without "s3:"
    record: dict[str, Any]
    principal: str = ""  # who wrote the object (the access key, for a local S3)

    @property
    def label(self) -> str:
        return f"{self.bucket}/{shown(self.key)}"


def s3_key_encoding(key: str) -> str:
    """The key as S3 writes it into a notification: form encoding, ``/`` kept."""
    return quote_plus(key, safe="/")


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise NotAnEvent(f"{what} is not a string")
    return value


def _decoded_key(raw: Any, encoded: bool) -> str:
    """The stored key: versitygw sends it raw, MinIO URL-encoded; either must be valid UTF-8 text."""
    key = _text(raw, "s3.object.key")
    if encoded:
        try:
            key = unquote_plus(key, errors="strict")
        except UnicodeDecodeError:
            raise NotAnEvent(f"key {shown(raw)} does not URL-decode to UTF-8") from None
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise NotAnEvent(f"key {shown(key)} is not valid Unicode (a lone surrogate)") from None
    if not key or size > MAX_KEY_BYTES:
        raise NotAnEvent(f"key of {size} bytes: S3 keys are 1 to {MAX_KEY_BYTES} bytes")
    return key


def parse_webhook(body: bytes) -> list[ObjectEvent] | None:
    """The object events of one webhook body; None for S3's test event; NotAnEvent otherwise."""
    try:
        document = json.loads(body)
    except ValueError:
        raise NotAnEvent("the body is not JSON") from None
    if not isinstance(document, dict):
        raise NotAnEvent(f"the body is a JSON {type(document).__name__}, not an object")
    if document.get("Event") == "s3:TestEvent":  # versitygw at start-up, S3 when a notification is added
        return None
    records = document.get("Records")
    if not isinstance(records, list) or not records:
        raise NotAnEvent("the body has no Records list (not an S3 event notification)")
    encoded = "EventName" in document  # MinIO wraps its S3-shaped, already encoded records
    return [_object_event(record, index, encoded) for index, record in enumerate(records)]


def _object_event(record: Any, index: int, encoded: bool) -> ObjectEvent:
    try:
        if not isinstance(record, dict) or record.get("eventSource") != "aws:s3":
            raise NotAnEvent(f"record {index} is not an aws:s3 record")
        s3 = record["s3"]
        bucket = _text(s3["bucket"]["name"], "s3.bucket.name")
        key = _decoded_key(s3["object"]["key"], encoded)
        name = _text(record["eventName"], "eventName").removeprefix("s3:")
        obj = s3["object"]
    except (KeyError, TypeError):
        raise NotAnEvent(f"record {index} lacks eventName, s3.bucket.name or s3.object.key") from None
    identity = record.get("userIdentity") or {}
    principal = identity.get("principalId") or identity.get("PrincipalId") or "local"
    owner = (s3["bucket"].get("ownerIdentity") or {}) if isinstance(s3["bucket"], dict) else {}
    shaped_object: dict[str, Any] = {
        "key": s3_key_encoding(key),
        "size": obj.get("size", 0),
        "eTag": (obj.get("eTag") or "").strip('"'),
        "sequencer": obj.get("sequencer") or f"{time.time_ns():X}",
    }
    if obj.get("versionId"):
        shaped_object["versionId"] = obj["versionId"]
    shaped = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": record.get("awsRegion") or "us-east-1",
        "eventTime": _event_time(record.get("eventTime")),
        "eventName": name,
        "userIdentity": {"principalId": f"AWS:{principal}"},
        "requestParameters": {"sourceIPAddress": (record.get("requestParameters") or {}).get("sourceIPAddress", "")},
        "responseElements": record.get("responseElements") or {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": NOTIFICATION_ID,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": owner.get("principalId") or owner.get("PrincipalId") or principal},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": shaped_object,
        },
    }
    return ObjectEvent(bucket=bucket, key=key, event_name=name, record=shaped, principal=str(principal))


def _event_time(raw: Any) -> str:
    """S3's ``2026-04-30T12:34:56.789Z`` (versitygw sends RFC 3339 without milliseconds)."""
    from datetime import UTC, datetime

    if isinstance(raw, str):
        with contextlib.suppress(ValueError):
            parsed = datetime.fromisoformat(raw.replace("Z", "+00:00")).astimezone(UTC)
            return parsed.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


# -- delivery: one synchronous invocation through the Invoke API ------------------------------


def invoke_through_api(invoke_url: str, function_name: str) -> Any:
    """A Delivery for the async queue: POST the event to ``invoke.py serve`` and classify the answer."""
    url = f"{invoke_url.rstrip('/')}/2015-03-31/functions/{quote(function_name, safe='')}/invocations"

    def deliver(event: QueuedEvent) -> Outcome:
        request = urllib.request.Request(  # noqa: S310 - a loopback http URL given on the command line
            url,
            data=event.payload,
            method="POST",
            headers={"Content-Type": "application/json", "X-Amz-Invocation-Type": "RequestResponse"},
        )
        try:
            with _LOCAL.open(request, timeout=INVOKE_TIMEOUT_S) as response:
                payload = response.read()
                error = response.headers.get("X-Amz-Function-Error")
                request_id = response.headers.get("x-amzn-RequestId", "")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            kind = "throttled" if exc.code == 429 else "unavailable"
            return Outcome(kind, status=exc.code, payload=body, detail=f"Invoke API answered {exc.code}")
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            return Outcome("unavailable", status=0, detail=f"the Invoke API at {invoke_url} does not answer: {reason}")
        if error:
            try:
                error_type = str(json.loads(payload).get("errorType") or error)
            except (ValueError, AttributeError):
                error_type = error
            return Outcome("function_error", payload=payload, function_error=error_type, request_id=request_id)
        return Outcome("ok", payload=payload, request_id=request_id)

    return deliver


# -- the webhook endpoint ------------------------------------------------------------------------


class Bridge:
    """The webhook endpoint and the function's asynchronous queue behind it."""

    def __init__(
        self, rules: TriggerRules, bucket: str, queue: AsyncQueue, function_principal: str | None = None
    ) -> None:
        self.rules = rules
        # The access key the function writes with: an object written by anyone else never continues a
        # chain of the function's own writes (Lambda follows the trace header; a local S3 drops it).
        self.function_principal = function_principal
        self.bucket = bucket
        self.queue = queue
        self.hosts: frozenset[str] = frozenset()
        self.received = 0

    def app(self) -> web.Application:
        app = web.Application(client_max_size=BODY_LIMIT)
        app.router.add_post(PATH, self.handle)
        app.router.add_get("/health", self.health)
        return app

    async def health(self, request: web.Request) -> web.Response:
        return web.json_response({"queued": self.queue.pending, **self.queue.counts})

    async def handle(self, request: web.Request) -> web.Response:
        reason = refusal(request, self.hosts)
        if reason is not None:
            log_refusal("S3 event bridge", request, reason)
            return web.Response(status=403, text=f"refused: {reason}\n")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            _log.warning("webhook body over %d bytes ignored", BODY_LIMIT)
            return web.Response(status=413)
        self.received += 1
        try:
            events = parse_webhook(body)
        except NotAnEvent as exc:
            _log.warning("ignored a webhook POST that is not an S3 object event: %s", exc)
            return web.Response(status=400, text=f"not an S3 event: {exc}\n")
        for event in events or []:
            self.accept(event)
        return web.Response(status=200)

    def accept(self, event: ObjectEvent) -> bool:
        """Filter one record by bucket and trigger rules, then queue it; True when queued."""
        if event.bucket != self.bucket:
            _log.warning("ignored %s %s: the trigger is on bucket %s only", event.event_name, event.label, self.bucket)
            return False
        if not (self.rules.event_matches(event.event_name) and self.rules.key_matches(event.key)):
            _log.info(
                "no invocation for %s %s: the trigger takes %s", event.event_name, event.label, self.rules.describe()
            )
            return False
        payload = json.dumps({"Records": [event.record]}, ensure_ascii=False).encode("utf-8")
        someone_else = self.function_principal is not None and event.principal != self.function_principal
        depth = 1 if someone_else else self.queue.chain_depth()
        queued = QueuedEvent(payload=payload, depth=depth, label=event.label)
        if self.queue.submit(queued):
            chain = f", invocation {depth} of a chain of the function's own writes" if depth > 1 else ""
            _log.info(
                "%s %s: queued for the function (event %s%s)", event.event_name, event.label, queued.request_id, chain
            )
            return True
        return False


@contextlib.contextmanager
def running_bridge(bridge: Bridge, host: str = "127.0.0.1", port: int = 0, extra_hosts: tuple[str, ...] = ()) -> Any:
    """Serve the bridge in a background thread for a ``with`` block; yields its URL."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    bound = sock.getsockname()[1]
    bridge.hosts = allowed_hosts(bound, host) | frozenset(h.lower() for h in extra_hosts)
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    stop = asyncio.Event()

    async def serve() -> None:
        runner = web.AppRunner(bridge.app(), access_log=None, handle_signals=False)
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
        ready.set()
        await stop.wait()
        await runner.cleanup()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True, name="s3-bridge")
    thread.start()
    ready.wait(10)
    try:
        yield f"http://{host}:{bound}{PATH}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()
        sock.close()


# -- the command line ----------------------------------------------------------------------------


def _settings_from(env_file: str, template: str) -> dict[str, str]:
    """BUCKET_NAME and PREFIX as the function gets them: template defaults, then .env, then the environment."""
    from dotenv import dotenv_values

    from local_dev.template_config import load_template_function

    values: dict[str, str] = {}
    if template and Path(template).is_file():
        values.update(load_template_function(template).env)
    if env_file and Path(env_file).is_file():
        values.update({k: v for k, v in dotenv_values(env_file).items() if v is not None})
    wanted = ("BUCKET_NAME", "PREFIX", "AWS_REGION", "AWS_ACCESS_KEY_ID")
    values.update({k: v for k, v in os.environ.items() if k in wanted})
    return values


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m local_dev.s3_bridge",
        description="Receive the local S3's webhook notifications and invoke the function asynchronously "
        "through invoke.py serve, with the S3 trigger's filter and Lambda's async retries.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=9010, help="port (default: %(default)s; 0 picks one)")
    parser.add_argument("--allow-host", action="append", default=[], help="another Host the S3 server sends")
    parser.add_argument("--invoke-url", default="http://127.0.0.1:9009", help="invoke.py serve (default: %(default)s)")
    parser.add_argument("--function-name", default="pdf-manifest", help="function to invoke (default: %(default)s)")
    parser.add_argument("--template", default="template.yaml", help="where PREFIX's default comes from")
    parser.add_argument("--env-file", default=".env", help="dotenv file with BUCKET_NAME and PREFIX")
    parser.add_argument("--bucket", help="the bucket the trigger is on (default: BUCKET_NAME)")
    parser.add_argument("--prefix", help="the trigger's key prefix (default: PREFIX, as the function scans)")
    parser.add_argument("--on-failure", default=".s3-events/on-failure.jsonl", help="on-failure destination file")
    parser.add_argument(
        "--retry-scale",
        type=float,
        default=1.0,
        help="multiply Lambda's retry waits (1 min, 2 min) and the event age by this; 0.01 for quick local "
        "runs (default: %(default)s)",
    )
    parser.add_argument("--max-retries", type=int, default=2, help="MaximumRetryAttempts, 0-2 (default: 2)")
    parser.add_argument("--max-event-age", type=float, default=21600, help="MaximumEventAgeInSeconds (default: 6 h)")
    parser.add_argument("--queue-limit", type=int, default=1000, help="events kept waiting (default: %(default)s)")
    parser.add_argument("--ready-file", help="write the listening URL here once up (tools/local_s3.py reads it)")
    parser.add_argument("--state", help="the record make up keeps of this bridge (names it for make down)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="s3-bridge: %(message)s", stream=sys.stderr)
    settings = _settings_from(args.env_file, args.template)
    bucket = args.bucket or settings.get("BUCKET_NAME")
    if not bucket:
        print("s3-bridge: no bucket: set BUCKET_NAME in .env or pass --bucket", file=sys.stderr)
        return 2
    if not is_loopback(args.host):
        print(
            f"s3-bridge: --host {args.host} is not loopback; the bridge invokes the function for anyone",
            file=sys.stderr,
        )
        return 2
    rules = trigger_rules(args.prefix if args.prefix is not None else settings.get("PREFIX", ""))
    region = settings.get("AWS_REGION", "us-east-1")
    try:
        async_settings = AsyncSettings(
            function_arn=f"arn:aws:lambda:{region}:{ACCOUNT_ID}:function:{args.function_name}",
            max_retry_attempts=args.max_retries,
            max_event_age_s=args.max_event_age,
            on_failure=Path(args.on_failure).resolve(),
            time_scale=args.retry_scale,
            queue_limit=args.queue_limit,
        )
    except ValueError as exc:
        print(f"s3-bridge: {exc}", file=sys.stderr)
        return 2
    queue = AsyncQueue(async_settings, invoke_through_api(args.invoke_url, args.function_name))
    bridge = Bridge(rules, bucket, queue, settings.get("AWS_ACCESS_KEY_ID"))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        with running_bridge(bridge, args.host, args.port, tuple(args.allow_host)) as url:
            if args.ready_file:
                Path(args.ready_file).write_text(url + "\n")
            _log.info(
                "listening on %s: %s in %s invoke %s at %s; failures to %s",
                url,
                rules.describe(),
                bucket,
                args.function_name,
                args.invoke_url,
                args.on_failure,
            )
            stop.wait()
    except OSError as exc:
        print(f"s3-bridge: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 2
    left = queue.close()
    if left:
        _log.warning("stopped with %d queued events not run", left)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
