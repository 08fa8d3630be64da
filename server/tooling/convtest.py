"""Conversation tests: YAML dialogues (server/tooling/dialogue_files.py, which documents the
format) run against the real Engine, by `alap test` and by pytest via
tests/tooling/test_conversation_tests.py.

Actions without a canned result run for real; the upstreams they may call point at a closed
loopback port, so a dialogue never reaches the network (an uncanned upstream action takes its
error path). Between hops the session goes through the store's JSON encoding, as in
production; after a final screen (mt-fin) the session is gone and a further `send` gets the
"session ended" screen, as the transport answers.
"""
from __future__ import annotations

import asyncio
import contextvars
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..actions import build_registry
from ..config import Settings
from ..engine.actions import ActionContext, ActionRegistry, ActionResult, ActionSpec
from ..engine.engine import Engine, Reply, Subscriber
from ..engine.errors import Mark
from ..engine.loader import load_flow_dir
from ..engine.session import Session, decode_session, encode_session
from ..render import system
from ..render.budget import Budget, encoding_for
from ..render.environment import Renderer
from ..upstreams import Upstreams
from .dialogue_files import DEFAULT_ADDRESS, ConvTestError, Dialogue, Move, Step, as_list, load_dialogues

__all__ = ["ConvTestError", "Dialogue", "Move", "Result", "Runner", "Step", "default_files", "load_dialogues",
           "recording_registry", "run_files"]

NOWHERE = "http://127.0.0.1:9"  # the discard port: connection refused at once, never the network


@dataclass
class Result:
    dialogue: Dialogue
    failure: str | None = None  # the whole report of the first failing step

    @property
    def ok(self) -> bool:
        return self.failure is None


# -- running ---------------------------------------------------------------------------------------

@dataclass
class _Call:
    name: str
    args: dict[str, Any]
    outcome: str = "?"
    canned: bool = False

    def __str__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.args.items())
        return f"{self.name}({args}) -> {self.outcome}{' [canned]' if self.canned else ''}"


@dataclass
class _Run:
    """What the actions of the dialogue running now read and write (a context variable, so
    dialogues can run concurrently on one engine)."""

    canned: dict[str, list[dict[str, Any]]]
    calls: list[_Call] = field(default_factory=list)


_CURRENT: contextvars.ContextVar[_Run] = contextvars.ContextVar("alap_convtest_run")


def _recording(spec: ActionSpec) -> Any:
    async def run(ctx: ActionContext) -> ActionResult:
        state = _CURRENT.get(None)
        call = _Call(spec.name, dict(ctx.args))
        if state is not None:
            state.calls.append(call)
        results = state.canned.get(spec.name) if state else None
        if not results:
            result = await spec.fn(ctx)
            call.outcome = result.outcome
            return result
        canned = results.pop(0) if len(results) > 1 else results[0]
        call.canned = True
        fail = canned.get("fail")
        if fail:
            # The engine treats both alike (the state's fallback); a timeout logs no traceback.
            call.outcome = "error (fallback)" if fail == "error" else "timeout (fallback)"
            if fail == "error":
                raise RuntimeError(f"canned failure of {spec.name}")
            raise asyncio.TimeoutError(f"canned timeout of {spec.name}")
        call.outcome = str(canned.get("outcome", "ok"))
        return ActionResult(outcome=call.outcome, vars=dict(canned.get("vars") or {}),
                            language=canned.get("language"))

    return run


def recording_registry(registry: ActionRegistry) -> ActionRegistry:
    """The same actions, each recording its calls and answering canned results when the running
    dialogue has some."""
    out = ActionRegistry()
    for name in registry.names():
        spec = registry.get(name)
        assert spec is not None
        out.register(name, _recording(spec), spec.outcomes, spec.description, spec.params)
    return out


