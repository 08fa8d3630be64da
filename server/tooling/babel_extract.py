"""Babel extractors for what `pybabel extract` cannot read on its own.

- `extract_flow` (entry point `alap_flow`; `alap translate` uses it, server/tooling/translate.py):
  YAML flows. Every state `text`, option `label` and input `error` is a msgid (the English
  source, Jinja placeholders and all), plus literal `_('...')` calls inside them. Dynamic `_(variable)` calls cannot be extracted:
  their values must be marked where they are produced (e.g. with `N_` in Python).
- `extract_python` (`server.tooling.babel_extract:extract_python` in translate.py): Python with the
  usual keyword calls (`N_`, `_`, `gettext`... plus the `calls` option, e.g. `Invalid`) and,
  unlike Babel's own extractor, string constants assigned to the names in the `assignments`
  option (default `default_error`): the validators' default error messages are class
  attributes, not calls.
"""
from __future__ import annotations

import ast
from typing import IO, Any, Collection, Iterator, Mapping

import jinja2

from ..engine.yamlmarks import MarkedDict, MarkedList, load_marked

# (lineno, funcname, message, comments) as Babel expects from an extractor.
Extracted = tuple[int, "str | None", str, list[str]]


def _jinja_literals(source: str) -> Iterator[str]:
    """`_('literal')` / `gettext('literal')` calls inside an inline Jinja text."""
    env = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    try:
        for _, _, message in env.extract_translations(source):
            if isinstance(message, str):
                yield message
    except jinja2.TemplateSyntaxError:
        return  # `alap check` reports it with its location


def _text_items(flow: str, state: str, node: MarkedDict) -> Iterator[tuple[int, str, str]]:
    """(line, msgid, comment) of one state's texts."""
    for field in ("text", "error"):
        value = node.get(field)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            yield node.value_mark(field).line, str(value), f"flow {flow}, state {state}: {field}"
    options = node.get("options")
    if isinstance(options, MarkedList):
        for i, option in enumerate(options):
            if isinstance(option, MarkedDict) and isinstance(option.get("label"), (str, int, float)):
                yield (option.value_mark("label").line, str(option["label"]),
                       f"flow {flow}, state {state}: option {i + 1}")


def extract_flow(fileobj: IO[bytes], keywords: Collection[str], comment_tags: Collection[str],
                 options: Mapping[str, Any]) -> Iterator[Extracted]:
    """Babel extractor for Alap YAML flows. A file that does not parse yields nothing (`alap
    check` reports it); a comment on each message says where in the flow it is shown."""
    text = fileobj.read().decode(options.get("encoding", "utf-8"))
    data, _ = load_marked(text, getattr(fileobj, "name", "<flow>"))
    if not isinstance(data, MarkedDict) or not isinstance(data.get("states"), MarkedDict):
        return
    flow = str(data.get("flow", "?"))
    for state, node in data["states"].items():
        if not isinstance(node, MarkedDict):
            continue
        for line, msgid, comment in _text_items(flow, str(state), node):
            if msgid:
                yield line, None, msgid, [comment]
            for literal in _jinja_literals(msgid):
                yield line, None, literal, [f"{comment} (inside _())"]


def _split(option: Any) -> set[str]:
    if isinstance(option, str):
        return {part for part in option.replace(",", " ").split() if part}
    return set(option or ())


def _call_name(node: ast.Call) -> str | None:
    if isinstance(node.func, ast.Name):
        return node.func.id
    if isinstance(node.func, ast.Attribute):
        return node.func.attr
    return None


def extract_python(fileobj: IO[bytes], keywords: Collection[str], comment_tags: Collection[str],
                   options: Mapping[str, Any]) -> Iterator[Extracted]:
    """Keyword calls with a literal first argument, and string constants assigned to the names
    of the `assignments` option. Yields funcname None for those (Babel then takes argument 1)."""
    source = fileobj.read().decode(options.get("encoding", "utf-8"))
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return
    calls = set(keywords) | _split(options.get("calls"))
    assignments = _split(options.get("assignments", "default_error"))
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) in calls and node.args:
            first = node.args[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                found.append((node.lineno, first.value))
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            value = node.value
            if any(isinstance(t, ast.Name) and t.id in assignments for t in targets) and \
                    isinstance(value, ast.Constant) and isinstance(value.value, str):
                found.append((node.lineno, value.value))
    for lineno, message in sorted(found):
        if message:
            yield lineno, None, message, []
