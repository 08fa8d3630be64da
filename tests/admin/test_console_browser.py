"""The operator console in a real headless Chromium (Debian's, driven by Playwright) against a real
`alap dev` process on a real Redis: log in with the form, open the demo flow's picture after
dialled sessions (its numbers are the sessions driven), resolve a NEEDS_REVIEW record, look up a
subscriber. Screenshots are saved in the test's temporary folder."""
from __future__ import annotations

import asyncio
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from server.store.ledger import RechargeState, open_ledger
from server.store.redis_backend import RedisStore
from tests.sandbox.chromium import CHROMIUM_ARGS, bengali_web_font_loaded, chromium_or_skip
from tests.conftest import free_port
from tests.helpers.alap_dev import alap_dev

from .helpers import record_needing_review

TOKEN = "browser-Console-7"
SESSION_TTL = 10  # seconds: abandoned sessions expire quickly and the periodic sweep counts them


class Dev:
    def __init__(self, url: str, redis_url: str, prefix: str, log: Path) -> None:
        self.url, self.redis_url, self.prefix, self.log = url, redis_url, prefix, log

    def dial(self, address: str, *inputs: str) -> dict:
        screen = httpx.post(f"{self.url}/sandbox/bdapps/phone/dial", json={"code": "*213#", "address": address},
                            timeout=20).json()
        for text in inputs:
            screen = httpx.post(f"{self.url}/sandbox/bdapps/phone/reply", timeout=20,
                                json={"sessionId": screen["sessionId"], "address": address, "message": text}).json()
        return screen

    def ledger_call(self, work):
        async def run():
            store = RedisStore.from_url(self.redis_url, self.prefix)
            try:
                return await work(open_ledger(store))
            finally:
                await store.close()
        # Playwright's sync API keeps an event loop on this thread: run ours on another.
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(asyncio.run, run()).result(timeout=30)


@pytest.fixture(scope="module")
def dev(tmp_path_factory, redis_url) -> Iterator[Dev]:
    port, prefix = free_port(), f"alap-browser-{uuid.uuid4().hex[:6]}:"
    log = tmp_path_factory.mktemp("alap-dev") / "out.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BDAPPS_", "ALAP_", "REDIS_URL", "PORT"))}
    env.update(ALAP_ADMIN_TOKEN=TOKEN, ALAP_SESSION_TTL=str(SESSION_TTL), REDIS_URL=redis_url,
               ALAP_REDIS_PREFIX=prefix, ALAP_DEFAULT_LANGUAGE="en")
    with alap_dev(port, env, log):
        yield Dev(f"http://127.0.0.1:{port}", redis_url, prefix, log)
    assert "Traceback" not in log.read_text()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1300, "height": 900}, locale="en-GB")
        context.set_default_timeout(20_000)
        try:
            yield context
        finally:
            context.close()


def picture_numbers(page, state: str) -> tuple[str, str]:
    node = page.locator(f'#picture g.node[data-state="{state}"]')
    return node.locator("text.entered").text_content(), node.locator("text.abandoned").text_content()


@pytest.fixture(scope="module")
def sessions(dev):
    """Sessions: two bill splits to the end, one stopped at the amount, one never answered the
    menu; and a NEEDS_REVIEW record. Made before Chromium starts (the `browser` fixture comes
    after this one), so the abandoned sessions' TTL runs out while it launches."""
    for n in (1, 2):
        assert dev.dial(f"tel:88017000000{n}", "2", "1250", "4")["ussdOperation"] == "mt-fin"
    dev.dial("tel:8801700000003", "2")
    dev.dial("tel:8801700000004")
    return dev.ledger_call(lambda ledger: record_needing_review(ledger, payer="tel:8801700000009"))


