"""The study site in a real browser: Debian's headless Chromium, driven by Selenium.

Loads docs/index.html straight from disk, logs every network request the page
makes and fails on anything that is not file:// or data:, collects console
errors, and saves screenshots to test-artifacts/docs/ for a human to look at.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.actions.wheel_input import ScrollOrigin
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from tests.chromium import CHROMEDRIVER, CHROMIUM, MISSING, start_chromium
from tests.conftest import ROOT
from tests.tooling.test_docs import SECTIONS

pytestmark = pytest.mark.browser

if CHROMIUM is None or CHROMEDRIVER is None:
    pytest.skip(MISSING, allow_module_level=True)


DOCS = ROOT / "docs"
INDEX = (DOCS / "index.html").as_uri()
VIEWER = (DOCS / "viewer.html").as_uri()
ARTIFACTS = ROOT / "test-artifacts" / "docs"
IMAGES = (
    "return Array.from(document.images).map(i => [i.getAttribute('src'), i.complete, i.naturalWidth, i.naturalHeight])"
)
GRAPH_WIDTH = "return document.getElementById('graph').naturalWidth"


class Browser:
    """A Chrome session plus the network and console records it produced."""

    def __init__(self, driver: webdriver.Chrome) -> None:
        self.driver = driver
        self.requests: list[str] = []
        self.console: list[dict[str, Any]] = []

    def drain_logs(self) -> None:
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                # Only what our pages ask for; the browser's own start page is not under test.
                if message["params"].get("documentURL", "").startswith(("file://", "data:")):
                    self.requests.append(message["params"]["request"]["url"])
            elif message["method"] == "Network.webSocketCreated":
                self.requests.append(message["params"]["url"])
        self.console.extend(e for e in self.driver.get_log("browser") if e["level"] in ("SEVERE", "WARNING"))

    def assert_clean(self) -> None:
        self.drain_logs()
        outside = [url for url in self.requests if not url.startswith(("file://", "data:"))]
        assert outside == [], f"the page tried to reach the network: {outside}"
        errors = [e["message"] for e in self.console if e["level"] == "SEVERE"]
        assert errors == [], f"console errors: {errors}"

    def js(self, script: str, *args: Any) -> Any:
        return self.driver.execute_script(script, *args)

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.driver.save_screenshot(str(ARTIFACTS / f"{name}.png"))

    def active_section(self) -> str:
        return self.js("var s = document.querySelector('main > section.active'); return s ? s.id : null;")

    def wait_for_section(self, section: str) -> None:
        WebDriverWait(self.driver, 5).until(lambda _d: self.active_section() == section)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    driver, profile = start_chromium("docs-chromium-", "--hide-scrollbars", "--window-size=1280,900")
    # Anything off the machine is blocked as well as logged: a test run never leaks a request.
    driver.execute_cdp_cmd("Network.enable", {})
    driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["http://*", "https://*", "ws://*", "wss://*"]})
    session = Browser(driver)
    driver.get("about:blank")
    session.drain_logs()
    session.requests.clear()
    session.console.clear()
    try:
        yield session
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture
def page(browser: Browser) -> Iterator[Browser]:
    browser.driver.set_window_size(1280, 900)
    browser.driver.get(INDEX)
    browser.wait_for_section("overview")
    yield browser
    browser.assert_clean()


def test_every_section_is_reachable_from_the_sidebar_and_has_content(page: Browser):
    driver = page.driver
    for section in SECTIONS:
        driver.find_element(By.CSS_SELECTOR, f"nav#toc a[href='#{section}']").click()
        page.wait_for_section(section)

        assert driver.current_url.endswith(f"#{section}")
        element = driver.find_element(By.ID, section)
        assert element.is_displayed()
        visible = page.js(
            "return Array.from(document.querySelectorAll('main > section')).filter(s => s.offsetParent).length"
        )
        assert visible == 1
        assert len(element.text) > 1200, f"{section} has too little text"
        current = driver.find_element(By.CSS_SELECTOR, "nav#toc a[aria-current='page']")
        assert current.get_attribute("href").endswith(f"#{section}")
        page.shot(f"section-{section}")


def test_every_section_opens_by_hash_and_the_back_button_works(browser: Browser):
    driver = browser.driver
    driver.set_window_size(1280, 900)
    for section in SECTIONS:
        driver.get(f"{INDEX}#{section}")
        browser.wait_for_section(section)
    driver.back()
    browser.wait_for_section(SECTIONS[-2])
    driver.back()
    browser.wait_for_section(SECTIONS[-3])
    driver.forward()
    browser.wait_for_section(SECTIONS[-2])
    driver.get(f"{INDEX}#walk-the-handler")
    browser.wait_for_section("walkthrough")
    browser.assert_clean()


def test_every_image_and_graph_loads(page: Browser):
    page.js("return Promise.all(Array.from(document.images).map(i => i.decode().catch(() => null)))")
    images = page.js(IMAGES)

    assert len(images) >= 14
    broken = [src for src, complete, width, height in images if not (complete and width > 0 and height > 0)]
    assert broken == []


def test_every_internal_link_resolves(page: Browser):
    links = page.js(
        "return Array.from(document.querySelectorAll('a[href]')).filter(a => !a.closest('ol.sources'))"
        ".map(a => [a.getAttribute('href'), a.href])"
    )
    sources = page.js("return Array.from(document.querySelectorAll('ol.sources a[href]')).map(a => a.href)")
    assert sources and all(url.startswith(("https://", "file://")) for url in sources)
    ids = set(page.js("return Array.from(document.querySelectorAll('[id]')).map(e => e.id)"))
    assert len(links) > 60
    for raw, resolved in links:
        assert resolved.startswith("file://"), f"link leaves the machine: {raw}"
        if raw.startswith("#"):
            assert raw[1:] in ids, f"dangling link {raw}"
        else:
            path = Path(resolved.split("#")[0].split("?")[0].removeprefix("file://"))
            assert path.is_file(), f"missing target for {raw}"


def test_keyboard_navigation(page: Browser):
    driver = page.driver
    body = driver.find_element(By.TAG_NAME, "body")
    body.send_keys("n")
    page.wait_for_section("mental-model")
    body.send_keys(Keys.ARROW_RIGHT)
    page.wait_for_section("limits")
    body.send_keys("p")
    page.wait_for_section("mental-model")

    # Tab reaches the sidebar links, Enter follows them.
    driver.find_element(By.CSS_SELECTOR, "nav#toc a[href='#cost']").send_keys(Keys.ENTER)
    page.wait_for_section("cost")
    assert page.js("return document.activeElement.id") == "content"


def test_arrow_keys_scroll_a_focused_code_block_instead_of_turning_the_page(page: Browser):
    driver = page.driver
    driver.set_window_size(1000, 900)
    driver.get(f"{INDEX}#walkthrough")
    page.wait_for_section("walkthrough")
    wide = page.js(
        "var p = Array.from(document.querySelectorAll('#walkthrough pre'))"
        ".find(p => p.scrollWidth > p.clientWidth + 40); if (p) { p.id = p.id || 'wide-pre'; } return p ? p.id : null;"
    )
    assert wide, "no code block wider than its box on the walkthrough page"
    pre = driver.find_element(By.ID, wide)
    page.js("arguments[0].scrollIntoView(); arguments[0].focus();", pre)
    pre.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_RIGHT)

    assert page.active_section() == "walkthrough"
    WebDriverWait(driver, 3).until(lambda _d: page.js("return arguments[0].scrollLeft", pre) > 0)
    driver.find_element(By.TAG_NAME, "body").send_keys(Keys.ARROW_RIGHT)  # outside a code block: next page
    page.wait_for_section("repository")


def _svg_geometry(path: Path) -> tuple[float, float]:
    """(viewBox width, smallest font-size) of a Graphviz SVG, in SVG user units."""
    text = path.read_text(encoding="utf-8")
    view_box = re.search(r'viewBox="([-\d.]+) ([-\d.]+) ([\d.]+) ([\d.]+)"', text)
    sizes = [float(size) for size in re.findall(r'font-size="([\d.]+)"', text)]
    assert view_box and sizes, f"{path.name}: no viewBox or no text"
    scale = re.search(r'<g id="graph0" class="graph" transform="scale\(([\d.]+)', text)
    return float(view_box.group(3)) / (float(scale.group(1)) if scale else 1.0), min(sizes)


def test_graph_text_is_at_least_12px_in_place_at_1400px(browser: Browser):
    """Every Graphviz graph, as laid out on its page, renders its smallest text at 12 px or more."""
    driver = browser.driver
    driver.set_window_size(1400, 900)
    measured = {}
    for section in SECTIONS:
        driver.get(f"{INDEX}#{section}")
        browser.wait_for_section(section)
        for src, width in browser.js(
            "return Array.from(document.querySelectorAll('#' + arguments[0] + ' figure.graph img'))"
            ".map(i => [i.getAttribute('src'), i.getBoundingClientRect().width])",
            section,
        ):
            path = DOCS / src
            if path.stem.startswith("bench-"):
                continue  # matplotlib draws text as paths; checked by test_bench_charts_suit_the_dark_page
            view_width, smallest = _svg_geometry(path)
            measured[path.stem] = smallest * width / view_width
    browser.shot("graphs-1400")

    assert len(measured) == len(list((DOCS / "graphs").glob("*.dot")))
    small = {name: round(px, 1) for name, px in measured.items() if px < 12}
    assert small == {}, f"graph text below 12 px at 1400 px wide: {small}"
    browser.assert_clean()


def test_caption_links_stay_inline(browser: Browser):
    driver = browser.driver
    driver.set_window_size(1400, 900)
    driver.get(f"{INDEX}#step-functions")
    browser.wait_for_section("step-functions")
    caption = "#step-functions figure.graph figcaption"
    lines = browser.js(
        "var c = document.querySelector(arguments[0]); var lh = parseFloat(getComputedStyle(c).lineHeight);"
        "return Math.round(c.getBoundingClientRect().height / lh);",
        caption,
    )
    displays = browser.js(
        "return Array.from(document.querySelectorAll('figure.graph figcaption a'))"
        ".map(a => getComputedStyle(a).display)"
    )

    assert lines <= 2, f"the Step Functions caption takes {lines} lines"
    assert displays and set(displays) == {"inline"}
    browser.assert_clean()


def test_bench_charts_suit_the_dark_page(browser: Browser):
    driver = browser.driver
    driver.set_window_size(1400, 900)
    driver.get(f"{INDEX}#repository")
    browser.wait_for_section("repository")
    charts = browser.js(
        "return Array.from(document.querySelectorAll('#repository figure.chart')).map(f => "
        "[getComputedStyle(f.querySelector('img')).filter, f.querySelector('figcaption').textContent])"
    )
    if not charts:
        pytest.skip("no benchmark plots are committed")
    for css_filter, caption in charts:
        assert "invert" in css_filter
        assert "capped by time" in caption and "BENCH_TIME_CAP" in caption and len(caption) > 200
    browser.shot("bench-charts")
    browser.assert_clean()


def test_report_line_wraps_and_shows_init_duration(browser: Browser):
    driver = browser.driver
    for width in (1400, 390):
        driver.set_window_size(width, 900)
        driver.get(f"{INDEX}#observability")
        browser.wait_for_section("observability")
        box = browser.js(
            "var p = Array.from(document.querySelectorAll('#observability pre'))"
            ".find(p => p.textContent.includes('REPORT'));"
            "return [p.scrollWidth, p.clientWidth, p.textContent.includes('Init Duration')];"
        )
        assert box[2] and box[0] <= box[1], f"REPORT line overflows at {width} px: {box}"
    browser.assert_clean()


def test_narrow_tables_keep_their_column_names_and_nothing_overflows(browser: Browser):
    driver = browser.driver
    driver.set_window_size(390, 844)
    unlabeled = []
    for section in SECTIONS:
        driver.get(f"{INDEX}#{section}")
        browser.wait_for_section(section)
        assert browser.js("return document.getElementById('content').scrollWidth <= window.innerWidth"), section
        unlabeled += browser.js(
            """
            var missing = [];
            document.querySelectorAll('#' + arguments[0] + ' table.tbl').forEach(function (table) {
              var heads = Array.from(table.querySelectorAll('thead th')).map(th => th.textContent.trim());
              table.querySelectorAll('tbody tr').forEach(function (tr) {
                var col = 0;
                Array.from(tr.cells).forEach(function (td, i) {
                  var label = getComputedStyle(td, '::before').content;
                  if (i > 0 && heads[col] && label.indexOf(heads[col]) === -1) {
                    missing.push(arguments[0] + ': ' + td.textContent.slice(0, 40));
                  }
                  col += td.colSpan;
                });
              });
            });
            return missing;
            """,
            section,
        )
        broken = browser.js(
            """
            return Array.from(document.querySelectorAll('#' + arguments[0] + ' code'))
              .filter(c => !c.closest('pre'))
              .flatMap(c => c.classList.contains('one') ? [c] : Array.from(c.querySelectorAll('.tok')))
              .filter(e => e.getClientRects().length > 1).map(e => e.textContent);
            """,
            section,
        )
        assert broken == [], f"{section}: inline code broken inside a word at 390 px: {broken}"
    driver.get(f"{INDEX}#limits")
    browser.wait_for_section("limits")
    browser.shot("narrow-limits-table")
    assert unlabeled == []
    browser.assert_clean()


def test_viewer_returns_to_the_section_it_was_opened_from(browser: Browser):
    driver = browser.driver
    driver.set_window_size(1280, 900)
    driver.get(f"{INDEX}#iam")
    browser.wait_for_section("iam")
    driver.find_element(By.CSS_SELECTOR, "#iam figure.graph > a").click()
    WebDriverWait(driver, 5).until(lambda _d: driver.current_url.startswith(VIEWER))
    WebDriverWait(driver, 5).until(lambda _d: browser.js(GRAPH_WIDTH) > 0)

    assert "from=iam" in driver.current_url
    driver.find_element(By.ID, "back").click()
    browser.wait_for_section("iam")
    assert driver.current_url.endswith("index.html#iam")

    driver.get(f"{VIEWER}?src=graphs/iam_layers.svg&from=iam")
    WebDriverWait(driver, 5).until(lambda _d: browser.js(GRAPH_WIDTH) > 0)
    driver.find_element(By.ID, "stage").send_keys(Keys.ESCAPE)
    browser.wait_for_section("iam")
    browser.assert_clean()


def test_narrow_screen_menu(page: Browser):
    driver = page.driver
    driver.set_window_size(390, 844)
    driver.get(f"{INDEX}#limits")
    page.wait_for_section("limits")
    toggle = driver.find_element(By.ID, "menu-toggle")
    nav_link = driver.find_element(By.CSS_SELECTOR, "nav#toc a[href='#iam']")

    assert toggle.is_displayed()
    assert page.js("return document.documentElement.scrollWidth <= window.innerWidth")
    page.shot("narrow-limits")
    toggle.click()
    WebDriverWait(driver, 3).until(lambda _d: nav_link.rect["x"] >= 0)
    page.shot("narrow-menu-open")
    nav_link.click()
    page.wait_for_section("iam")
    assert not page.js("return document.body.classList.contains('nav-open')")
    page.shot("narrow-iam")


def test_viewer_opens_a_graph_and_zooms_and_pans(browser: Browser):
    driver = browser.driver
    driver.set_window_size(1280, 900)
    driver.get(f"{VIEWER}?src=graphs/system_overview.svg")
    WebDriverWait(driver, 5).until(lambda _d: browser.js(GRAPH_WIDTH) > 0)
    stage = driver.find_element(By.ID, "stage")
    scale = float(stage.get_attribute("data-scale"))
    browser.shot("viewer-fit")

    stage.send_keys("+")
    zoomed = float(stage.get_attribute("data-scale"))
    assert zoomed > scale

    ActionChains(driver).scroll_from_origin(ScrollOrigin.from_element(stage), 0, -300).perform()
    WebDriverWait(driver, 3).until(lambda _d: float(stage.get_attribute("data-scale")) > zoomed)

    x = float(stage.get_attribute("data-x"))
    ActionChains(driver).move_to_element(stage).click_and_hold().move_by_offset(120, 40).release().perform()
    assert float(stage.get_attribute("data-x")) == pytest.approx(x + 120, abs=2)

    stage.send_keys(Keys.ARROW_LEFT)
    assert float(stage.get_attribute("data-x")) == pytest.approx(x + 180, abs=2)
    browser.shot("viewer-zoomed")

    stage.send_keys("0")
    assert float(stage.get_attribute("data-scale")) == pytest.approx(scale, rel=0.01)
    browser.assert_clean()


def test_viewer_refuses_anything_but_a_local_graph(browser: Browser):
    driver = browser.driver
    driver.get(f"{VIEWER}?src=https://example.com/x.svg")
    error = driver.find_element(By.ID, "error")

    assert error.is_displayed() and "Not a graph" in error.text
    browser.assert_clean()


def test_every_graph_opens_in_the_viewer(browser: Browser):
    driver = browser.driver
    driver.set_window_size(1280, 900)
    for svg in sorted((DOCS / "graphs").glob("*.svg")):
        driver.get(f"{VIEWER}?src=graphs/{svg.name}")
        WebDriverWait(driver, 5).until(
            lambda _d: browser.js("return document.getElementById('graph').naturalWidth") > 0
        )
    browser.assert_clean()


def test_every_graph_on_a_narrow_screen_offers_the_zoom_viewer_and_reads_there(browser: Browser):
    """At 390 px a wide graph's text is a few pixels tall in place: each graph shows a tappable way into
    the viewer, and the viewer at actual size ("1") renders the smallest text at 12 px or more."""
    driver = browser.driver
    driver.set_window_size(390, 844)
    hints = {}
    for section in SECTIONS:
        driver.get(f"{INDEX}#{section}")
        browser.wait_for_section(section)
        for src, href, content, hint_height, display in browser.js(
            "return Array.from(document.querySelectorAll('#' + arguments[0] + ' figure.graph > a')).map(a => {"
            " var s = getComputedStyle(a, '::after'); var img = a.querySelector('img');"
            " return [img.getAttribute('src'), a.getAttribute('href'), s.content,"
            " a.getBoundingClientRect().height - img.getBoundingClientRect().height, s.display]; })",
            section,
        ):
            hints[src] = (href, content, hint_height, display)
    browser.shot("graphs-390")

    assert {Path(src).stem for src in hints} >= {dot.stem for dot in (DOCS / "graphs").glob("*.dot")}
    for src, (href, content, hint_height, display) in hints.items():
        assert href == f"viewer.html?src={src}", src
        assert "full screen" in content and display == "block", (src, content, display)
        assert hint_height >= 44, f"{src}: the way into the viewer is {hint_height:.0f} px tall, too small to tap"

    for src in hints:
        if Path(src).stem.startswith("bench-"):
            continue  # matplotlib text is paths; the viewer shows the plot at full size all the same
        driver.get(f"{VIEWER}?src={src}")
        WebDriverWait(driver, 5).until(lambda _d: browser.js(GRAPH_WIDTH) > 0)
        driver.find_element(By.ID, "stage").send_keys("1")
        view_width, smallest = _svg_geometry(DOCS / src)
        shown = browser.js("return document.getElementById('graph').getBoundingClientRect().width")
        assert smallest * shown / view_width >= 12, f"{src}: {smallest * shown / view_width:.1f} px in the viewer"
    browser.assert_clean()
