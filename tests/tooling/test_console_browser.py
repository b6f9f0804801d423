"""The sandbox loop seen in its web console: `make up && make seed && make invoke`, then a browser.

Runs the real make targets in a scratch copy (tests/local_sandbox.py) on free
ports, with a .env whose credentials and bucket differ from the defaults, then
drives Debian's headless Chromium through versitygw's console as a user would:
log in with those credentials at the address `make up` printed (localhost, the
name .env uses), see the dashboard without an error toast, open the bucket,
find the seeded PDFs under the prefix and the manifest `make invoke` reported
under manifests/. Screenshots go to test-artifacts/console/. Every request the
browser makes is recorded from Chrome's DevTools network events and must stay
on this machine; names that would need DNS resolve nowhere, so nothing can
leave it even by mistake.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import Select, WebDriverWait

from tests.chromium import CHROMEDRIVER, CHROMIUM, MISSING, start_chromium
from tests.conftest import ROOT
from tests.local_sandbox import Sandbox, json_document
from tests.verifying_s3 import locate_binary

pytestmark = [pytest.mark.browser, pytest.mark.s3verify, pytest.mark.slow]

if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(MISSING, allow_module_level=True)
locate_binary(module_level=True)


ARTIFACTS = ROOT / "test-artifacts" / "console"
ACCESS_KEY = "console-tester"
SECRET_KEY = "console-tester-secret-5f1c"  # a throwaway loopback test secret
BUCKET = "console-reports"
PREFIX = "2026/04/"
SEEDED = 25  # seed.py's default count: report-0001.pdf ... report-0025.PDF, plus 3 decoys
FLAGS = [  # beyond tests/chromium.py's
    "--no-proxy-server",
    # Every host but loopback fails to resolve: nothing else can load, even by mistake.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
    "--window-size=1400,1000",
]
WAIT_S = 15
NAMES = "return Array.from(document.querySelectorAll('#objects-table tr span.font-mono')).map(s => s.textContent)"
TOASTS = "return Array.from(document.querySelectorAll('#toast-container p')).map(p => p.textContent)"


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Sandbox, dict[str, Any]]]:
    """The README's loop, for real: make up, make seed, make invoke; make down afterwards."""
    box = Sandbox.create(
        tmp_path_factory.mktemp("console") / "repo",
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        BUCKET_NAME=BUCKET,
        PREFIX=PREFIX,
    )
    try:
        for target in ("up", "seed"):
            done = box.make(target)
            assert done.returncode == 0, f"make {target}: {done.stderr}"
        invoked = box.make("invoke")
        assert invoked.returncode == 0, f"make invoke: {invoked.stderr}"
        response = json_document(invoked.stdout)
        assert response["statusCode"] == 200, response
        yield box, json.loads(response["body"])
    finally:
        box.make("down")


class Console:
    """A Chrome session on the console, with every request it made."""

    def __init__(self, driver: webdriver.Chrome, box: Sandbox) -> None:
        self.driver = driver
        self.box = box
        self.requests: list[tuple[str, str]] = []  # (url, the document that asked for it)

    def drain(self) -> None:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            params = message["params"]
            if message["method"] == "Network.requestWillBeSent":
                self.requests.append((params["request"]["url"], params.get("documentURL", "")))
            elif message["method"] == "Network.webSocketCreated":
                self.requests.append((params["url"], ""))

    def wait(self, what: str, xpath: str) -> WebElement:
        return WebDriverWait(self.driver, WAIT_S, ignored_exceptions=(StaleElementReferenceException,)).until(
            lambda d: next((e for e in d.find_elements(By.XPATH, xpath) if e.is_displayed()), None),
            message=f"console never showed {what}",
        )

    def names(self) -> set[str]:
        """Names in the explorer's table, read in one go (the table re-renders while it loads)."""
        return {name.strip() for name in self.driver.execute_script(NAMES)}

    def click(self, what: str, xpath: str) -> None:
        """Click once it is shown, again if the table re-rendered under the click (a stale element)."""

        def clicked(driver: webdriver.Chrome) -> bool:
            try:
                shown = [e for e in driver.find_elements(By.XPATH, xpath) if e.is_displayed()]
                if shown:
                    shown[0].click()
                return bool(shown)
            except StaleElementReferenceException:
                return False

        WebDriverWait(self.driver, WAIT_S).until(clicked, message=f"console never showed {what}")

    def open_folder(self, prefix: str) -> None:
        self.click(f"folder {prefix}", f"//tbody[@id='objects-table']/tr[.//input[@data-key='{prefix}']]//span")

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))


