"""Bengali digits (০-৯) in subscriber input become ASCII digits before matching."""
from __future__ import annotations

_BENGALI_TO_ASCII = str.maketrans("০১২৩৪৫৬৭৮৯", "0123456789")
_ASCII_TO_BENGALI = str.maketrans("0123456789", "০১২৩৪৫৬৭৮৯")


def normalise_digits(text: str) -> str:
    return text.translate(_BENGALI_TO_ASCII)


def bengali_digits(text: str) -> str:
    return text.translate(_ASCII_TO_BENGALI)
