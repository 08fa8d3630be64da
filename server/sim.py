"""`alap sim`: a terminal phone. It dials through the sandbox gateway of a running `alap dev`,
so every hop goes through the real callback route and `/ussd/send`."""
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


async def run_sim(url: str, address: str, code: str, script: str | None) -> int:
    base = url.rstrip("/") + "/sandbox/bdapps/phone"
    replies = script.split(",") if script is not None else None
    async with aiohttp.ClientSession() as http:
        try:
            async with http.post(f"{base}/dial", json={"address": address, "code": code}) as resp:
                if resp.status != 200:
                    print(f"alap sim: dial failed: HTTP {resp.status} {await resp.text()}", file=sys.stderr)
                    return 1
                screen = await resp.json()
        except aiohttp.ClientConnectorError:
            print(f"alap sim: nothing answers at {url}; start `alap dev` first", file=sys.stderr)
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
            async with http.post(f"{base}/reply", json={"sessionId": screen["sessionId"], "address": address,
                                                         "message": answer}) as resp:
                if resp.status != 200:
                    print(f"alap sim: reply failed: HTTP {resp.status} {await resp.text()}", file=sys.stderr)
                    return 1
                screen = await resp.json()
            _show(screen)
    return 0


async def run_sms(url: str, address: str, message: str) -> int:
    """Text one SMS through the sandbox gateway and print the reply."""
    async with aiohttp.ClientSession() as http:
        try:
            async with http.post(url.rstrip("/") + "/sandbox/bdapps/phone/sms",
                                 json={"address": address, "message": message}) as resp:
                if resp.status != 200:
                    print(f"alap sim: SMS failed: HTTP {resp.status} {await resp.text()}", file=sys.stderr)
                    return 1
                sms = await resp.json()
        except aiohttp.ClientConnectorError:
            print(f"alap sim: nothing answers at {url}; start `alap dev` first", file=sys.stderr)
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
