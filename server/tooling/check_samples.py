"""The data `alap check` renders screens with: the flow's `sample:`, and for every input
variable the sample lacks a value of the validator's maximum length (warned about, naming the
variable, so a screen is never measured with a silent placeholder)."""
from __future__ import annotations

from decimal import Decimal
from typing import Any

from ..engine.money import as_money, money_vars
from ..engine.errors import Mark
from ..engine.model import Flow, State
from ..engine.validators import AmountValidator, BdMobileValidator, IntegerValidator, Validator
from ..render.environment import Renderer
from .findings import Report

SAMPLE_MSISDN = "01812345678"


def placeholder(validator: Validator | None) -> tuple[Any, str]:
    """(value, how it was chosen): the longest value the validator accepts where that is known
    (screens are measured at their worst)."""
    if isinstance(validator, IntegerValidator):
        if validator.max is not None:
            low = validator.min if validator.min is not None else validator.max
            return max((validator.max, low), key=lambda v: len(str(v))), "the validator's maximum"
        return 999_999_999, "the longest number it accepts"
    if isinstance(validator, AmountValidator):
        if validator.max is not None:
            top = validator.max
            paisa = top - Decimal("0.01") if top >= 1 and top == top.to_integral_value() else top
            return max((top, paisa), key=lambda v: len(str(v))), "the longest amount up to its maximum"
        return Decimal("9999999.99"), "the longest amount it accepts"
    if isinstance(validator, BdMobileValidator):
        return SAMPLE_MSISDN, "a mobile number"
    if validator is not None and validator.max_length:
        return "x" * validator.max_length, "its max_length"
    return "sample", "the word 'sample' (the validator sets no max_length)"


def sample_context(flow: Flow, lang: str, money: frozenset[str] = frozenset()) -> dict[str, Any]:
    """The variables screens see when `alap check` renders them: input placeholders, then the
    flow's `sample:` (which wins), then what the engine always sets."""
    ctx: dict[str, Any] = {}
    for state in flow.states.values():
        if state.kind == "input" and state.var:
            ctx[state.var] = placeholder(state.validator)[0]
    ctx.update({str(k): v for k, v in flow.sample.items() if not str(k).startswith("@")})
    ctx["lang"] = lang
    ctx["msisdn"] = SAMPLE_MSISDN
    return as_money(ctx, money or money_vars([flow]))


def check_missing_samples(flow: Flow, report: Report) -> None:
    """Warn about input variables with no `sample:` value: they are measured with a placeholder."""
    for state in flow.states.values():
        if state.kind != "input" or not state.var or state.var in flow.sample:
            continue
        value, how = placeholder(state.validator)
        report.add(state.ref_marks.get("var", state.mark),
                   f"input '{state.name}': no sample value for '{state.var}' in `sample:`; screens are measured "
                   f"with {str(value)!r} ({how})", "warning")


def known_names(flow: Flow, renderer: Renderer) -> set[str]:
    names = {str(k) for k in flow.sample if not str(k).startswith("@")} | {"lang", "msisdn"}
    names |= {s.var for s in flow.states.values() if s.var} | {s.save_as for s in flow.states.values() if s.save_as}
    names |= {name for s in flow.states.values() for o in s.options for name, _ in o.set}  # options' `set:`
    names |= set(next(iter(renderer.envs.values())).globals)
    return names


def state_samples(flow: Flow, state: State, report: Report) -> list[tuple[str, dict[str, Any]]]:
    """Per-state extra samples (`"@state": mapping or list of mappings`), labelled for messages."""
    value = flow.sample.get(f"@{state.name}")
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out = []
    for i, item in enumerate(items, 1):
        if not isinstance(item, dict):
            report.add(getattr(value, "mark", state.mark), f"sample '@{state.name}' must be a mapping of variables "
                       "or a list of them")
            return []
        out.append((f" with sample '@{state.name}'" + (f" #{i}" if len(items) > 1 else ""), dict(item)))
    return out


def check_sample_keys(flow: Flow, report: Report) -> None:
    for key, value in flow.sample.items():
        if str(key).startswith("@") and str(key)[1:] not in flow.states:
            mark = flow.sample_marks.get(str(key)) or flow.mark or Mark(flow.file, 1, 1)
            report.add(mark, f"sample '{key}' names no state of flow '{flow.name}'")
