"""`alap check` on screens: every screen state (menu, input, end) of every flow is rendered in
every language with the flow's sample data (server/tooling/check_samples.py), laid out as the
engine lays it out (server/render/screen.py) and measured against the budget of the encoding
it would be sent in (the whole screen plus its "98. More"/"0. Back" labels ASCII ->
`ALAP_BUDGET_440`, else `ALAP_BUDGET_16`; SMS-only flows: the SMS budget, three parts).

Rules (also in docs/flows.md):
  - warning: the screen is longer than its budget, so it is paginated (unless the state says
    `pages: N` and it takes at most N pages);
  - error: it is paginated and a page cannot show it properly:
      * a word longer than a page's room would be cut mid-word,
      * a menu option line longer than a page's room would be split,
      * a menu's text above its options is longer than a page's room, so the first page
        would show no option (when the text fits but the first option does not fit beside
        it, the warning says so);
  - the screen after an invalid input (error notice on top; a menu's title is dropped when
    it would push every option off the first page, as the engine does) is measured too: a
    menu whose first page then shows no option is an error, other overflows are warnings;
  - extra per-state samples: `sample: {"@state": {var: value}}` (or a list) render again.
A page's room is the budget minus the "98. More" and "0. Back" lines. An error caused by a
translation (the English screen has no such error) is reported at the msgid's line in the
.po file; otherwise at the flow line.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import jinja2

from ..engine.errors import Mark
from ..engine.model import Flow, State
from ..render import system
from ..render.budget import Budget, paginate
from ..render.environment import Renderer
from ..render.screen import ScreenLines, nav_lines
from .check_catalogs import po_mark
from .check_samples import sample_context, state_samples
from .findings import SOURCE_LANGUAGE, Report, short


@dataclass
class Screen:
    """A screen as the engine would lay it out: header lines (error notice, text) then options;
    `sources` holds the msgid each line was rendered from (None: a template or unknown)."""

    header: list[str]
    options: list[str]
    sources: list[str | None] = field(default_factory=list)

    @property
    def lines(self) -> list[str]:
        return self.header + self.options


class BudgetError(str):
    """An error message that knows which line of the screen causes it (None: the layout)."""

    line: int | None = None

    @classmethod
    def at(cls, message: str, line: int | None) -> "BudgetError":
        error = cls(message)
        error.line = line
        return error


def render_screen(renderer: Renderer, flow: Flow, state: State, lang: str, ctx: Mapping[str, Any],
                  notice: tuple[str, Mapping[str, Any]] | None = None, budget: Budget | None = None) -> Screen:
    """Mirrors engine.turn.Turn._screen (tests/tooling/test_alap_check.py holds the two together); with a
    `budget`, a notice variant is laid out as the engine sends it (title dropped if need be)."""
    notice_line = renderer.render_text(lang, notice[0], {**ctx, **notice[1]}) if notice else None
    text, text_source = None, None
    if state.text is not None:
        if state.text.template:
            text = renderer.render_template(lang, state.text.template, ctx)
        elif state.text.source is not None:
            text, text_source = renderer.render_text(lang, state.text.source, ctx), state.text.source
    options, sources = [], []
    number = 0
    for option in state.options:
        if option.when and not renderer.evaluate(option.when, ctx):
            continue
        if option.key is None:
            number += 1
        key = option.key if option.key is not None else str(number)
        options.append(f"{key}. {renderer.render_text(lang, option.label.source or '', ctx)}")
        sources.append(option.label.source)
    more, back = nav_lines(renderer, flow, lang)
    for line, paging in ((more, state.more), (back, state.back)):
        if paging and (not paging.when or renderer.evaluate(paging.when, ctx)):
            options.append(line)
            sources.append(None)
    laid = ScreenLines(notice_line, text, options)
    if budget is not None:
        laid = laid.laid_out(budget, more, back)
    header_sources = ([notice[0]] if notice else []) + ([text_source] if laid.text is not None else [])
    return Screen(laid.header, laid.options, header_sources + sources)


def nav_labels(renderer: Renderer, flow: Flow, lang: str) -> tuple[str, str]:
    return nav_lines(renderer, flow, lang)


def budget_problems(screen: Screen, budget: Budget, more: str, back: str, *,
                    menu: bool) -> tuple[list[BudgetError], str | None]:
    """(errors, warning) for one laid-out screen, by the rules in the module docstring.
    Messages are completed by the caller with which screen and language."""
    whole = "\n".join(screen.lines)
    limit = budget.for_text(whole + more + back)  # the engine's choice of budget (render/budget.py)
    if len(whole) <= limit:
        return [], None
    room = limit - len(more) - len(back) - 2
    if room < 10:
        return [BudgetError.at(f"leaves no room on a page next to '{more}' and '{back}' (budget {limit})", None)], None
    errors = []
    for index, line in enumerate(screen.lines):
        for word in line.split(" "):  # paginate splits at spaces only
            if len(word) > room:
                errors.append(BudgetError.at(
                    f"has the unbreakable '{short(word)}' of {len(word)} characters, more than the {room} a page "
                    f"holds next to its navigation lines: it would be cut mid-word", index))
    for index, line in enumerate(screen.options, len(screen.header)):
        if len(line) > room:
            errors.append(BudgetError.at(
                f"has the option '{short(line)}' of {len(line)} characters, more than the {room} a page holds "
                f"next to its navigation lines: it would be split", index))
    header = "\n".join(screen.header)
    pages = len(paginate(screen.lines, budget, more, back))
    warning = f"is {len(whole)} characters, budget {limit} ({pages} pages)"
    if menu and screen.options and len(header) > room:
        errors.append(BudgetError.at(
            f"has {len(header)} characters of text above its options, more than the {room} a page holds "
            f"next to its navigation lines: the first page would show no option", len(screen.header) - 1))
    elif menu and screen.options and not ScreenLines(None, header, screen.options).option_on_first_page(
            Budget(limit, limit), more, back):
        warning += f"; its first option does not fit beside the {len(header)} characters of text above it, " \
                   f"so the first page shows no option"
    return errors, warning


def _notice(state: State) -> tuple[str, dict[str, Any]] | None:
    """The error line the engine puts above a screen after an invalid input."""
    if state.kind == "menu":
        return system.INVALID_CHOICE, {}
    if state.kind == "input" and state.validator is not None:
        if state.error and state.error.source:
            return state.error.source, state.validator.params()
        failed = state.validator.fail()
        return failed.msgid, failed.params
    return None


@dataclass
class _Target:
    flow: Flow
    state: State
    renderer: Renderer
    budget: Budget
    unicode: bool
    money: frozenset[str]
    report: Report

    @property
    def mark(self) -> Mark:
        return self.state.text.mark if self.state.text else self.state.mark


def check_screens(flow: Flow, renderer: Renderer, budget: Budget, unicode: bool, money: frozenset[str],
                  report: Report) -> None:
    for state in flow.states.values():
        if state.kind not in ("menu", "input", "end"):
            continue
        target = _Target(flow, state, renderer, budget, unicode, money, report)
        for lang in renderer.languages:
            base = sample_context(flow, lang, money)
            variants = [("", base)] + [(label, {**base, **extra}) for label, extra in state_samples(flow, state, report)]
            notice = _notice(state)
            for label, ctx in variants:
                fits = _check_one(target, lang, ctx, None, label)
                # After an invalid input: measured in full when the plain screen fits; otherwise
                # only whether a menu still shows an option on its first page.
                if notice and label == "" and (fits or (fits is False and state.kind == "menu")):
                    _check_one(target, lang, ctx, notice, " after an invalid input", options_only=not fits)


def _check_one(target: _Target, lang: str, ctx: dict[str, Any], notice: tuple[str, dict[str, Any]] | None,
               label: str, options_only: bool = False) -> bool | None:
    """Render and measure one variant: True when it fits its budget, None when it could not be
    rendered (reported) or is not sent as rendered."""
    flow, state, renderer, report = target.flow, target.state, target.renderer, target.report
    where = f"screen '{state.name}'{label} in {lang}"
    try:
        screen = render_screen(renderer, flow, state, lang, ctx, notice, target.budget)
    except jinja2.UndefinedError as exc:
        match = _UNDEFINED.match(str(exc))
        if not (match and (flow.name, state.name, match.group(1)) in report.undefined):
            report.add(target.mark, _undefined_message(str(exc), where))
        return None
    except Exception as exc:  # a filter or expression failing on the sample data
        report.add(target.mark, f"{where} does not render with the sample data: {type(exc).__name__}: {exc}")
        return None
    if not target.unicode and lang != SOURCE_LANGUAGE and not "\n".join(screen.lines).isascii():
        return None  # a GSM-7-only deployment sends this screen in English, checked on its own
    more, back = nav_lines(renderer, flow, lang)
    menu = state.kind == "menu"
    errors, warning = budget_problems(screen, target.budget, more, back, menu=menu)
    if options_only:
        errors, warning = [], None
    if notice and menu and screen.options and not _has_first_page_option(screen, target.budget, more, back):
        errors.append(BudgetError.at("shows no option on its first page, even without the menu's text: shorten "
                                     "the error notice or the first option", None))
    for error in errors:
        severity = "warning" if notice and "no option" not in error else "error"
        report.add(_blame(target, lang, screen, error, notice) or target.mark, f"{where} {error}", severity)
    if warning and not errors and not _as_designed(state, screen, target.budget, more, back, warning):
        limit = f" (more than its `pages: {state.pages}`)" if state.pages else ""
        report.add(target.mark, f"{where} {warning}{limit}", "warning")
    return warning is None


def _as_designed(state: State, screen: Screen, budget: Budget, more: str, back: str, warning: str) -> bool:
    """A paginated screen within the `pages:` its state declares, every option reachable from
    its first page: no warning."""
    if not state.pages or "shows no option" in warning:
        return False
    return len(paginate(screen.lines, budget, more, back)) <= state.pages


def _has_first_page_option(screen: Screen, budget: Budget, more: str, back: str) -> bool:
    return ScreenLines(None, "\n".join(screen.header), screen.options).option_on_first_page(budget, more, back)


def _blame(target: _Target, lang: str, screen: Screen, error: BudgetError,
           notice: tuple[str, dict[str, Any]] | None) -> Mark | None:
    """The .po line of the translation that makes `error`, when the English screen has no such
    error; None to report at the flow line."""
    if lang == SOURCE_LANGUAGE or error.line is None or error.line >= len(screen.sources):
        return None
    source = screen.sources[error.line]
    if source is None:
        return None
    english = render_screen(target.renderer, target.flow, target.state, SOURCE_LANGUAGE,
                            sample_context(target.flow, SOURCE_LANGUAGE, target.money), notice, target.budget)
    more, back = nav_lines(target.renderer, target.flow, SOURCE_LANGUAGE)
    english_errors, _ = budget_problems(english, target.budget, more, back, menu=target.state.kind == "menu")
    if english_errors:
        return None
    return po_mark(target.renderer, lang, source)


_UNDEFINED = re.compile(r"^'([^']+)' is undefined$")


def _undefined_message(error: str, where: str) -> str:
    match = _UNDEFINED.match(error)
    if match:
        return f"undefined variable '{match.group(1)}' in {where}"
    return f"undefined variable in {where}: {error}"
