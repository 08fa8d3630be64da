""""Did you mean" for unknown names in flows: state targets, fields, validator types and
parameters, actions, outcomes, flows. One home so every message reads the same."""
from __future__ import annotations

import difflib
from typing import Any, Callable, Iterable

from .errors import Mark


def did_you_mean(name: Any, known: Iterable[Any]) -> str:
    """' (did you mean 'x'?)' for the closest known name, or '' when none is close."""
    candidates = [str(k) for k in known]
    close = difflib.get_close_matches(str(name), candidates, n=1, cutoff=0.6)
    if not close:  # short names: a different case or one letter off still deserves a hint
        lowered = {c.lower(): c for c in candidates}
        close = [lowered[str(name).lower()]] if str(name).lower() in lowered else []
    return f" (did you mean '{close[0]}'?)" if close else ""


def reject_unknown_keys(node: Any, allowed: Iterable[str], message: str, add: Callable[[Mark, str], None]) -> None:
    """Report every key of a marked mapping that is not in `allowed`, at the key's line and
    column, with the closest allowed key as a hint. `message` names the key as `{key}`, e.g.
    "unknown option field '{key}'"."""
    allowed = list(allowed)
    for key in node:
        if key not in allowed:
            add(node.mark_of(key), message.format(key=key) + did_you_mean(key, allowed))


def article(word: str) -> str:
    """'an input', 'a menu': the article English puts before `word`."""
    return f"an {word}" if word[:1].lower() in "aeiou" else f"a {word}"
