"""The web simulator (`GET /simulator` of `alap dev`) in a real headless Chromium.

`alap dev` runs as a real process; the page dials through the sandbox gateway's phone API and so
through the server's real callback route. Chromium is Debian's (/usr/bin/chromium), driven by
Playwright; without it the browser tests skip with one line (and fail under CI).
"""
from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from typing import Iterator

import httpx
import pytest

from tests.sandbox.chromium import CHROMIUM_ARGS, bengali_web_font_loaded, chromium_or_skip
from tests.conftest import free_port
from tests.helpers.alap_dev import alap_dev

ADDRESS = "tel:8801712000042"


def _env() -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BDAPPS_", "ALAP_", "REDIS_URL", "PORT"))}
    return clean


class DevServer:
    def __init__(self, port: int, proc: subprocess.Popen, log: Path) -> None:
        self.port, self.proc, self.log = port, proc, log
        self.url = f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def dev_server(tmp_path_factory) -> Iterator[DevServer]:
    port = free_port()
    log = tmp_path_factory.mktemp("alap-dev") / "out.log"
    with alap_dev(port, _env(), log, ready_within=20) as proc:
        yield DevServer(port, proc, log)
    assert proc.returncode == 0, log.read_text()
    assert "Traceback" not in log.read_text()


def test_simulator_page_is_served_and_announced(dev_server):
    response = httpx.get(f"{dev_server.url}/simulator", timeout=5)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    page = response.text
    assert "<title>Alap simulator</title>" in page
    assert '"budgets": {"440": 160, "16": 80}' in page and '"code": "*213#"' in page
    assert "/sandbox/bdapps/phone" in page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page), "the page must not load anything from another host"
    assert f"http://127.0.0.1:{dev_server.port}/simulator" in dev_server.log.read_text()


# --- in the browser ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=executable, headless=True, args=CHROMIUM_ARGS,
            viewport={"width": 1000, "height": 800})
        context.set_default_timeout(15_000)
        try:
            yield context
        finally:
            context.close()


def settle(page) -> None:
    """Wait until the page's request in flight (dial, reply, language walk) is done."""
    page.wait_for_selector('body[data-busy="false"]', state="attached")


def screen_text(page) -> str:
    return page.locator("#screen-text").text_content()


def assert_labels(page, budget: int, encoding: str) -> str:
    """The meta line matches the displayed screen: its length, the budget, the encoding."""
    text = screen_text(page)
    assert page.locator("#screen-meta").text_content() == f"{len(text)} / {budget} chars · {encoding}"
    assert "over" not in (page.locator("#screen").get_attribute("class") or "")
    return text


def press_keys(page, keys: str, send_with: str) -> None:
    for key in keys:
        page.click(f'#keypad button[data-key="{key}"]')
    assert page.input_value("#reply") == keys
    if send_with == "enter":
        page.press("#reply", "Enter")
    else:
        page.click(send_with)
    settle(page)


def type_reply(page, text: str) -> None:
    page.fill("#reply", text)
    page.press("#reply", "Enter")
    settle(page)


def assert_waiting(page) -> None:
    assert page.locator("#screen-status").text_content() == "Reply expected"
    assert page.locator("#ended").is_hidden()
    assert page.locator("#reply").is_enabled()


def assert_ended(page) -> None:
    assert page.locator("#screen-status").text_content() == "Session ended"
    assert page.locator("#ended").is_visible()
    assert "Session ended (mt-fin)" in page.locator("#ended").text_content()
    assert page.locator("#dial-again").is_visible()
    assert page.locator("#reply").is_disabled() and page.locator("#send").is_disabled()
    assert "ended" in page.locator("#screen").get_attribute("class")


