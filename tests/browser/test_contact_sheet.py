"""The contact sheet in a real headless Chromium, as a person opens it: from a signed link.

The app is served by uvicorn on a free loopback port, on the session's migrated Postgres;
the test asks the API (with a key) for a link and opens it. Debian's `chromium` and
`chromium-driver` drive it through Selenium with the driver path given, so Selenium Manager
never downloads anything; the browser resolves no host name but 127.0.0.1, and the tests
check from its network log that the page loaded nothing from anywhere else.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from app.main import create_app
from app.settings import Settings
from tests.api.browse_factory import HOSTILE_PROMPT, sample_runs, store_sweep
from tests.api.conftest import mint_key
from tests.conftest import REDIS_URL
from tests.support.serving import serve

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

if not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()):
    pytest.skip(
        "needs Debian's chromium and chromium-driver (/usr/bin/chromium, /usr/bin/chromedriver):"
        " apt-get install -y chromium chromium-driver",
        allow_module_level=True,
    )
webdriver = pytest.importorskip("selenium.webdriver", reason="needs selenium (the dev extra)")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.chrome.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

WAIT_S = 10.0
TEAM = "browser-team"


@pytest.fixture(scope="module")
def app(
    database_url: str, queue_name: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    settings = Settings(
        database_url=database_url,
        redis_url=REDIS_URL,
        queue_name=queue_name,
        data_dir=tmp_path_factory.mktemp("browser-data"),
    )
    application = create_app(settings)
    yield application
    application.state.engine.dispose()


@pytest.fixture(scope="module")
def base_url(app: FastAPI) -> Iterator[str]:
    with serve(app) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--window-size=1280,900",
        # Belt and braces for "loads nothing from the internet": no other name resolves.
        "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture
def sheet(app: FastAPI, base_url: str, browser: WebDriver) -> WebDriver:
    """The sample sweep's contact sheet, opened from a link the API handed out."""
    stored = store_sweep(app, TEAM, sample_runs())
    key = mint_key(app, TEAM)
    answer = httpx.get(
        f"{base_url}/v1/sweeps/{stored.sweep_id}/contact-sheet-link",
        headers={"Authorization": f"Bearer {key}"},
    )
    answer.raise_for_status()
    _log(browser, "performance")  # drop what earlier tests logged
    _log(browser, "browser")
    browser.get(base_url + answer.json()["url"])
    _wait(browser, lambda d: len(d.find_elements(By.CSS_SELECTOR, ".card")) == 6)
    return browser


def _wait(driver: WebDriver, condition: Any) -> None:
    WebDriverWait(driver, WAIT_S).until(condition)


def _log(driver: WebDriver, kind: str) -> list[dict[str, Any]]:
    """Entries of Chromium's `browser` (console) or `performance` (network) log, cleared."""
    entries: list[dict[str, Any]] = driver.get_log(kind)  # type: ignore[no-untyped-call]
    return entries


def _attribute(element: WebElement, name: str) -> str:
    value = element.get_attribute(name)
    assert value is not None, name
    return value


def _visible_order(driver: WebDriver) -> list[int]:
    script = (
        "return Array.from(document.querySelectorAll('.card'))"
        ".filter(c => !c.hidden).map(c => Number(c.dataset.index));"
    )
    order: list[int] = driver.execute_script(script)
    return order


def _requested_urls(driver: WebDriver) -> list[str]:
    urls = []
    for entry in _log(driver, "performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def test_every_thumbnail_loads_and_nothing_comes_from_elsewhere(
    sheet: WebDriver, base_url: str
) -> None:
    images = sheet.find_elements(By.CSS_SELECTOR, ".card img")
    assert len(images) == 5  # four images and the video's placeholder; the failed run has none
    _wait(sheet, lambda d: all(d.execute_script("return arguments[0].complete", i) for i in images))
    widths = [sheet.execute_script("return arguments[0].naturalWidth", i) for i in images]
    assert all(width > 0 for width in widths), widths
    assert all(_attribute(i, "src").startswith("data:image/jpeg;base64,") for i in images)
    for url in _requested_urls(sheet):
        # chrome:// is the browser's own bundle (e.g. the search field's clear icon), not a
        # network request.
        assert url.startswith((base_url + "/", "data:", "blob:", "chrome://")), url
    violations = [e["message"] for e in _log(sheet, "browser") if e["level"] == "SEVERE"]
    assert violations == []  # in particular no Content-Security-Policy refusal


