"""Who gets into the console: off without ALAP_ADMIN_TOKEN, HTTP Basic or the login form's signed
cookie, failed attempts refused after a few (and logged without the attempt), and a resolve POST
that did not come from the console's own form changes nothing."""
from __future__ import annotations

import base64

import structlog

from server.admin.auth import COOKIE, MAX_FAILURES
from server.store.ledger import RechargeState
from tests.conftest import start_stack

from .helpers import BASIC, TOKEN, console, ledger_of, record_needing_review


async def test_console_is_off_without_a_token_but_the_font_is_served(aiohttp_server):
    stack = await start_stack(aiohttp_server)
    try:
        for path in ("/admin", "/admin/flows/demo", "/admin/ledger", "/admin/subscribers/01812345678", "/admin/login"):
            async with stack.http.get(stack.app_url + path, headers=BASIC) as resp:
                assert resp.status == 404, path
        async with stack.http.get(stack.app_url + "/fonts/NotoSansBengali-Regular.ttf") as resp:
            assert resp.status == 200 and len(await resp.read()) > 100_000
        async with stack.http.get(stack.app_url + "/fonts/OFL.txt") as resp:
            assert "SIL OPEN FONT LICENSE Version 1.1" in await resp.text()
    finally:
        await stack.http.close()


async def test_basic_auth_wrong_token_and_rate_limit(aiohttp_server, redis_url):
    async with console(aiohttp_server, redis_url) as stack:
        url = stack.app_url + "/admin"
        async with stack.http.get(url) as resp:  # a script with no credentials: a Basic challenge
            assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Basic ")
        async with stack.http.get(url, headers={"Accept": "text/html"}, allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/admin/login?next=/admin"  # a browser: the form
        async with stack.http.get(stack.app_url + "/admin/login/basic?next=/admin/ledger", allow_redirects=False) as resp:
            assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Basic ")  # the browser's prompt
        async with stack.http.get(stack.app_url + "/admin/login/basic?next=/admin/ledger", headers=BASIC,
                                  allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/admin/ledger"
        async with stack.http.get(url, headers=BASIC) as resp:
            assert resp.status == 200 and 'id="flows"' in await resp.text()
        wrong = "Basic " + base64.b64encode(b"admin:guess-123").decode()
        with structlog.testing.capture_logs() as logs:
            async with stack.http.get(url, headers={"Authorization": wrong, "Accept-Language": "en"}) as resp:
                assert resp.status == 401 and resp.headers["WWW-Authenticate"].startswith("Basic ")
                assert "Wrong or missing admin token." in await resp.text()
        failures = [e for e in logs if e["event"] == "admin_auth_failed"]
        assert len(failures) == 1 and failures[0]["client"] == "127.0.0.1"
        assert "guess-123" not in repr(logs)  # the attempt itself is never logged
        for _ in range(MAX_FAILURES - 1):
            async with stack.http.get(url, headers={"Authorization": wrong}) as resp:
                assert resp.status == 401
        async with stack.http.get(url, headers=BASIC) as resp:  # limited: even the right token waits
            assert resp.status == 429 and resp.headers["Retry-After"]


async def test_login_form_sets_a_signed_cookie(aiohttp_server, redis_url):
    async with console(aiohttp_server, redis_url) as stack:
        async with stack.http.post(stack.app_url + "/admin/login", data={"token": "nope", "next": "/admin/ledger"},
                                   allow_redirects=False) as resp:
            assert resp.status == 401 and COOKIE not in resp.cookies
        async with stack.http.post(stack.app_url + "/admin/login", data={"token": TOKEN, "next": "//evil.example/"},
                                   allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == "/admin"  # never an open redirect
            cookie = resp.cookies[COOKIE]
            assert cookie["httponly"] and cookie["samesite"] == "Strict" and TOKEN not in cookie.value
        async with stack.http.get(stack.app_url + "/admin/ledger", cookies={COOKIE: cookie.value}) as resp:
            assert resp.status == 200 and 'id="records"' in await resp.text()
        expires, _, signature = cookie.value.partition(".")
        for forged in (f"{int(expires) + 999}.{signature}", f"{expires}.{'0' * len(signature)}", "garbage"):
            async with stack.http.get(stack.app_url + "/admin/ledger", cookies={COOKIE: forged}) as resp:
                assert resp.status == 401, forged


async def test_a_forged_resolve_post_changes_nothing(aiohttp_server, redis_url):
    async with console(aiohttp_server, redis_url) as stack:
        ledger = ledger_of(stack)
        record = await record_needing_review(ledger)
        url = f"{stack.app_url}/admin/ledger/{record.id}/resolve"
        async with stack.http.get(f"{stack.app_url}/admin/ledger/{record.id}", headers=BASIC) as resp:
            page = await resp.text()
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        attempts = [
            ({"note": "refunded"}, {}),  # no form token (a cross-site form cannot know it)
            ({"note": "refunded", "csrf": "0" * 64}, {}),  # a wrong one
            ({"note": "refunded", "csrf": csrf}, {"Origin": "http://evil.example"}),  # right token, other site
            ({"note": "refunded", "csrf": csrf}, {"Sec-Fetch-Site": "cross-site"}),
        ]
        for form, headers in attempts:
            async with stack.http.post(url, data=form, headers={**BASIC, **headers}, allow_redirects=False) as resp:
                assert resp.status == 403, (form, headers)
                assert "Nothing was changed" in await resp.text()
        unchanged = await ledger.get(record.id)
        assert unchanged.state is RechargeState.NEEDS_REVIEW and unchanged.version == record.version
