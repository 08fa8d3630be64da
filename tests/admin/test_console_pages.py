"""The console's pages over real HTTP with a real Redis: the funnel numbers, the flow picture,
resolving a ledger record, a subscriber's live session with numbers masked, bad input as clear
4xx pages, everything escaped, Bengali or English after the browser."""
from __future__ import annotations

import re

from server.store.ledger import RechargeState

from .helpers import BASIC, console, ledger_of, record_needing_review

EN = {**BASIC, "Accept-Language": "en-GB,en;q=0.9"}


async def get(stack, path: str, headers=EN) -> tuple[int, str]:
    async with stack.http.get(stack.app_url + path, headers=headers, allow_redirects=False) as resp:
        return resp.status, await resp.text()


def node(page: str, state: str) -> tuple[int, int]:
    """(entered, abandoned) of a state on the flow picture."""
    match = re.search(rf'data-state="{state}" data-entered="(\d+)" data-abandoned="(\d+)"', page)
    assert match, state
    return int(match.group(1)), int(match.group(2))


async def test_flow_picture_shows_what_the_sessions_did(aiohttp_server, redis_url):
    async with console(aiohttp_server, redis_url) as stack:
        for address in ("tel:8801812000001", "tel:8801812000002"):
            screen = await stack.dial(address=address)
            screen = await stack.reply(screen, "2")
            screen = await stack.reply(screen, "1250")
            await stack.reply(screen, "4")
        screen = await stack.dial(address="tel:8801812000003")
        await stack.reply(screen, "2")  # still open at ask_total
        await stack.settle()
        status, page = await get(stack, "/admin/flows/demo")
        assert status == 200 and "<svg" in page
        assert node(page, "main") == (3, 0) and node(page, "ask_total") == (3, 0)
        assert node(page, "split_result") == (2, 0) and node(page, "language") == (0, 0)
        edge = re.search(r'data-source="main" data-target="ask_total" data-count="(\d+)"', page)
        assert edge and edge.group(1) == "3"
        assert re.search(r'<b class="started">3</b>', page) and re.search(r'<b class="completed">2</b>', page)
        status, page = await get(stack, "/admin/flows/demo?range=yesterday")
        assert status == 200 and node(page, "main") == (0, 0)
        status, page = await get(stack, "/admin/flows/demo?range=7d")
        assert node(page, "main") == (3, 0)
        status, index = await get(stack, "/admin")
        row = re.search(r'<tr data-flow="demo">(.*?)</tr>', index, re.S).group(1)
        assert re.findall(r'class="n (?:started|completed|abandoned)">(\d+)<', row) == ["3", "2", "0", "0", "0", "0"]


async def test_heaviest_drop_off_is_highlighted(aiohttp_server, redis_url):
    async with console(aiohttp_server, redis_url, session_ttl=10) as stack:
        for n in range(3):  # three stop at the amount prompt, one at the menu
            screen = await stack.dial(address=f"tel:880181200001{n}")
            await stack.reply(screen, "2")
        await stack.dial(address="tel:8801812000019")
        await stack.settle()
        store = stack.store
        # Expire them now (keeping the index's "answered" half marks) and sweep, as the periodic job does.
        opened = await store.redis.zrange(store.open_key, 0, -1, withscores=True)
        await store.redis.zadd(store.open_key, {member: score % 1 for member, score in opened})
        assert await store.sweep_expired() == (1, 3)
        status, page = await get(stack, "/admin/flows/demo")
        assert node(page, "ask_total") == (3, 3) and node(page, "main") == (4, 1)
        assert re.search(r'class="node kind-input heaviest" data-state="ask_total"', page)
        assert page.count(" heaviest") == 1
        assert 'id="heaviest">Heaviest drop-off: ask_total (3)' in page


