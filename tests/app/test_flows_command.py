"""`alap flows` without Redis: the current version of every flow from the folders, and a line
saying that live versions and their sessions are in Redis. (With Redis, after a rolling deploy:
tests/app/test_rolling_deploy.py.)"""
from __future__ import annotations

import json
import subprocess

from .test_scale_out import ALAP, clean_env


def test_flows_lists_current_versions_without_redis():
    table = subprocess.run([*ALAP, "flows"], capture_output=True, text=True, timeout=60, env=clean_env())
    assert table.returncode == 0, table.stderr
    rows = [line.split() for line in table.stdout.splitlines()[1:] if line and not line.startswith("(")]
    assert {row[0] for row in rows} >= {"demo", "recharge", "parcel", "sms_help"}
    assert all(len(row[1]) == 12 and row[2] == "0" and row[3] == "current" for row in rows)
    assert "REDIS_URL is not set" in table.stdout
    listing = subprocess.run([*ALAP, "flows", "--json"], capture_output=True, text=True, timeout=60, env=clean_env())
    demo = [row for row in json.loads(listing.stdout) if row["flow"] == "demo"]
    assert len(demo) == 1 and demo[0]["current"] and demo[0]["version"] in table.stdout


def test_flows_names_an_unreachable_redis_in_one_line():
    result = subprocess.run([*ALAP, "flows"], capture_output=True, text=True, timeout=60,
                            env=clean_env(REDIS_URL="redis://127.0.0.1:1/0"))
    assert result.returncode == 2 and result.stderr.startswith("alap: REDIS_URL is unreachable")
    assert "Traceback" not in result.stderr
