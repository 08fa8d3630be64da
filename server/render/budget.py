"""Screen encodings, character budgets and pagination. A screen is paginated, never cut."""
from __future__ import annotations

from dataclasses import dataclass

ASCII_ENCODING = "440"
UNICODE_ENCODING = "16"


def encoding_for(text: str) -> str:
    """'440' when every character is plain ASCII (what GSM-7-only deployments accept), else '16'."""
    return ASCII_ENCODING if text.isascii() else UNICODE_ENCODING


@dataclass(frozen=True)
class Budget:
    ascii: int = 160
    unicode: int = 80

    def for_text(self, text: str) -> int:
        return self.ascii if text.isascii() else self.unicode


def _split_long_line(line: str, width: int) -> list[str]:
    """Split one line at spaces into pieces of at most `width` characters (hard split if a
    single word is longer)."""
    pieces: list[str] = []
    current = ""
    for word in line.split(" "):
        candidate = f"{current} {word}" if current else word
        if len(candidate) <= width:
            current = candidate
            continue
        if current:
            pieces.append(current)
        while len(word) > width:
            pieces.append(word[:width])
            word = word[width:]
        current = word
    if current or not pieces:
        pieces.append(current)
    return pieces


def paginate(lines: list[str], budget: Budget, more: str, back: str) -> list[str]:
    """Pack lines into pages that fit the budget, with `more` on every page but the last and
    `back` on every page but the first. The budget is chosen from the whole screen's encoding
    (one Bengali character makes every page UCS-2)."""
    whole = "\n".join(lines)
    encoding_probe = whole + more + back
    limit = budget.for_text(encoding_probe)
    if len(whole) <= limit:
        return [whole]
    # Room left for content on a page that carries both navigation lines: no piece is longer.
    room = limit - len(more) - len(back) - 2
    if room < 10:
        raise ValueError("navigation labels leave no room on a page")
    pieces: list[str] = []
    for block in lines:
        for line in block.split("\n"):  # a multi-line text breaks at its own line ends first
            pieces.extend(_split_long_line(line, room) if len(line) > room else [line])
    # Each page holds what its own navigation lines leave: the first has no "back", the last no
    # "more" (a Bengali menu saves a page this way). Pieces are cut to the smallest room above,
    # so every piece fits any page.
    pages: list[list[str]] = []
    start = 0
    while start < len(pieces):
        nav_back = len(back) + 1 if pages else 0
        rest = pieces[start:]
        if len("\n".join(rest)) <= limit - nav_back:
            pages.append(rest)
            break
        page_room = limit - nav_back - len(more) - 1
        page, used = [pieces[start]], len(pieces[start])
        for piece in pieces[start + 1:]:
            if used + 1 + len(piece) > page_room:
                break
            page.append(piece)
            used += 1 + len(piece)
        pages.append(page)
        start += len(page)
    rendered = []
    for i, page in enumerate(pages):
        body = list(page)
        if i < len(pages) - 1:
            body.append(more)
        if i > 0:
            body.append(back)
        rendered.append("\n".join(body))
    return rendered
