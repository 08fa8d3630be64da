"""The flow model: what a YAML flow file says, parsed and checked, independent of any session."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from .errors import Mark
from .validators import Validator

Kind = Literal["menu", "input", "router", "action", "end"]
SCREEN_KINDS = ("menu", "input", "end")
KINDS = ("menu", "input", "router", "action", "end")


@dataclass(frozen=True)
class Text:
    """A user-facing text: inline Jinja source (also the gettext msgid) or a template file."""

    mark: Mark
    source: str | None = None
    template: str | None = None


@dataclass(frozen=True)
class Option:
    index: int  # position in the YAML list; stable across renders
    label: Text
    next: str
    mark: Mark
    key: str | None = None  # explicit key; None = numbered among the visible options
    when: str | None = None
    set: tuple[tuple[str, Any], ...] = ()  # session variables this choice sets (values may be Jinja)


@dataclass(frozen=True)
class Route:
    next: str
    mark: Mark
    when: str | None = None  # None = always (the default branch)


@dataclass
class State:
    name: str
    kind: Kind
    mark: Mark
    text: Text | None = None
    pages: int | None = None  # the pages the screen is meant to take; `alap check` warns beyond
    options: list[Option] = field(default_factory=list)
    # input
    var: str | None = None
    validator: Validator | None = None
    error: Text | None = None
    retries: int = 3
    on_fail: str | None = None
    # input / next for plain continuation
    next: str | None = None
    # router
    routes: list[Route] = field(default_factory=list)
    # action
    action: str | None = None
    args: dict[str, Any] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    fallback: str | None = None
    timeout: float = 3.0
    save_as: str | None = None
    # menu / input: where the navigation keys `more` (98) and `back` (0) go when the engine has
    # no page of its own to turn to: an action's list paged by the flow (docs/flows.md)
    more: Route | None = None
    back: Route | None = None
    # `resume: false`: a call dropped on this screen is not offered to continue (bdapps/resume.py)
    resume: bool = True
    # marks of referenced names, for error reporting
    ref_marks: dict[str, Mark] = field(default_factory=dict)

    def targets(self) -> list[str]:
        """Every state this one can lead to."""
        out = [o.next for o in self.options] + [r.next for r in self.routes]
        out += list(self.outcomes.values())
        out += [t for t in (self.next, self.fallback, self.on_fail) if t]
        out += [r.next for r in (self.more, self.back) if r]
        return out


@dataclass(frozen=True)
class Navigation:
    back: str = "0"
    home: str = "00"
    more: str = "98"


@dataclass
class Flow:
    name: str
    file: str
    start: str
    states: dict[str, State]
    codes: tuple[str, ...] = ()
    default: bool = False
    channels: tuple[str, ...] = ("ussd",)
    keywords: tuple[str, ...] = ()  # SMS: a message whose first word is one of these starts the flow
    interrupt: bool = False  # SMS: its keywords win over an open SMS conversation (STOP, HELP)
    sms_default: bool = False  # SMS: answers messages with no known keyword (var `unknown`)
    navigation: Navigation = field(default_factory=Navigation)
    sample: dict[str, Any] = field(default_factory=dict)
    sample_marks: dict[str, Mark] = field(default_factory=dict)  # where each `sample:` key is written
    mark: Mark | None = None
    resume: bool = True  # `resume: false`: no screen of this flow is offered to continue
    yaml: str = ""  # the file's text as loaded: part of the flow's version (engine/versions.py)
