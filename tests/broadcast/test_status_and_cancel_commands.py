"""`alap broadcast status` and `alap broadcast cancel` as real processes: a scheduled broadcast
listed with its time, cancelled before it starts, and re-running it sends nothing."""
from __future__ import annotations

import time
import uuid

from .helpers import cli_env, run_cli, sms_requests, start_gateway, write_numbers
from .test_crash_resume import _cleanup
from .test_scheduled_by_worker import dhaka


async def test_a_scheduled_broadcast_is_listed_then_cancelled(aiohttp_server, redis_url, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    write_numbers(tmp_path / "to.txt", 5)
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    env = cli_env(redis_url, prefix, url)
    try:
        code, out, _ = await run_cli("broadcast", "status", env=env)
        assert code == 0 and out.strip() == "no broadcasts"
        at = time.time() + 3600
        args = ["broadcast", "sms", "promo", "--text", "Promo", "--to", str(tmp_path / "to.txt"), "--at", dhaka(at)]
        code, _, err = await run_cli(*args, env=env)
        assert code == 0 and "promo: scheduled for" in err, err
        code, out, _ = await run_cli("broadcast", "status", env=env)
        assert f"promo (sms, route auto): scheduled until {dhaka(at)[:16]} Asia/Dhaka" in out
        assert "total 5  queued 5  sent 0" in out
        code, out, _ = await run_cli("broadcast", "cancel", "promo", env=env)
        assert code == 0 and out.startswith("promo: cancelled")
        code, out, _ = await run_cli("broadcast", "cancel", "promo", env=env)
        assert code == 0 and out.strip() == "promo: already cancelled"
        code, _, err = await run_cli(*args, env=env)
        assert code == 0 and "promo: already cancelled" in err
        code, _, err = await run_cli("broadcast", "cancel", "nope", env=env)
        assert code == 1 and err.strip() == "alap: no broadcast named 'nope'"
        code, _, err = await run_cli("broadcast", "sms", "promo", "--text", "Other text", "--to",
                                     str(tmp_path / "to.txt"), env=env)
        assert code == 2 and "broadcast 'promo' already exists with another FILE, text, flow or route" in err
        assert sms_requests(gateway) == []
    finally:
        await _cleanup(redis_url, prefix)


async def test_bad_arguments_get_one_line(aiohttp_server, redis_url, tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    env = cli_env(redis_url, "alap-test-none:", url)
    code, _, err = await run_cli("broadcast", "sms", "x", "--text", "hi", "--to", str(tmp_path / "missing.txt"), env=env)
    assert (code, err.strip()) == (2, f"alap: {tmp_path / 'missing.txt'}: no such file")
    write_numbers(tmp_path / "to.txt", 1)
    code, _, err = await run_cli("broadcast", "sms", "x", "--text", "hi", "--to", str(tmp_path / "to.txt"),
                                 "--at", "tomorrow", env=env)
    assert (code, err.strip()) == (2, "alap: --at takes \"YYYY-MM-DD HH:MM\" (Asia/Dhaka time), got 'tomorrow'")
    code, _, err = await run_cli("broadcast", "sms", "x", "--text", "hi", "--to", str(tmp_path / "to.txt"),
                                 "--at", "2020-01-01 10:00", env=env)
    assert (code, err.strip()) == (2, "alap: --at '2020-01-01 10:00' (Asia/Dhaka) is in the past")
    code, _, err = await run_cli("broadcast", "sms", "x", "--text", "{{ oops", "--to", str(tmp_path / "to.txt"),
                                 env=env)
    assert code == 2 and err.startswith("alap: --text: line 1:")
    no_redis = {k: v for k, v in env.items() if k != "REDIS_URL"}
    code, _, err = await run_cli("broadcast", "sms", "x", "--text", "hi", "--to", str(tmp_path / "to.txt"),
                                 env=no_redis)
    assert code == 2 and err.startswith("alap: REDIS_URL is required by `alap broadcast`")
    assert "Traceback" not in err and sms_requests(gateway) == []
