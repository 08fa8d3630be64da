"""Every mapping of a flow rejects unknown keys at `file:line:col`, with a "did you mean" hint on
every unknown name (fields, validator types and parameters, declared action args, navigation,
options, targets, actions, outcomes, flows)."""
from __future__ import annotations

from pathlib import Path

import pytest

from server.actions import build_registry
from server.engine.errors import FlowErrors
from server.engine.loader import load_flow_dir
from server.engine.validators import validate_input, Valid
from server.render.environment import Renderer
from server.config import REPO_ROOT

HEAD = "flow: t\ncode: '*1#'\nstart: ask\nstates:\n"
ASK = """  ask:
    kind: input
    text: "Rent:"
    var: rent
    validate: {VALIDATE}
    next: done
  done:
    kind: end
    text: "ok"
"""


def problems(tmp_path: Path, text: str) -> list[str]:
    (tmp_path / "t.yaml").write_text(text, encoding="utf-8")
    renderer = Renderer(REPO_ROOT / "templates", REPO_ROOT / "locales")
    try:
        load_flow_dir(tmp_path, renderer, build_registry())
    except FlowErrors as exc:
        return [str(p) for p in exc.problems]
    return []


def where(tmp_path: Path, line: int, col: int) -> str:
    return f"{tmp_path / 't.yaml'}:{line}:{col}: "


def test_a_validator_parameter_typo_is_an_error_at_its_line(tmp_path) -> None:
    found = problems(tmp_path, HEAD + ASK.replace("{VALIDATE}", "\n      type: amount\n      minimum: 100"))
    assert found == [where(tmp_path, 11, 7) + "unknown parameter 'minimum' of the amount validator (did you mean 'min'?)"]


def test_an_unknown_validator_type_is_named_with_a_hint(tmp_path) -> None:
    found = problems(tmp_path, HEAD + ASK.replace("{VALIDATE}", "{type: ammount, min: 1}"))
    assert found == [where(tmp_path, 9, 22) + "unknown validator type 'ammount' (did you mean 'amount'?) "
                     "(text, regex, integer, amount, bd_mobile, any)"]


def test_unknown_target_state_says_did_you_mean(tmp_path) -> None:
    text = HEAD + ASK.replace("{VALIDATE}", "{type: integer}").replace("next: done", "next: dnoe")
    assert problems(tmp_path, text) == [where(tmp_path, 10, 11) + "unknown target state 'dnoe' (did you mean 'done'?)",
                                        where(tmp_path, 11, 3) + "state 'done' is unreachable from start 'ask'"]


def test_unknown_field_of_an_input_state_reads_an_input(tmp_path) -> None:
    text = HEAD + ASK.replace("{VALIDATE}", "{type: integer}").replace("    var: rent\n", "    var: rent\n    retires: 2\n")
    assert problems(tmp_path, text) == [
        where(tmp_path, 9, 5) + "state 'ask': unknown field 'retires' for an input state (did you mean 'retries'?)"]


def test_args_of_an_action_with_declared_parameters_are_checked(tmp_path) -> None:
    text = HEAD + """  ask:
    kind: action
    action: operator.detect
    args: {numbr: "01812345678"}
    outcomes: {ok: done, unknwn: done}
    fallback: done
  done:
    kind: end
    text: "ok"
"""
    found = problems(tmp_path, text)
    assert where(tmp_path, 8, 12) + ("action 'operator.detect' has no parameter 'numbr' (did you mean 'number'?) "
                                     "(it takes: number)") in found
    assert where(tmp_path, 9, 34) + ("action 'operator.detect' has no outcome 'unknwn' (did you mean 'unknown'?) "
                                     "(it has: ok, unknown)") in found


def test_an_action_without_declared_parameters_takes_any_args(tmp_path) -> None:
    text = HEAD + """  ask:
    kind: action
    action: vars.set
    args: {anything: "1"}
    outcomes: {ok: done}
    fallback: done
  done:
    kind: end
    text: "ok"
"""
    assert problems(tmp_path, text) == []


def test_unknown_action_navigation_key_and_option_field_have_hints(tmp_path) -> None:
    text = HEAD.replace("start: ask", "start: m\nnavigation: {bak: '0'}") + """  m:
    kind: menu
    text: "Hi"
    options:
      - lable: "One"
        next: go
  go:
    kind: action
    action: operator.detec
    fallback: m
"""
    found = problems(tmp_path, text)
    assert where(tmp_path, 4, 14) + "unknown navigation key 'bak' (did you mean 'back'?)" in found
    assert where(tmp_path, 10, 9) + "unknown option field 'lable' (did you mean 'label'?)" in found
    assert any("unknown action 'operator.detec' (did you mean 'operator.detect'?)" in p for p in found)


def test_paging_fields_are_strict_too(tmp_path) -> None:
    text = HEAD + ASK.replace("{VALIDATE}", "{type: integer}").replace(
        "    next: done\n", "    next: done\n    more: {nxt: done}\n", 1)
    found = problems(tmp_path, text)
    assert where(tmp_path, 11, 12) + "unknown 'more' field 'nxt' (did you mean 'next'?)" in found


def test_text_validator_max_length(tmp_path) -> None:
    assert problems(tmp_path, HEAD + ASK.replace("{VALIDATE}", "{type: text, max_length: 0}"))[0].endswith(
        "'max_length' must be a whole number of characters >= 1")
    from server.engine.validators import build_validator

    validator = build_validator({"type": "text", "max_length": 5})
    assert isinstance(validate_input(validator, "Rahim"), Valid)
    assert not isinstance(validate_input(validator, "Rahima"), Valid)


@pytest.mark.parametrize("name, known, hint", [("ask_rnet", ["ask_rent", "main"], " (did you mean 'ask_rent'?)"),
                                               ("zzz", ["ask_rent"], "")])
def test_did_you_mean(name, known, hint) -> None:
    from server.engine.suggest import did_you_mean

    assert did_you_mean(name, known) == hint
