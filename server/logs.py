"""structlog set-up: one JSON line per event on stdout (`alap dev` uses a readable console).

Every event passes through `redactor`: subscriber numbers keep only their last 3 digits, and
the configured secrets (passwords, API keys, the REDIS_URL password) are replaced wherever they
appear. Lines that do not come through structlog (aiohttp's and asyncio's error reports,
gunicorn's error log) get the same treatment from `RedactingFilter` on their handlers, so no
line a process writes escapes it.
"""
from __future__ import annotations

import logging
import sys
from typing import Any, Iterable

import msgspec
import structlog

from .msisdn import mask_numbers

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}

class Redactor:
    """A structlog processor; the secrets are set once at start-up from the settings."""

    def __init__(self) -> None:
        self.secrets: list[str] = []

    def set_secrets(self, secrets: Iterable[str | None]) -> None:
        # Short values would mask innocent text; real credentials are longer than 3 characters.
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def clean(self, value: Any) -> Any:
        if isinstance(value, str):
            for secret in self.secrets:
                if secret in value:
                    value = value.replace(secret, "***")
            return mask_numbers(value)
        if isinstance(value, dict):
            return {k: self.clean(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.clean(v) for v in value]
        return value

    def __call__(self, logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        # In place: the event dict is this line's own (structlog copies the bound context into
        # a new one per call), and no copy is one less dict per hop.
        clean = self.clean
        for key, value in event.items():
            if key not in _OWN_FIELDS and isinstance(value, (str, dict, list, tuple)):
                event[key] = clean(value)
        return event


# Fields whose values Alap itself chose (timestamps, levels, flow and state names from the
# loaded flows, the operations a payload was checked against): no number or secret can be in
# them, so the redactor passes them over. Anything else is cleaned, the event too (`alap dev`
# writes free text there).
_OWN_FIELDS = frozenset({"level", "timestamp", "logger", "operation", "reply", "flow", "state", "ended"})


redactor = Redactor()


class RedactingFilter(logging.Filter):
    """A stdlib logging filter (for handlers) that redacts the formatted message and traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what was given, redacted
            message = str(record.msg)
        record.msg, record.args = redactor.clean(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.clean(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor.clean(record.stack_info)
        return True


def redact_handlers(logger: logging.Logger) -> None:
    """Put the RedactingFilter on every handler of `logger` (once)."""
    for handler in logger.handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())
_encoder = msgspec.json.Encoder()


def _json_line(event: dict[str, Any], **_: Any) -> str:
    """msgspec encodes a log line several times faster than json.dumps (one line per hop)."""
    try:
        return _encoder.encode(event).decode()
    except (TypeError, msgspec.EncodeError):  # an odd value: fall back to its repr
        return _encoder.encode({k: v if isinstance(v, (str, int, float, bool, type(None), list, dict))
                                else repr(v) for k, v in event.items()}).decode()


def setup_logging(level: str = "info", *, json: bool = True, secrets: Iterable[str | None] = ()) -> None:
    numeric = _LEVELS.get(level, logging.INFO)
    logging.basicConfig(level=numeric, stream=sys.stdout, format="%(message)s")
    redact_handlers(logging.getLogger())
    # httpx logs full URLs at INFO, and some upstreams take credentials in the query string.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    redactor.set_secrets(secrets)
    renderer = (structlog.processors.JSONRenderer(serializer=_json_line) if json
                else structlog.dev.ConsoleRenderer(colors=False))
    structlog.configure(
        processors=[
            # No structlog.contextvars.merge_contextvars: nothing binds context variables, and it
            # would copy the context into every line (one per hop).
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redactor,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        # One write per line (PrintLogger writes the line and its newline apart: two system calls).
        logger_factory=structlog.WriteLoggerFactory(sys.stdout),
        cache_logger_on_first_use=True,
    )
