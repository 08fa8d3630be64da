"""Debian's Chromium for browser tests, driven by Playwright (never Playwright's own browser
download, which cannot work on a machine without internet)."""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
# Headless as root on a machine with a closed network: no sandbox, no GPU, and none of the
# background connections Chromium would otherwise try (and have refused) at every start.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def _apt_install() -> str:
    """Try once to install Debian's chromium; return why it failed ('' on success)."""
    if shutil.which("apt-get") is None:
        return "apt-get not available"
    if os.geteuid() != 0:
        return "not root, cannot apt-get install chromium"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    try:
        result = subprocess.run(install, capture_output=True, text=True, timeout=900, env=env)
        if result.returncode != 0:  # package lists may be empty on a fresh machine
            subprocess.run(["apt-get", "update", "-q"], capture_output=True, text=True, timeout=600, env=env)
            result = subprocess.run(install, capture_output=True, text=True, timeout=900, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"apt-get install chromium failed: {exc}"
    if result.returncode != 0:
        last = (result.stderr.strip() or result.stdout.strip()).splitlines()[-1:] or ["?"]
        return f"apt-get install chromium failed: {last[0]}"
    return ""


@functools.cache
def _find_chromium() -> tuple[str | None, str]:
    if Path(CHROMIUM).exists():
        return CHROMIUM, ""
    why = _apt_install()
    if Path(CHROMIUM).exists():
        return CHROMIUM, ""
    return None, why or f"{CHROMIUM} still missing after apt-get install"


def chromium_or_skip() -> str:
    """The path of Debian's Chromium, installing it once if missing; skips the test (one line)
    only when it cannot be had."""
    path, why = _find_chromium()
    if path is None:
        pytest.skip(f"no Chromium at {CHROMIUM} ({why})")
    return path


def bengali_web_font_loaded(page) -> bool:
    """The shipped Noto Sans Bengali (server/fonts/) was fetched from /fonts/ and is in use."""
    return page.evaluate("""async () => {
        await document.fonts.load('16px "Noto Sans Bengali"', 'আলাপ');
        return [...document.fonts].some(f => f.family.replace(/"/g, '') === 'Noto Sans Bengali'
                                             && f.status === 'loaded');
    }""")