@pytest.fixture(scope="module")
def console(loop: tuple[Sandbox, dict[str, Any]]) -> Iterator[Console]:
    box, _ = loop
    driver, profile = start_chromium("console-chromium-", *FLAGS)
    try:
        yield Console(driver, box)
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def test_console_shows_the_seeded_pdfs_and_the_manifest_and_stays_on_the_machine(
    loop: tuple[Sandbox, dict[str, Any]], console: Console
):
    box, result = loop
    driver = console.driver
    manifest_name = Path(result["manifest_key"]).name
    assert result["count"] == SEEDED
    assert result["manifest_key"] == f"manifests/{manifest_name}"

    # Log in with the credentials from .env, at the console address make up printed (localhost, as
    # .env names the API): the login page offers .env's endpoint.
    assert f"console {box.console}/" in box.make("up").stdout
    assert f"S3_ENDPOINT_URL={box.endpoint}\n" in (box.root / ".env").read_text()
    assert box.console.startswith("http://localhost:")
    driver.get(f"{box.console}/")
    console.wait("the login form", "//input[@id='access-key']").send_keys(ACCESS_KEY)
    driver.find_element(By.ID, "secret-key").send_keys(SECRET_KEY)
    assert driver.find_element(By.ID, "endpoint-select").get_attribute("value") == box.endpoint
    console.shot("1-login")
    driver.find_element(By.ID, "submit-btn").click()
    WebDriverWait(driver, WAIT_S).until(lambda d: "dashboard" in d.current_url, message="login did not succeed")

    # The dashboard lists the (internal IAM's) users: no red XAdminMethodNotSupported toast.
    console.wait("the dashboard's user list", "//tbody[@id='recent-users']/tr[contains(., 'No users found')]")
    console.shot("1-dashboard")
    assert driver.execute_script(TOASTS) == []

    # Open the bucket from the explorer's bucket list.
    driver.get(f"{box.console}/explorer.html")
    console.click(f"bucket {BUCKET}", f"//td[contains(@onclick, \"selectBucket('{BUCKET}')\")]")
    console.wait("the bucket's top-level folders", "//tbody[@id='objects-table']/tr[.//input[@data-key='manifests/']]")
    console.shot("2-bucket")

    # Down the prefix: every seeded PDF (and the decoys the handler skipped) is there.
    for folder in ("2026/", PREFIX):
        console.open_folder(folder)
    Select(console.wait("the page size", "//select[@id='page-size-select']")).select_by_value("100")
    expected_pdfs = {f"report-{i:04d}{'.PDF' if i % 5 == 0 else '.pdf'}" for i in range(1, SEEDED + 1)}
    WebDriverWait(driver, WAIT_S).until(
        lambda _d: expected_pdfs <= console.names(), message=f"PDFs under {PREFIX} missing: {console.names()}"
    )
    assert {"README.txt", "cover.png", "report-0001.pdf.bak"} <= console.names()
    console.shot("3-prefix-pdfs")

    # Back to the bucket through the breadcrumb, and into manifests/: the manifest make invoke wrote.
    console.click("the bucket in the breadcrumb", f"//nav[@id='breadcrumb']//button[normalize-space()='{BUCKET}']")
    console.open_folder("manifests/")
    WebDriverWait(driver, WAIT_S).until(
        lambda _d: manifest_name in console.names(), message=f"manifest {manifest_name} missing: {console.names()}"
    )
    console.shot("4-manifest")

    console.drain()
    local = (f"{box.console}/", f"{box.endpoint}/", "data:", "blob:", "about:")
    # Chrome's own pages (its new-tab page at start-up) loading their built-in chrome:// resources
    # are not the console's and never touch the network; everything else must be loopback.
    browser_own = [url for url, doc in console.requests if doc.startswith("chrome://") and url.startswith("chrome://")]
    outside = [url for url, _ in console.requests if not url.startswith(local) and url not in browser_own]
    assert outside == [], f"the console made requests off the machine: {outside}"
    ours = [url for url, _ in console.requests if url.startswith(local)]
    assert len(ours) > 20
    # The console really talked to the S3 API (the listing came from versitygw, not a cache).
    assert any(url.startswith(f"{box.endpoint}/{BUCKET}") for url in ours)
