"""Every conversation test file in tests/flows/ (YAML dialogues against the real engine and the
shipped flows, templates and catalogs), one pytest item per dialogue. The same files run with
`alap test`; the format is described in server/tooling/convtest.py and docs/flows.md."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest

from server.tooling.convtest import ConvTestError, Dialogue, Runner, load_dialogues

from tests.conftest import test_settings as settings_for

FLOW_TESTS = Path(__file__).parents[1] / "flows"


def _cases() -> list:
    cases = []
    for path in sorted(FLOW_TESTS.glob("*.yaml")):
        try:
            dialogues = load_dialogues(path)
        except ConvTestError as exc:  # one failing item that shows every problem of the file
            cases.append(pytest.param(exc, id=f"{path.name} (unreadable)"))
            continue
        cases += [pytest.param(d, id=d.id) for d in dialogues]
    return cases


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    made = Runner(settings_for())
    yield made
    asyncio.run(made.aclose())  # nothing to close unless an uncanned upstream action ran


def test_every_shipped_flow_has_conversation_tests() -> None:
    shipped = {p.stem for p in (Path(__file__).parents[2] / "flows").glob("*.yaml")}
    tested = {p.stem for p in FLOW_TESTS.glob("*.yaml")}
    assert shipped <= tested, f"flows without a tests/flows/<flow>.yaml: {sorted(shipped - tested)}"


@pytest.mark.parametrize("dialogue", _cases())
async def test_dialogue(runner: Runner, dialogue: Dialogue | ConvTestError) -> None:
    if isinstance(dialogue, ConvTestError):
        pytest.fail(str(dialogue), pytrace=False)
    result = await runner.run(dialogue)
    if not result.ok:
        pytest.fail(result.failure or "", pytrace=False)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALAP_")}
    return subprocess.run([sys.executable, "-m", "server", "test", *args], capture_output=True, text=True,
                          env=env, timeout=120, cwd=Path(__file__).parents[2])


def test_cli_exit_status_and_failure_report(tmp_path) -> None:
    assert run_cli("-k", "split a bill").returncode == 0
    failing = tmp_path / "failing.yaml"
    failing.write_text('dialogues:\n  - name: wrong\n    dial: "*213#"\n    language: en\n    steps:\n'
                       '      - send: "2"\n        screen: "Something else"\n', encoding="utf-8")
    result = run_cli(str(failing))
    assert result.returncode == 1
    assert f"{failing}:6: wrong: step 1 (send '2'): expected the screen to be exactly:" in result.stdout
    assert "    | Enter the bill amount in taka:" in result.stdout and "0 passed, 1 failed" in result.stdout
    failing.write_text("dialogues:\n  - name: bad\n    dial: '*213#'\n    steps:\n      - sned: '1'\n",
                       encoding="utf-8")
    broken = run_cli(str(failing))
    assert broken.returncode == 2 and f"{failing}:5:9: unknown step field 'sned'" in broken.stdout