def test_dial_the_demo_in_bengali_then_switch_to_english(dev_server, browser):
    page = browser.new_page()
    page.goto(f"{dev_server.url}/simulator")
    assert page.input_value("#code") == "*213#"
    page.fill("#address", ADDRESS)

    # Bengali (the default language): the bill splitter, keypad + Send, text field + Enter, keypad + OK.
    page.click("#dial")
    settle(page)
    assert "আলাপে স্বাগতম" in assert_labels(page, 80, "UCS-2 (16)")
    assert_waiting(page)
    assert bengali_web_font_loaded(page)
    press_keys(page, "2", send_with="#send")
    amount_prompt = assert_labels(page, 80, "UCS-2 (16)")
    assert "আলাপে স্বাগতম" not in amount_prompt
    assert_waiting(page)
    type_reply(page, "1250")
    assert assert_labels(page, 80, "UCS-2 (16)") != amount_prompt
    assert_waiting(page)
    press_keys(page, "4", send_with="#keypad-send")
    assert "১,২৫০.০০৳, ৪ জনে ভাগ: প্রত্যেকে ৩১২.৫০৳।" in assert_labels(page, 80, "UCS-2 (16)")
    assert_ended(page)

    # Switch to English: the page walks the real language menu and leaves us on the main menu.
    page.click("#lang-en")
    settle(page)
    assert page.locator("#note").text_content() == "Language set to English."
    menu = assert_labels(page, 160, "GSM-7 (440)")
    assert menu.startswith("Welcome to Alap\n1. Find a number's operator\n2. Split a bill")
    assert_waiting(page)
    press_keys(page, "2", send_with="enter")
    assert assert_labels(page, 160, "GSM-7 (440)") == "Enter the bill amount in taka:"
    type_reply(page, "1250")
    assert assert_labels(page, 160, "GSM-7 (440)") == "How many people share it? (2-20)"
    type_reply(page, "4")
    assert assert_labels(page, 160, "GSM-7 (440)") == "Tk 1,250.00 shared by 4: Tk 312.50 each."
    assert page.locator("#screen-meta").text_content() == "40 / 160 chars · GSM-7 (440)"
    assert_ended(page)

    # Dial again: a new session, still in English (the choice is in the subscriber's profile).
    page.click("#dial-again")
    settle(page)
    assert assert_labels(page, 160, "GSM-7 (440)") == menu
    assert_waiting(page)
    page.click("#lang-en")
    settle(page)
    assert page.locator("#note").text_content() == "Already in English."
    assert screen_text(page) == menu

    # The log holds every screen with its labels, the inputs and the dials, in order.
    log = page.locator("#log li")
    entries = [log.nth(i).text_content() for i in range(log.count())]
    assert entries[0] == f"Dialled *213# from {ADDRESS}"
    assert any("১,২৫০.০০৳, ৪ জনে ভাগ" in e and e.endswith("· end (mt-fin)") for e in entries)
    assert any(e.startswith("Tk 1,250.00 shared by 4: Tk 312.50 each.") and
               e.endswith("40 / 160 chars · GSM-7 (440) · end (mt-fin)") for e in entries)
    assert sum(e.startswith("Dialled *213#") for e in entries) == 4  # dial, language walk, again, walk
    assert page.locator("#log li.log-input").all_text_contents()[:3] == ["2", "1250", "4"]
    page.close()


def test_small_width_and_over_budget_highlight(dev_server, browser):
    page = browser.new_page()
    page.set_viewport_size({"width": 360, "height": 740})
    page.goto(f"{dev_server.url}/simulator")
    page.fill("#address", "tel:8801712000043")
    page.click("#dial")
    settle(page)
    assert "আলাপে স্বাগতম" in assert_labels(page, 80, "UCS-2 (16)")
    # Nothing sticks out sideways on a small phone, and the keypad stays on screen.
    assert page.evaluate("document.documentElement.scrollWidth") <= 360
    box = page.locator("#keypad").bounding_box()
    assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360

    # A gateway timeout (the gateway's 504 when no screen comes in time) is shown, not swallowed.
    page.route("**/sandbox/bdapps/phone/reply", lambda route: route.fulfill(
        status=504, content_type="application/json", body='{"error": "no screen from the server in time"}'))
    type_reply(page, "1")
    assert screen_text(page) == "HTTP 504 from /reply: no screen from the server in time"
    assert page.locator("#screen-status").text_content() == "Error"
    assert page.locator("#ended-text").text_content() == "Session broken off"
    assert page.locator("#dial-again").is_visible() and page.locator("#reply").is_disabled()
    page.unroute("**/sandbox/bdapps/phone/reply")
    page.click("#dial-again")
    settle(page)
    assert "আলাপে স্বাগতম" in assert_labels(page, 80, "UCS-2 (16)")
    assert_waiting(page)

    # The real server never sends an over-budget screen, so render such screens directly.
    page.evaluate("""window.alapSimulator.render(
        {message: "x".repeat(170), encoding: "440", ussdOperation: "mt-cont", sessionId: "t"})""")
    assert "over" in page.locator("#screen").get_attribute("class")
    assert page.locator("#screen-meta").text_content() == "170 / 160 chars · GSM-7 (440) · over budget by 10"
    page.evaluate("""window.alapSimulator.render(
        {message: "অ".repeat(81), encoding: "16", ussdOperation: "mt-fin", sessionId: "t"})""")
    assert page.locator("#screen-meta").text_content() == "81 / 80 chars · UCS-2 (16) · over budget by 1"
    assert page.locator("#log li.log-screen.over").count() == 2
    page.close()
