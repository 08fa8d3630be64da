"""The recipients FILE of a broadcast, read one line at a time (never all at once).

Two shapes:

- a plain list: one number a line, as `01812345678`, `8801812345678` or `tel:8801812345678`
  (spaces, dashes and Bengali digits are tolerated; blank lines and `#` comments are skipped);
- a CSV with a header (the file ends in `.csv`, or its first line is not a number but has a
  comma): the number is in the column named `msisdn`, `number`, `phone`, `mobile`, `to` or
  `address` (else the first column); every column is a variable of the `--text` template.

A line that is not a Bangladeshi mobile number is reported with its line number and skipped,
never guessed. Numbers are parsed by server/msisdn.py, like everywhere else.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from server.msisdn import international

NUMBER_COLUMNS = ("msisdn", "number", "phone", "mobile", "to", "address")
TEL_ALL = "tel:all"


@dataclass(frozen=True)
class Recipient:
    line: int
    address: str  # "tel:8801XXXXXXXXX", what BDApps is sent and profiles are keyed by
    columns: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class BadLine:
    line: int
    text: str
    reason: str

    @property
    def problem(self) -> str:
        """The reason and the line's start, as both the stored and the printed report say it."""
        return f"{self.reason}: {self.text[:60]!r}"

    def __str__(self) -> str:  # kept for `alap broadcast status --bad-lines` (loading.py)
        return f"line {self.line}: {self.problem}"


class RecipientsFileError(Exception):
    """The file cannot be read at all (missing, not UTF-8, CSV without a number column)."""


def parse_address(raw: str) -> str | None:
    """"tel:8801XXXXXXXXX" for any accepted spelling of a Bangladeshi mobile number, else None."""
    number = international(raw)
    return "tel:" + number if number else None


def _looks_like_csv(path: Path, first: str) -> bool:
    if path.suffix.lower() == ".csv":
        return True
    return "," in first and parse_address(first.split(",")[0]) is None


def read_recipients(path: str | Path) -> Iterator[Recipient | BadLine]:
    """Yield each recipient or bad line in file order (streaming: memory does not grow with
    the file). Raises RecipientsFileError when the file as a whole is unusable."""
    path = Path(path)
    try:
        handle = open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise RecipientsFileError(f"{path}: cannot open ({exc.strerror or exc})") from None
    with handle:
        try:
            first = handle.readline()
        except UnicodeDecodeError:
            raise RecipientsFileError(f"{path}: not UTF-8 text") from None
        if _looks_like_csv(path, first.strip()):
            yield from _read_csv(path, first, handle)
        else:
            yield from _read_lines(path, first, handle)


def _read_lines(path: Path, first: str, handle: io.TextIOBase) -> Iterator[Recipient | BadLine]:
    lineno = 0
    lines = _chain(first, handle, path)
    for lineno, raw in lines:
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        address = parse_address(text)
        if address is None:
            yield BadLine(lineno, text, "not a Bangladeshi mobile number")
        else:
            yield Recipient(lineno, address)


def _chain(first: str, handle: io.TextIOBase, path: Path) -> Iterator[tuple[int, str]]:
    yield 1, first
    lineno = 1
    while True:
        try:
            line = handle.readline()
        except UnicodeDecodeError:
            raise RecipientsFileError(f"{path}:{lineno + 1}: not UTF-8 text") from None
        if not line:
            return
        lineno += 1
        yield lineno, line


def _read_csv(path: Path, first: str, handle: io.TextIOBase) -> Iterator[Recipient | BadLine]:
    header = [h.strip() for h in next(csv.reader([first]), [])]
    if not header or not any(header):
        raise RecipientsFileError(f"{path}:1: the CSV header is empty")
    lowered = [h.lower() for h in header]
    number_col = next((lowered.index(c) for c in NUMBER_COLUMNS if c in lowered), 0)
    lines = _chain(first, handle, path)
    next(lines)  # the header
    for lineno, raw in lines:
        if not raw.strip():
            continue
        row = next(csv.reader([raw]), [])
        if len(row) != len(header):
            yield BadLine(lineno, raw.strip(), f"{len(row)} columns, the header has {len(header)}")
            continue
        address = parse_address(row[number_col])
        if address is None:
            yield BadLine(lineno, row[number_col].strip(), f"column {header[number_col]!r} is not a Bangladeshi mobile number")
            continue
        yield Recipient(lineno, address, {h: v.strip() for h, v in zip(header, row)})
