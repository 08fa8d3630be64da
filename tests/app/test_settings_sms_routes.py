"""ALAP_SMS_ROUTES is read by the same rule as the sender's routing policy (messaging/policy.py)."""
from __future__ import annotations

import pytest

from server.config import ConfigError, load_settings


def test_routes_are_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALAP_SMS_ROUTES", " DiniSoft , bdapps")
    assert load_settings().sms_routes == "dinisoft,bdapps"


@pytest.mark.parametrize(("value", "says"), [
    ("bdapps,bdapps", "a route is listed twice"), ("bdapps,telegram", "unknown SMS route 'telegram'"),
    (" , ", "at least one route is needed"),
])
def test_bad_routes_are_one_line_naming_the_setting(monkeypatch: pytest.MonkeyPatch, value: str, says: str) -> None:
    monkeypatch.setenv("ALAP_SMS_ROUTES", value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith("ALAP_SMS_ROUTES: ") and says in str(caught.value)
    assert "\n" not in str(caught.value)