class Runner:
    """Runs dialogues on one engine built from settings (flows, templates, catalogs, budgets)."""

    def __init__(self, settings: Settings, registry: ActionRegistry | None = None) -> None:
        self.upstreams: Upstreams | None = None
        if registry is None:
            offline = settings.model_copy(update={"ecourier_base_url": NOWHERE, "ecare_url": NOWHERE,
                                                  "bdapps_base_url": NOWHERE})
            self.upstreams = Upstreams.from_settings(offline)
            registry = build_registry(self.upstreams)
        self.registry = recording_registry(registry)
        renderer = Renderer(settings.templates_dir, settings.locales_dir)
        flows = load_flow_dir(settings.flows_dir, renderer, self.registry)
        self.engine = Engine(flows, renderer, self.registry,
                             budget=Budget(settings.budget_ascii, settings.budget_unicode),
                             unicode=settings.ussd_unicode, default_language=settings.default_language)
        self.default_language = settings.default_language

    async def aclose(self) -> None:
        if self.upstreams is not None:
            await self.upstreams.aclose()

    def _check_canned(self, dialogue: Dialogue) -> str | None:
        for name, results in dialogue.actions.items():
            spec = self.registry.get(name)
            if spec is None:
                return f"canned result for unknown action '{name}' (known: {', '.join(self.registry.names())})"
            for result in results:
                outcome = str(result.get("outcome", "ok"))
                if not result.get("fail") and outcome not in spec.outcomes:
                    return (f"canned outcome '{outcome}' is not an outcome of '{name}' "
                            f"(it has: {', '.join(sorted(spec.outcomes))})")
        return None

    async def run(self, dialogue: Dialogue) -> Result:
        problem = self._check_canned(dialogue)
        if problem:
            return Result(dialogue, f"{dialogue.mark.file}:{dialogue.mark.line}: {dialogue.name}: {problem}")
        run = _Run({name: [dict(r) for r in results] for name, results in dialogue.actions.items()})
        token = _CURRENT.set(run)
        try:
            return await self._run(dialogue, run)
        finally:
            _CURRENT.reset(token)

    async def _run(self, dialogue: Dialogue, run: _Run) -> Result:
        hop = _Hop(self, dialogue)
        reply = await hop.make(dialogue.start)
        before = 0  # calls of the last hop start here; a check-only step looks at that hop's
        for number, step in enumerate(dialogue.steps, 1):
            if step.move is not None:
                before = len(run.calls)
                reply = await hop.make(step.move)
            failure = _verify(step.checks, reply, run.calls[before:]) or _verify_profile(step.checks, hop)
            if failure:
                return Result(dialogue, _report(dialogue, step.describe(number), step.mark, failure, reply,
                                                hop.lang, run.calls))
        if dialogue.calls is not None:
            failure = _match_calls(dialogue.calls, run.calls)
            if failure:
                return Result(dialogue, _report(dialogue, "the dialogue's calls", dialogue.mark, failure, reply,
                                                hop.lang, run.calls))
        return Result(dialogue)


class _Hop:
    """One subscriber's phone: the live USSD and SMS sessions (JSON, as the store holds them)
    and the saved language (as the profile holds it). What happens at each move mirrors the
    transport: server/bdapps/ussd.py, sms.py and push.py."""

    def __init__(self, runner: Runner, dialogue: Dialogue) -> None:
        self.engine = runner.engine
        self.dialogue = dialogue
        self.saved_language = dialogue.language or runner.default_language
        self.sessions: dict[str, bytes | None] = {"ussd": None, "sms": None}
        self.count = 0
        self.lang = self.saved_language
        self.opted_out: bool | None = None

    def _subscriber(self, channel: str = "ussd") -> Subscriber:
        session_id = f"sms:{self.dialogue.address}" if channel == "sms" else f"convtest-{self.count}"
        return Subscriber(session_id, self.dialogue.address, self.dialogue.msisdn)

    async def make(self, move: Move) -> Reply:
        if move.kind == "send":
            return await self.send(move.value)
        if move.kind == "sms":
            return await self.sms(move.value)
        self.count += 1
        if move.kind == "push":
            session, reply = await self.engine.start(self._subscriber(), "", self.saved_language,
                                                     flow_name=move.value, variables=dict(move.vars))
        else:
            session, reply = await self.engine.start(self._subscriber(), move.value, self.saved_language)
        return self._after("ussd", session, reply)

    async def send(self, text: str) -> Reply:
        session = decode_session(self.sessions["ussd"])
        if session is None:  # what the transport answers when no session is stored
            return self.engine.system_reply(self.saved_language, system.SESSION_ENDED)
        return self._after("ussd", session, await self.engine.advance(session, self._subscriber(), text))

    async def sms(self, text: str) -> Reply:
        """A keyword starts its flow (args/keyword vars); an open conversation takes the message
        as input unless the keyword's flow interrupts; else the sms_default flow answers."""
        session = decode_session(self.sessions["sms"])
        flow, keyword, args = self.engine.match_keyword(text)
        if session is not None and not (flow is not None and flow.interrupt):
            return self._after("sms", session, await self.engine.advance(session, self._subscriber("sms"), text))
        variables = {"args": args, "keyword": keyword}
        if flow is None:
            flow = self.engine.sms_default
            variables = {"args": args, "unknown": keyword}
        if flow is None:
            return self.engine.system_reply(self.saved_language, system.INVALID_CHOICE, channel="sms")
        session, reply = await self.engine.start(self._subscriber("sms"), text, self.saved_language, channel="sms",
                                                 flow_name=flow.name, variables=variables)
        return self._after("sms", session, reply)

    def _after(self, channel: str, session: Session, reply: Reply) -> Reply:
        self.sessions[channel] = None if reply.final else encode_session(session)
        self.lang = session.lang
        if reply.language:
            self.saved_language = reply.language
        if getattr(reply, "opted_out", None) is not None:
            self.opted_out = reply.opted_out
        return reply


