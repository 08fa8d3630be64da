"""`alap translate` (extract + update for a project): new, fuzzy and obsolete entries are said;
the engine's texts stay out of the author's catalogs unless the author overrides one, and an
override is kept and wins at render time."""
from __future__ import annotations

import shutil
from pathlib import Path

from babel.messages.pofile import read_po, write_po

from server.render.environment import Renderer
from server.tooling.scaffold import SKELETON
from server.tooling.translate import translate


def project(tmp_path: Path) -> Path:
    root = tmp_path / "p"
    shutil.copytree(SKELETON, root)
    return root


def run(root: Path) -> str:
    return translate(root / "flows", root / "templates", root / "locales")


def bn_catalog(root: Path):
    with (root / "locales" / "bn" / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale="bn")


def test_new_fuzzy_and_obsolete_are_reported(tmp_path) -> None:
    root = project(tmp_path)
    assert "bn: 0 new, 0 fuzzy, 0 obsolete, 0 untranslated" in run(root)
    flow = root / "flows" / "main.yaml"
    flow.write_text(flow.read_text().replace('text: "Your name:"', 'text: "Your full name:"')
                    .replace('text: "Welcome!"', 'text: "Good morning"'))
    report = run(root)
    # bn pre-fills the new msgid from the old one it resembles (which is then not obsolete)
    assert "bn: 2 new, 1 fuzzy, 1 obsolete, 1 untranslated" in report
    assert "    fuzzy: 'Your full name:'" in report and "    obsolete: 'Welcome!'" in report
    catalog = bn_catalog(root)
    assert catalog.get("Your full name:").fuzzy and catalog.get("Your full name:").string == "আপনার নাম:"
    assert not catalog.get("Good morning").string


def test_engine_texts_are_not_the_authors_but_an_override_is_kept_and_wins(tmp_path) -> None:
    root = project(tmp_path)
    assert bn_catalog(root).get("Invalid choice.") is None
    assert Renderer(root / "templates", root / "locales").gettext("bn", "Invalid choice.") == "ভুল নির্বাচন।"
    catalog = bn_catalog(root)
    catalog.add("Invalid choice.", "ভুল!")
    with (root / "locales" / "bn" / "LC_MESSAGES" / "messages.po").open("wb") as fh:
        write_po(fh, catalog)
    assert "0 obsolete" in run(root).split("\n")[1]
    assert bn_catalog(root).get("Invalid choice.").string == "ভুল!"
    assert Renderer(root / "templates", root / "locales").gettext("bn", "Invalid choice.") == "ভুল!"
