"""The admin page in a real browser (Debian's chromium + chromium-driver, via Selenium),
against the Django demo under gunicorn x4 on Redis.

Log in, see a bucket made by real requests with its bar, search by identity and by the
digest the denial log prints, grant 2 tokens and see the API admit exactly 2 more,
drain and see 429, reset; a staff user without the bucket permissions is refused.
Screenshots go to the test's tmp dir, or to ``RATELIMIT_SCREENSHOTS`` when set (the
README's two pictures are made with ``RATELIMIT_SCREENSHOTS=docs``).
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from project.servers import DemoServer, burst, get, migrate_demo
from ratelimit_app.core.keys import log_identity
from tests.project.test_admin_actions_http import admitted_after_wait

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    if os.environ.get("CI"):  # CI installs them (.ci/run): never skip there
        raise RuntimeError("CI must have Debian's chromium and chromium-driver installed")
    pytest.skip(
        "no chromium/chromedriver here: apt-get install chromium chromium-driver",
        allow_module_level=True,
    )

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.expected_conditions import staleness_of  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

PAGE = "/admin/ratelimit_app/bucket/"


@pytest.fixture
def browser() -> Iterator[WebDriver]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--window-size=1400,1400"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=str(DRIVER)), options=options)
    driver.implicitly_wait(10)  # waits for elements to appear, never asserts a duration
    yield driver
    driver.quit()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    target = Path(os.environ.get("RATELIMIT_SCREENSHOTS") or tmp_path)
    target.mkdir(parents=True, exist_ok=True)
    return target


def next_page(driver: WebDriver, element: WebElement, submit: Callable[[], None]) -> None:
    """Submit, then wait until the next page has replaced the one ``element`` is on and
    has finished loading. Without it a lookup can find the old page's element, or one of
    a document still being replaced (chromedriver: "Node with given id does not belong
    to the document", seen once in CI)."""
    submit()
    wait = WebDriverWait(driver, 60)
    wait.until(staleness_of(element))
    wait.until(lambda d: d.execute_script("return document.readyState") == "complete")


def log_in(driver: WebDriver, base: str, name: str) -> None:
    driver.delete_all_cookies()
    driver.get(base + "/admin/login/")
    driver.find_element(By.NAME, "username").send_keys(name)
    driver.find_element(By.NAME, "password").send_keys(name)
    button = driver.find_element(By.CSS_SELECTOR, "input[type=submit]")
    next_page(driver, button, button.click)
    driver.find_element(By.ID, "user-tools")  # logged in


def search(driver: WebDriver, text: str) -> list[str]:
    box = driver.find_element(By.ID, "searchbar")
    box.clear()
    box.send_keys(text)
    next_page(driver, box, box.submit)  # the old page has an #rl-summary too
    driver.find_element(By.ID, "rl-summary")
    return [row.text for row in driver.find_elements(By.CSS_SELECTOR, "tr.bucket")]


def act(driver: WebDriver, key: str, action: str, amount: str | None = None) -> str:
    form = driver.find_element(By.CSS_SELECTOR, f'tr[data-key="{key}"] form.action-{action}')
    if amount is not None:
        field = form.find_element(By.NAME, "amount")
        field.clear()
        field.send_keys(amount)
    next_page(driver, form, form.find_element(By.CSS_SELECTOR, "input[type=submit]").click)
    return str(driver.find_element(By.CSS_SELECTOR, "ul.messagelist").text)


def other_clients(base: str) -> None:
    """A few more clients behind the trusted proxy, at different fills (one refused)."""
    with httpx.Client(base_url=base, timeout=30) as client:
        for address, times in (("203.0.113.7", 6), ("198.51.100.23", 1), ("192.0.2.44", 4)):
            for _ in range(times):
                client.get("/api/ping", headers={"X-Forwarded-For": address})


@pytest.mark.slow
def test_admin_in_a_real_browser(
    browser: WebDriver, shots: Path, redis_url: str, key_prefix: str, tmp_path: Path
) -> None:
    env = {
        "DJANGO_SETTINGS_MODULE": "project.settings", "REDIS_URL": redis_url,
        "RATELIMIT_CAPACITY": "5", "RATELIMIT_REFILL_RATE": "0.001",
        "RATELIMIT_KEY_PREFIX": key_prefix, "DJANGO_DB_PATH": str(tmp_path / "db.sqlite3"),
        "RATELIMIT_TRUSTED_PROXY_COUNT": "1",  # so the picture can show a few clients
    }  # fmt: skip
    migrate_demo(env, {"root": True, "bare": False})
    key = f"{key_prefix}:default:ip:127.0.0.1"
    with DemoServer(env, workers=4) as server:
        base = f"http://127.0.0.1:{server.port}"
        assert [get(server.port, "/api/ping") for _ in range(3)] == [200] * 3
        other_clients(base)
        log_in(browser, base, "root")
        browser.get(base + "/api/ping")  # a logged-in user's own bucket: user:<pk>
        browser.get(base + PAGE)
        row = browser.find_element(By.CSS_SELECTOR, f'tr[data-key="{key}"]')
        fill = row.find_element(By.CSS_SELECTOR, ".rl-fill").get_attribute("style")
        assert "width: 40%" in str(fill) and "s ago" in row.text
        assert re.search(r"\b2(\.\d+)? / 5", row.text)
        summary = browser.find_element(By.ID, "rl-summary").text
        assert "5 live buckets; every other identity is full" in summary, summary
        user_row = browser.find_element(By.CSS_SELECTOR, "td.identity a")
        assert user_row.text == "root" and "/admin/auth/user/" in str(
            user_row.get_attribute("href")
        )
        browser.find_element(By.CSS_SELECTOR, "main").screenshot(str(shots / "admin-buckets.png"))

        by_identity = search(browser, "ip:127.0.0.1")
        # one row per policy of the demo: default's stored bucket, auth_failures' full one
        assert len(by_identity) == 2
        assert ["not stored" in row for row in by_identity] == [True, False]
        by_digest = search(browser, log_identity("ip:127.0.0.1"))
        assert len(by_digest) == 1 and "ip:127.0.0.1" in by_digest[0]

        assert burst(server.port, "/api/ping", 20, 5)[200] == 2  # empty now
        assert "Granted 2 token(s) to ip:127.0.0.1" in act(browser, key, "grant", "2")
        browser.find_element(By.CSS_SELECTOR, "main").screenshot(
            str(shots / "admin-after-grant.png")
        )
        assert admitted_after_wait(server.port) == 2

        assert "Drained ip:127.0.0.1" in act(browser, key, "drain")
        assert get(server.port, "/api/ping") == 429
        assert "it is full again" in act(browser, key, "reset")
        assert admitted_after_wait(server.port) == 5

        log_in(browser, base, "bare")
        browser.get(base + PAGE)
        assert "403" in browser.page_source or "Forbidden" in browser.page_source
        assert "ratelimit-buckets" not in browser.page_source
