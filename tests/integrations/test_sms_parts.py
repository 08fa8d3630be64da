import pytest

from server.integrations.sms_parts import is_gsm7, sms_parts
from server.msisdn import require_international

BN = "আ"  # one Bengali character (one UTF-16 unit)


@pytest.mark.parametrize("text, expected", [
    ("Hello Mr.X , how are you?", True),
    ("Price: £5 @ café Δ", True),       # GSM-7 basic table beyond ASCII
    ("{json} [x] ~ ^ | \\ €", True),     # extension table
    ("`backtick`", True),                 # plain ASCII counts as GSM-7
    ("আপনার অর্ডার", False),
    ("ok 😀", False),
    ("Hello আ", False),                   # one Bengali character makes it UCS-2
    ("", True),
])
def test_is_gsm7(text: str, expected: bool) -> None:
    assert is_gsm7(text) is expected


@pytest.mark.parametrize("text, parts", [
    ("", 0),
    ("a", 1),
    ("a" * 160, 1),
    ("a" * 161, 2),
    ("a" * 306, 2),
    ("a" * 307, 3),
    ("{" * 80, 1),     # 160 septets
    ("{" * 81, 2),     # 162 septets
    (BN * 70, 1),
    (BN * 71, 2),
    (BN * 134, 2),
    (BN * 135, 3),
    ("a" * 69 + BN, 1),
    ("a" * 70 + BN, 2),  # 71 UCS-2 units
    ("😀" * 35, 1),      # 70 UTF-16 units
    ("😀" * 36, 2),
])
def test_sms_parts(text: str, parts: int) -> None:
    assert sms_parts(text) == parts


@pytest.mark.parametrize("raw", [
    "01711111111", "8801711111111", "+8801711111111", "008801711111111",
    "tel: 8801711111111", "tel:8801711111111", "TEL:+8801711111111", " 017-1111-1111 ", "০১৭১১১১১১১১",
])
def test_normalize_msisdn_accepts(raw: str) -> None:
    assert require_international(raw) == "8801711111111"


@pytest.mark.parametrize("raw", [
    "", "0171111111", "017111111111", "01211111111", "8801211111111", "+447911123456",
    "tel:B%3C4pbgsm8aUtuh1Pi6lMEJ", "01711x11111", "880171111111",
])
def test_normalize_msisdn_rejects(raw: str) -> None:
    with pytest.raises(ValueError):
        require_international(raw)
