"""The rendering layer: one Jinja environment per language, translated texts compiled once.

A flow text is both Jinja source and gettext msgid: the source is looked up in the language's
catalog and the translation compiled as a template, so translators see (and keep) the
`{{ placeholders }}`. Template files use `{% trans %}` / `_()` from Jinja's i18n extension.
Everything is compiled at load time and cached; a hop only renders.
"""
from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import Any, Callable, Mapping

import jinja2
from jinja2.environment import TemplateExpression

from babel.messages.catalog import Message

from ..msisdn import bengali_digits
from .catalogs import ENGINE_LOCALES, LoadedCatalog, load_catalog
from .formatting import format_number, format_taka, localise_digits
from .money_filters import FILTERS as MONEY_FILTERS

LANGUAGES = ("bn", "en")

# Python code compiled from Jinja source, shared by every environment of this process whose
# settings compile the same source to the same code (see compile_settings). The gate of `alap
# serve` builds the app's renderer, then `alap check`'s plain and strict ones over the same
# texts: each text is parsed and compiled once instead of three times. A code object holds no
# environment (Template.from_code binds it), and an edited text is a new key.
_COMPILED: dict[tuple, Any] = {}


class CompileOnceEnvironment(jinja2.Environment):
    """A Jinja environment that reuses code compiled from the same source by an equally
    configured environment. Rendering is untouched: filters, globals, translations and the
    undefined type are looked up at render time, on this environment."""

    def compile_settings(self) -> tuple:
        # What the lexer, parser and code generator read; the filter and test names too, since
        # an unknown filter fails at compile time.
        return (self.block_start_string, self.block_end_string, self.variable_start_string,
                self.variable_end_string, self.comment_start_string, self.comment_end_string,
                self.line_statement_prefix, self.line_comment_prefix, self.trim_blocks, self.lstrip_blocks,
                self.newline_sequence, self.keep_trailing_newline, tuple(self.extensions), self.optimized,
                self.autoescape, self.finalize, self.is_async, getattr(self, "newstyle_gettext", None),
                frozenset(self.filters), frozenset(self.tests), type(self))

    _expression_key: tuple | None = None  # set while compile_expression compiles its node

    def compile(self, source, name=None, filename=None, raw=False, defer_init=False):  # type: ignore[override]
        if raw or not isinstance(source, str):
            code = super().compile(source, name, filename, raw, defer_init)
            if self._expression_key is not None and not raw:
                _COMPILED[self._expression_key] = code
            return code
        key = (self.compile_settings(), source, name, filename, defer_init)
        code = _COMPILED.get(key)
        if code is None:
            code = _COMPILED[key] = super().compile(source, name, filename, raw, defer_init)
        return code

    def compile_expression(self, source: str, undefined_to_none: bool = True) -> TemplateExpression:
        key = ("expression", self.compile_settings(), source)
        code = _COMPILED.get(key)
        if code is None:  # Jinja parses it and compiles its node; compile() above keeps the code
            self._expression_key = key
            try:
                return super().compile_expression(source, undefined_to_none)
            finally:
                self._expression_key = None
        # What Jinja's compile_expression builds from that code (from_string of the node).
        template = self.template_class.from_code(self, code, self.make_globals(None), None)
        return TemplateExpression(template, undefined_to_none)


class ExpressionEnvironment(CompileOnceEnvironment):
    """The environment of conditions (`when:`), evaluated on every hop (menu options, paging).
    Jinja gives each template a ChainMap over the environment's globals, so that globals added
    later still show, and copies it into every render's context (jinja2.runtime.new_context):
    iterating a ChainMap costs more than the rest of evaluating a short condition. Nothing adds
    globals to this environment after it is made (Renderer.__init__), so a plain dict serves."""

    def make_globals(self, d):  # type: ignore[override]
        return {**self.globals, **(d or {})}


class TextError(Exception):
    """A Jinja syntax error in a text or template, with the line inside that text."""

    def __init__(self, message: str, lineno: int | None = None, filename: str | None = None) -> None:
        self.lineno = lineno
        self.filename = filename
        super().__init__(message)


