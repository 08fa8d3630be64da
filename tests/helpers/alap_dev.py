"""`alap dev` as a real process for the browser tests: started on a port, waited for until
/healthz answers, stopped with SIGTERM (killed if it hangs). Its output goes to `log`."""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import httpx

from server.integrations.base import default_ssl_context  # shared: httpx's default loads the CA bundle per call


@contextmanager
def alap_dev(port: int, env: dict[str, str], log: Path, *, ready_within: float = 30) -> Iterator[subprocess.Popen]:
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "server", "dev", "--port", str(port)], env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + ready_within
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=0.5, verify=default_ssl_context())
                if health.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "alap dev did not become healthy:\n" + log.read_text()
            time.sleep(0.1)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
