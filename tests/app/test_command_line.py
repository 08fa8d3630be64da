"""The command line as users run it: real processes, real signals."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from server.integrations.base import default_ssl_context  # shared: httpx's default loads the CA bundle per call
from tests.conftest import free_port

ALAP = [sys.executable, "-m", "server"]


def env(**extra: str) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("BDAPPS_", "ALAP_", "REDIS_URL", "PORT", "WEB_CONCURRENCY", "PROMETHEUS_"))}
    clean.update(extra)
    return clean


def run(*args: str, timeout: float = 30, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ALAP, *args], capture_output=True, text=True, timeout=timeout, env=env(**extra))


class Output:
    """A process's stdout read as it comes, so a test waits for a line instead of sleeping a fixed
    time (quick on an idle machine, patient on a loaded one)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._reader = threading.Thread(target=lambda: self.lines.extend(iter(proc.stdout.readline, "")),
                                        daemon=True)
        self._reader.start()

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            assert time.monotonic() < deadline, f"never printed {needle!r}:\n{self.text[-3000:]}"
            time.sleep(0.05)

    def finish(self, timeout: float = 15) -> str:
        """All of it, once the process has exited."""
        self._reader.join(timeout)
        return self.text


def broken_flows(tmp_path: Path) -> Path:
    (tmp_path / "a.yaml").write_text("flow: a\nstart: s\nstates:\n  s:\n    kind: end\n    text: ok\n    colour: red\n")
    (tmp_path / "b.yaml").write_text("flow: b\nstart: m\nstates:\n  m:\n    kind: menu\n    text: hi\n"
                                     "    options:\n      - label: x\n        next: nowhere\n")
    return tmp_path


def test_serve_refuses_invalid_flows_and_prints_every_error(tmp_path):
    flows = broken_flows(tmp_path)
    result = run("serve", BDAPPS_APP_ID="APP_1", BDAPPS_PASSWORD="pw", ALAP_FLOWS_DIR=str(flows), PORT=str(free_port()))
    assert result.returncode == 2
    assert f"{flows}/a.yaml:7:5: state 's': unknown field 'colour' for an end state" in result.stderr
    assert f"{flows}/b.yaml:9:15: unknown target state 'nowhere'" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_check_exits_non_zero_on_errors_and_zero_when_clean(tmp_path):
    result = run("check", ALAP_FLOWS_DIR=str(broken_flows(tmp_path)))
    assert result.returncode == 1 and result.stdout.count(": ") >= 2
    assert run("check").returncode == 0


@pytest.mark.parametrize("extra, line", [
    ({}, "alap: BDAPPS_APP_ID is required by `alap serve` (the BDApps application credentials)"),
    ({"BDAPPS_APP_ID": "A", "BDAPPS_PASSWORD": "p", "PORT": "eighty"},
     "alap: PORT: Input should be a valid integer, unable to parse string as an integer (got 'eighty')"),
    ({"BDAPPS_APP_ID": "A", "BDAPPS_PASSWORD": "p", "ALAP_SESSION_TTL": "-5"},
     "alap: ALAP_SESSION_TTL: Input should be greater than or equal to 10 (got '-5')"),
    ({"BDAPPS_APP_ID": "A", "BDAPPS_PASSWORD": "p", "REDIS_URL": "localhost:6379"},
     "alap: REDIS_URL: Value error, must start with redis://, rediss://, unix:// or redis+cluster:// (got 'localhost:6379')"),
])
def test_bad_configuration_is_one_line_naming_the_variable(extra, line):
    result = run("serve", **extra)
    assert result.returncode == 2
    assert result.stderr.strip() == line and result.stdout == ""


def wait_healthy(port: int, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60  # `alap dev` runs `alap check` before it serves
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5, verify=default_ssl_context())
            if health.status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise AssertionError("server did not become healthy")


def test_dev_and_sim_walk_the_demo_in_both_languages():
    port = free_port()
    proc = subprocess.Popen([*ALAP, "dev", "--port", str(port)], env=env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_healthy(port, proc)
        url = f"http://127.0.0.1:{port}"
        bn = run("sim", "--url", url, "--script", "2,1250,4")
        assert bn.returncode == 0, bn.stderr
        assert "আলাপে স্বাগতম" in bn.stdout and "১,২৫০.০০৳, ৪ জনে ভাগ: প্রত্যেকে ৩১২.৫০৳।" in bn.stdout
        switch = run("sim", "--url", url, "--script", "7,1")
        assert "Welcome to Alap" in switch.stdout
        en = run("sim", "--url", url, "--code", "*213*2*1250*4#")
        assert "Tk 1,250.00 shared by 4: Tk 312.50 each." in en.stdout and "encoding 440, end" in en.stdout
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=15)
    assert proc.returncode == 0, out
    assert "Traceback" not in out


def test_sim_without_a_server_says_so():
    result = run("sim", "--url", f"http://127.0.0.1:{free_port()}", "--script", "1")
    assert result.returncode == 1 and "start `alap dev` first" in result.stderr


def test_sim_sms_and_push_against_dev():
    port = free_port()
    proc = subprocess.Popen([*ALAP, "dev", "--port", str(port)], env=env(ALAP_ADMIN_TOKEN="tok-123456"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_healthy(port, proc)
        url = f"http://127.0.0.1:{port}"
        sms = run("sim", "--url", url, "--sms", "LANG EN")
        assert sms.returncode == 0 and "< Your language is now English." in sms.stdout
        pushed = run("push", "--url", url, "--address", "tel:8801812345678", "--flow", "parcel_notice",
                     "--var", "parcel_id=ECR1022001175478", "--var", "agent_phone=01712345678",
                     ALAP_ADMIN_TOKEN="tok-123456")
        assert pushed.returncode == 0 and "sessionId" in pushed.stdout
        refused = run("push", "--url", url, "--address", "tel:8801812345678", "--flow", "parcel_notice",
                      "--token", "wrong")
        assert refused.returncode == 1 and "HTTP 401" in refused.stderr
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=15)
    assert "SMS to tel:**********678: Your language is now English." in out


def test_dev_runs_a_recharge_end_to_end_with_its_in_process_worker():
    port = free_port()
    proc = subprocess.Popen([*ALAP, "dev", "--port", str(port)],
                            env=env(ALAP_RECHARGE_POLL_DELAY="0.2", ALAP_RECHARGE_RETRY_DELAY="0.2"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = Output(proc)
    try:
        wait_healthy(port, proc)
        url = f"http://127.0.0.1:{port}"
        switch = run("sim", "--url", url, "--sms", "LANG EN")
        assert switch.returncode == 0
        done = run("sim", "--url", url, "--code", "*217*2*01712345678*1*1*50*1#")
        assert "Your recharge request is being processed. You will get an SMS." in done.stdout
        output.wait_for("Recharge of")  # the in-process worker's first receipt
    finally:
        proc.terminate()
        proc.wait(15)
    out = output.finish()
    receipts = [line for line in out.splitlines() if "SMS to" in line and "Recharge of" in line]
    assert receipts and "successful" in receipts[0], out[-3000:]
