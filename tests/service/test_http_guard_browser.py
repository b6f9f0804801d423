"""A web page cannot run the function: the attacks, for real, in headless Chromium.

Each page tries what a hostile page the developer happens to have open would
try against ``invoke.py serve``: a no-cors ``fetch``, a "simple" CORS ``fetch``
with ``text/plain`` and a plain HTML form post, from another loopback port and
from a ``file://`` page; and DNS rebinding, where the page's own host name
comes to resolve to 127.0.0.1 and its same-origin script would read the
answer (a presigned bearer URL, in this project). The proof is the function's
START count, which must not move, and the page reading only a 403.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import shutil
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from local_runtime.api_server import running_api
from local_runtime.config import FunctionConfig
from local_runtime.pool import EnvironmentPool
from tests.chromium import CHROMEDRIVER, CHROMIUM, MISSING, start_chromium
from tests.conftest import ROOT, Captured

pytestmark = pytest.mark.browser

if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(MISSING, allow_module_level=True)

PATH = "/2015-03-31/functions/whoami/invocations"
FLAGS = ("--no-proxy-server", "--host-resolver-rules=MAP rebind.example 127.0.0.1, MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")

# Three ways a page sends a POST without asking for CORS, each recording what it could see.
ATTACKS = """<!doctype html><title>attack</title>
<iframe name="sink" style="display:none"></iframe>
<form id="form" method="POST" enctype="text/plain" target="sink" action="{url}">
  <input name='{{"from": "form", "x": "' value='"}}'>
</form>
<script>
window.results = [];
const target = "{url}";
fetch(target, {{method: "POST", mode: "no-cors", body: '{{"from": "no-cors"}}'}})
  .then(r => results.push("no-cors:" + r.type), e => results.push("no-cors:error"));
fetch(target, {{method: "POST", headers: {{"Content-Type": "text/plain"}}, body: '{{"from": "simple-cors"}}'}})
  .then(r => r.text().then(t => results.push("simple-cors:" + r.status + ":" + t)),
        e => results.push("simple-cors:error"));
document.getElementById("form").submit();
setTimeout(() => results.push("form:sent"), 500);
</script>"""

# Same origin after the rebinding: keeps asking until the Invoke API (not the page's first server) answers.
REBINDING = """<!doctype html><title>rebind</title><script>
window.results = [];
async function attempt() {
  try {
    const r = await fetch("%s", {method: "POST", body: '{"from": "rebinding"}'});
    results.push(r.status + ":" + (await r.text()));
  } catch (e) { results.push("error:" + e); }
  setTimeout(attempt, 200);
}
attempt();
</script>"""


@pytest.fixture(scope="module")
def logs() -> Captured:
    return Captured()


def _pool(logs: Captured) -> dict[str, EnvironmentPool]:
    return {
        "whoami": EnvironmentPool(
            FunctionConfig(name="whoami", handler="tests.fixtures.handlers.whoami", task_root=ROOT), logs
        )
    }


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    driver, profile = start_chromium("guard-", *FLAGS)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@contextlib.contextmanager
def static_site(directory: Path, port: int = 0) -> Iterator[int]:
    """Serve ``directory`` on loopback (the attacker's page); yields its port."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _results(driver: object, until: str, timeout: float = 20.0) -> list[str]:
    deadline = time.monotonic() + timeout
    results: list[str] = []
    while time.monotonic() < deadline:
        results = driver.execute_script("return window.results || []")  # type: ignore[attr-defined]
        if any(until in r for r in results):
            return results
        time.sleep(0.2)
    return results


def _run_attacks(driver: object, page_url: str, logs: Captured) -> list[str]:
    starts = logs.starts()
    driver.get(page_url)  # type: ignore[attr-defined]
    results = _results(driver, "form:sent")
    time.sleep(1.0)  # the form's request, and any late one, has arrived
    results = driver.execute_script("return window.results")  # type: ignore[attr-defined]
    assert logs.starts() == starts, f"a page ran the function: {results}"
    return results


def test_a_page_on_another_loopback_port_cannot_run_the_function(browser, logs, tmp_path, caplog):
    with running_api(_pool(logs)) as api:
        (tmp_path / "attack.html").write_text(ATTACKS.format(url=api.url + PATH))
        with static_site(tmp_path) as port, caplog.at_level("WARNING", logger="local_runtime.http_guard"):
            results = _run_attacks(browser, f"http://127.0.0.1:{port}/attack.html", logs)

    assert "no-cors:opaque" in results  # the request went out and was answered: refused, unseen
    assert "simple-cors:error" in results  # and the simple CORS one cannot read the 403 either
    refused = [r.getMessage() for r in caplog.records if "Invoke API refused POST" in r.getMessage()]
    assert len(refused) >= 3, refused  # no-cors, simple CORS and the form: each a line naming the page's origin
    assert all(f"Origin: http://127.0.0.1:{port}" in line for line in refused)


def test_a_file_page_cannot_run_the_function(browser, logs, tmp_path, caplog):
    with running_api(_pool(logs)) as api, caplog.at_level("WARNING", logger="local_runtime.http_guard"):
        page = tmp_path / "attack.html"
        page.write_text(ATTACKS.format(url=api.url + PATH))
        _run_attacks(browser, page.as_uri(), logs)

    assert any("Origin: null" in r.getMessage() for r in caplog.records)


def test_a_rebinding_page_cannot_run_the_function_nor_read_its_answer(browser, logs, tmp_path):
    with socket.socket() as probe:  # a free port: first the attacker's page, then the Invoke API, on it
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "rebind.html").write_text(REBINDING % PATH)
    starts = logs.starts()
    with static_site(tmp_path, port):
        browser.get(f"http://rebind.example:{port}/rebind.html")  # type: ignore[attr-defined]
        _results(browser, "501")  # the page's own server does not take POST: the script is running
    with running_api(_pool(logs), port=port):  # "rebind.example" now reaches the Invoke API, same origin
        results = _results(browser, "403:")

    assert any(r.startswith("403:") and "local Invoke API refused" in r for r in results), results
    assert not any(r.startswith("200:") for r in results), results
    assert logs.starts() == starts
