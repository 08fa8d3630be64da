"""Hot reload in `alap dev`: a good edit takes effect on the next session without a restart;
a bad edit keeps the last good version and prints the errors."""
from __future__ import annotations

import shutil
import subprocess
import time

from server.config import REPO_ROOT

from tests.app.test_command_line import ALAP, Output, env, run, wait_healthy
from tests.conftest import free_port


def test_dev_reloads_good_edits_and_keeps_the_last_good_version(tmp_path):
    flows = tmp_path / "flows"
    shutil.copytree(REPO_ROOT / "flows", flows)
    port = free_port()
    proc = subprocess.Popen([*ALAP, "dev", "--port", str(port)], env=env(ALAP_FLOWS_DIR=str(flows)),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    output = Output(proc)
    try:
        wait_healthy(port, proc)
        assert "Welcome to Alap" in run("sim", "--url", url, "--script", "7,1").stdout
        demo = flows / "demo.yaml"
        demo.write_text(demo.read_text().replace('"Welcome to Alap"', '"Welcome back to Alap"'))
        deadline = time.monotonic() + 10
        while "Welcome back to Alap" not in run("sim", "--url", url, "--script", "").stdout:
            assert time.monotonic() < deadline, "the edit never took effect"
            time.sleep(0.3)
        demo.write_text(demo.read_text().replace("next: ask_total", "next: no_such_state"))
        output.wait_for("reload failed, keeping the last good flows")
        still = run("sim", "--url", url, "--script", "2")
        assert "Welcome back to Alap" in still.stdout and "Enter the bill amount" in still.stdout
    finally:
        proc.terminate()
        proc.wait(15)
    out = output.finish()
    assert "alap dev: reloaded" in out
    assert "reload failed, keeping the last good flows" in out and "unknown target state 'no_such_state'" in out
