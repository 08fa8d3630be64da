"""Flow versions: what defines a flow (its YAML, the templates it uses, the catalog entries of
its texts), a content id over exactly that, and compiling a stored version back into a flow
that runs.

A session pins the content id of every flow it enters (`Session.ver`) and keeps running on
those versions until it ends, through deploys and hot reloads; new sessions start on the
current version. The engine compiles a version it does not hold from the `FlowSource` another
process published (the store keeps them, server/store/versions.py), once, and caches it.

Catalog entries: the msgids of the flow's inline texts, labels and error lines, and those of
its templates and literal `_()` calls, in every language, translated or not (so a translation
added later does not change an old version's screens). Values translated at run time
(`_(operator)`) and the engine's own lines ("More", "Back", validation errors) come from the
current catalog.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import jinja2
import jinja2.meta
import msgspec
from babel.support import NullTranslations

from ..render.catalogs import LoadedCatalog
from ..render.environment import Renderer, TextError
from .actions import ActionRegistry
from .loader import parse_flow
from .machine import FlowMachine
from .model import Flow

ID_LENGTH = 12  # hex characters: 48 bits, ample among the few live versions of one flow


class FlowSource(msgspec.Struct, kw_only=True, frozen=True):
    """One version of one flow, as published to the store."""

    flow: str
    file: str  # where it was loaded from (problem reports only; not part of the id)
    yaml: str
    templates: dict[str, str] = {}
    catalogs: dict[str, dict[str, str]] = {}  # language -> msgid -> translation

    @property
    def id(self) -> str:
        return content_id(self)


class VersionUnavailable(Exception):
    """A session's flow version cannot be had: not in the store, or it no longer compiles
    (an action it names was removed). The session ends with the "session ended" screen."""


def content_id(source: FlowSource) -> str:
    canonical = msgspec.json.encode(
        [source.yaml, sorted(source.templates.items()),
         sorted((lang, sorted(entries.items())) for lang, entries in source.catalogs.items())])
    return hashlib.sha256(canonical).hexdigest()[:ID_LENGTH]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(FlowSource)


def encode_source(source: FlowSource) -> bytes:
    return _encoder.encode(source)


def decode_source(data: bytes) -> FlowSource:
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise VersionUnavailable(f"unreadable stored version: {exc}") from None


@dataclass
class FlowRuntime:
    """A flow version ready to run: its model, its machine and the renderer of its texts."""

    flow: Flow
    machine: FlowMachine
    renderer: Renderer
    source: FlowSource
    version: str


# -- the current version, from what was loaded ------------------------------------------------
def source_of(flow: Flow, renderer: Renderer) -> FlowSource:
    templates = _templates_used(flow, renderer)
    msgids = set(_flow_msgids(flow))
    for text in list(msgids) + list(templates.values()):
        msgids.update(_literal_msgids(renderer, text))
    catalogs = {lang: {m: renderer.gettext(lang, m) for m in sorted(msgids)} for lang in renderer.languages}
    return FlowSource(flow=flow.name, file=flow.file, yaml=flow.yaml, templates=templates, catalogs=catalogs)


def _flow_msgids(flow: Flow) -> Iterator[str]:
    for state in flow.states.values():
        for text in (state.text, state.error, *(option.label for option in state.options)):
            if text is not None and text.source:
                yield text.source


# The msgids found in a text or template, by source (and how the environment parses): every
# app built in one process extracts them from the same texts.
_LITERALS: dict[tuple, tuple[str, ...]] = {}


def _literal_msgids(renderer: Renderer, source: str) -> tuple[str, ...]:
    env = renderer.envs[renderer.languages[0]]
    key = (env.compile_settings(), source)
    found = _LITERALS.get(key)
    if found is None:
        found = _LITERALS[key] = tuple(_extract_literal_msgids(env, source))
    return found


def _extract_literal_msgids(env: jinja2.Environment, source: str) -> Iterator[str]:
    try:
        for _, _, message in env.extract_translations(source):  # type: ignore[attr-defined]
            if isinstance(message, str):
                yield message
            elif isinstance(message, tuple):
                yield from (m for m in message if isinstance(m, str))
    except jinja2.TemplateSyntaxError:
        return  # the loader reported it already


def _templates_used(flow: Flow, renderer: Renderer) -> dict[str, str]:
    """The templates the flow names, and those they include, import or extend."""
    env = renderer.envs[renderer.languages[0]]
    todo = [s.text.template for s in flow.states.values() if s.text is not None and s.text.template]
    found: dict[str, str] = {}
    while todo:
        name = todo.pop()
        if name in found:
            continue
        try:
            source, _, _ = env.loader.get_source(env, name)  # type: ignore[union-attr]
            found[name] = source
            todo.extend(n for n in jinja2.meta.find_referenced_templates(env.parse(source)) if n)
        except (jinja2.TemplateNotFound, jinja2.TemplateSyntaxError):
            continue  # the loader reported it already
    return found


# -- an older version, from the store ----------------------------------------------------------
class _PinnedEntries(NullTranslations):
    """The version's own catalog entries first, then the current catalog (engine lines)."""

    def __init__(self, entries: dict[str, str], current: NullTranslations) -> None:
        super().__init__()
        self._entries = entries
        self._current = current

    def gettext(self, message: str) -> str:
        found = self._entries.get(message)
        return found if found is not None else self._current.gettext(message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._current.ngettext(singular, plural, n)

    def pgettext(self, context: str, message: str) -> str:
        return self._current.pgettext(context, message)

    def npgettext(self, context: str, singular: str, plural: str, n: int) -> str:
        return self._current.npgettext(context, singular, plural, n)


def compile_source(source: FlowSource, registry: ActionRegistry, current: Renderer) -> FlowRuntime:
    """Build a runnable flow from a stored version; VersionUnavailable when it no longer loads."""
    catalogs = {lang: LoadedCatalog(lang, None, _PinnedEntries(source.catalogs.get(lang, {}),
                                                               current.catalogs[lang].translations))
                for lang in current.languages}
    renderer = Renderer(current.templates_dir, current.locales_dir, current.languages, catalogs=catalogs,
                        templates=jinja2.DictLoader(dict(source.templates)))
    try:
        flow, problems = parse_flow(Path(source.file), source.yaml, renderer, registry)
    except TextError as exc:
        raise VersionUnavailable(str(exc)) from None
    if flow is None or problems:
        reasons = "; ".join(str(p) for p in problems[:3]) or "empty flow"
        raise VersionUnavailable(f"version no longer loads: {reasons}")
    return FlowRuntime(flow, FlowMachine(flow, renderer.evaluate), renderer, source, source.id)
