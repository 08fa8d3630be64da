"""A web phone for `alap dev`: `GET /simulator` (the terminal one is server/terminal_phone.py).

One page (package data in server/sandbox/static/: simulator.html, .css and .js, vanilla JS, no
build step, nothing fetched from another host) that dials through the sandbox gateway's phone
API on the same origin:

    POST {phone_api}/dial   {"address", "code"}                -> the first screen
    POST {phone_api}/reply  {"sessionId", "address", "message"} -> the next screen

so every hop goes through the server's real callback route and `/ussd/send`, exactly as
`alap sim` does. The page shows each screen with its character count, encoding and budget
(over-budget screens are highlighted), the end of the session (`mt-fin`) with a "Dial again"
button, and a log of every screen.

Language buttons: the subscriber's language lives in their profile, so switching it means
walking a real language menu. The page dials the demo (`language_code`, `*213#`), picks the
option whose label is "Language" (following "98. More" pages), then the option for the wanted
language, and leaves the phone on the main menu it lands on. It matches labels in both
languages rather than dialling a positional shortcut such as `*213*3*1#`: the language menu only
lists the language you are *not* using (so `*213*3*1#` toggles instead of setting), and option
numbers move whenever the main menu changes.
"""
from __future__ import annotations

import json
from pathlib import Path

from aiohttp import web

SIMULATOR_PATH = "/simulator"
DEFAULT_PHONE_API = "/sandbox/bdapps/phone"

STATIC_DIR = Path(__file__).with_name("static")  # package data (pyproject.toml)

_HEADERS = {
    "Cache-Control": "no-store",
    # Everything is same-origin: the page works on a machine with no internet.
    "Content-Security-Policy": ("default-src 'none'; script-src 'self'; style-src 'self'; "
                                "connect-src 'self'; img-src data:; font-src 'self'; base-uri 'none'; "
                                "form-action 'none'"),
    "X-Content-Type-Options": "nosniff",
}


def render_page(budgets: tuple[int, int], *, phone_api: str = DEFAULT_PHONE_API, code: str = "*213#",
                address: str = "tel:8801812345678", language_code: str = "*213#") -> str:
    """static/simulator.html with its configuration embedded as JSON (a data block, never run:
    safe inside a <script> element and under the page's script-src 'self')."""
    config = {
        "budgets": {"440": budgets[0], "16": budgets[1]},
        "phoneApi": phone_api.rstrip("/"),
        "code": code,
        "address": address,
        "languageCode": language_code,
    }
    data = json.dumps(config, ensure_ascii=True).replace("<", "\\u003c").replace(">", "\\u003e")
    return (STATIC_DIR / "simulator.html").read_text(encoding="utf-8").replace("__CONFIG__", data)


def add_simulator(app: web.Application, budgets: tuple[int, int], *, phone_api: str = DEFAULT_PHONE_API,
                  code: str = "*213#", address: str = "tel:8801812345678", language_code: str = "*213#") -> None:
    """Serve the web phone at `GET /simulator`, its CSS and JS as static files under
    /simulator/static/. `budgets` is (encoding 440, encoding 16) in characters, as in the
    server's settings, so the page flags exactly what the server would."""
    page = render_page(budgets, phone_api=phone_api, code=code, address=address, language_code=language_code)

    async def simulator(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", charset="utf-8", headers=_HEADERS)

    app.router.add_get(SIMULATOR_PATH, simulator)
    app.router.add_static(f"{SIMULATOR_PATH}/static", STATIC_DIR)
