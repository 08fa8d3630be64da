"""The work of one hop on one session: the subscriber's input applied to the flow's state
machine, actions run inside the turn's deadline, the next screen rendered and paginated. The
engine (server/engine/engine.py) makes one `Turn` per hop; it knows neither HTTP nor Redis."""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import structlog

from ..render import system
from ..msisdn import normalise_digits
from ..render.screen import ScreenLines, nav_lines
from .actions import ActionContext, ActionResult
from .model import Option, Route, State
from .session import Session
from .money import as_money
from .validators import Invalid, validate_input
from .versions import FlowRuntime

if TYPE_CHECKING:
    from .engine import Engine

log = structlog.get_logger("alap.engine")

_MAX_AUTO_STEPS = 25


@dataclass(frozen=True)
class Subscriber:
    session_id: str
    address: str  # exactly as the gateway sent it; may be masked
    msisdn: str | None = None  # 01XXXXXXXXX when known


@dataclass
class Reply:
    text: str
    final: bool
    language: str | None = None  # a new saved language, when the turn changed it
    entered: list[tuple[str, str]] = field(default_factory=list)  # (flow, state) entered this turn
    ended: str | None = None  # why a final screen ends the session: completed, input_failed, error
    opted_out: bool | None = None  # a new SMS opt-out choice, when the turn changed it


