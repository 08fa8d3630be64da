"""What the broadcast tests share: the sandbox BDApps gateway over real HTTP, recipients files,
`alap broadcast` / `alap worker` as real processes, and counting at the fake gateway."""
from __future__ import annotations

import asyncio
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web

from server.broadcast.context import BroadcastContext
from server.sandbox.bdapps import SENT_SMS, create_bdapps_fake
from server.sandbox.faults import FAULTS_KEY, Fault

from ..conftest import APP_ID, PASSWORD, test_settings

ALAP = [sys.executable, "-m", "server"]


def numbers(count: int, start: int = 0) -> list[str]:
    """Distinct Robi numbers (018...), as "01..." (the FILE's most common spelling)."""
    return [f"0181{start + i:07d}" for i in range(count)]


def write_numbers(path: Path, count: int, start: int = 0) -> list[str]:
    nums = numbers(count, start)
    path.write_text("\n".join(nums) + "\n", encoding="utf-8")
    return ["tel:88" + n for n in nums]


async def start_gateway(aiohttp_server) -> tuple[web.Application, str]:
    gateway = create_bdapps_fake("http://127.0.0.1:9/bdapps/ussd", APP_ID, PASSWORD)
    server = await aiohttp_server(gateway)
    return gateway, str(server.make_url("")).rstrip("/")


def received(gateway: web.Application) -> Counter:
    """How many SMS each address got at the fake gateway."""
    return Counter(sms["to"] for sms in gateway[SENT_SMS])


def sms_requests(gateway: web.Application) -> list[dict[str, Any]]:
    return [c["json"] for c in gateway[FAULTS_KEY].calls_to("/sms/send")]


def fault(gateway: web.Application, **kwargs: Any) -> None:
    gateway[FAULTS_KEY].add(Fault(endpoint=kwargs.pop("endpoint", "/sms/send"), **kwargs))


def context(store: Any, http: Any, gateway_url: str, **settings: Any) -> BroadcastContext:
    values = {"bdapps_base_url": gateway_url, "sms_rate": 0.0, "sms_routes": "bdapps", "default_language": "en"}
    values.update(settings)
    return BroadcastContext(test_settings(**values), store, http)


def cli_env(redis_url: str, prefix: str, gateway_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BDAPPS_", "ALAP_", "REDIS_URL", "AAMARSMS_", "DINISOFT_", "ECARE_"))}
    env.update(REDIS_URL=redis_url, ALAP_REDIS_PREFIX=prefix, BDAPPS_APP_ID=APP_ID, BDAPPS_PASSWORD=PASSWORD,
               BDAPPS_BASE_URL=gateway_url, ALAP_SMS_ROUTES="bdapps", ALAP_DEFAULT_LANGUAGE="en",
               ALAP_LOG_LEVEL="warning")
    env.update(extra)
    return env


async def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> tuple[int, str, str]:
    """`alap ...` as a real process; polled, so the fake gateway in this loop keeps answering."""
    proc = await asyncio.create_subprocess_exec(*ALAP, *args, env=env, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, out.decode(), err.decode()


async def wait_for(predicate, timeout: float = 60, interval: float = 0.05) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(interval)
