"""The engine alone: turns over real flows, templates and catalogs; no HTTP, no store."""
from __future__ import annotations

import time

import pytest
import transitions

from server.config import REPO_ROOT
from server.engine.engine import Engine, Subscriber, parse_dialled
from server.engine.loader import load_flow_dir
from server.render.environment import Renderer

from tests.conftest import FIXTURES, fixture_registry

SUB = Subscriber("s-1", "tel:8801812345678", "01812345678")


def make_engine(flows_dir=REPO_ROOT / "flows", **kwargs) -> Engine:
    registry = fixture_registry()
    renderer = Renderer(REPO_ROOT / "templates", REPO_ROOT / "locales")
    return Engine(load_flow_dir(flows_dir, renderer, registry), renderer, registry, **kwargs)


@pytest.fixture(scope="module")
def demo() -> Engine:
    return make_engine()


@pytest.fixture(scope="module")
def kitchen() -> Engine:
    return make_engine(FIXTURES / "flows")


async def walk(engine: Engine, code: str, inputs: list[str], lang: str = "en"):
    session, reply = await engine.start(SUB, code, lang)
    screens = [reply]
    for text in inputs:
        reply = await engine.advance(session, SUB, text)
        screens.append(reply)
    return session, screens


@pytest.mark.parametrize("message, code, inputs", [
    ("*213#", "*213#", []),
    ("*213*2*1250*4#", "*213#", ["2", "1250", "4"]),
    ("*২১৩*২#", "*213#", ["2"]),
    ("010", "010", []),
])
def test_parse_dialled(message, code, inputs):
    assert parse_dialled(message) == (code, inputs)


async def test_demo_main_menu_in_both_languages(demo):
    _, [en] = await walk(demo, "*213#", [], "en")
    assert en.text.startswith("Welcome to Alap\n1. Find a number's operator\n2. Split a bill")
    assert not en.final and en.text.isascii() and len(en.text) <= 160
    _, [bn] = await walk(demo, "*213#", [], "bn")
    assert bn.text.startswith("আলাপে স্বাগতম\n1. অপারেটর\n2. বিল ভাগ")
    assert len(bn.text) <= 80 and "98. আরও" in bn.text  # paginated, never cut


async def test_shortcut_dialling_replays_segments(demo):
    _, [reply] = await walk(demo, "*213*2*1250*4#", [], "en")
    assert reply.final and reply.text == "Tk 1,250.00 shared by 4: Tk 312.50 each."


async def test_bengali_digits_are_normalised(demo):
    _, screens = await walk(demo, "*213#", ["২", "১২৫০", "৪"], "bn")
    assert screens[-1].final
    assert screens[-1].text == "১,২৫০.০০৳, ৪ জনে ভাগ: প্রত্যেকে ৩১২.৫০৳।"


async def test_validation_error_reprompts_in_the_subscribers_language(demo):
    _, screens = await walk(demo, "*213#", ["2", "1250", "50"], "bn")
    assert screens[-1].text.startswith("২ থেকে ২০ এর মধ্যে মানুষের সংখ্যা লিখুন।\nকতজন ভাগ করবেন?")
    _, screens = await walk(demo, "*213#", ["2", "abc"], "en")
    assert screens[-1].text.startswith("Enter an amount from Tk 1.00 to Tk 1,00,000.00.\nEnter the bill amount")


async def test_action_branches_and_conditional_option_appears(demo):
    session, screens = await walk(demo, "*213#", ["1", "8801912345678", "2", "98"], "en")
    assert screens[2].text.startswith("01912345678 is Banglalink by its prefix.")
    assert "9. Last check: 01912345678" in screens[4].text  # the conditional option comes last
    assert session.vars == {"number": "01912345678", "operator": "Banglalink"}


async def test_back_and_home_navigation(demo):
    session, screens = await walk(demo, "*213#", ["2", "0"], "en")
    assert screens[-1].text.startswith("Welcome to Alap")
    session, screens = await walk(demo, "*213#", ["2", "100", "00"], "en")
    assert screens[-1].text.startswith("Welcome to Alap") and session.history == []


async def test_invalid_choice_keeps_the_state(demo):
    session, screens = await walk(demo, "*213#", ["9"], "en")
    # The title would cost a second page under the notice: the options come right after it.
    assert screens[-1].text.startswith("Invalid choice.\n1. Find a number's operator")
    assert session.state == "main"


async def test_language_menu_changes_language(demo):
    session, screens = await walk(demo, "*213#", ["7", "1"], "en")
    assert screens[1].text == "Choose your language\n1. Bangla\n2. Main menu"
    assert screens[2].language == "bn" and session.lang == "bn"
    assert screens[2].text.startswith("আলাপে স্বাগতম")


async def test_regex_validator_retry_limit_goes_to_on_fail(kitchen):
    _, screens = await walk(kitchen, "*301#", ["1", "ab12", "zz"], "en")
    assert screens[2].text.startswith("Bad code en\nEnter a code like AB12")
    assert screens[3].final and screens[3].text == "Failed"


async def test_router_action_and_conditional_option(kitchen):
    session, screens = await walk(kitchen, "*301#", ["1", "VV99"], "en")
    assert "3. Secret" in screens[-1].text and "4. Broken" in screens[-1].text
    _, screens = await walk(kitchen, "*301#", ["1", "AB12"], "en")
    assert screens[-1].final and screens[-1].text == "Code AB12 ok"


async def test_explicit_option_keys(kitchen):
    _, [menu] = await walk(kitchen, "*301#", [], "en")
    assert "4. Long" not in menu.text and "9. Long" in menu.text


async def test_action_timeout_takes_fallback_within_budget(kitchen):
    started = time.perf_counter()
    _, screens = await walk(kitchen, "*301#", ["2"], "en")
    assert time.perf_counter() - started < 1.0
    assert screens[-1].final and screens[-1].text == "The service is busy. Please try again later."


async def test_action_exception_takes_fallback(kitchen):
    _, screens = await walk(kitchen, "*301#", ["3"], "en")
    assert screens[-1].text == "The service is busy. Please try again later."


async def test_gsm7_only_deployment_falls_back_to_english():
    engine = make_engine(unicode=False)
    _, screens = await walk(engine, "*213#", ["2", "1250", "4"], "bn")
    for reply in screens:
        assert reply.text.isascii()
    assert screens[0].text.startswith("Welcome to Alap")
    assert screens[-1].text == "Tk 1,250.00 shared by 4: Tk 312.50 each."


async def test_machines_are_built_once_and_turn_data_unbound(demo, monkeypatch):
    built = []
    original = transitions.Machine.__init__
    monkeypatch.setattr(transitions.Machine, "__init__", lambda self, *a, **k: built.append(1) or original(self, *a, **k))
    await walk(demo, "*213#", ["1", "01812345678", "2", "2", "100", "3"], "en")
    assert built == []
    # One resident model per machine; the turn's data is unbound after every fire.
    assert all(len(m.machine.models) == 1 and m.machine.models[0].context == {} for m in demo.machines.values())
