"""How a screen is laid out: an error notice, the state's text, its option lines, cut into
pages. One home for the layout the engine sends and `alap check` measures.

After an invalid choice the notice goes on top. When notice, text and the first option do
not fit one page together, or the text would cost a page more, the text (a menu's title) is
left out: the subscriber has just seen it, and a first page with no option to pick would be
worse (docs/flows.md, "Screens, languages, encodings and budgets").
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from . import system
from .budget import Budget, paginate

# Marks option lines while measuring where they land; a private-use character of length 1.
_MARKER = "\ue000"


def nav_lines(renderer: Any, flow: Any, lang: str) -> tuple[str, str]:
    """The localized "98. More" and "0. Back" lines of `flow`'s navigation keys."""
    nav = flow.navigation
    return (f"{nav.more}. {renderer.gettext(lang, system.MORE)}",
            f"{nav.back}. {renderer.gettext(lang, system.BACK)}")


@dataclass
class ScreenLines:
    notice: str | None
    text: str | None
    options: list[str] = field(default_factory=list)

    @property
    def header(self) -> list[str]:
        return [line for line in (self.notice, self.text) if line is not None]

    @property
    def lines(self) -> list[str]:
        return self.header + self.options

    def option_on_first_page(self, budget: Budget, more: str, back: str) -> bool:
        """Whether paginate puts an option line on page one (measured with the real layout:
        each option's first character is swapped for a marker of the same length)."""
        if not self.options:
            return True
        whole = "\n".join(self.lines)
        limit = budget.for_text(whole + more + back)
        marked = self.header + [_MARKER + line[1:] for line in self.options]
        return _MARKER in paginate(marked, Budget(limit, limit), more, back)[0]

    def laid_out(self, budget: Budget, more: str, back: str) -> "ScreenLines":
        """The screen as sent: a menu's text is left out under a notice when it would push every
        option off the first page, or cost a page more than the options need."""
        if self.notice is None or self.text is None or not self.options:
            return self
        shorter = ScreenLines(self.notice, None, self.options)
        if not self.option_on_first_page(budget, more, back):
            return shorter
        if len(self.pages(budget, more, back, as_is=True)) > len(shorter.pages(budget, more, back, as_is=True)):
            return shorter
        return self

    def pages(self, budget: Budget, more: str, back: str, *, as_is: bool = False) -> list[str]:
        screen = self if as_is else self.laid_out(budget, more, back)
        return paginate(screen.lines, budget, more, back)
