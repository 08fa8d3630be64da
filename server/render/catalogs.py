"""Gettext catalogs read straight from `locales/<lang>/LC_MESSAGES/messages.po`.

Two sets: the engine's own texts ("Invalid choice.", navigation labels, validator errors, the
shipped actions' values) in the package's `server/locales/`, and the project's (its flows and
templates) in the project's `locales/`. The renderer looks in the project's first, so an
author may override an engine text.

Compiling in memory (Babel's write_mo into a buffer) means an edited .po takes effect on the
next load without a separate compile step, and fuzzy entries are never used.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations


@dataclass
class LoadedCatalog:
    language: str
    path: Path | None
    translations: NullTranslations
    catalog: Catalog | None = None
    problems: list[str] = field(default_factory=list)


ENGINE_LOCALES = Path(__file__).resolve().parent.parent / "locales"


def po_path(locales_dir: Path, language: str) -> Path:
    return locales_dir / language / "LC_MESSAGES" / "messages.po"


def load_catalog(locales_dir: Path, language: str) -> LoadedCatalog:
    path = po_path(locales_dir, language)
    if not path.exists():
        return LoadedCatalog(language, None, NullTranslations(), problems=[f"{path}: catalog not found"])
    try:
        with path.open("rb") as fh:
            catalog = read_po(fh, locale=language, abort_invalid=True)
    except Exception as exc:  # Babel raises several types for broken .po files
        return LoadedCatalog(language, path, NullTranslations(), problems=[f"{path}: {exc}"])
    buffer = io.BytesIO()
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return LoadedCatalog(language, path, Translations(fp=buffer), catalog)
