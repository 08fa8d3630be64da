"""Money is exact: amounts from `amount` inputs are Decimals (also after the session's JSON
round trip) and the money filters compute in Decimal with half-up rounding."""
from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from server.engine.engine import Engine, Subscriber
from server.engine.loader import load_flow_dir
from server.engine.session import decode_session, encode_session
from server.engine.validators import Valid, build_validator, validate_input
from server.actions import build_registry
from server.render.environment import Renderer
from server.render.money_filters import divided, percent, round_taka, times

from ..conftest import test_settings as settings_for

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "union_parishad"


def test_seven_percent_of_1500_50_is_105_04_not_the_float_105_03() -> None:
    assert round(1500.50 * 7 / 100, 2) == 105.03  # what floats give
    assert percent(Decimal("1500.50"), 7) == Decimal("105.035")
    assert round_taka(percent("1500.50", 7)) == Decimal("105.04")


@pytest.mark.parametrize("value, places, expected", [("2.345", 2, "2.35"), ("2.5", 0, "3"), ("-2.5", 0, "-3"),
                                                     ("0.005", 2, "0.01"), (1, 2, "1.00")])
def test_round_taka_is_half_up(value, places, expected) -> None:
    assert round_taka(value, places) == Decimal(expected)


def test_times_and_divided_are_exact() -> None:
    assert times("0.1", 3) == Decimal("0.3")
    assert round_taka(divided("100", 3)) == Decimal("33.33")
    with pytest.raises(ValueError):
        percent("abc", 7)


def test_amount_input_is_a_decimal() -> None:
    result = validate_input(build_validator({"type": "amount", "min": 1, "max": 10000}), "১,৫০০.৫০")
    assert isinstance(result, Valid) and result.value == Decimal("1500.50") and isinstance(result.value, Decimal)


async def test_amounts_stay_exact_across_hops_and_the_session_json() -> None:
    settings = settings_for(flows_dir=FIXTURE / "flows", templates_dir=FIXTURE / "templates",
                             locales_dir=FIXTURE / "locales")
    renderer = Renderer(settings.templates_dir, settings.locales_dir)
    registry = build_registry()
    engine = Engine(load_flow_dir(settings.flows_dir, renderer, registry), renderer, registry)
    subscriber = Subscriber("s1", "tel:8801812345678", "01812345678")
    session, reply = await engine.start(subscriber, "*345*2#", "en")
    session = decode_session(encode_session(session))  # what the store does between hops
    reply = await engine.advance(session, subscriber, "1500.50")
    assert reply.text == "Tax on Tk 1,500.50: Tk 105.04"
    stored = decode_session(encode_session(session))
    assert stored.vars["rent"] == "1500.50"  # JSON keeps the exact digits, never a float


def test_taka_rounds_half_up_to_the_paisa() -> None:
    renderer = Renderer(FIXTURE / "templates", FIXTURE / "locales")
    assert renderer.render_text("en", "{{ x|taka }}", {"x": Decimal("105.035")}) == "Tk 105.04"
    assert renderer.render_text("bn", "{{ x|taka }}", {"x": Decimal("105.035")}) == "১০৫.০৪৳"