class Turn:
    """The work of one hop on one session."""

    def __init__(self, engine: Engine, runtime: FlowRuntime, session: Session, subscriber: Subscriber,
                 deadline: float | None = None) -> None:
        self.engine = engine
        self.deadline = deadline
        self._use(runtime)
        self.session = session
        self.subscriber = subscriber
        # An error line shown above the screen: (msgid or Jinja source, extra context).
        self.notice: tuple[str, dict[str, Any]] | None = None
        self.notice_is_new = False  # a notice from this input (shown from page one) or one carried over
        self.final = False
        self.ended_text: str | None = None  # a system screen that ends the session
        self.language: str | None = None
        self.opted_out: bool | None = None
        self.entered: list[tuple[str, str]] = []

    # -- context -------------------------------------------------------------------------------
    def context(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        ctx = as_money(dict(self.session.vars), self.engine.money_vars)
        ctx["lang"] = self.session.lang
        ctx["msisdn"] = self.subscriber.msisdn
        if extra:
            ctx.update(extra)
        return ctx

    @property
    def state(self) -> State:
        return self.flow.states[self.session.state]

    def time_left(self) -> float:
        return float("inf") if self.deadline is None else self.deadline - time.monotonic()

    def out_of_time(self) -> bool:
        return self.time_left() <= 0

    # -- input -----------------------------------------------------------------------------------
    async def handle(self, raw: str) -> None:
        text = normalise_digits(raw).strip()
        nav = self.flow.navigation
        session = self.session
        state = self.state
        carried, session.notice = session.notice, None
        if text == nav.more:
            if session.page < session.pages - 1:
                session.page += 1
                self._carry(carried)
                return
            if await self._turn_list(state.more):
                return
            if state.kind != "input":
                return  # on a menu's last page 98 stays there: the screen again, no "invalid choice"
            # an input with no next page takes 98 as an answer (a quantity, an amount)
        if text == nav.back:
            if session.page > 0:
                session.page -= 1
                self._carry(carried)
            elif await self._turn_list(state.back):
                pass
            elif session.history:
                await self._go_back(session.history.pop())
            return
        root = session.root or self.flow.name
        if text == nav.home and (session.state != self.flow.start or self.flow.name != root):
            session.history.clear()
            if self.flow.name != root:
                self._switch(root)
                await self.enter(self.flow.start)
            else:
                await self.enter(self.machine.fire("home", session.state, {}) or self.flow.start)
            return
        if state.kind == "end":
            # Only reached on a paginated final screen: any key shows the next page.
            session.page = min(session.page + 1, session.pages - 1)
            return
        if state.kind == "menu":
            await self._choose(state, text)
        elif state.kind == "input":
            await self._submit(state, text)

    def _carry(self, notice: list[Any] | None) -> None:
        """Paging a screen shown under an error notice keeps the notice's layout."""
        if notice and len(notice) == 2:
            self.notice = (str(notice[0]), dict(notice[1] or {}))

    async def _turn_list(self, paging: Route | None) -> bool:
        """98 / 0 on a list an action pages (the state's `more` / `back`): go there, without a
        history entry (0 on page N is page N-1, not the screen before the list)."""
        if paging is None or (paging.when and not self.engine.renderer.evaluate(paging.when, self.context())):
            return False
        trigger = "more" if paging is self.state.more else "back"
        await self.enter(self.machine.fire(trigger, self.state.name, self.context()) or paging.next)
        return True

    async def _go_back(self, entry: str) -> None:
        """History entries are `flow:state`, with `#page` when the screen was left on a page
        other than the first: 0 returns to that page."""
        place, _, page = entry.partition("#")
        flow_name, _, state_name = place.rpartition(":")
        self._switch(flow_name or self.flow.name)
        await self.enter(state_name, record=False)
        if page.isdigit():
            self.session.page = int(page)
            self.session.pages = int(page) + 1  # the render recounts and clamps

    def _remember(self, state: State) -> None:
        page = f"#{self.session.page}" if self.session.page else ""
        self.session.history.append(f"{self.flow.name}:{state.name}{page}")

    async def _choose(self, state: State, text: str) -> None:
        chosen = next((opt for key, opt in self.visible_options(state) if key == text), None)
        if chosen is None:
            self.notice, self.notice_is_new = (system.INVALID_CHOICE, {}), True
            return
        target = self.machine.fire("choose", state.name, self.context(), choice=chosen.index)
        if chosen.set:
            self.session.vars.update(self._render_args(dict(chosen.set)))
        self._remember(state)
        await self.enter(target or chosen.next)

    async def _submit(self, state: State, text: str) -> None:
        assert state.validator is not None and state.var is not None
        result = validate_input(state.validator, text)
        if isinstance(result, Invalid):
            self.session.retries += 1
            if self.session.retries > state.retries:
                if state.on_fail:
                    await self.enter(self.machine.fire("fail", state.name, self.context()) or state.on_fail)
                else:
                    self.ended_text = system.TOO_MANY_ATTEMPTS
                return
            source = state.error.source if state.error and state.error.source else result.msgid
            self.notice, self.notice_is_new = (source or result.msgid, result.params), True
            return
        self.session.vars[state.var] = result.value
        target = self.machine.fire("submit", state.name, self.context())
        self._remember(state)
        await self.enter(target or state.next or state.name)

    # -- entering states ---------------------------------------------------------------------
    async def enter(self, name: str, *, record: bool = True) -> None:
        """Move to `name`, running routers and actions until a state with a screen."""
        for _ in range(_MAX_AUTO_STEPS):
            if name.startswith("@"):  # a jump to the start of another flow
                self._switch(name[1:])
                name = self.flow.start
            state = self.flow.states[name]
            if record:
                self.entered.append((self.flow.name, name))
            if state.kind == "router":
                target = self.machine.fire("route", name, self.context())
                if target is None:  # validation guarantees a default route; be safe anyway
                    raise RuntimeError(f"router {name} matched no route")
                name = target
                continue
            if state.kind == "action":
                outcome = await self._run_action(state)
                name = self.machine.fire("outcome", name, self.context(), outcome=outcome) or state.fallback or name
                continue
            self.session.state = name
            self.session.page = 0
            self.session.pages = 1
            self.session.retries = 0
            self.final = state.kind == "end"
            return
        raise RuntimeError(f"flow {self.flow.name}: more than {_MAX_AUTO_STEPS} routers/actions in a row")

    def _switch(self, flow_name: str) -> None:
        self._use(self.engine.versions.get(self.session, flow_name))
        self.session.flow = flow_name

    def _use(self, runtime: FlowRuntime) -> None:
        self.flow, self.machine, self.renderer = runtime.flow, runtime.machine, runtime.renderer

    async def _run_action(self, state: State) -> str:
        spec = self.engine.actions.get(state.action or "")
        if spec is None:
            return "__fallback__"
        timeout = min(state.timeout, self.time_left())
        if timeout <= 0:  # the turn's time is spent (chained actions, replayed shortcut inputs)
            log.warning("action_skipped_no_time", action=spec.name, flow=self.flow.name)
            return "__fallback__"
        try:
            ctx = ActionContext(
                session_id=self.subscriber.session_id, address=self.subscriber.address,
                msisdn=self.subscriber.msisdn, language=self.session.lang,
                vars=dict(self.session.vars), args=self._render_args(state.args),
                channel=self.session.channel,
            )
            result: ActionResult = await asyncio.wait_for(spec.fn(ctx), timeout=timeout)
        except asyncio.TimeoutError:
            log.warning("action_timeout", action=spec.name, timeout=round(timeout, 3), flow=self.flow.name)
            return "__fallback__"
        except Exception:
            log.exception("action_failed", action=spec.name, flow=self.flow.name)
            return "__fallback__"
        if state.save_as:
            self.session.vars[state.save_as] = result.vars
        else:
            self.session.vars.update(result.vars)
        if result.language and result.language != self.session.lang:
            self.session.lang = result.language
            self.language = result.language
        if result.opted_out is not None:
            self.opted_out = result.opted_out
        return result.outcome

    def _render_args(self, args: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for key, value in args.items():
            if isinstance(value, str) and ("{{" in value or "{%" in value):
                value = self.renderer.render_arg(self.session.lang, value, self.context())
            out[key] = value
        return out

    # -- output ------------------------------------------------------------------------------
    def visible_options(self, state: State) -> list[tuple[str, Option]]:
        ctx = self.context()
        shown: list[tuple[str, Option]] = []
        number = 0
        for option in state.options:
            if option.when and not self.renderer.evaluate(option.when, ctx):
                continue
            if option.key is None:
                number += 1
                shown.append((str(number), option))
            else:
                shown.append((option.key, option))
        return shown

    def reply(self) -> Reply:
        if self.ended_text:
            reply = self.engine.system_reply(self.session.lang, self.ended_text, "input_failed", self.session.channel)
            reply.entered, reply.language, reply.opted_out = self.entered, self.language, self.opted_out
            return reply
        text = self._screen(self.session.lang)
        if not self.engine.unicode and self.session.channel == "ussd" and not text.isascii():
            # GSM-7-only deployment: English is the fallback language (README.md, ALAP_USSD_UNICODE).
            text = self._screen("en")
            if not text.isascii():
                text = text.encode("ascii", "replace").decode("ascii")
        final = self.state.kind == "end" and self.session.page >= self.session.pages - 1
        return Reply(text=text, final=final, language=self.language, entered=self.entered,
                     ended="completed" if final else None, opted_out=self.opted_out)

    def _screen(self, lang: str) -> str:
        renderer = self.renderer
        state = self.state
        ctx = self.context({"lang": lang})
        notice = None
        if self.notice:
            if self.notice_is_new:
                self.session.page = 0  # the notice is on the first page: show it
            source, params = self.notice
            notice = renderer.render_text(lang, source, {**ctx, **params})
        text = None
        if state.text is not None:
            if state.text.template:
                text = renderer.render_template(lang, state.text.template, ctx)
            elif state.text.source is not None:
                text = renderer.render_text(lang, state.text.source, ctx)
        options = [f"{key}. {renderer.render_text(lang, option.label.source or '', ctx)}"
                   for key, option in self.visible_options(state)]
        more, back = nav_lines(renderer, self.flow, lang)
        options += [line for line, paging in ((more, state.more), (back, state.back))
                    if paging and (not paging.when or renderer.evaluate(paging.when, ctx))]
        screen = ScreenLines(notice, text, options)
        pages = screen.pages(self.engine.budgets[self.session.channel], more, back)
        self.session.pages = len(pages)
        self.session.page = min(self.session.page, len(pages) - 1)
        if self.notice and len(pages) > 1:
            self.session.notice = [self.notice[0], self.notice[1]]
        return pages[self.session.page]
