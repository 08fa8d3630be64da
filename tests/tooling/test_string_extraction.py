"""String extraction: `alap translate`'s extraction (the alap_flow extractor for flows, Jinja's
for templates, the Python extractors for the engine) collects every user-facing string, and the
Bengali catalogs (the project's and the engine's) translate all of them."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po

from server.config import REPO_ROOT
from server.engine.validators import AmountValidator, BdMobileValidator, IntegerValidator, RegexValidator, Validator
from server.render import system
from server.tooling.babel_extract import extract_flow, extract_python
from server.tooling.check import flow_msgids, template_msgids
from server.tooling.translate import engine_msgids, project_msgids, template_catalog

from tests.conftest import test_settings as settings_for

LOCALES = REPO_ROOT / "locales"
ENGINE_LOCALES = REPO_ROOT / "server" / "locales"


@pytest.fixture(scope="module")
def pot() -> dict[str, Catalog]:
    """What `alap translate` extracts: the project's texts (flows, templates) for locales/, and
    the engine's own for the package's server/locales/."""
    return {"project": template_catalog(project_msgids(REPO_ROOT / "flows", REPO_ROOT / "templates")),
            "engine": template_catalog(engine_msgids())}


def catalog(lang: str, folder: Path = LOCALES) -> Catalog:
    with (folder / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def shipped_flows():
    from server.actions import build_registry
    from server.engine.loader import load_flow_dir
    from server.render.environment import Renderer
    from server.upstreams import Upstreams

    settings = settings_for()
    renderer = Renderer(settings.templates_dir, settings.locales_dir)
    return load_flow_dir(settings.flows_dir, renderer, build_registry(Upstreams.from_settings(settings))), renderer


def test_extraction_holds_every_msgid_of_the_flows_templates_and_engine(pot: dict[str, Catalog]) -> None:
    flows, renderer = shipped_flows()
    wanted = {m.msgid for flow in flows for m in flow_msgids(flow, renderer)}
    wanted |= {m.msgid for m in template_msgids(renderer)}
    wanted |= {v for k, v in vars(system).items() if k.isupper() and isinstance(v, str)}
    wanted |= {cls.default_error for cls in (Validator, RegexValidator, IntegerValidator, AmountValidator,
                                              BdMobileValidator)}
    wanted.add("Please enter a value.")  # Validator.check's answer to an empty input
    extracted = {m.id for m in pot["project"] if m.id} | {m.id for m in pot["engine"] if m.id}
    missing = sorted(wanted - extracted)
    assert not missing, f"not extracted: {missing}"


def test_engine_texts_live_in_the_package_catalogs_only(pot: dict[str, Catalog]) -> None:
    """The engine's texts ship in server/locales; the project's catalog holds the flows' own
    (a text both use, like the busy message, is in both)."""
    project = {m.id for m in pot["project"] if m.id}
    engine_only = {m.id for m in pot["engine"] if m.id} - project
    assert "Invalid choice." in engine_only and "More" in engine_only
    assert not engine_only & {m.id for m in catalog("bn") if m.id}


@pytest.mark.parametrize("which, folder", [("project", LOCALES), ("engine", ENGINE_LOCALES)])
def test_bengali_translates_every_extracted_msgid(pot: dict[str, Catalog], which: str, folder: Path) -> None:
    bn = catalog("bn", folder)
    problems = []
    for message in pot[which]:
        if not message.id:
            continue
        found = bn.get(message.id)
        if found is None:
            problems.append(f"missing: {message.id!r}")
        elif found.fuzzy or not found.string:
            problems.append(f"{'fuzzy' if found.fuzzy else 'untranslated'}: {message.id!r}")
    assert not problems, f"{folder}/bn needs:\n" + "\n".join(problems)


@pytest.mark.parametrize("which, folder", [("project", LOCALES), ("engine", ENGINE_LOCALES)])
def test_an_update_would_leave_bengali_complete_and_nothing_obsolete(pot: dict[str, Catalog], which: str,
                                                                    folder: Path) -> None:
    """What `alap translate` does to the catalog, in memory: no entry may come out new,
    untranslated, fuzzy-matched or obsolete."""
    bn = catalog("bn", folder)
    bn.update(pot[which])
    incomplete = [m.id for m in bn if m.id and (m.fuzzy or not m.string)]
    assert not incomplete, f"after an update, {folder}/bn lacks: {incomplete}"
    assert not bn.obsolete, f"would become obsolete: {sorted(bn.obsolete)}"


def test_flow_extractor_yields_texts_labels_errors_and_literal_calls() -> None:
    source = b"""flow: t
start: m
states:
  m:
    kind: menu
    text: "Hello {{ name }}"
    options:
      - label: "Go"
        next: ask
  ask:
    kind: input
    text: "{{ _('Amount') }}:"
    var: x
    error: "Bad amount."
    next: m
"""
    found = [(line, message, comments) for line, _, message, comments in
             extract_flow(io.BytesIO(source), ["_"], [], {})]
    assert [(line, message) for line, message, _ in found] == [
        (6, "Hello {{ name }}"), (8, "Go"), (12, "{{ _('Amount') }}:"), (12, "Amount"), (14, "Bad amount.")]
    assert found[1][2] == ["flow t, state m: option 1"]


def test_flow_extractor_skips_a_broken_file() -> None:
    assert list(extract_flow(io.BytesIO(b"flow: [unclosed"), [], [], {})) == []


def test_python_extractor_reads_class_attribute_defaults_and_extra_calls() -> None:
    path = Path(REPO_ROOT / "server" / "engine" / "validators.py")
    with path.open("rb") as fh:
        messages = {m for _, _, m, _ in extract_python(fh, ["N_"], [], {"calls": "Invalid"})}
    assert {"Please enter a value.", IntegerValidator.default_error, BdMobileValidator.default_error} <= messages
