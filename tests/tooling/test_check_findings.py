"""`alap check`'s findings beyond the loader: budget errors at the .po line when a translation
is what is too long, an error notice that leaves no option on a page, inputs without a sample,
`|float` on money, a stale messages.pot; and the shipped flows pass `--strict`."""
from __future__ import annotations

import shutil
from pathlib import Path

from server.actions import build_registry
from server.config import REPO_ROOT
from server.tooling.check import Finding, run_check
from server.upstreams import Upstreams

from ..conftest import test_settings as settings_for


def check(**dirs: Path) -> list[Finding]:
    settings = settings_for(**dirs)
    return run_check(settings, build_registry(Upstreams.from_settings(settings)))


def project(tmp_path: Path) -> dict[str, Path]:
    for name in ("flows", "locales", "templates"):
        shutil.copytree(REPO_ROOT / name, tmp_path / name)
    return {"flows_dir": tmp_path / "flows", "locales_dir": tmp_path / "locales", "templates_dir": tmp_path / "templates"}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line)


def test_shipped_flows_pass_strict() -> None:
    assert [str(f) for f in check()] == []


def test_a_translation_too_long_is_reported_at_its_po_line(tmp_path) -> None:
    dirs = project(tmp_path)
    po = dirs["locales_dir"] / "bn" / "LC_MESSAGES" / "messages.po"
    edit(po, 'msgstr "আপনার ভাষা বেছে নিন"', 'msgstr "' + "আপনার পছন্দের ভাষা বেছে নিন " * 3 + '"')
    errors = [f for f in check(**dirs) if f.severity == "error"]
    line = line_of(po, 'msgid "Choose your language"')
    assert [(Path(f.file).name, f.line) for f in errors] == [("messages.po", line)]
    assert "screen 'language' in bn has" in errors[0].message and "the first page would show no option" in errors[0].message


def test_a_flow_text_too_long_in_english_is_reported_at_the_flow_line(tmp_path) -> None:
    dirs = project(tmp_path)
    demo = dirs["flows_dir"] / "demo.yaml"
    long_text = "Choose your language " * 9
    edit(demo, 'text: "Choose your language"', f'text: "{long_text}"')
    errors = [f for f in check(**dirs) if f.severity == "error" and "the first page would show no option" in f.message]
    assert errors and all(f.file.endswith("demo.yaml") and f.line == line_of(demo, long_text) for f in errors)


FLOW = """flow: t
code: "*9#"
start: m
states:
  m:
    kind: menu
    text: "Hi"
    options:
      - label: "{long}"
        next: ask
      - label: "ok"
        next: ask
  ask:
    kind: input
    text: "Rent:"
    var: rent
    validate: {{type: amount, min: 1, max: 100000}}
    next: done
  done:
    kind: end
    text: "Tax: {{{{ (rent|float) * 0.07 }}}}"
"""


def small_project(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "t.yaml").write_text(FLOW.format(long="x" * 137), encoding="utf-8")
    return {"flows_dir": tmp_path / "flows", "templates_dir": REPO_ROOT / "templates", "locales_dir": tmp_path / "none"}


def test_an_error_notice_that_leaves_no_option_on_page_one_is_an_error(tmp_path) -> None:
    found = check(**small_project(tmp_path))
    errors = [str(f) for f in found if "after an invalid input" in f.message and f.severity == "error"]
    assert any("screen 'm' after an invalid input in en shows no option on its first page" in e for e in errors), found


def test_an_input_without_sample_is_measured_at_its_longest_and_warned_about(tmp_path) -> None:
    found = [f for f in check(**small_project(tmp_path)) if "no sample value" in f.message]
    assert [(f.line, f.severity, f.message) for f in found] == [
        (16, "warning", "input 'ask': no sample value for 'rent' in `sample:`; screens are measured with "
                        "'99999.99' (the longest amount up to its maximum)")]


def test_float_on_money_is_a_warning(tmp_path) -> None:
    found = [f for f in check(**small_project(tmp_path)) if "|float" in f.message]
    assert [(f.line, f.severity) for f in found] == [(21, "warning")]
    assert "'rent|float' in screen 'done': 'rent' is money" in found[0].message


def test_a_stale_messages_pot_is_reported(tmp_path) -> None:
    dirs = project(tmp_path)
    assert not [f for f in check(**dirs) if "messages.pot" in f.file]
    edit(dirs["flows_dir"] / "demo.yaml", 'text: "Choose your language"', 'text: "Pick a language"')
    found = [f for f in check(**dirs) if f.file.endswith("messages.pot")]
    assert [f.severity for f in found] == ["warning"]
    assert found[0].message == ("messages.pot is stale: 1 msgid(s) not in it (e.g. 'Pick a language'), 1 no longer "
                                "used (e.g. 'Choose your language'); run `alap translate`")


def test_a_validator_parameter_typo_fails_check_at_its_line(tmp_path) -> None:
    dirs = small_project(tmp_path)
    flow = dirs["flows_dir"] / "t.yaml"
    flow.write_text(flow.read_text().replace("{type: amount, min: 1, max: 100000}",
                                             "\n      type: amount\n      minimum: 100"), encoding="utf-8")
    errors = [str(f) for f in check(**dirs) if f.severity == "error" and "minimum" in f.message]
    assert errors == [f"{flow}:{line_of(flow, 'minimum: 100')}:7: unknown parameter 'minimum' of the amount validator (did you mean 'min'?)"]
