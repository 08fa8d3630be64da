"""Hot reload in `alap dev`: a good edit takes effect on the next session without a restart;
a bad edit (a loader error, or an `alap check` error such as a text with no Bengali
translation) keeps the last good version and prints the errors."""
from __future__ import annotations

import shutil
import subprocess
import time

from server.config import REPO_ROOT

from tests.app.test_command_line import ALAP, Output, env, run, wait_healthy
from tests.conftest import free_port


def _retitle(path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")


def test_dev_reloads_good_edits_and_keeps_the_last_good_version(tmp_path):
    flows, locales = tmp_path / "flows", tmp_path / "locales"
    shutil.copytree(REPO_ROOT / "flows", flows)
    shutil.copytree(REPO_ROOT / "locales", locales)
    port = free_port()
    proc = subprocess.Popen([*ALAP, "dev", "--port", str(port)],
                            env=env(ALAP_FLOWS_DIR=str(flows), ALAP_LOCALES_DIR=str(locales)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    demo = flows / "demo.yaml"
    output = Output(proc)
    try:
        wait_healthy(port, proc)
        assert "Welcome to Alap" in run("sim", "--url", url, "--script", "7,1").stdout
        # A good edit: the text and its msgid in both catalogs (the Bengali translation kept).
        for catalog in (locales / "bn" / "LC_MESSAGES" / "messages.po", locales / "en" / "LC_MESSAGES" / "messages.po"):
            _retitle(catalog, 'msgid "Welcome to Alap"', 'msgid "Welcome back to Alap"')
        _retitle(demo, '"Welcome to Alap"', '"Welcome back to Alap"')
        deadline = time.monotonic() + 30
        while "Welcome back to Alap" not in run("sim", "--url", url, "--script", "").stdout:
            assert time.monotonic() < deadline, "the edit never took effect"
            time.sleep(0.3)
        # A loader error, then an `alap check` error: both keep the last good version.
        _retitle(demo, "next: ask_total", "next: no_such_state")
        output.wait_for("unknown target state 'no_such_state'", timeout=30)
        _retitle(demo, "next: no_such_state", "next: ask_total")
        _retitle(demo, '"Welcome back to Alap"', '"Welcome, untranslated"')
        output.wait_for("msgid 'Welcome, untranslated' (screen 'main') is missing", timeout=30)
        still = run("sim", "--url", url, "--script", "2")
        assert "Welcome back to Alap" in still.stdout and "Enter the bill amount" in still.stdout
    finally:
        proc.terminate()
        proc.wait(15)
    out = output.finish()
    assert "alap dev: reloaded" in out
    assert out.count("reload failed, keeping the last good flows") >= 2
