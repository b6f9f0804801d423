"""The sandbox's S3 without Docker: versitygw with its web console, for ``make up``.

``make up`` runs MinIO in Docker when an engine answers. Without one it calls
``local_s3.py up``, which starts versitygw (built by ``make s3-verifier``) on
the same two ports (S3 API 127.0.0.1:9000, console 127.0.0.1:9001) with the
credentials ``make seed`` / ``make invoke`` will sign with, creates the bucket
and prints one line saying where everything is. ``local_s3.py down`` stops it.

Settings come from the process environment, then ``.env``, then
``.env.example`` (the same order seed.py and invoke.py read them, with the
example standing in for a ``.env`` not written yet), so the server and the
scripts that talk to it always agree on the keys. The running server is
recorded in ``<data>/versitygw.json``; ``down`` signals that pid only while it
is still this versitygw (same binary name, same data directory), so a stale
record never takes down whatever process reused the number.

The console runs in the browser and calls the S3 API from there, which
versitygw allows (CORS) from one origin only. A server bound to 127.0.0.1 is
therefore named ``localhost`` everywhere a person reads or types it: the
printed addresses, the console's origin and its gateway list, and
``.env.example``'s ``S3_ENDPOINT_URL``. Its internal IAM (``<data>/iam``)
answers the console's user pages, which single-root-user mode refuses with a
red ``XAdminMethodNotSupported`` toast.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import string
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = {
    "AWS_ACCESS_KEY_ID": "minioadmin",
    "AWS_SECRET_ACCESS_KEY": "minioadmin",
    "BUCKET_NAME": "my-company-reports-bucket",
    "AWS_DEFAULT_REGION": "us-east-1",
}
SETTING_KEYS = (*DEFAULTS, "AWS_REGION", "S3_ENDPOINT_URL")
STATE_FILE = "versitygw.json"
BRIDGE_STATE_FILE = "s3-bridge.json"
BRIDGE_LOG_FILE = "s3-bridge.log"
EVENT_FILTER_FILE = "event-filter.json"
LEGACY_PID_FILE = "versitygw.pid"  # written by make verifier-up before it gained the console
LOG_FILE = "versitygw.log"
READY_TIMEOUT_S = 20.0  # a cold start of the 60 MB binary on a busy 2-core machine
STOP_TIMEOUT_S = 5.0
FIX_PORTS = (
    "make up S3_ADDR=127.0.0.1:9100 CONSOLE_ADDR=127.0.0.1:9101 (and S3_ENDPOINT_URL=http://localhost:9100 in .env)"
)
# Loopback only: never through a proxy from the environment.
_LOCAL = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class LocalS3Error(Exception):
    """A problem the user can fix; printed as one line naming the fix."""


@dataclass(frozen=True)
class Address:
    host: str
    port: int

    @classmethod
    def parse(cls, text: str, option: str) -> Address:
        host, sep, port = text.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise LocalS3Error(f"{option}={text!r} is not HOST:PORT (for example 127.0.0.1:9000)")
        return cls(host.strip("[]"), int(port))

    def __str__(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def browser_url(self) -> str:
        """The address as people type it: ``localhost`` for 127.0.0.1 (the name .env.example uses)."""
        return f"http://localhost:{self.port}" if self.host == "127.0.0.1" else self.url


@dataclass(frozen=True)
class Settings:
    access_key: str
    secret_key: str
    bucket: str
    region: str
    endpoint_url: str | None  # what seed/invoke will use; only checked against our address


def load_settings(env_file: Path, example: Path) -> Settings:
    """Environment over .env over .env.example over the compose defaults."""
    from dotenv import dotenv_values

    merged: dict[str, str] = dict(DEFAULTS)
    sources = [dotenv_values(path) for path in (example, env_file) if path.is_file()]
    for source in [*sources, os.environ]:
        merged.update({k: v for k, v in source.items() if k in SETTING_KEYS and v})
    return Settings(
        access_key=merged["AWS_ACCESS_KEY_ID"],
        secret_key=merged["AWS_SECRET_ACCESS_KEY"],
        bucket=merged["BUCKET_NAME"],
        region=merged.get("AWS_REGION") or merged["AWS_DEFAULT_REGION"],
        endpoint_url=merged.get("S3_ENDPOINT_URL"),
    )


def port_is_free(address: Address) -> bool:
    """True when a server could listen there now (SO_REUSEADDR, as Go's listener sets it)."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address.host, address.port))
        except OSError:
            return False
    return True


def answers(url: str) -> bool:
    try:
        with _LOCAL.open(url, timeout=1) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def command_line(pid: int) -> list[str]:
    """The argv of a live process ([] when gone): /proc on Linux, ps elsewhere."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.parent.is_dir():
        try:
            return [part for part in proc.read_bytes().decode(errors="replace").split("\0") if part]
        except OSError:
            return []
    ps = shutil.which("ps")
    if ps is None:
        return []
    found = subprocess.run([ps, "-o", "command=", "-p", str(pid)], capture_output=True, text=True, check=False)
    return found.stdout.split() if found.returncode == 0 else []


class Server:
    """The versitygw this data directory belongs to: its record, log and buckets."""

    def __init__(self, data: Path) -> None:
        self.data = data.resolve()
        self.buckets = self.data / "buckets"
        self.iam = self.data / "iam"  # versitygw's internal IAM: the console's user pages work
        self.state_path = self.data / STATE_FILE
        self.log_path = self.data / LOG_FILE
        self.bridge_state = self.data / BRIDGE_STATE_FILE
        self.bridge_log = self.data / BRIDGE_LOG_FILE

    def legacy_pid(self) -> int | None:
        """A versitygw still running from the old `make verifier-up` (relative data path, no console)."""
        try:
            pid = int((self.data / LEGACY_PID_FILE).read_text().strip())
        except (OSError, ValueError):
            return None
        argv = command_line(pid)
        if argv and Path(argv[0]).name == "versitygw" and argv[-2:-1] == ["posix"]:
            try:  # versitygw's POSIX backend works from inside the directory it serves
                cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
            except OSError:
                return None
            if self.buckets in (cwd.resolve(), (cwd / argv[-1]).resolve()):
                return pid
        (self.data / LEGACY_PID_FILE).unlink(missing_ok=True)
        return None

    def record(self) -> dict[str, object] | None:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None

    def is_ours(self, pid: int) -> bool:
        argv = command_line(pid)
        return bool(argv) and Path(argv[0]).name == "versitygw" and str(self.buckets) in argv

    def running(self) -> dict[str, object] | None:
        """The record of a server that is still alive and still ours, else None."""
        record = self.record()
        if record and isinstance(record.get("pid"), int) and self.is_ours(record["pid"]):  # type: ignore[arg-type]
            return record
        return None

    # -- the S3 event bridge: up before versitygw, which refuses to start when its webhook does not answer

    def bridge_running(self) -> dict[str, object] | None:
        try:
            record = json.loads(self.bridge_state.read_text())
        except (OSError, ValueError):
            return None
        pid = record.get("pid") if isinstance(record, dict) else None
        if (
            isinstance(pid, int)
            and "local_dev.s3_bridge" in command_line(pid)
            and str(self.bridge_state) in " ".join(command_line(pid))
        ):
            return record
        return None

    def start_bridge(
        self, bridge: Address, invoke_url: str, on_failure: Path, allow_hosts: tuple[str, ...] = ()
    ) -> str:
        """The bridge's webhook URL, starting it unless it already runs here."""
        record = self.bridge_running()
        if record:
            return str(record["url"])
        if not port_is_free(bridge):
            raise LocalS3Error(f"{bridge} (BRIDGE_ADDR) is taken by another program: stop it or set BRIDGE_ADDR")
        self.data.mkdir(parents=True, exist_ok=True)
        ready = self.data / "s3-bridge.url"
        ready.unlink(missing_ok=True)
        command = [
            sys.executable,
            "-m",
            "local_dev.s3_bridge",
            "--host",
            bridge.host,
            "--port",
            str(bridge.port),
            "--invoke-url",
            invoke_url,
            "--on-failure",
            str(on_failure),
            "--ready-file",
            str(ready),
            "--state",  # names the record in argv, so down signals only this bridge
            str(self.bridge_state),
            *[option for host in allow_hosts for option in ("--allow-host", host)],
        ]
        with self.bridge_log.open("ab") as log:
            process = subprocess.Popen(
                command,
                cwd=ROOT if Path.cwd() == ROOT else Path.cwd(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise LocalS3Error(f"the S3 event bridge exited at start; see {self.bridge_log}")
            if ready.is_file() and ready.read_text().strip():
                url = ready.read_text().strip()
                self.bridge_state.write_text(json.dumps({"pid": process.pid, "url": url}) + "\n")
                return url
            time.sleep(0.05)
        process.kill()
        raise LocalS3Error(f"the S3 event bridge did not start within {READY_TIMEOUT_S:.0f} s; see {self.bridge_log}")

    def stop_bridge(self) -> int | None:
        record = self.bridge_running()
        self.bridge_state.unlink(missing_ok=True)
        if record is None:
            return None
        pid = int(record["pid"])  # type: ignore[call-overload]
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        return pid

    def start(self, binary: Path, s3: Address, console: Address, settings: Settings, webhook: str | None = None) -> int:
        self.check_ports(s3, console)
        self.buckets.mkdir(parents=True, exist_ok=True)
        self.iam.mkdir(exist_ok=True)
        command = [
            str(binary),
            "--port",
            str(s3),
            "--region",
            settings.region,
            "--iam-dir",
            str(self.iam),
            "--webui",
            str(console),
            "--webui-no-tls",
            # One origin only (a browser rejects a list): the console URL printed below, and the
            # S3 API the console calls by the same name, so the login page shows .env's endpoint.
            "--cors-allow-origin",
            console.browser_url,
            "--webui-gateways",
            s3.browser_url,
            "--webui-admin-gateways",
            s3.browser_url,
            "--health",
            "/health",
            "--keep-alive",
            "--quiet",
            *(self._webhook_options(webhook) if webhook else []),
            "posix",
            str(self.buckets),
        ]
        env = {**os.environ, "ROOT_ACCESS_KEY": settings.access_key, "ROOT_SECRET_KEY": settings.secret_key}
        with self.log_path.open("ab") as log:
            process = subprocess.Popen(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # outlives make, and a Ctrl-C in the terminal that started it
            )
        record = {"pid": process.pid, "s3": str(s3), "console": str(console), "webhook": webhook}
        self.state_path.write_text(json.dumps(record) + "\n")
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if process.poll() is not None:
                self.state_path.unlink(missing_ok=True)
                raise LocalS3Error(f"versitygw exited at start ({self.last_log_line()}); full log: {self.log_path}")
            if answers(f"{s3.url}/health") and answers(f"{console.url}/"):
                return process.pid
            time.sleep(0.1)
        self.stop(process.pid)
        raise LocalS3Error(f"versitygw did not answer within {READY_TIMEOUT_S:.0f} s; see {self.log_path}")

    @staticmethod
    def check_ports(s3: Address, console: Address) -> None:
        for address, option in ((s3, "S3_ADDR"), (console, "CONSOLE_ADDR")):
            if not port_is_free(address):
                raise LocalS3Error(f"{address} ({option}) is taken by another program: stop it or move: {FIX_PORTS}")

    def _webhook_options(self, webhook: str) -> list[str]:
        """versitygw's notifications to the bridge, only the event types the trigger takes."""
        from local_dev.s3_trigger import trigger_rules  # here: `make down` runs under any python3

        filter_file = self.data / EVENT_FILTER_FILE
        filter_file.write_text(json.dumps(dict.fromkeys(trigger_rules("").events, True)) + "\n")
        return ["--event-webhook-url", webhook, "--event-filter", str(filter_file)]

    def stop(self, pid: int) -> None:
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        while time.monotonic() < deadline and self.is_ours(pid):
            time.sleep(0.05)
        if self.is_ours(pid):
            os.kill(pid, signal.SIGKILL)
        self.state_path.unlink(missing_ok=True)

    def last_log_line(self) -> str:
        try:
            lines = [line for line in self.log_path.read_text(errors="replace").splitlines() if line.strip()]
        except OSError:
            return "no log"
        return lines[-1].strip() if lines else "no output"


def ensure_bucket(endpoint: str, settings: Settings) -> bool:
    """Create the bucket unless it exists; True when it was created now."""
    import boto3
    from botocore.config import Config
    from botocore.exceptions import ClientError

    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=settings.region,
        aws_access_key_id=settings.access_key,
        aws_secret_access_key=settings.secret_key,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )
    try:
        client.head_bucket(Bucket=settings.bucket)
        return False
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code")
        if code in ("403", "AccessDenied", "SignatureDoesNotMatch", "InvalidAccessKeyId"):
            raise LocalS3Error(
                "the running server refuses the configured keys (changed since it started?): make down, then make up"
            ) from error
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise LocalS3Error(f"bucket {settings.bucket!r}: {error}") from error
    client.create_bucket(Bucket=settings.bucket)
    return True


def endpoint_note(settings: Settings, s3: Address) -> str:
    """A warning when seed/invoke are configured for another server than this one."""
    if not settings.endpoint_url:
        return f"; set S3_ENDPOINT_URL={s3.browser_url} in .env for make seed / make invoke"
    parts = urlsplit(settings.endpoint_url)
    same_host = parts.hostname in (s3.host, "localhost" if s3.host in ("127.0.0.1", "::1") else s3.host)
    if parts.port != s3.port or not same_host:
        return (
            f"; note: S3_ENDPOINT_URL is {settings.endpoint_url}, set it to {s3.browser_url} "
            "for make seed / make invoke"
        )
    return ""


def cmd_up(args: argparse.Namespace) -> str:
    s3 = Address.parse(args.s3_addr, "S3_ADDR")
    console = Address.parse(args.console_addr, "CONSOLE_ADDR")
    if s3 == console:
        raise LocalS3Error(f"S3_ADDR and CONSOLE_ADDR are both {s3}: give the console its own port")
    binary = Path(args.binary)
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise LocalS3Error(f"no versitygw at {binary}: run make s3-verifier (needs Go, https://go.dev/dl/)")
    settings = load_settings(Path(args.env_file), Path(args.env_example))
    server = Server(Path(args.data))
    legacy = server.legacy_pid()
    if legacy:
        raise LocalS3Error(f"an older make verifier-up still runs here (pid {legacy}): make down, then make up")
    record = server.running()
    webhook = None
    bridge_was_running = server.bridge_running() is not None
    if args.bridge_addr:  # the bridge first: versitygw exits at start when its webhook does not answer
        if not record:
            server.check_ports(s3, console)
        webhook = server.start_bridge(
            Address.parse(args.bridge_addr, "BRIDGE_ADDR"), args.invoke_url, Path(args.on_failure).resolve()
        )
    if record:
        if (record.get("s3"), record.get("console")) != (str(s3), str(console)):
            raise LocalS3Error(
                f"versitygw already runs from {args.data} on {record.get('s3')} / console {record.get('console')}: "
                "make down first to move it"
            )
        state = f"already running (pid {record['pid']})"
        if webhook and record.get("webhook") != webhook:
            state += "; it sends no notifications to the bridge (make down, then make up)"
    else:
        try:
            state = f"started (pid {server.start(binary, s3, console, settings, webhook)})"
        except LocalS3Error:
            if webhook and not bridge_was_running:
                server.stop_bridge()  # started for this server only
            raise
    created = ensure_bucket(s3.url, settings)
    bucket = f"bucket {settings.bucket}{' created' if created else ''}"
    events = (
        f"; uploads notify {webhook}, which invokes the function at {args.invoke_url} (make serve)" if webhook else ""
    )
    return (
        f"native S3 (versitygw, no Docker) {state}: API {s3.browser_url}, console {console.browser_url}/ "
        f"(log in as {settings.access_key} with AWS_SECRET_ACCESS_KEY), {bucket}, data {args.data}/"
        f"{events}{endpoint_note(settings, s3)}"
    )


def cmd_bridge(args: argparse.Namespace) -> str:
    """The Docker path: only the bridge (MinIO's webhook target), started before compose."""
    server = Server(Path(args.data))
    url = server.start_bridge(
        Address.parse(args.bridge_addr, "BRIDGE_ADDR"),
        args.invoke_url,
        Path(args.on_failure).resolve(),
        tuple(args.allow_host),
    )
    return f"S3 event bridge on {url}: uploads invoke the function at {args.invoke_url} (make serve)"


def minio_notification(prefix: str) -> dict[str, object]:
    """The bucket notification MinIO gets (compose's create-bucket): the trigger's rules, to the webhook target."""
    from local_dev.s3_trigger import trigger_rules

    rules = trigger_rules(prefix)
    entry: dict[str, object] = {"Id": "local-s3-trigger", "QueueArn": "arn:minio:sqs::LAMBDA:webhook"}
    entry["Events"] = list(rules.events)
    entry["Filter"] = {"Key": {"FilterRules": rules.filter_rules()}}
    return {"QueueConfigurations": [entry]}


def cmd_notification(args: argparse.Namespace) -> str:
    from dotenv import dotenv_values

    values: dict[str, str | None] = {}
    for path in (Path(args.env_example), Path(args.env_file)):
        if path.is_file():
            values.update(dotenv_values(path))
    prefix = os.environ.get("PREFIX") or values.get("PREFIX") or ""
    return json.dumps(minio_notification(prefix), separators=(",", ":"))


def cmd_env(args: argparse.Namespace) -> str:
    """Write .env on the first make up: .env.example with random keys, pointing at S3_ADDR; keep an existing one."""
    env_file, example = Path(args.env_file), Path(args.env_example)
    if env_file.exists():
        return ""
    s3 = Address.parse(args.s3_addr, "S3_ADDR")
    replaced = new_keys()
    if str(s3) != "127.0.0.1:9000":
        replaced["S3_ENDPOINT_URL"] = s3.browser_url  # the name .env.example and the console use
    lines = [
        f"{name}={replaced[name]}" if (name := line.partition("=")[0]) in replaced else line
        for line in example.read_text(encoding="utf-8").splitlines()
    ]
    # The keys open the bucket to anyone who can reach the port: readable by this user only.
    descriptor = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return (
        f"make up: wrote {env_file} from {example} with new random S3 keys "
        "(make seed / make invoke and the console use them; kept from now on)"
    )


def new_keys() -> dict[str, str]:
    """A fresh key pair for the local S3 root user, so no page or neighbour can guess it."""
    upper = string.ascii_uppercase + string.digits
    mixed = string.ascii_letters + string.digits
    return {
        "AWS_ACCESS_KEY_ID": "LOCAL" + "".join(secrets.choice(upper) for _ in range(15)),
        "AWS_SECRET_ACCESS_KEY": "".join(secrets.choice(mixed) for _ in range(40)),
    }


def cmd_down(args: argparse.Namespace) -> str:
    server = Server(Path(args.data))
    legacy = server.legacy_pid()
    if legacy:
        os.kill(legacy, signal.SIGTERM)
        (server.data / LEGACY_PID_FILE).unlink(missing_ok=True)
        return f"native S3 stopped (pid {legacy}, started by an older make verifier-up)"
    bridge = server.stop_bridge()
    bridge_note = f"; S3 event bridge stopped (pid {bridge})" if bridge else ""
    record = server.record()
    if record is None:
        return "native S3 not running" + bridge_note
    pid = record.get("pid")
    if isinstance(pid, int) and server.is_ours(pid):
        server.stop(pid)
        return f"native S3 stopped (pid {pid}; data kept in {args.data}/){bridge_note}"
    server.state_path.unlink(missing_ok=True)
    return f"native S3 not running (stale record, pid {pid} left alone){bridge_note}"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run versitygw and its web console as the sandbox's S3 when Docker is absent (make up / down).",
        epilog="Credentials and bucket: environment, then .env, then .env.example (AWS_ACCESS_KEY_ID, "
        "AWS_SECRET_ACCESS_KEY, BUCKET_NAME, AWS_REGION / AWS_DEFAULT_REGION).",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start it (harmless when already running) and create the bucket")
    up.add_argument("--binary", required=True, help="the versitygw binary (make s3-verifier prints its path)")
    up.add_argument("--s3-addr", default="127.0.0.1:9000", help="S3 API address (default: %(default)s)")
    up.add_argument("--console-addr", default="127.0.0.1:9001", help="web console address (default: %(default)s)")
    up.add_argument(
        "--bridge-addr",
        default="127.0.0.1:9010",
        help="the S3 event bridge's address, started first ('' for no notifications; default: %(default)s)",
    )
    bridge = commands.add_parser("bridge", help="start only the S3 event bridge (before MinIO in Docker)")
    for command in (up, bridge):
        command.add_argument("--invoke-url", default="http://127.0.0.1:9009", help="invoke.py serve's Invoke API")
        command.add_argument("--on-failure", default=".s3-events/on-failure.jsonl", help="the async on-failure file")
    bridge.add_argument("--bridge-addr", default="127.0.0.1:9010", help="the bridge's address (default: %(default)s)")
    bridge.add_argument("--allow-host", action="append", default=[], help="a Host the S3 server's webhook sends")
    notification = commands.add_parser("notification", help="print MinIO's bucket notification (the trigger's rules)")
    env = commands.add_parser("env", help="write .env from .env.example unless it exists (make up runs it first)")
    env.add_argument("--s3-addr", default=os.environ.get("S3_ADDR") or "127.0.0.1:9000", help="S3 API address")
    for command in (up, env, notification):
        command.add_argument("--env-file", default=".env", help="dotenv file (default: %(default)s; missing is fine)")
        command.add_argument("--env-example", default=".env.example", help="fallback dotenv (default: %(default)s)")
    down = commands.add_parser("down", help="stop the server started from --data (its pid only), and the bridge")
    for command in (up, bridge, down):
        command.add_argument("--data", default=".s3-data", help="data directory (default: %(default)s)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        commands = {"up": cmd_up, "bridge": cmd_bridge, "notification": cmd_notification, "env": cmd_env}
        commands["down"] = cmd_down
        said = commands[args.command](args)
        if said:
            print(said, flush=True)
    except LocalS3Error as error:
        print(f"local S3: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
