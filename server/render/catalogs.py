"""Gettext catalogs read straight from `locales/<lang>/LC_MESSAGES/messages.po`, and the rules
that say whether they can serve.

Two sets: the engine's own texts ("Invalid choice.", navigation labels, validator errors, the
shipped actions' values) in the package's `server/locales/`, and the project's (its flows and
templates) in the project's `locales/`. The renderer looks in the project's first, so an
author may override an engine text.

Compiling in memory (Babel's write_mo into a buffer) means an edited .po takes effect on the
next load without a separate compile step, and fuzzy entries are never used.

A catalog that cannot be read falls back to no translation at all: gettext then answers the
English msgid. That is never acceptable in production (a Bengali subscriber would silently get
English), so `load_problems()` lists every unreadable catalog (the app refuses to build on
any, server/app.py) and `message_problem()` is the rule by which `alap check` reports every
msgid a shipped language lacks (server/tooling/check_catalogs.py), a gate `alap serve` and
`alap dev` apply too.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

SOURCE_LANGUAGE = "en"  # msgids are English: an empty msgstr there means "the msgid itself"


@dataclass
class LoadedCatalog:
    language: str
    path: Path | None
    translations: NullTranslations
    catalog: Catalog | None = None
    problems: list[str] = field(default_factory=list)  # why it could not be read
    problem_line: int = 1  # where in the file, when the parser says


@dataclass(frozen=True, order=True)
class CatalogProblem:
    file: str
    line: int
    col: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.message}"


ENGINE_LOCALES = Path(__file__).resolve().parent.parent / "locales"


def po_path(locales_dir: Path, language: str) -> Path:
    return locales_dir / language / "LC_MESSAGES" / "messages.po"


# A .po file parsed and compiled, by language and content: every app built in one process (the
# gate of `alap serve` and then the app itself; many in the tests) reads the same files. An
# edited file is a new key. Each load still gets Translations of its own (the renderer chains a
# fallback onto them); the Catalog is only read.
_PARSED: dict[tuple[str, bytes], tuple[Catalog, bytes]] = {}


def load_catalog(locales_dir: Path, language: str) -> LoadedCatalog:
    path = po_path(locales_dir, language)
    if not path.exists():
        return LoadedCatalog(language, None, NullTranslations(), problems=["catalog not found"])
    try:
        data = path.read_bytes()
        parsed = _PARSED.get((language, data))
        if parsed is None:
            catalog = read_po(io.BytesIO(data), locale=language, abort_invalid=True)
            compiled = io.BytesIO()
            write_mo(compiled, catalog, use_fuzzy=False)
            parsed = _PARSED[(language, data)] = (catalog, compiled.getvalue())
    except Exception as exc:  # unreadable file, not UTF-8, or Babel's several errors for broken .po files
        lineno = getattr(exc, "lineno", None)  # Babel's PoFileError counts lines from 0
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
        if isinstance(lineno, int):
            reason = reason.replace(f" on {lineno}", "")  # "Unknown or misformatted keyword on 3"
        return LoadedCatalog(language, path, NullTranslations(), problems=[f"catalog cannot be read: {reason}"],
                             problem_line=lineno + 1 if isinstance(lineno, int) and lineno >= 0 else 1)
    catalog, mo = parsed
    return LoadedCatalog(language, path, Translations(fp=io.BytesIO(mo)), catalog)


def message_problem(catalog: Catalog, msgid: str, language: str) -> str | None:
    """Why `msgid` would not be shown translated in `language`, or None when it would."""
    message = catalog.get(msgid)
    if message is None:
        return "is missing"
    if message.fuzzy:
        return "is fuzzy (fuzzy entries are not used)"
    if language != SOURCE_LANGUAGE and not message.string:
        return "has no translation"
    return None


def load_problems(catalogs: Mapping[str, LoadedCatalog], locales_dir: Path | None = None) -> list[CatalogProblem]:
    """Every catalog that could not be read, at its file (and line, when known)."""
    problems = []
    for language, loaded in catalogs.items():
        where = loaded.path or (po_path(locales_dir, language) if locales_dir else Path(language))
        for message in loaded.problems:
            problems.append(CatalogProblem(str(where), loaded.problem_line, 1, message))
    return problems
