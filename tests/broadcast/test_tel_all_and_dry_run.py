"""`tel:all` (one request to the application's whole subscribed base, BDApps only) and
`--dry-run` (counts, encoding, parts per route; nothing sent, nothing stored), as real
`alap broadcast` processes against the sandbox gateway."""
from __future__ import annotations

import uuid

import redis.asyncio as aioredis

from .helpers import cli_env, run_cli, sms_requests, start_gateway
from .test_crash_resume import _cleanup


async def test_tel_all_goes_to_bdapps_in_one_request(aiohttp_server, redis_url):
    gateway, url = await start_gateway(aiohttp_server)
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    env = cli_env(redis_url, prefix, url, ALAP_SMS_ROUTES="bdapps,aamarsms")
    try:
        code, _, err = await run_cli("broadcast", "sms", "all-1", "--text", "নতুন অফার: ৫০ টাকায় ১ জিবি",
                                     "--to", "tel:all", env=env)
        assert code == 0, err
        [request] = sms_requests(gateway)
        assert request["destinationAddresses"] == ["tel:all"] and request["encoding"] == "16"
        assert request["deliveryStatusRequest"] == "1"
        code, out, _ = await run_cli("broadcast", "status", "all-1", env=env)
        assert "all-1 (sms, route bdapps): done" in out and "sent 1" in out
        # Again: already done, nothing more is sent.
        code, _, err = await run_cli("broadcast", "sms", "all-1", "--text", "নতুন অফার: ৫০ টাকায় ১ জিবি",
                                     "--to", "tel:all", env=env)
        assert code == 0 and "already done" in err and len(sms_requests(gateway)) == 1
    finally:
        await _cleanup(redis_url, prefix)


async def test_tel_all_is_refused_on_other_routes_and_for_ussd(aiohttp_server, redis_url):
    gateway, url = await start_gateway(aiohttp_server)
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    env = cli_env(redis_url, prefix, url)
    try:
        code, _, err = await run_cli("broadcast", "sms", "x", "--text", "hi", "--to", "tel:all", "--route", "dinisoft",
                                     env=env)
        assert code == 2 and err.strip() == ("alap: tel:all reaches BDApps' subscribed base: only the bdapps route "
                                             "can send it, not dinisoft")
        code, _, err = await run_cli("broadcast", "ussd", "x", "--flow", "parcel_notice", "--to", "tel:all", env=env)
        assert code == 2 and "tel:all is for SMS only" in err
        assert sms_requests(gateway) == []
        client = aioredis.from_url(redis_url)
        assert [k async for k in client.scan_iter(match=f"{prefix}*")] == []  # nothing stored
        await client.aclose()
    finally:
        await _cleanup(redis_url, prefix)


async def test_dry_run_counts_encoding_and_parts_per_route_and_sends_nothing(aiohttp_server, redis_url, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    path = tmp_path / "mixed.txt"
    # 3 Robi (BDApps serves them), 2 Grameenphone (a gateway first, server/messaging/policy.py), 1 bad.
    path.write_text("01812345671\n01812345672\n01812345673\n01712345671\n01312345672\n12345\n", encoding="utf-8")
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    env = cli_env(redis_url, prefix, url, ALAP_SMS_ROUTES="bdapps,aamarsms", AAMARSMS_USER="u",
                  AAMARSMS_PASSWORD="p", AAMARSMS_BASE_URL=url)
    text = "আপনার পার্সেল আজ পৌঁছাবে। " * 4  # 100 Bengali characters: 2 parts of 67
    try:
        code, out, err = await run_cli("broadcast", "sms", "dry", "--text", text, "--to", str(path), "--dry-run",
                                       env=env)
        assert code == 0, err
        assert out.splitlines() == [
            "recipients: 5 (1 bad lines skipped)",
            "encoding: UCS-2 Bengali (encoding 16) x 5",
            "parts per message: 2 x 5",
            "route aamarsms: 2 recipients, 4 SMS parts",
            "route bdapps: 3 recipients, 6 SMS parts",
            "nothing was sent (dry run)",
        ]
        assert f"{path}:6: not a Bangladeshi mobile number" in err
        code, out, _ = await run_cli("broadcast", "sms", "dry", "--text", "Hello", "--to", str(path), "--dry-run",
                                     "--route", "bdapps", env=env)
        assert "encoding: GSM-7 (encoding 0) x 5" in out and "route bdapps: 5 recipients, 5 SMS parts" in out
        assert sms_requests(gateway) == []
        client = aioredis.from_url(redis_url)
        assert [k async for k in client.scan_iter(match=f"{prefix}*")] == []
        await client.aclose()
    finally:
        await _cleanup(redis_url, prefix)
