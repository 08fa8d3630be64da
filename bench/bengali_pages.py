"""How many pages the shipped USSD screens take in Bengali (80 UCS-2 characters a page).

    .venv/bin/python bench/bengali_pages.py            # totals, and every screen over one page
    .venv/bin/python bench/bengali_pages.py --more আরো --back আগে   # with other Bengali labels

Renders every screen state of every USSD flow with its `sample:` data the way `alap check` does
(server/tooling/check.py), plain and after an invalid input, and paginates it as the engine
does. Prints the main menu's pages, the screens that need more than one page, and the totals,
so a change to labels, translations or pagination can be measured (README, "Bengali screens").
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from server.actions import build_registry  # noqa: E402
from server.config import load_settings  # noqa: E402
from server.engine.loader import load_flow_dir  # noqa: E402
from server.render import system  # noqa: E402
from server.render.budget import Budget, paginate  # noqa: E402
from server.render.environment import Renderer  # noqa: E402
from server.tooling.check import render_screen, sample_context  # noqa: E402
from server.upstreams import Upstreams  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--more", default=None, help="the Bengali 'More' label to measure (default: the catalog's)")
    parser.add_argument("--back", default=None, help="the Bengali 'Back' label to measure (default: the catalog's)")
    args = parser.parse_args()
    settings = load_settings()
    renderer = Renderer(settings.templates_dir, settings.locales_dir)
    overrides = {system.MORE: args.more, system.BACK: args.back}
    catalog_gettext = renderer.gettext
    # The engine's layout (render/screen.py) reads the labels through gettext: measure with them.
    renderer.gettext = lambda lang, msgid: (lang == "bn" and overrides.get(msgid)) or catalog_gettext(lang, msgid)
    flows = load_flow_dir(settings.flows_dir, renderer, build_registry(Upstreams.from_settings(settings)))
    budget = Budget(settings.budget_ascii, settings.budget_unicode)
    totals = {"plain": 0, "after an invalid choice": 0}
    for flow in flows:
        if "ussd" not in flow.channels:
            continue
        nav = flow.navigation
        more = f"{nav.more}. {renderer.gettext('bn', system.MORE)}"
        back = f"{nav.back}. {renderer.gettext('bn', system.BACK)}"
        for state in flow.states.values():
            if state.kind not in ("menu", "input", "end"):
                continue
            ctx = sample_context(flow, "bn")
            variants = {"plain": None}
            if state.kind == "menu":
                variants["after an invalid choice"] = (system.INVALID_CHOICE, {})
            for label, notice in variants.items():
                try:
                    screen = render_screen(renderer, flow, state, "bn", ctx, notice, budget)
                except TypeError:  # an older render_screen, without the engine's notice layout
                    screen = render_screen(renderer, flow, state, "bn", ctx, notice)
                pages = paginate(screen.lines, budget, more, back)
                totals[label] += len(pages)
                if len(pages) > 1 or (flow.name, state.name) == ("demo", "main"):
                    first_has_option = any(line in pages[0].split("\n") for line in screen.options) \
                        if screen.options else True
                    print(f"{flow.name}.{state.name} ({label}): {len(pages)} page(s)"
                          f"{'' if first_has_option else ', no option on page 1'}")
    print(f"nav labels: {more!r} {back!r}")
    for label, total in totals.items():
        print(f"total Bengali pages, {label}: {total}")


if __name__ == "__main__":
    main()
