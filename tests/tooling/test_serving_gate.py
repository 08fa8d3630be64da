"""`alap check` errors block serving: `alap serve` refuses to start on a flow that loads but fails
the check (here a text with no Bengali translation), with the problem at its line."""
from __future__ import annotations

import shutil
import subprocess

from server.config import REPO_ROOT

from ..conftest import free_port
from tests.app.test_command_line import ALAP, env


def test_serve_refuses_to_start_on_a_check_error(tmp_path) -> None:
    flows = tmp_path / "flows"
    shutil.copytree(REPO_ROOT / "flows", flows)
    demo = flows / "demo.yaml"
    demo.write_text(demo.read_text(encoding="utf-8").replace('text: "Choose your language"',
                                                             'text: "Pick a language"'), encoding="utf-8")
    line = next(i for i, text in enumerate(demo.read_text(encoding="utf-8").splitlines(), 1) if "Pick a language" in text)
    result = subprocess.run([*ALAP, "serve"], capture_output=True, text=True, timeout=120,
                            env=env(ALAP_FLOWS_DIR=str(flows), BDAPPS_APP_ID="APP_1", BDAPPS_PASSWORD="pw",
                                    PORT=str(free_port())))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"demo.yaml:{line}:11: msgid 'Pick a language' (screen 'language') is missing in " in result.stderr
    assert result.stderr.strip().splitlines()[-1].endswith("problem(s) in flows or catalogs; not starting")
