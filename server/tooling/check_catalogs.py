"""`alap check` on the catalogs: every msgid a flow, template or the engine shows must be
translated in bn (errors; en, the source language, may stay empty: a missing or fuzzy en entry
is a warning); values passed to `_()` that bn lacks (warnings); and the committed
`messages.pot` must hold exactly what `alap translate` would extract (a warning when stale)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import jinja2

from ..engine.errors import Mark
from ..engine.model import Flow
from ..engine.validators import Invalid
from ..render.catalogs import message_problem
from ..render.environment import Renderer
from .check_names import texts_of
from .findings import SOURCE_LANGUAGE, Report, display_path, short
from .translate import engine_msgids, pot_msgids, project_msgids


@dataclass(frozen=True)
class Msgid:
    msgid: str
    mark: Mark
    what: str


def flow_msgids(flow: Flow, renderer: Renderer) -> Iterator[Msgid]:
    """Every msgid a flow shows: texts, labels, errors, `_('literal')` calls inside them and the
    default errors of validators used without an `error:`."""
    env = renderer.envs[SOURCE_LANGUAGE]
    for state in flow.states.values():
        for what, mark, source in texts_of(state):
            yield Msgid(source, mark, what)
            for _, _, literal in env.extract_translations(source):
                if isinstance(literal, str):
                    yield Msgid(literal, mark, f"_() in {what}")
        if state.kind == "input" and state.validator is not None and not state.error:
            empty = state.validator.check("")
            for invalid in {state.validator.fail().msgid, empty.msgid if isinstance(empty, Invalid) else ""} - {""}:
                yield Msgid(invalid, state.mark, f"the {state.validator.kind} validator's error in '{state.name}'")


def template_msgids(renderer: Renderer) -> Iterator[Msgid]:
    env = renderer.envs[SOURCE_LANGUAGE]
    for path in sorted(renderer.templates_dir.rglob("*.j2")):
        try:
            found = list(env.extract_translations(path.read_text(encoding="utf-8")))
        except jinja2.TemplateSyntaxError:
            continue  # reported by the loader when a flow uses it
        for lineno, _, message in found:
            parts = message if isinstance(message, tuple) else (message,)
            for part in parts:
                if isinstance(part, str):
                    yield Msgid(part, Mark(display_path(path), lineno, 1), f"template {path.name}")


def system_msgids() -> Iterator[Msgid]:
    """The engine's own texts (server/render/system.py and friends), shipped in its catalogs."""
    for item in engine_msgids():
        yield Msgid(item.msgid, Mark(item.file, item.line, 1), "engine text")


def check_catalogs(flows: list[Flow], renderer: Renderer, report: Report) -> set[str]:
    """Report msgids missing, fuzzy or untranslated; returns every static msgid seen."""
    seen: set[str] = set()
    items = [m for flow in flows for m in flow_msgids(flow, renderer)]
    items += list(template_msgids(renderer)) + list(system_msgids())
    for item in items:
        seen.add(item.msgid)
        for lang in renderer.languages:
            if renderer.catalogs[lang].catalog is None:
                continue  # the catalog itself is reported as unreadable
            problem, path = catalog_problem(renderer, item.msgid, lang)
            if problem:
                severity = "warning" if lang == SOURCE_LANGUAGE else "error"
                report.add(item.mark, f"msgid {_quote(item.msgid)} ({item.what}) {problem} in "
                           f"{display_path(path)}", severity)
    return seen


def catalog_problem(renderer: Renderer, msgid: str, lang: str) -> tuple[str | None, Path]:
    """Why `msgid` would not show translated in `lang` (the project's catalog or, for engine
    texts, the package's), by the rule `alap serve` applies (server/render/catalogs.py)."""
    message, loaded = renderer.message(lang, msgid)
    path = loaded.path or renderer.locales_dir
    if message is None or loaded.catalog is None:
        return "is missing", path
    return message_problem(loaded.catalog, msgid, lang), path


def po_mark(renderer: Renderer, lang: str, msgid: str) -> Mark | None:
    """Where `msgid`'s translation is written in `lang`'s catalog (the project's or engine's)."""
    message, loaded = renderer.message(lang, msgid)
    if message is None or not message.string or loaded.path is None:
        return None
    return Mark(display_path(loaded.path), int(getattr(message, "lineno", 0) or 1), 1)


def _quote(msgid: str) -> str:
    return repr(short(msgid, 50))


def check_pot(flows_dir: Path, templates_dir: Path, locales_dir: Path, report: Report) -> None:
    """Warn when the committed messages.pot is not what `alap translate` would write."""
    pot = Path(locales_dir) / "messages.pot"
    committed = pot_msgids(pot)
    mark = Mark(display_path(pot), 1, 1)
    if committed is None:
        report.add(mark, "no readable messages.pot: run `alap translate`", "warning")
        return
    current = {item.msgid for item in project_msgids(flows_dir, templates_dir)}
    if committed != current:
        new, gone = sorted(current - committed), sorted(committed - current)
        parts = [f"{len(new)} msgid(s) not in it" + (f" (e.g. {_quote(new[0])})" if new else ""),
                 f"{len(gone)} no longer used" + (f" (e.g. {_quote(gone[0])})" if gone else "")]
        report.add(mark, f"messages.pot is stale: {', '.join(parts)}; run `alap translate`", "warning")


# -- values passed to _() ------------------------------------------------------------------------

def record_gettext(renderer: Renderer) -> dict[str, set[str]]:
    """Wrap each language's `gettext` global (which `_()` and `{% trans %}` call) to record the
    msgids that rendering asks for, so values a flow translates at run time can be checked."""
    seen: dict[str, set[str]] = {lang: set() for lang in renderer.languages}
    for lang, env in renderer.envs.items():
        original = env.globals["gettext"]

        @jinja2.pass_context
        def gettext(__context: Any, __string: str, __original: Any = original, __seen: set[str] = seen[lang],
                    **variables: Any) -> str:
            __seen.add(__string)
            return __original(__context, __string, **variables)

        env.globals["gettext"] = gettext
    return seen


def check_dynamic_msgids(flow: Flow, renderer: Renderer, seen: dict[str, set[str]], static: set[str],
                         report: Report) -> None:
    """Warn about values shown through `_()` with the sample data that bn does not translate.
    Runs after the screens of `flow` were rendered; clears what it consumed."""
    for lang, msgids in seen.items():
        if lang == SOURCE_LANGUAGE or renderer.catalogs[lang].catalog is None:
            msgids.clear()
            continue
        for msgid in sorted(msgids - static):
            problem, path = catalog_problem(renderer, msgid, lang)
            if problem and msgid:
                report.add(flow.mark or Mark(flow.file, 1, 1),
                           f"msgid {_quote(msgid)} (a value flow '{flow.name}' shows through _() with its "
                           f"sample data) {problem} in {display_path(path)}", "warning")
        msgids.clear()
