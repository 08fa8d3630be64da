"""`alap sim` and `alap push`: a terminal phone (the web one is server/sandbox/web_phone.py).
It dials through the sandbox gateway of a running `alap dev`, so every hop goes through the
real callback route and `/ussd/send`."""
from __future__ import annotations

import sys

import aiohttp


def _show(screen: dict) -> None:
    text = screen.get("message", "")
    final = screen.get("ussdOperation") == "mt-fin"
    print("+" + "-" * 34)
    for line in text.splitlines() or [""]:
        print("| " + line)
    print("+" + "-" * 34 + f"  [{len(text)} chars, encoding {screen.get('encoding')}, "
          f"{'end' if final else 'reply expected'}]")


async def _phone(http: aiohttp.ClientSession, url: str, what: str, body: dict) -> dict | None:
    """One call to the sandbox gateway's phone API; None (after one line on stderr) on failure."""
    try:
        async with http.post(url.rstrip("/") + f"/sandbox/bdapps/phone/{what}", json=body) as resp:
            if resp.status != 200:
                print(f"alap sim: {what} failed: HTTP {resp.status} {await resp.text()}", file=sys.stderr)
                return None
            return await resp.json()
    except aiohttp.ClientConnectorError:
        print(f"alap sim: nothing answers at {url}; start `alap dev` first", file=sys.stderr)
        return None


async def run_sim(url: str, address: str, code: str, script: str | None) -> int:
    replies = script.split(",") if script is not None else None
    async with aiohttp.ClientSession() as http:
        screen = await _phone(http, url, "dial", {"address": address, "code": code})
        if screen is None:
            return 1
        print(f"Dialled {code} from {address}")
        _show(screen)
        while screen.get("ussdOperation") != "mt-fin":
            if replies is not None:
                if not replies:
                    return 0
                answer = replies.pop(0)
                print(f"> {answer}")
            else:
                try:
                    answer = input("> ")
                except EOFError:
                    return 0
            screen = await _phone(http, url, "reply",
                                  {"sessionId": screen["sessionId"], "address": address, "message": answer})
            if screen is None:
                return 1
            _show(screen)
    return 0


async def run_sms(url: str, address: str, message: str) -> int:
    """Text one SMS through the sandbox gateway and print the reply."""
    async with aiohttp.ClientSession() as http:
        sms = await _phone(http, url, "sms", {"address": address, "message": message})
    if sms is None:
        return 1
    print(f"> {message}")
    print(f"< {sms['message']}")
    print(f"  [{len(sms['message'])} chars, encoding {sms.get('encoding')}]")
    return 0


async def run_push(url: str, token: str, address: str, flow: str, variables: dict[str, str]) -> int:
    """POST /push/ussd; prints the new session id."""
    async with aiohttp.ClientSession() as http:
        try:
            async with http.post(url.rstrip("/") + "/push/ussd", headers={"Authorization": f"Bearer {token}"},
                                 json={"address": address, "flow": flow, "vars": variables}) as resp:
                body = await resp.text()
                if resp.status != 202:
                    print(f"alap push: HTTP {resp.status} {body}", file=sys.stderr)
                    return 1
        except aiohttp.ClientConnectorError:
            print(f"alap push: nothing answers at {url}", file=sys.stderr)
            return 1
    print(f"pushed {flow} to {address}: {body}")
    return 0
