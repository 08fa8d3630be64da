"""`alap check`: loader problems, screen budgets, catalogs and Jinja names, on the shipped flows
and on broken copies of them."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from server.actions import build_registry
from server.config import REPO_ROOT
from server.engine.engine import Engine, Subscriber
from server.engine.loader import load_flow_dir
from server.render.budget import Budget
from server.render.environment import Renderer
from server.tooling.check import Finding, Screen, budget_problems, format_json, render_screen, run_check
from server.upstreams import Upstreams

from tests.conftest import test_settings as settings_for

MORE, BACK = "98. More", "0. Back"


def check(flows_dir: Path | None = None, **settings) -> list[Finding]:
    values = settings_for(**({"flows_dir": flows_dir} if flows_dir else {}), **settings)
    return run_check(values, build_registry(Upstreams.from_settings(values)))


def errors(findings: list[Finding]) -> list[str]:
    return [str(f) for f in findings if f.severity == "error"]


def copy_flows(tmp_path: Path) -> Path:
    target = tmp_path / "flows"
    shutil.copytree(REPO_ROOT / "flows", target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_shipped_flows_have_no_errors() -> None:
    assert errors(check()) == []


def test_undefined_variables_are_errors_at_the_text(tmp_path) -> None:
    flows = copy_flows(tmp_path)
    demo = flows / "demo.yaml"
    edit(demo, 'text: "Choose your language"', 'text: "Choose your language, {{ nickname }}"')
    edit(demo, 'text: "Enter the bill amount in taka:"',
         'text: "Enter the bill amount in taka{% if tip is defined %} ({{ tip }}){% endif %}:"')
    found = errors(check(flows))
    line = line_of(demo, "Choose your language, {{")
    assert f"{demo}:{line}:11: undefined variable 'nickname' in screen 'language'" in found
    # Shown inside the guard is still shown: the sample must give it, so the screen is measured.
    assert any("undefined variable 'tip' in screen 'ask_total'" in e for e in found)
    assert not any("undefined variable in" in e for e in found)  # the render error is not repeated


def test_a_name_only_tested_with_is_defined_is_fine(tmp_path) -> None:
    flows = copy_flows(tmp_path)
    edit(flows / "demo.yaml", 'text: "Enter the bill amount in taka:"',
         'text: "{% if tip is defined %}Tip{% endif %}Enter the bill amount in taka:"')
    found = check(flows)
    assert not any("'tip'" in f.message for f in found)


def test_missing_translations_are_errors_in_bn_and_warnings_in_en(tmp_path) -> None:
    flows = copy_flows(tmp_path)
    demo = flows / "demo.yaml"
    edit(demo, 'label: "About Alap"', 'label: "About this service"')
    found = check(flows)
    line = line_of(demo, "About this service")
    bn = f"{demo}:{line}:16: msgid 'About this service' (option of screen 'main') is missing in " \
         "locales/bn/LC_MESSAGES/messages.po"
    assert bn in errors(found)
    assert any(f.severity == "warning" and "is missing in locales/en" in f.message and f.line == line for f in found)


def test_fuzzy_bengali_entries_are_errors(tmp_path) -> None:
    locales = tmp_path / "locales"
    shutil.copytree(REPO_ROOT / "locales", locales)
    edit(locales / "bn" / "LC_MESSAGES" / "messages.po", 'msgid "Split a bill"', '#, fuzzy\nmsgid "Split a bill"')
    found = errors(check(locales_dir=locales))
    assert any("msgid 'Split a bill' (option of screen 'main') is fuzzy" in e for e in found), found


def test_a_menu_whose_text_leaves_no_room_for_options_is_an_error(tmp_path) -> None:
    flows = copy_flows(tmp_path)
    long = "Choose your language. " + "This sentence is here to make the menu text far too long. " * 3
    edit(flows / "demo.yaml", 'text: "Choose your language"', f'text: "{long.strip()}"')
    found = errors(check(flows))
    header = len(long.strip())
    assert any(f"screen 'language' in en has {header} characters of text above its options, more than the 143 a "
               "page holds next to its navigation lines: the first page would show no option" in e for e in found), found
    assert any(f"screen 'language' in bn has {header} characters" in e for e in found)  # untranslated: English


def test_syntax_errors_in_action_args_are_errors(tmp_path) -> None:
    flows = copy_flows(tmp_path)
    edit(flows / "demo.yaml", 'args: {number: "{{ number }}"}', 'args: {number: "{{ number "}')
    found = errors(check(flows))
    assert any("template syntax error in args.number of action state 'detect_operator'" in e for e in found), found


def test_per_state_samples_render_a_state_again(tmp_path) -> None:
    flows = copy_flows(tmp_path)
    edit(flows / "demo.yaml", "  operator: Robi\n",
         '  operator: Robi\n  "@operator_result": {operator: Grameenphone, number: "01712345678"}\n')
    found = check(flows)
    assert any("screen 'operator_result' with sample '@operator_result' in bn is" in f.message for f in found)
    edit(flows / "demo.yaml", '"@operator_result"', '"@no_such_state"')
    assert any("sample '@no_such_state' names no state of flow 'demo'" in e for e in errors(check(flows)))


def test_loader_problems_come_first_and_other_files_are_still_checked(tmp_path) -> None:
    flows = copy_flows(tmp_path)
    (flows / "broken.yaml").write_text("flow: broken\nstart: s\nstates:\n  s:\n    kind: end\n    text: ok\n"
                                       "    colour: red\n", encoding="utf-8")
    edit(flows / "balance.yaml", 'text: "Your balance is {{ balance|taka }}."',
         'text: "Your balance is {{ balanse|taka }}."')
    found = errors(check(flows))
    assert f"{flows}/broken.yaml:7:5: state 's': unknown field 'colour' for an end state" in found
    assert any("undefined variable 'balanse' in screen 'show'" in e for e in found)


# -- the budget rules on laid-out screens --------------------------------------------------------

def test_a_screen_within_budget_has_no_finding() -> None:
    assert budget_problems(Screen(["Hello"], ["1. Yes", "2. No"]), Budget(), MORE, BACK, menu=True) == ([], None)


def test_an_ascii_screen_over_160_is_a_warning_with_the_documented_message() -> None:
    assert budget_problems(Screen(["word " * 30], ["1. Yes"]), Budget(), MORE, BACK, menu=True) == ([], None)
    screen = Screen(["word " * 35], ["1. Yes"])
    errs, warning = budget_problems(screen, Budget(), MORE, BACK, menu=False)
    assert errs == [] and warning == f"is {len(chr(10).join(screen.lines))} characters, budget 160 (2 pages)"


def test_bengali_screens_get_the_unicode_budget() -> None:
    screen = Screen(["আলাপ " * 20], [])
    _, warning = budget_problems(screen, Budget(), "98. আরও", "0. পেছনে", menu=False)
    assert warning is not None and "budget 80" in warning


def test_an_unbreakable_word_and_a_long_option_are_errors() -> None:
    screen = Screen(["x" * 150, "text " * 10], ["1. " + "long option " * 13])
    errs, _ = budget_problems(screen, Budget(), MORE, BACK, menu=True)
    assert any("unbreakable" in e and "cut mid-word" in e for e in errs)
    assert any("has the option '1. long option" in e and "it would be split" in e for e in errs)


def test_first_option_pushed_to_page_two_is_said_in_the_warning() -> None:
    screen = Screen(["a " * 65], ["1. " + "b" * 30])  # 130 + 33: the text fits a page, the option not beside it
    errs, warning = budget_problems(screen, Budget(), MORE, BACK, menu=True)
    assert errs == [] and "first page shows no option" in warning


# -- render_screen lays a screen out as the engine does ------------------------------------------

@pytest.mark.parametrize("lang, inputs, state", [("en", [], "main"), ("bn", ["1", "01812345678"], "operator_result"),
                                                ("en", ["7"], "language")])
async def test_render_screen_matches_the_engine(lang, inputs, state) -> None:
    settings = settings_for()
    registry = build_registry(Upstreams.from_settings(settings))
    renderer = Renderer(settings.templates_dir, settings.locales_dir)
    engine = Engine(load_flow_dir(settings.flows_dir, renderer, registry), renderer, registry,
                    budget=Budget(1000, 1000))  # no pagination: compare whole screens
    subscriber = Subscriber("s", "tel:8801812345678", "01812345678")
    session, reply = await engine.start(subscriber, "*213#", lang)
    for text in inputs:
        reply = await engine.advance(session, subscriber, text)
    assert session.state == state
    flow = engine.flows["demo"]
    ctx = {**session.vars, "lang": lang, "msisdn": "01812345678"}
    assert "\n".join(render_screen(renderer, flow, flow.states[state], lang, ctx).lines) == reply.text


# -- the command line ----------------------------------------------------------------------------

def run_cli(*args: str, **env: str) -> subprocess.CompletedProcess:
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("ALAP_")}
    return subprocess.run([sys.executable, "-m", "server", "check", *args], capture_output=True, text=True,
                          env={**clean, **env}, timeout=60)


def test_cli_exit_status_and_json(tmp_path) -> None:
    clean = run_cli()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "0 error(s)" in clean.stderr
    flows = copy_flows(tmp_path)
    edit(flows / "balance.yaml", "{{ balance|taka }}", "{{ balanse|taka }}")
    broken = run_cli("--format", "json", ALAP_FLOWS_DIR=str(flows))
    assert broken.returncode == 1
    items = json.loads(broken.stdout)
    assert {"file", "line", "col", "severity", "message"} == set(items[0])
    assert any(i["severity"] == "error" and "balanse" in i["message"] for i in items)
    strict = run_cli("--strict")
    assert strict.returncode == (1 if "warning: " in strict.stdout else 0)


def test_json_format_is_a_list_of_findings() -> None:
    finding = Finding("flows/demo.yaml", 3, 5, "warning", "screen 'x' in bn is 93 characters, budget 80")
    assert json.loads(format_json([finding])) == [{"file": "flows/demo.yaml", "line": 3, "col": 5,
                                                   "severity": "warning", "message": finding.message}]
    assert str(finding) == "flows/demo.yaml:3:5: warning: screen 'x' in bn is 93 characters, budget 80"


def test_docs_list_every_registered_action() -> None:
    from server.tooling.check import actions_table

    docs = (REPO_ROOT / "docs" / "flows.md").read_text(encoding="utf-8")
    table = actions_table(build_registry(Upstreams.from_settings(settings_for())))
    assert table in docs, f"docs/flows.md's actions table (between the actions: markers) should be:\n{table}"
