"""One `transitions` machine per flow, built at load time; a turn binds its data to the
machine's model, fires one trigger and unbinds. The machine owns the flow's edges and their
conditions:

    choose   menu -> option target      (condition: the chosen option's index)
    submit   input -> next              (the engine validated the input first)
    fail     input -> on_fail           (retry limit reached)
    route    router -> first route whose `when` holds
    outcome  action -> outcomes[outcome], else fallback
    home     any state -> start
    more     menu/input -> its `more` target (98 past the engine's own pages)
    back     menu/input -> its `back` target (0 on the engine's first page)

Why one resident model instead of `add_model`/`remove_model` per turn: attaching a model makes
transitions bind a method per event and per state (measured 45 us per fire on the 17-state demo
flow, more than the rest of the engine turn). Binding the turn's data to a model attached once
costs about a microsecond. It is safe under asyncio because `fire` never awaits: no other turn
can run between binding and unbinding.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, Mapping

from transitions import EventData, Machine

from .model import Flow

# transitions logs every state change at INFO: too chatty (and too slow) for the hop path.
logging.getLogger("transitions").setLevel(logging.WARNING)


class TurnModel:
    """The light model a turn binds to the machine: the state plus what the conditions read."""

    def __init__(self) -> None:
        self.state: str = ""
        self.context: Mapping[str, Any] = {}
        self.choice: int | None = None
        self.outcome: str | None = None


def _chosen(index: int) -> Callable[[EventData], bool]:
    return lambda event: event.model.choice == index


def _outcome_is(name: str) -> Callable[[EventData], bool]:
    return lambda event: event.model.outcome == name


class FlowMachine:
    def __init__(self, flow: Flow, evaluate: Callable[[str, Mapping[str, Any]], Any]) -> None:
        self.flow = flow
        self._evaluate = evaluate
        # Jumps to other flows ("@flow") are pseudo-states here; the engine switches machines.
        jumps = sorted({t for state in flow.states.values() for t in state.targets() if t.startswith("@")})
        self.machine = Machine(
            model=None, states=list(flow.states) + jumps, initial=flow.start, auto_transitions=False,
            send_event=True, ignore_invalid_triggers=False, queued=False,
        )
        add = self.machine.add_transition
        for state in flow.states.values():
            for option in state.options:
                add("choose", state.name, option.next, conditions=[_chosen(option.index)])
            if state.kind == "input":
                add("submit", state.name, state.next)
                if state.on_fail:
                    add("fail", state.name, state.on_fail)
            for route in state.routes:
                conditions = [self._holds(route.when)] if route.when else []
                add("route", state.name, route.next, conditions=conditions)
            if state.kind == "action":
                for outcome, target in state.outcomes.items():
                    add("outcome", state.name, target, conditions=[_outcome_is(outcome)])
                add("outcome", state.name, state.fallback)
            for trigger in ("more", "back"):
                paging = getattr(state, trigger)
                if paging is not None:
                    add(trigger, state.name, paging.next, conditions=[self._holds(paging.when)] if paging.when else [])
        add("home", "*", flow.start)
        self._model = TurnModel()
        self.machine.add_model(self._model, initial=flow.start)

    def _holds(self, expr: str) -> Callable[[EventData], bool]:
        return lambda event: bool(self._evaluate(expr, event.model.context))

    def fire(self, trigger: str, state: str, context: Mapping[str, Any], *,
             choice: int | None = None, outcome: str | None = None) -> str | None:
        """Fire `trigger` from `state`; returns the new state, or None when no transition's
        conditions held."""
        model = self._model
        model.state, model.context, model.choice, model.outcome = state, context, choice, outcome
        try:
            moved = model.trigger(trigger)  # type: ignore[attr-defined]
            return model.state if moved else None
        finally:
            model.context, model.choice, model.outcome = {}, None, None