def test_sorting_by_a_parameter_changes_the_order_of_cards(sheet: WebDriver) -> None:
    assert _visible_order(sheet) == [0, 1, 2, 3, 4, 5]
    Select(sheet.find_element(By.ID, "sort")).select_by_value("param:prompt")
    # Collation puts the prompt starting with "<" before "a red fox"; ties keep index order.
    assert _visible_order(sheet) == [1, 3, 5, 0, 2, 4]
    sheet.find_element(By.ID, "order").click()
    assert _visible_order(sheet) == [4, 2, 0, 5, 3, 1]
    Select(sheet.find_element(By.ID, "sort")).select_by_value("param:cfg")
    assert _visible_order(sheet) == [5, 4, 3, 2, 1, 0]


def test_filtering_by_status_and_parameter_hides_cards(sheet: WebDriver) -> None:
    status = Select(sheet.find_element(By.ID, "status"))
    status.select_by_value("failed")
    assert _visible_order(sheet) == [5]
    status.select_by_value("")
    cfg = Select(sheet.find_element(By.CSS_SELECTOR, "select[data-param='cfg']"))
    cfg.select_by_value("7")
    assert _visible_order(sheet) == [2, 3]
    prompt = Select(sheet.find_element(By.CSS_SELECTOR, "select[data-param='prompt']"))
    prompt.select_by_value(HOSTILE_PROMPT)
    assert _visible_order(sheet) == [3]
    assert sheet.find_element(By.ID, "count").text == "1 of 6 runs"
    cfg.select_by_value("")
    prompt.select_by_value("")
    sheet.find_element(By.ID, "search").send_keys("fox")
    assert _visible_order(sheet) == [0, 2, 4]


def test_clicking_a_card_opens_its_full_image(sheet: WebDriver) -> None:
    sheet.find_element(By.CSS_SELECTOR, ".card[data-index='2'] button.frame").click()
    loaded = "const full = document.getElementById('full'); return !!full && full.naturalWidth > 0;"
    _wait(sheet, lambda d: d.execute_script(loaded))
    full = sheet.find_element(By.ID, "full")
    size = sheet.execute_script(
        "return [arguments[0].naturalWidth, arguments[0].naturalHeight]", full
    )
    assert size == [320, 240]  # the original, not the 256 px thumbnail
    pixel = sheet.execute_script(
        "const c = document.createElement('canvas'); c.width = c.height = 1;"
        "const g = c.getContext('2d'); g.drawImage(arguments[0], 0, 0);"
        "return Array.from(g.getImageData(0, 0, 1, 1).data);",
        full,
    )
    assert pixel == [80, 140, 90, 255]  # run 2's colour
    assert _attribute(full, "src").startswith("blob:")
    cells = [td.text for td in sheet.find_elements(By.CSS_SELECTOR, "#viewer td")]
    assert cells[:2] == ["prompt", "a red fox"]
    sheet.find_element(By.TAG_NAME, "body").send_keys("\ue00c")  # Escape
    assert sheet.find_element(By.ID, "viewer").get_attribute("hidden") is not None


def test_a_video_card_opens_a_player_on_the_signed_file(sheet: WebDriver, base_url: str) -> None:
    sheet.find_element(By.CSS_SELECTOR, ".card[data-index='4'] button.frame").click()
    video = sheet.find_element(By.CSS_SELECTOR, "#viewer video")
    src = _attribute(video, "src")
    assert src.startswith(base_url + "/browse/sweeps/")
    assert "/runs/4/outputs/0?token=" in src


def test_a_hostile_prompt_is_shown_as_text(sheet: WebDriver) -> None:
    assert sheet.execute_script("return document.querySelectorAll('img[onerror]').length") == 0
    foreign = "return document.querySelectorAll('img:not([src^=\"data:\"])').length"
    assert sheet.execute_script(foreign) == 0
    overlay = sheet.find_element(By.CSS_SELECTOR, ".card[data-index='1'] .overlay li")
    assert overlay.get_attribute("textContent") == f"prompt: {HOSTILE_PROMPT}"


def test_the_download_link_fetches_the_zip(sheet: WebDriver) -> None:
    href = sheet.find_element(By.ID, "export").get_attribute("href")
    answer = sheet.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "fetch(arguments[0]).then(r => done([r.status, r.headers.get('content-type')]));",
        href,
    )
    assert answer == [200, "application/zip"]
