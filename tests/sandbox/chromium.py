"""Debian's Chromium for browser tests, driven by Playwright (never Playwright's own browser
download, which cannot work on a machine without internet). Nothing is installed here: a missing
browser skips (fails under CI), see tests/optional_tools.py."""
from __future__ import annotations

from tests.optional_tools import require

CHROMIUM = "/usr/bin/chromium"
# Headless as root on a machine with a closed network: no sandbox, no GPU, and none of the
# background connections Chromium would otherwise try (and have refused) at every start.
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


def chromium_or_skip() -> str:
    """The path of Debian's Chromium; skips the test with one line (fails under CI) without it."""
    return require(CHROMIUM, "chromium", "the web simulator's browser test")


def bengali_web_font_loaded(page) -> bool:
    """The shipped Noto Sans Bengali (server/fonts/) was fetched from /fonts/ and is in use."""
    return page.evaluate("""async () => {
        await document.fonts.load('16px "Noto Sans Bengali"', 'আলাপ');
        return [...document.fonts].some(f => f.family.replace(/"/g, '') === 'Noto Sans Bengali'
                                             && f.status === 'loaded');
    }""")
