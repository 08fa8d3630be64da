"""The registry through which flows call named async actions.

The engine knows only this interface; `server/actions/` registers the real operations (and
tests register canned ones). An action returns an outcome name that the flow branches on.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Iterable, Mapping


@dataclass(frozen=True)
class ActionContext:
    session_id: str
    address: str  # the subscriber address exactly as the gateway gave it (may be masked)
    msisdn: str | None  # 01XXXXXXXXX when the address is a real number, else None
    language: str
    vars: Mapping[str, Any]
    args: Mapping[str, Any]
    channel: str = "ussd"


@dataclass
class ActionResult:
    outcome: str = "ok"
    vars: dict[str, Any] = field(default_factory=dict)
    language: str | None = None  # set to change the subscriber's saved language
    opted_out: bool | None = None  # set to record an SMS opt-out (True) or opt-in (False)


ActionFn = Callable[[ActionContext], Awaitable[ActionResult]]


@dataclass(frozen=True)
class ActionSpec:
    name: str
    fn: ActionFn
    outcomes: frozenset[str]
    description: str = ""
    # The `args` it reads; a flow passing any other is an error at load. None: not declared
    # (any args pass, e.g. `vars.set`, whose args are the variables it sets).
    params: frozenset[str] | None = None


class ActionRegistry:
    def __init__(self) -> None:
        self._specs: dict[str, ActionSpec] = {}

    def register(self, name: str, fn: ActionFn, outcomes: Iterable[str] = ("ok",), description: str = "",
                 params: Iterable[str] | None = None) -> None:
        self._specs[name] = ActionSpec(name, fn, frozenset(outcomes), description,
                                       None if params is None else frozenset(params))

    def action(self, name: str, outcomes: Iterable[str] = ("ok",),
               params: Iterable[str] | None = None) -> Callable[[ActionFn], ActionFn]:
        """Decorator form of `register`."""

        def wrap(fn: ActionFn) -> ActionFn:
            self.register(name, fn, outcomes, (fn.__doc__ or "").strip().split("\n")[0], params)
            return fn

        return wrap

    def get(self, name: str) -> ActionSpec | None:
        return self._specs.get(name)

    def names(self) -> list[str]:
        return sorted(self._specs)

    def merged(self, other: "ActionRegistry") -> "ActionRegistry":
        out = ActionRegistry()
        out._specs = {**self._specs, **other._specs}
        return out
