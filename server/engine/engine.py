"""The engine: one turn = subscriber input -> new state + screen (the turn's own work is in
server/engine/turn.py). No HTTP, no Redis: the caller loads the session, calls `start` or `advance`, saves the session and sends `Reply.text`. A session runs on
the flow versions it is pinned to (engine/pinning.py), whatever was deployed since.

A turn has one deadline (a `time.monotonic()` value the caller passes; the USSD transport
derives it from its session lock, server/store/base.py `SessionLease.turn_deadline`): every action of
the turn, chained ones and those a dialled shortcut's replayed inputs reach, runs inside what
is left of it, and an action with no time left takes its fallback at once."""
from __future__ import annotations

import re
from typing import Any

import structlog

from ..render import system
from ..msisdn import normalise_digits
from ..render.budget import Budget
from ..render.environment import Renderer
from .actions import ActionRegistry
from .loader import normalise_keyword
from .machine import FlowMachine
from .model import Flow
from .pinning import FlowVersions
from .session import Session
from .turn import Reply, Subscriber, Turn
from .money import money_vars
from .versions import VersionUnavailable

log = structlog.get_logger("alap.engine")

# *213*1*2#  ->  code "*213#", inputs ["1", "2"]
_DIAL = re.compile(r"^\*(\d+)((?:\*[^*#]*)*)#?$")
MAX_SHORTCUT_SEGMENTS = 8  # *213*1*2*...#: inputs replayed in one turn; the rest are ignored
# An SMS reply may be three concatenated parts (153 GSM-7 or 67 UCS-2 characters each) before
# it is paginated: one message where possible, never a wall of parts.
SMS_BUDGET = Budget(ascii=459, unicode=201)


def parse_dialled(message: str) -> tuple[str, list[str]]:
    text = normalise_digits(message.strip()).replace(" ", "")
    match = _DIAL.match(text)
    if not match:
        return text, []
    segments = [s for s in match.group(2).split("*") if s]
    return f"*{match.group(1)}#", segments


class Engine:
    def __init__(self, flows: list[Flow], renderer: Renderer, actions: ActionRegistry, *,
                 budget: Budget = Budget(), sms_budget: Budget = SMS_BUDGET, unicode: bool = True,
                 default_language: str = "bn") -> None:
        self.renderer = renderer
        self.actions = actions
        self.budgets = {"ussd": budget, "sms": sms_budget}
        self.unicode = unicode
        self.default_language = default_language
        self.flows = {f.name: f for f in flows}
        self.versions = FlowVersions(flows, renderer, actions)
        self.machines: dict[str, FlowMachine] = {n: rt.machine for n, rt in self.versions.current.items()}
        self.by_code = {code: f for f in flows for code in f.codes}
        defaults = [f for f in flows if f.default] or flows
        self.default_flow = defaults[0]
        self.by_keyword = {k: f for f in flows for k in f.keywords}
        self.sms_default = next((f for f in flows if f.sms_default), None)
        self.money_vars = money_vars(flows)

    def match_keyword(self, text: str) -> tuple[Flow | None, str, str]:
        """(flow, keyword, args) for an SMS: the first word picks the flow; the rest are its args."""
        word, _, args = normalise_digits(text.strip()).partition(" ")
        keyword = normalise_keyword(word)
        return self.by_keyword.get(keyword), keyword, args.strip()

    def dialled(self, message: str) -> tuple[Flow, list[str]]:
        """The flow a dialled USSD string starts, and the shortcut's extra inputs."""
        code, inputs = parse_dialled(message)
        return self.by_code.get(code) or self.default_flow, inputs

    # -- entry points -------------------------------------------------------------------------
    async def start(self, subscriber: Subscriber, message: str, language: str | None,
                    *, channel: str = "ussd", flow_name: str | None = None,
                    variables: dict[str, Any] | None = None, deadline: float | None = None) -> tuple[Session, Reply]:
        code, inputs = parse_dialled(message) if channel == "ussd" else (message, [])
        flow = self.flows.get(flow_name or "") or self.by_code.get(code) or self.default_flow
        session = Session(flow=flow.name, root=flow.name, state=flow.start,
                          lang=language or self.default_language, channel=channel,
                          vars=dict(variables or {}), history=[])
        turn = Turn(self, self.versions.get(session, flow.name), session, subscriber, deadline)
        await turn.enter(flow.start)
        for segment in inputs[:MAX_SHORTCUT_SEGMENTS]:  # shortcut dialling: replay segments as typed inputs
            if turn.final or turn.notice or turn.ended_text or turn.out_of_time():
                break
            await turn.handle(segment)
        return session, turn.reply()

    async def advance(self, session: Session, subscriber: Subscriber, text: str,
                      *, deadline: float | None = None) -> Reply:
        """One input on a live session, on the flow versions the session is pinned to."""
        try:
            turn = await self._resume_turn(session, subscriber, deadline)
            await turn.handle(text)
        except VersionUnavailable as exc:
            return self._version_lost(session, exc)
        return turn.reply()

    async def show(self, session: Session, subscriber: Subscriber) -> Reply:
        """The screen a session is on (its state and page), again: continuing a dropped call."""
        try:
            turn = await self._resume_turn(session, subscriber, None)
        except VersionUnavailable as exc:
            return self._version_lost(session, exc)
        return turn.reply()

    def resumable(self, session: Session) -> bool:
        """Whether a call dropped on this screen may be offered to continue: `resume:` of the
        flow and of the state (both default to true), and not on the first page of the dialled
        flow's first screen (continuing there would be starting again)."""
        try:
            flow = self.versions.get(session, session.flow).flow
        except VersionUnavailable:
            return False
        state = flow.states.get(session.state)
        if session.flow == session.root and session.state == flow.start and session.page == 0:
            return False
        return flow.resume and state is not None and state.resume

    async def _resume_turn(self, session: Session, subscriber: Subscriber, deadline: float | None) -> Turn:
        await self.versions.load(session.ver)
        runtime = self.versions.get(session, session.flow)
        if session.state not in runtime.flow.states:  # a session saved before versions were pinned
            raise VersionUnavailable(f"flow {session.flow} has no state {session.state}")
        return Turn(self, runtime, session, subscriber, deadline)

    def _version_lost(self, session: Session, exc: VersionUnavailable) -> Reply:
        log.warning("session_version_unavailable", flow=session.flow, state=session.state,
                    version=session.ver.get(session.flow), reason=str(exc))
        return self.system_reply(session.lang, system.SESSION_ENDED, "error")

    def system_menu(self, language: str, options: list[str], notice: str | None = None) -> Reply:
        """A menu of the engine's own lines (msgids), numbered from 1; not final."""
        lines = [self.renderer.render_text(language, notice, {})] if notice else []
        lines += [f"{n}. {self.renderer.render_text(language, msgid, {})}" for n, msgid in enumerate(options, 1)]
        text = "\n".join(lines)
        if not self.unicode and not text.isascii():
            return self.system_menu("en", options, notice)
        return Reply(text=text, final=False)

    def system_reply(self, language: str, msgid: str, ended: str | None = None, channel: str = "ussd") -> Reply:
        text = self.renderer.render_text(language, msgid, {})
        if not self.unicode and channel == "ussd" and not text.isascii():
            text = self.renderer.render_text("en", msgid, {})
        return Reply(text=text, final=True, ended=ended)


