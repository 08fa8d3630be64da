"""String extraction: `pybabel extract -F babel.cfg` (with the alap_flow extractor) collects every
user-facing string, and the Bengali catalog translates all of them."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog
from babel.messages.frontend import CommandLineInterface
from babel.messages.pofile import read_po

from server.config import REPO_ROOT
from server.engine.validators import AmountValidator, BdMobileValidator, IntegerValidator, RegexValidator, Validator
from server.render import system
from server.tooling.babel_extract import extract_flow, extract_python
from server.tooling.check import flow_msgids, template_msgids

from tests.conftest import test_settings as settings_for

LOCALES = REPO_ROOT / "locales"


@pytest.fixture(scope="module")
def pot(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    """The command docs/flows.md gives, run in-process on the repository."""
    out = tmp_path_factory.mktemp("pot") / "messages.pot"
    CommandLineInterface().run(["pybabel", "--quiet", "extract", "-F", str(REPO_ROOT / "babel.cfg"),
                                "-o", str(out), str(REPO_ROOT)])
    with out.open("rb") as fh:
        return read_po(fh)


def catalog(lang: str) -> Catalog:
    with (LOCALES / lang / "LC_MESSAGES" / "messages.po").open("rb") as fh:
        return read_po(fh, locale=lang)


def shipped_flows():
    from server.actions import build_registry
    from server.engine.loader import load_flow_dir
    from server.render.environment import Renderer
    from server.upstreams import Upstreams

    settings = settings_for()
    renderer = Renderer(settings.templates_dir, settings.locales_dir)
    return load_flow_dir(settings.flows_dir, renderer, build_registry(Upstreams.from_settings(settings))), renderer


def test_pot_holds_every_msgid_of_the_flows_templates_and_engine(pot: Catalog) -> None:
    flows, renderer = shipped_flows()
    wanted = {m.msgid for flow in flows for m in flow_msgids(flow, renderer)}
    wanted |= {m.msgid for m in template_msgids(renderer)}
    wanted |= {v for k, v in vars(system).items() if k.isupper() and isinstance(v, str)}
    wanted |= {cls.default_error for cls in (Validator, RegexValidator, IntegerValidator, AmountValidator,
                                              BdMobileValidator)}
    wanted.add("Please enter a value.")  # Validator.check's answer to an empty input
    missing = sorted(wanted - {m.id for m in pot if m.id})
    assert not missing, f"not extracted: {missing}"


def test_bengali_translates_every_extracted_msgid(pot: Catalog) -> None:
    bn = catalog("bn")
    problems = []
    for message in pot:
        if not message.id:
            continue
        found = bn.get(message.id)
        if found is None:
            problems.append(f"missing: {message.id!r}")
        elif found.fuzzy or not found.string:
            problems.append(f"{'fuzzy' if found.fuzzy else 'untranslated'}: {message.id!r}")
    assert not problems, "locales/bn needs:\n" + "\n".join(problems)


def test_pybabel_update_would_leave_bengali_complete(pot: Catalog) -> None:
    """What `pybabel update` does to the catalog, in memory: no entry may come out new,
    untranslated or fuzzy-matched."""
    bn = catalog("bn")
    bn.update(pot)
    incomplete = [m.id for m in bn if m.id and (m.fuzzy or not m.string)]
    assert not incomplete, f"after pybabel update, locales/bn lacks: {incomplete}"


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


def test_pybabel_update_keeps_every_bengali_translation(pot: Catalog) -> None:
    bn = catalog("bn")
    bn.update(pot)
    assert not bn.obsolete, f"would become obsolete: {sorted(bn.obsolete)}"
