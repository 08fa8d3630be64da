"""Every layer reads a Bangladeshi number the same way (server/msisdn.py is the one parser)."""
from __future__ import annotations

import pytest

from server.actions.builtin import detect_operator
from server.bdapps.payloads import msisdn_of
from server.engine.actions import ActionContext
from server.engine.validators import BdMobileValidator, Valid, validate_input
from server.integrations.ecourier import normalize_mobile
from server.logs import redactor
from server.messaging.policy import BDAPPS_OPERATOR_PREFIXES
from server.msisdn import international, local, operator_of

SPELLINGS = ["01712345678", "8801712345678", "+8801712345678", "008801712345678", "1712345678",
             "tel:8801712345678", "TEL: +880 1712-345678", "০১৭১২৩৪৫৬৭৮", "(017) 1234.5678"]
MASKED = "tel:B%3C4pbgsm8aUtuh1Pi6lMEJ"


@pytest.mark.parametrize("raw", SPELLINGS)
def test_every_spelling_is_one_number(raw: str) -> None:
    assert local(raw) == "01712345678"
    assert international(raw) == "8801712345678"
    assert normalize_mobile(raw) == "01712345678"
    assert validate_input(BdMobileValidator(), raw) == Valid("01712345678")


@pytest.mark.parametrize("raw", ["", MASKED, "01212345678", "0171234567", "+447911123456", "017123456789"])
def test_non_numbers_stay_opaque(raw: str) -> None:
    assert local(raw) is None and international(raw) is None and msisdn_of(raw) is None
    assert not isinstance(validate_input(BdMobileValidator(), raw), Valid)


def test_only_tel_addresses_are_bdapps_numbers() -> None:
    assert msisdn_of("tel: 8801812345678") == "01812345678"
    assert msisdn_of("8801812345678") is None  # not a BDApps address


async def test_operator_by_prefix_is_one_table() -> None:
    assert [operator_of(n) for n in ("01312345678", "01412345678", "01512345678", "01612345678",
                                     "01712345678", "01812345678", "01912345678")] == [
        "Grameenphone", "Banglalink", "Teletalk", "Airtel", "Grameenphone", "Robi", "Banglalink"]
    assert BDAPPS_OPERATOR_PREFIXES == ("018", "016")
    result = await detect_operator(ActionContext("s", "tel:x", None, "en", {}, {"number": "01612345678"}))
    assert result.vars == {"operator": "Airtel"}


def test_logs_mask_all_but_the_last_three_digits() -> None:
    assert redactor.clean("to tel:8801712345678 ok") == "to tel:**********678 ok"
