"""Pagination uses each page's own room: the first page has no "0. Back" line and the last no
"98. More", so a screen takes no more pages than it needs, and every page fits its budget."""
from __future__ import annotations

from hypothesis import given, strategies as st

from server.render.budget import Budget, paginate

MORE, BACK = "98. আরও", "0. পেছনে"


def test_two_pages_when_the_first_and_last_pages_use_their_whole_room() -> None:
    # 72 characters fit beside "98. More" alone, 71 beside "0. Back" alone; 63 beside both.
    lines = ["ক" * 35, "খ" * 36, "গ" * 35, "ঘ" * 35]  # 35+1+36 = 72, then 35+1+35 = 71
    assert paginate(lines, Budget(), MORE, BACK) == ["\n".join([*lines[:2], MORE]), "\n".join([*lines[2:], BACK])]


@given(st.lists(st.text(alphabet="কখগ ab", min_size=0, max_size=90), min_size=1, max_size=12))
def test_every_page_fits_and_nothing_is_lost(lines) -> None:
    pages = paginate(lines, Budget(), MORE, BACK)
    limit = Budget().for_text("\n".join(lines) + MORE + BACK)
    assert all(len(page) <= limit for page in pages)
    if len(pages) > 1:
        body = [line for page in pages for line in page.split("\n") if line not in (MORE, BACK)]
        assert "".join(body).replace(" ", "") == "".join("".join(lines).split()).replace(" ", "")