async def test_resolve_a_record_with_a_note(aiohttp_server, redis_url):
    async with console(aiohttp_server, redis_url) as stack:
        ledger = ledger_of(stack)
        record = await record_needing_review(ledger)
        done = await record_needing_review(ledger, recipient="01912345678")
        await ledger.resolve(done.id, "refunded earlier")
        status, index = await get(stack, "/admin")
        states = re.findall(r'<tr(?: class="attention")? data-state="(\w+)">', index)
        assert states[:2] == ["NEEDS_REVIEW", "REFUND_REQUIRED"]
        status, listing = await get(stack, "/admin/ledger?state=NEEDS_REVIEW")
        assert record.id in listing and done.id not in listing
        status, page = await get(stack, f"/admin/ledger/{record.id}")
        assert status == 200 and "2 debit outcomes unknown" in page and 'id="resolve"' in page
        csrf = page.split('name="csrf" value="')[1].split('"')[0]
        url = f"{stack.app_url}/admin/ledger/{record.id}/resolve"
        async with stack.http.post(url, data={"note": "  ", "csrf": csrf}, headers=EN, allow_redirects=False) as resp:
            assert resp.status == 400 and "A note saying what was done is required" in await resp.text()
        async with stack.http.post(url, data={"note": "refund TX-9 made by bKash", "csrf": csrf}, headers=EN,
                                   allow_redirects=False) as resp:
            assert resp.status == 303 and resp.headers["Location"] == f"/admin/ledger/{record.id}?resolved=1"
        resolved = await ledger.get(record.id)
        assert resolved.state is RechargeState.RESOLVED
        assert (resolved.history[-1].note, resolved.history[-1].by) == ("refund TX-9 made by bKash", "operator:console")
        status, page = await get(stack, f"/admin/ledger/{record.id}?resolved=1")
        assert 'id="flash"' in page and "refund TX-9 made by bKash" in page and 'id="resolve"' not in page
        async with stack.http.post(url, data={"note": "again", "csrf": csrf}, headers=EN, allow_redirects=False) as resp:
            assert resp.status == 409 and "this one is RESOLVED" in await resp.text()


async def test_subscriber_page_masks_numbers_in_the_live_session(aiohttp_server, redis_url):
    async with console(aiohttp_server, redis_url) as stack:
        screen = await stack.dial(address="tel:8801812000077")
        screen = await stack.reply(screen, "1")
        await stack.reply(screen, "01712345678")  # the operator finder keeps the number in a variable
        await stack.settle()
        await record_needing_review(ledger_of(stack), payer="tel:8801812000077")
        status, page = await get(stack, "/admin/subscribers/8801812000077")
        assert status == 200
        assert re.search(r'id="session-flow"><a href="/admin/flows/demo">demo</a>', page)
        assert 'id="session-state">operator_result<' in page
        assert "01712345678" not in page.split('id="variables"')[1].split("</table>")[0]
        assert "017••••••78" in page
        assert 'id="recharges"' in page and "NEEDS_REVIEW" in page
        status, other = await get(stack, "/admin/subscribers/01812000078")
        assert status == 200 and 'id="session">No open session.' in other
        status, redirect = await get(stack, "/admin/subscribers?number=+8801812000077")
        assert status == 303


async def test_bad_input_gets_a_clear_4xx_page_and_everything_is_escaped(aiohttp_server, redis_url):
    async with console(aiohttp_server, redis_url) as stack:
        cases = {
            "/admin/flows/nope": (404, "There is no flow named “nope”."),
            "/admin/flows/demo?range=month": (400, "Unknown period “month”"),
            "/admin/subscribers/12345": (400, "“12345” is not a Bangladeshi mobile number"),
            "/admin/subscribers?number=abc": (400, "“abc” is not a Bangladeshi mobile number"),
            "/admin/ledger/ffff": (404, "There is no recharge record “ffff”."),
            "/admin/ledger?state=LOST": (400, "Unknown ledger state “LOST”."),
            "/admin/nothing/here": (404, "There is no console page at /admin/nothing/here."),
        }
        for path, (code, message) in cases.items():
            status, page = await get(stack, path)
            assert (status, message in page) == (code, True), (path, status, page[-600:])
            assert f'data-status="{code}"' in page and "Traceback" not in page
        status, page = await get(stack, "/admin/flows/%3Cscript%3Ealert(1)%3C%2Fscript%3E")
        assert status == 404 and "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        record = await record_needing_review(ledger_of(stack), note='<img src=x onerror="alert(1)">')
        status, page = await get(stack, f"/admin/ledger/{record.id}")
        assert "<img src=x" not in page and "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in page


async def test_bengali_after_the_browser_with_bengali_digits(aiohttp_server, redis_url):
    async with console(aiohttp_server, redis_url) as stack:
        for n in range(12):
            await stack.dial(address=f"tel:88018120001{n:02d}")
        await stack.settle()
        status, page = await get(stack, "/admin/flows/demo", headers={**BASIC, "Accept-Language": "bn-BD,bn;q=0.9,en;q=0.5"})
        assert '<html lang="bn">' in page and "ফ্লো" in page
        assert '<b class="started">১২</b>' in page and "প্রবেশ ১২" in page
        status, page = await get(stack, "/admin/flows/demo", headers={**BASIC, "Accept-Language": "fr, en;q=0.4"})
        assert '<html lang="en">' in page and '<b class="started">12</b>' in page
        status, page = await get(stack, "/admin/flows/nope", headers={**BASIC, "Accept-Language": "bn"})
        assert status == 404 and "“nope” নামে কোনো ফ্লো নেই।" in page
