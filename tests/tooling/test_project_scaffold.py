"""A flow project of one's own: `alap new` scaffolds it, a new flow gets its Bengali translation
through `alap translate`, and `check`, `test`, `graph`, `dev`, a dialled `sim` session and
`serve` (credentials from the project's `.env`) all work from that folder with no environment
variables (real processes)."""
from __future__ import annotations

import subprocess
import time

import httpx
from babel.messages.pofile import read_po, write_po

from ..conftest import free_port
from tests.app.test_command_line import ALAP, env, wait_healthy

SHOP = """flow: shop
code: "*555#"
start: hello
sample:
  qty: 3
states:
  hello:
    kind: menu
    text: "Rahim's shop"
    options:
      - label: "Price of rice"
        next: ask_qty
  ask_qty:
    kind: input
    text: "How many kg?"
    var: qty
    validate: {type: integer, min: 1, max: 50}
    next: price
  price:
    kind: end
    text: "{{ qty|number }} kg: {{ qty|times('62.50')|taka }}"
"""
BENGALI = {"Rahim's shop": "রহিমের দোকান", "Price of rice": "চালের দাম", "How many kg?": "কত কেজি?",
           "{{ qty|number }} kg: {{ qty|times('62.50')|taka }}": "{{ qty|number }} কেজি: {{ qty|times('62.50')|taka }}"}
SHOP_TESTS = """dialogues:
  - name: rice in Bengali
    dial: "*555*1*3#"
    language: bn
    steps:
      - screen: "৩ কেজি: ১৮৭.৫০৳"
        final: true
"""


def alap(cwd, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*ALAP, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env())


def test_a_scaffolded_project_runs_every_command_from_its_folder(tmp_path) -> None:
    created = alap(tmp_path, "new", "myflows")
    assert created.returncode == 0, created.stderr
    root = tmp_path / "myflows"
    for path in ("flows/main.yaml", "templates/about.j2", "locales/bn/LC_MESSAGES/messages.po", "locales/messages.pot",
                 "tests/flows/main.yaml", "Procfile", ".env.example", "README.md"):
        assert (root / path).is_file(), path
    assert "alap dev" in (root / "README.md").read_text() and "alap check --strict && alap test" in (root / "README.md").read_text()
    assert alap(tmp_path, "new", "myflows").returncode == 2  # never overwrites

    (root / "flows" / "shop.yaml").write_text(SHOP, encoding="utf-8")
    translated = alap(root, "translate")
    assert translated.returncode == 0, translated.stderr
    assert "bn: 4 new, 0 fuzzy, 0 obsolete, 4 untranslated" in translated.stdout
    assert "new: 'Price of rice'" in translated.stdout
    po = root / "locales" / "bn" / "LC_MESSAGES" / "messages.po"
    with po.open("rb") as fh:
        catalog = read_po(fh, locale="bn")
    assert catalog.get("Invalid choice.") is None  # the engine's texts are not the author's
    for msgid, msgstr in BENGALI.items():
        catalog.get(msgid).string = msgstr
    with po.open("wb") as fh:
        write_po(fh, catalog)
    assert "0 new, 0 fuzzy, 0 obsolete, 0 untranslated" in alap(root, "translate").stdout

    checked = alap(root, "check", "--strict")
    assert checked.returncode == 0, checked.stdout + checked.stderr
    (root / "tests" / "flows" / "shop.yaml").write_text(SHOP_TESTS, encoding="utf-8")
    tested = alap(root, "test")
    assert tested.returncode == 0 and "4 passed, 0 failed" in tested.stdout, tested.stdout + tested.stderr
    assert "flowchart TD" in alap(root, "graph", "shop").stdout

    port = free_port()
    proc = subprocess.Popen([*ALAP, "dev", "--port", str(port)], cwd=root, env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(port, proc)
        home = httpx.get(url + "/", follow_redirects=False, timeout=10)
        assert home.status_code == 302 and home.headers["Location"] == "/simulator"
        dialled = alap(root, "sim", "--url", url, "--code", "*555#", "--script", "1,3")
        assert dialled.returncode == 0, dialled.stdout + dialled.stderr
        assert "রহিমের দোকান" in dialled.stdout and "৩ কেজি: ১৮৭.৫০৳" in dialled.stdout
        main = alap(root, "sim", "--url", url, "--script", "")
        assert "স্বাগতম!" in main.stdout  # the scaffold's own flow, *213#
    finally:
        proc.terminate()
        proc.communicate(timeout=20)

    # `alap serve` takes what it needs from the project's .env (made from .env.example).
    port = free_port()
    dotenv = (root / ".env.example").read_text().replace("BDAPPS_APP_ID=\n", "BDAPPS_APP_ID=APP_000001\n")
    dotenv = dotenv.replace("BDAPPS_PASSWORD=\n", "BDAPPS_PASSWORD=secret\n")
    (root / ".env").write_text(dotenv + f"PORT={port}\n")
    proc = subprocess.Popen([*ALAP, "serve"], cwd=root, env=env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        wait_healthy(port, proc)
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def test_every_option_has_help() -> None:
    from server.cli import build_parser

    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    missing = [f"{name} {option.dest}" for name, command in commands.items() for option in command._actions
               if option.dest != "help" and not option.help]
    assert set(commands) >= {"dev", "serve", "check", "test", "graph", "sim", "new", "translate"}
    assert missing == []
    assert all(command.description for command in commands.values())