class Renderer:
    def __init__(self, templates_dir: Path, locales_dir: Path, languages: tuple[str, ...] = LANGUAGES,
                 *, strict: bool = False, catalogs: dict[str, LoadedCatalog] | None = None,
                 templates: jinja2.BaseLoader | None = None) -> None:
        """`catalogs` and `templates` replace the files (a stored flow version brings its own,
        engine/versions.py); by default both are read from the folders."""
        self.templates_dir = Path(templates_dir)
        self.locales_dir = Path(locales_dir)
        self.languages = languages
        # The project's catalogs (or a stored flow version's), then the engine's
        # (server/render/catalogs.py) as their fallback: the project's entries win.
        self.catalogs: dict[str, LoadedCatalog] = catalogs or {
            lang: load_catalog(self.locales_dir, lang) for lang in languages}
        self.engine_catalogs: dict[str, LoadedCatalog] = {}
        if self.locales_dir.resolve() != ENGINE_LOCALES:
            self.engine_catalogs = {lang: load_catalog(ENGINE_LOCALES, lang) for lang in languages}
        for lang, engine_catalog in self.engine_catalogs.items():
            self.catalogs[lang].translations.add_fallback(engine_catalog.translations)
        self._loader = templates or jinja2.FileSystemLoader(self.templates_dir)
        undefined = jinja2.StrictUndefined if strict else jinja2.ChainableUndefined
        self.envs = {lang: self._make_env(lang, undefined) for lang in languages}
        # Conditions are language-neutral expressions over session variables.
        self.expr_env = ExpressionEnvironment(undefined=jinja2.ChainableUndefined, autoescape=False)
        self.expr_env.filters.update(MONEY_FILTERS)
        self._texts: dict[tuple[str, str], jinja2.Template] = {}
        # Translated texts with no Jinja syntax render to themselves: skip Jinja on the hop.
        self._static: dict[tuple[str, str], str] = {}
        self._translated: dict[tuple[str, str], str] = {}
        self._exprs: dict[str, Callable[..., Any]] = {}

    def _make_env(self, lang: str, undefined: type[jinja2.Undefined]) -> jinja2.Environment:
        env = CompileOnceEnvironment(
            loader=self._loader,
            extensions=["jinja2.ext.i18n"],
            autoescape=False,
            trim_blocks=True,
            lstrip_blocks=True,
            undefined=undefined,
            auto_reload=False,
        )
        env.install_gettext_translations(self.catalogs[lang].translations, newstyle=True)  # type: ignore[attr-defined]
        env.filters["taka"] = partial(format_taka, lang=lang)
        env.filters["number"] = partial(format_number, lang=lang)
        env.filters["digits"] = partial(localise_digits, lang=lang)
        env.filters["bn_digits"] = bengali_digits
        env.filters.update(MONEY_FILTERS)
        env.globals["lang"] = lang
        return env

    # -- translation -------------------------------------------------------------------------
    def gettext(self, lang: str, msgid: str) -> str:
        # Remembered: the catalogs are fixed for the renderer's life, the msgids are the flows'
        # and the engine's own (a bounded set), and every screen asks for its navigation lines.
        key = (lang, msgid)
        text = self._translated.get(key)
        if text is None:
            text = self._translated[key] = self.catalogs[lang].translations.gettext(msgid)
        return text

    def message(self, lang: str, msgid: str) -> tuple[Message | None, LoadedCatalog]:
        """The catalog entry a msgid is translated from, as gettext picks it: the project's when
        translated, else the engine's; otherwise the first entry found (untranslated or fuzzy),
        or (None, the project's catalog) when neither catalog has it."""
        project = self.catalogs[lang]
        found: list[tuple[Message, LoadedCatalog]] = []
        for loaded in (project, self.engine_catalogs.get(lang)):
            if loaded is not None and loaded.catalog is not None:
                message = loaded.catalog.get(msgid)
                if message is not None:
                    if message.string and not message.fuzzy:
                        return message, loaded
                    found.append((message, loaded))
        return found[0] if found else (None, project)

    # -- compile (load time) -------------------------------------------------------------------
    def compile_text(self, lang: str, source: str) -> jinja2.Template:
        key = (lang, source)
        template = self._texts.get(key)
        if template is None:
            translated = self.gettext(lang, source)
            try:
                template = self.envs[lang].from_string(translated)
            except jinja2.TemplateSyntaxError as exc:
                raise TextError(exc.message or str(exc), exc.lineno) from None
            self._texts[key] = template
        return template

    def compile_template(self, lang: str, name: str) -> jinja2.Template:
        try:
            return self.envs[lang].get_template(name)
        except jinja2.TemplateNotFound:
            raise TextError(f"template {name!r} not found in {self.templates_dir}") from None
        except jinja2.TemplateSyntaxError as exc:
            raise TextError(exc.message or str(exc), exc.lineno, exc.filename) from None

    def compile_expression(self, expr: str) -> Callable[..., Any]:
        compiled = self._exprs.get(expr)
        if compiled is None:
            try:
                compiled = self.expr_env.compile_expression(expr)
            except jinja2.TemplateSyntaxError as exc:
                raise TextError(exc.message or str(exc), exc.lineno) from None
            self._exprs[expr] = compiled
        return compiled

    # -- render (hop time) --------------------------------------------------------------------
    def render_text(self, lang: str, source: str, context: Mapping[str, Any]) -> str:
        key = (lang, source)
        static = self._static.get(key)
        if static is not None:
            return static
        template = self.compile_text(lang, source)
        translated = self.gettext(lang, source)
        if "{" not in translated:
            static = self._static[key] = translated.strip()
            return static
        return template.render(context).strip()

    def render_template(self, lang: str, name: str, context: Mapping[str, Any]) -> str:
        return self.compile_template(lang, name).render(context).strip()

    def render_arg(self, lang: str, source: str, context: Mapping[str, Any]) -> str:
        """An action argument: Jinja over the session, not translated, compiled once."""
        key = ("arg:" + lang, source)
        template = self._texts.get(key)
        if template is None:
            template = self._texts[key] = self.envs[lang].from_string(source)
        return template.render(context)

    def evaluate(self, expr: str, context: Mapping[str, Any]) -> Any:
        return self.compile_expression(expr)(**context)
