"""The recipients FILE: every accepted spelling, bad lines reported with their line numbers and
skipped (never guessed), CSV rows as template variables; and the same through the command line
against the sandbox gateway."""
from __future__ import annotations

import uuid

from server.broadcast.recipients import BadLine, Recipient, read_recipients
from server.sandbox.bdapps import sent_sms

from .helpers import cli_env, received, run_cli, start_gateway
from .test_crash_resume import _cleanup


def test_numbers_in_every_accepted_spelling_and_bad_lines_by_number(tmp_path):
    path = tmp_path / "to.txt"
    path.write_text("01812345678\n8801612345678\ntel:8801712345678\n\n# a comment\n+880 1912-345678\n"
                    "০১৫১২৩৪৫৬৭৮\n0171234\ntel:B%3C4pbgsm\n01212345678\n", encoding="utf-8")
    items = list(read_recipients(path))
    good = [(i.line, i.address) for i in items if isinstance(i, Recipient)]
    bad = [(i.line, i.text) for i in items if isinstance(i, BadLine)]
    assert good == [(1, "tel:8801812345678"), (2, "tel:8801612345678"), (3, "tel:8801712345678"),
                    (6, "tel:8801912345678"), (7, "tel:8801512345678")]
    assert bad == [(8, "0171234"), (9, "tel:B%3C4pbgsm"), (10, "01212345678")]


def test_a_csv_with_a_header_gives_each_row_its_columns(tmp_path):
    path = tmp_path / "bills.csv"
    path.write_text("name,phone,amount\nRahim,01812345678,1250\nKarim,not-a-number,300\nOnly,two\n"
                    "Salma,8801712345678,99\n", encoding="utf-8")
    items = list(read_recipients(path))
    assert [(i.line, i.address, i.columns["name"]) for i in items if isinstance(i, Recipient)] == [
        (2, "tel:8801812345678", "Rahim"), (5, "tel:8801712345678", "Salma")]
    assert [(i.line, i.reason) for i in items if isinstance(i, BadLine)] == [
        (3, "column 'phone' is not a Bangladeshi mobile number"), (4, "2 columns, the header has 3")]


async def test_the_command_reports_bad_lines_with_their_numbers_and_sends_the_rest(aiohttp_server, redis_url,
                                                                                    tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    path = tmp_path / "to.txt"
    path.write_text("01812345678\n01812\nhello\n01812345679\n", encoding="utf-8")
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    env = cli_env(redis_url, prefix, url)
    try:
        code, _, err = await run_cli("broadcast", "sms", "b1", "--text", "Hi", "--to", str(path), env=env)
        assert code == 0, err
        assert f"{path}:2: not a Bangladeshi mobile number: '01812' (skipped)" in err
        assert f"{path}:3: not a Bangladeshi mobile number: 'hello' (skipped)" in err
        assert "b1: created, 2 recipients, 2 bad lines skipped" in err
        assert received(gateway) == {"tel:8801812345678": 1, "tel:8801812345679": 1}
        code, out, _ = await run_cli("broadcast", "status", "b1", "--bad-lines", env=env)
        assert "bad lines 2" in out and "line 2: not a Bangladeshi mobile number: '01812'" in out
    finally:
        await _cleanup(redis_url, prefix)


async def test_a_csv_template_is_rendered_per_row_and_a_missing_column_is_refused(aiohttp_server, redis_url,
                                                                                   tmp_path):
    gateway, url = await start_gateway(aiohttp_server)
    path = tmp_path / "bills.csv"
    path.write_text("number,name,amount\n01812345678,Rahim,1250\n01612345678,Karim,300\n", encoding="utf-8")
    prefix = f"alap-test-{uuid.uuid4().hex[:8]}:"
    env = cli_env(redis_url, prefix, url)
    try:
        code, _, err = await run_cli("broadcast", "sms", "bill", "--text", "{{ nme }}, pay {{ amount }}",
                                     "--to", str(path), env=env)
        assert code == 2 and err.strip() == ("alap: --text: 'nme' is undefined (the CSV's columns are the "
                                             "template's variables)")
        code, _, err = await run_cli("broadcast", "sms", "bill", "--text", "{{ name }}, your bill is {{ amount|taka }}",
                                     "--to", str(path), "--lang", "en", env=env)
        assert code == 0, err
        texts = {sms["to"]: sms["message"] for sms in sent_sms(gateway)}
        assert texts == {"tel:8801812345678": "Rahim, your bill is Tk 1,250.00",
                         "tel:8801612345678": "Karim, your bill is Tk 300.00"}
    finally:
        await _cleanup(redis_url, prefix)
