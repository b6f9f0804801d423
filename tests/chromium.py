"""Headless Debian Chromium for the browser tests, started so it cannot reach the network.

Without the background-networking flags Chromium keeps trying Google's hosts
at start, which this machine's closed network refuses; every test that drives
a page starts from these same flags and adds its own.
"""

from __future__ import annotations

import shutil
import tempfile
from typing import Any

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
MISSING = "chromium / chromedriver not installed (make docs-deps)"

HEADLESS_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)


def start_chromium(profile_prefix: str, *extra_flags: str) -> tuple[Any, str]:
    """A Chrome WebDriver on a fresh profile (returned for removal), keeping browser and network logs."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM  # type: ignore[assignment]
    for flag in (*HEADLESS_FLAGS, *extra_flags):
        options.add_argument(flag)
    profile = tempfile.mkdtemp(prefix=profile_prefix)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    return webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER)), profile
