"""`alap translate`: extract + update for a flow project, so nobody hand-writes a babel.cfg.

    alap translate            # locales/messages.pot from flows/ and templates/, merged into
                              # locales/<lang>/LC_MESSAGES/messages.po; says what is new,
                              # fuzzy (pre-filled from a similar msgid: review it) or obsolete

A project's catalogs hold the project's texts only: the engine's own ("Invalid choice.",
"More", validator errors, the shipped actions' values) ship translated inside the package
(server/locales/, server/render/catalogs.py). An engine text an author puts in their catalog
overrides the engine's translation, and `alap translate` keeps it (it is never "obsolete").
`alap translate --engine` regenerates the package's own catalogs (for Alap's maintainers).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from babel.messages.catalog import Catalog
from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po, write_po

from ..render.catalogs import ENGINE_LOCALES, po_path
from ..render.environment import LANGUAGES
from .findings import display_path

PACKAGE_DIR = ENGINE_LOCALES.parent
_FLOW_METHOD = "server.tooling.babel_extract:extract_flow"
# The options of the runtime environment (server/render/environment.py), so {% trans %} msgids
# come out exactly as the renderer looks them up.
_JINJA = ("jinja2.ext:babel_extract", {"trim_blocks": "true", "lstrip_blocks": "true",
                                       "extensions": "jinja2.ext.i18n"})
_PYTHON_ENGINE = (
    ("render/system.py", "python", {}),
    ("engine/validators.py", "server.tooling.babel_extract:extract_python",
     {"calls": "Invalid", "assignments": "default_error"}),
    ("actions/**.py", "python", {}),
    ("recharge/**.py", "python", {}),
)


@dataclass(frozen=True)
class Extracted:
    msgid: str
    file: str
    line: int
    comments: tuple[str, ...] = ()


def _extract(folder: Path, methods: Iterable[tuple[str, str, dict[str, str]]]) -> Iterator[Extracted]:
    if not folder.is_dir():
        return
    methods = list(methods)
    shown = display_path(folder)
    for filename, lineno, message, comments, _ in extract_from_dir(
            folder, [(p, m) for p, m, _ in methods], {p: o for p, _, o in methods}):
        msgid = message[0] if isinstance(message, tuple) else message
        if msgid:
            yield Extracted(msgid, f"{shown}/{filename}", lineno, tuple(comments))


def project_msgids(flows_dir: Path, templates_dir: Path) -> list[Extracted]:
    """Every text of the project's flows and templates, in file order."""
    flows = [("**.yaml", _FLOW_METHOD, {}), ("**.yml", _FLOW_METHOD, {})]
    templates = [("**.j2", _JINJA[0], _JINJA[1]), ("**.html", _JINJA[0], _JINJA[1]), ("**.txt", _JINJA[0], _JINJA[1])]
    return [*_extract(Path(flows_dir), flows), *_extract(Path(templates_dir), templates)]


def engine_msgids() -> list[Extracted]:
    """Every text of the engine itself (the package's catalogs)."""
    return list(_extract(PACKAGE_DIR, _PYTHON_ENGINE))


def template_catalog(items: Iterable[Extracted], project: str = "alap flows") -> Catalog:
    catalog = Catalog(project=project, charset="utf-8", fuzzy=False)
    for item in items:
        catalog.add(item.msgid, locations=[(item.file, item.line)], auto_comments=list(item.comments))
    return catalog


def pot_msgids(path: Path) -> set[str] | None:
    """The msgids of a .pot file, or None when it is missing or unreadable."""
    try:
        with path.open("rb") as fh:
            return {m.id for m in read_po(fh) if m.id and isinstance(m.id, str)}
    except (OSError, ValueError):
        return None
    except Exception:  # Babel raises several types for a broken file
        return None


@dataclass(frozen=True)
class Update:
    """What merging the template changed in one language's catalog."""

    language: str
    path: Path
    new: list[str]
    fuzzy: list[str]  # made fuzzy by this merge
    obsolete: list[str]
    untranslated: int


def _update_of(language: str, path: Path, catalog: Catalog, fuzzy_before: dict[str, bool]) -> Update:
    """`fuzzy_before`: msgid -> fuzzy, of the catalog before the merge."""
    messages = [m for m in catalog if m.id]
    return Update(language, path,
                  new=[m.id for m in messages if m.id not in fuzzy_before],
                  fuzzy=[m.id for m in messages if m.fuzzy and not fuzzy_before.get(m.id, False)],
                  obsolete=[str(k) for k in catalog.obsolete],
                  untranslated=0 if language == "en" else sum(1 for m in messages if not m.string))


def update_catalogs(template: Catalog, locales_dir: Path, languages: Iterable[str] = LANGUAGES,
                    keep: set[str] = frozenset()) -> list[Update]:
    """Merge `template` into each language's .po (created when missing); entries whose msgid is
    in `keep` (engine texts the author overrides) stay. Writes the files."""
    updates = []
    for lang in languages:
        path = po_path(Path(locales_dir), lang)
        if path.exists():
            with path.open("rb") as fh:
                catalog = read_po(fh, locale=lang)
        else:
            catalog = Catalog(locale=lang, project=template.project, charset="utf-8", fuzzy=False)
        merged = template_catalog([], template.project)
        for message in template:
            if message.id:
                merged.add(message.id, locations=message.locations, auto_comments=message.auto_comments)
        for msgid in sorted(keep):
            old = catalog.get(msgid)
            if old is not None and msgid not in merged:
                merged.add(msgid, locations=[], auto_comments=["overrides the engine's text"])
        before = {m.id: m.fuzzy for m in catalog if m.id}
        catalog.update(merged)
        update = _update_of(lang, path, catalog, before)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as fh:
            write_po(fh, catalog, width=100, ignore_obsolete=False)
        updates.append(update)
    return updates


def write_template(template: Catalog, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, template, width=100, omit_header=False)


def translate(flows_dir: Path, templates_dir: Path, locales_dir: Path, *, engine: bool = False) -> str:
    """Run extract + update; returns the report to print."""
    if engine:
        items, locales_dir, project = engine_msgids(), ENGINE_LOCALES, "alap engine"
        keep: set[str] = set()
    else:
        items, project = project_msgids(flows_dir, templates_dir), "alap flows"
        keep = {item.msgid for item in engine_msgids()}
    template = template_catalog(items, project)
    pot = Path(locales_dir) / "messages.pot"
    write_template(template, pot)
    lines = [f"alap translate: {display_path(pot)}: {len(template)} msgid(s)"]
    for update in update_catalogs(template, Path(locales_dir), keep=keep):
        lines.append(f"  {update.language}: {len(update.new)} new, {len(update.fuzzy)} fuzzy, "
                     f"{len(update.obsolete)} obsolete, {update.untranslated} untranslated "
                     f"({display_path(update.path)})")
        for what, msgids in (("new", update.new), ("fuzzy", update.fuzzy), ("obsolete", update.obsolete)):
            lines += [f"    {what}: {_one_line(m)}" for m in msgids]
    lines.append("next: translate the new entries, review and un-fuzzy the fuzzy ones, then `alap check`")
    return "\n".join(lines)


def _one_line(msgid: str, width: int = 70) -> str:
    text = msgid.replace("\n", "\\n")
    return repr(text if len(text) <= width else text[: width - 3] + "...")