def test_operator_works_the_console_in_chromium(dev, sessions, browser, tmp_path):
    record = sessions
    page = browser.new_page()
    # Log in: a browser without credentials is sent to the login form.
    page.goto(f"{dev.url}/admin/flows/demo")
    assert page.url == f"{dev.url}/admin/login?next=/admin/flows/demo"
    page.fill("#token", "not-the-token")
    page.click("#login-button")
    assert page.locator("#error").text_content().strip() == "Wrong or missing admin token."
    page.fill("#token", TOKEN)
    page.click("#login-button")
    page.wait_for_url(f"{dev.url}/admin/flows/demo")

    # The picture: entries right away; the two abandoned once their sessions expired and were swept.
    deadline = time.monotonic() + 90
    while picture_numbers(page, "ask_total")[1] != "abandoned 1":
        assert time.monotonic() < deadline, page.locator("#picture").inner_html()[:2000]
        time.sleep(0.5)
        page.reload()
    assert picture_numbers(page, "main") == ("entered 4", "abandoned 1")
    assert picture_numbers(page, "ask_total") == ("entered 3", "abandoned 1")
    assert picture_numbers(page, "ask_people") == ("entered 2", "abandoned 0")
    assert picture_numbers(page, "split_result") == ("entered 2", "abandoned 0")
    edge = page.locator('#picture g.edge[data-source="main"][data-target="ask_total"] text')
    assert edge.text_content() == "3 · 75%"
    assert page.locator("#totals").text_content().split() == [
        "Started", "4", "·", "Completed", "2", "·", "Abandoned", "2", "·", "Failed", "0"]
    heaviest = page.locator("#picture g.node.heaviest")
    assert heaviest.count() == 1 and heaviest.get_attribute("data-state") in ("main", "ask_total")
    # The Bengali web font is loaded from the package, not from the system.
    assert bengali_web_font_loaded(page)
    page.screenshot(path=tmp_path / "flow-demo.png", full_page=True)
    page.locator("main").screenshot(path=tmp_path / "flow-demo-picture.png")
    page.click('#periods a[data-range="yesterday"]')
    assert picture_numbers(page, "main") == ("entered 0", "abandoned 0")

    # Resolve the NEEDS_REVIEW record from the index's attention rows.
    page.goto(f"{dev.url}/admin")
    assert page.locator('#ledger-counts tr.attention[data-state="NEEDS_REVIEW"] td.n').text_content() == "1"
    page.click('#ledger-counts tr[data-state="NEEDS_REVIEW"] a')
    page.click(f'#records tr[data-id="{record.id}"] a')
    assert page.locator("#state").text_content() == "NEEDS_REVIEW"
    page.fill("#note", "eCare confirmed the recharge by phone (ticket 5531)")
    page.click("#resolve-button")
    assert page.locator("#flash").text_content() == "The record is resolved."
    assert page.locator("#state").text_content() == "RESOLVED"
    assert "eCare confirmed the recharge by phone (ticket 5531)" in page.locator("#history").text_content()
    page.screenshot(path=tmp_path / "ledger-record.png", full_page=True)
    stored = dev.ledger_call(lambda ledger: ledger.get(record.id))
    assert stored.state is RechargeState.RESOLVED and stored.history[-1].by == "operator:console"

    # Look up a subscriber whose session is open, from the header's search box.
    dev.dial("tel:8801700000005", "1", "01812345678")
    page.fill("#number", "01700000005")
    page.click("#lookup")
    page.wait_for_url(f"{dev.url}/admin/subscribers/01700000005")
    assert page.locator("#session-flow").text_content() == "demo"
    assert page.locator("#session-state").text_content() == "operator_result"
    variables = page.locator("#variables").text_content()
    assert "018••••••78" in variables and "01812345678" not in variables
    page.screenshot(path=tmp_path / "subscriber.png", full_page=True)

    # Bad input in the browser: a clear 4xx page.
    response = page.goto(f"{dev.url}/admin/subscribers/not-a-number")
    assert response.status == 400 and "is not a Bangladeshi mobile number" in page.locator("#error").text_content()
    for name in ("flow-demo.png", "flow-demo-picture.png", "ledger-record.png", "subscriber.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    page.close()