def _verify(checks: dict[str, Any], reply: Reply, calls: list[_Call]) -> str | None:
    text = reply.text
    if "screen" in checks and text != str(checks["screen"]).rstrip("\n"):
        return f"expected the screen to be exactly:\n{_indent(str(checks['screen']).rstrip(chr(10)))}"
    for part in as_list(checks.get("contains", [])):
        if str(part) not in text:
            return f"expected the screen to contain {str(part)!r}"
    for part in as_list(checks.get("not_contains", [])):
        if str(part) in text:
            return f"expected the screen not to contain {str(part)!r}"
    for pattern in as_list(checks.get("regex", [])):
        if not re.search(str(pattern), text, re.MULTILINE):
            return f"expected the screen to match the regex {str(pattern)!r}"
    if "final" in checks and bool(checks["final"]) != reply.final:
        return "expected a final screen (mt-fin)" if checks["final"] else "expected the session to go on (mt-cont)"
    if "encoding" in checks and str(checks["encoding"]) != encoding_for(text):
        return f"expected encoding {checks['encoding']}, the screen goes out as {encoding_for(text)}"
    if "calls" in checks:
        return _match_calls(as_list(checks["calls"]), calls)
    return None


def _verify_profile(checks: dict[str, Any], hop: "_Hop") -> str | None:
    if "language" in checks and str(checks["language"]) != hop.saved_language:
        return f"expected the saved language {checks['language']}, it is {hop.saved_language}"
    if "opted_out" in checks and bool(checks["opted_out"]) != bool(hop.opted_out):
        return f"expected opted_out {bool(checks['opted_out'])}, it is {bool(hop.opted_out)}"
    return None


def _match_calls(expected: list[Any], calls: list[_Call]) -> str | None:
    names = [c.name for c in calls]
    wanted = [next(iter(e)) if isinstance(e, dict) else str(e) for e in expected]
    if names != wanted:
        return f"expected the action calls {wanted}, got {names}"
    for item, call in zip(expected, calls):
        if isinstance(item, dict):
            for key, value in (item[call.name] or {}).items():
                if str(call.args.get(key)) != str(value):
                    return f"expected {call.name} to get {key}={value!r}, it got {call.args.get(key)!r}"
    return None


def _indent(text: str) -> str:
    return "\n".join(f"    | {line}" for line in text.split("\n"))


def _report(dialogue: Dialogue, what: str, mark: Mark, failure: str, reply: Reply, lang: str,
            calls: list[_Call]) -> str:
    operation = "mt-fin" if reply.final else "mt-cont"
    seen = (f"screen seen ({lang}, {operation}, encoding {encoding_for(reply.text)}, "
            f"{len(reply.text)} characters):\n{_indent(reply.text)}")
    called = "\n".join(f"    {c}" for c in calls) or "    (none)"
    return f"{mark.file}:{mark.line}: {dialogue.name}: {what}: {failure}\n{seen}\nactions called:\n{called}"


# -- command line ----------------------------------------------------------------------------------

def default_files(project: Path) -> list[Path]:
    """The project's conversation tests: `tests/flows/*.yaml` in the project folder."""
    folder = project / "tests" / "flows"
    return sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])


async def run_files(settings: Settings, files: list[Path], *, keyword: str | None = None,
                    verbose: bool = False) -> int:
    """`alap test`: 0 when every dialogue passes, 1 on a failure, 2 on a malformed file."""
    loaded: list[Dialogue] = []
    broken = False
    for path in files:
        try:
            loaded += load_dialogues(path)
        except (ConvTestError, OSError) as exc:
            print(str(exc))
            broken = True
    chosen = [d for d in loaded if not keyword or keyword.lower() in d.name.lower()]
    runner = Runner(settings)
    failed = 0
    try:
        for dialogue in chosen:
            result = await runner.run(dialogue)
            if not result.ok:
                failed += 1
                print(f"FAIL {dialogue.id}\n{result.failure}\n")
            elif verbose:
                print(f"ok   {dialogue.id}")
    finally:
        await runner.aclose()
    print(f"{len(chosen) - failed} passed, {failed} failed" + (" (some files could not be read)" if broken else ""))
    return 2 if broken else (1 if failed else 0)
