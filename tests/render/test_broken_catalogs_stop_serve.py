"""A bad catalog stops `alap serve` (real processes): an unreadable .po file, or a msgid a flow
shows that the Bengali catalog lacks, is printed as `file:line:col: message` and nothing starts,
so a Bengali subscriber never silently gets English."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from server.config import REPO_ROOT

from ..conftest import free_port

ALAP = [sys.executable, "-m", "server"]


def serve(locales: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BDAPPS_", "ALAP_", "REDIS_URL", "PORT", "WEB_CONCURRENCY", "PROMETHEUS_"))}
    env.update(BDAPPS_APP_ID="APP_CATALOGS", BDAPPS_PASSWORD="pw", PORT=str(free_port()), ALAP_LOCALES_DIR=str(locales))
    # A server that wrongly starts is stopped by the timeout: the test then fails on it.
    return subprocess.run([*ALAP, "serve"], capture_output=True, text=True, timeout=60, env=env)


def copy_locales(tmp_path: Path) -> Path:
    locales = tmp_path / "locales"
    shutil.copytree(REPO_ROOT / "locales", locales)
    return locales


def bn_po(locales: Path) -> Path:
    return locales / "bn" / "LC_MESSAGES" / "messages.po"


def assert_refused(result: subprocess.CompletedProcess) -> list[str]:
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "serving on" not in result.stdout
    lines = result.stderr.strip().splitlines()
    assert lines[-1].endswith("problem(s) in flows or catalogs; not starting")
    return lines[:-1]


def test_an_unparseable_catalog_stops_serve_at_its_line(tmp_path):
    locales = copy_locales(tmp_path)
    po = bn_po(locales)
    lines = po.read_text(encoding="utf-8").splitlines()
    lines.insert(25, "this is not a po line")
    po.write_text("\n".join(lines) + "\n", encoding="utf-8")
    problems = assert_refused(serve(locales))
    assert problems == [f"{po}:26:1: catalog cannot be read: Unknown or misformatted keyword"]


def test_a_catalog_that_is_not_utf8_stops_serve(tmp_path):
    locales = copy_locales(tmp_path)
    po = bn_po(locales)
    po.write_bytes(b"\xff\xfe" + po.read_bytes())
    problems = assert_refused(serve(locales))
    assert len(problems) == 1 and problems[0].startswith(f"{po}:1:1: catalog cannot be read: ")


def test_a_missing_catalog_stops_serve(tmp_path):
    locales = copy_locales(tmp_path)
    shutil.rmtree(locales / "bn")
    assert assert_refused(serve(locales)) == [f"{bn_po(locales)}:1:1: catalog not found"]


def test_a_msgid_missing_in_bengali_stops_serve_at_every_place_it_is_shown(tmp_path):
    locales = copy_locales(tmp_path)
    po = bn_po(locales)
    text = po.read_text(encoding="utf-8")
    entry = 'msgid "Welcome to Alap"\nmsgstr "আলাপে স্বাগতম"\n'
    assert entry in text
    po.write_text(text.replace(entry, ""), encoding="utf-8")
    problems = assert_refused(serve(locales))
    demo = REPO_ROOT / "flows" / "demo.yaml"
    assert any(p.startswith(f"{os.path.relpath(demo)}:17:") or p.startswith(f"{demo}:17:") for p in problems), problems
    assert all("'Welcome to Alap'" in p and f"is missing in {po}" in p for p in problems)


def test_an_untranslated_msgid_stops_serve(tmp_path):
    locales = copy_locales(tmp_path)
    po = bn_po(locales)
    text = po.read_text(encoding="utf-8")
    po.write_text(text.replace('msgid "Welcome to Alap"\nmsgstr "আলাপে স্বাগতম"\n',
                               'msgid "Welcome to Alap"\nmsgstr ""\n'), encoding="utf-8")
    problems = assert_refused(serve(locales))
    assert problems and all("'Welcome to Alap'" in p and "has no translation" in p for p in problems)
