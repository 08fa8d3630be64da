"""Who may use the console: HTTP Basic (user `admin`, password ALAP_ADMIN_TOKEN) always works; a
login form sets a signed, expiring cookie for browsers. Every comparison is constant-time, failed
attempts are rate-limited per client address and logged without what was tried, and POST forms
carry a CSRF token only the token's holder can compute (plus a same-origin check).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections import deque
from dataclasses import dataclass, field

import structlog
from aiohttp import web

log = structlog.get_logger("alap.admin")

USER = "admin"
COOKIE = "alap_admin"
COOKIE_SECONDS = 12 * 3600
MAX_FAILURES = 5  # failed attempts per client address ...
FAILURE_WINDOW = 300.0  # ... within this many seconds, then every attempt is refused until the window passes


def _mac(key: bytes, message: str) -> str:
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


@dataclass
class AdminAuth:
    token: str
    failures: dict[str, deque] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Separate keys per use, derived from the token: a cookie is not a CSRF token and vice versa.
        secret = self.token.encode()
        self._cookie_key = hashlib.sha256(b"alap-admin-cookie\x00" + secret).digest()
        self._csrf_key = hashlib.sha256(b"alap-admin-csrf\x00" + secret).digest()

    # -- credentials ------------------------------------------------------------------------------
    def password_ok(self, user: str, password: str) -> bool:
        user_ok = hmac.compare_digest(user.encode(), USER.encode())
        password_ok = hmac.compare_digest(password.encode(), self.token.encode())
        return user_ok & password_ok

    def basic(self, request: web.Request) -> bool | None:
        """True/False for a Basic header that is right/wrong; None when there is none."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            user, _, password = base64.b64decode(value.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return self.password_ok(user, password)

    def cookie_value(self, now: float | None = None) -> str:
        expires = int((time.time() if now is None else now) + COOKIE_SECONDS)
        return f"{expires}.{_mac(self._cookie_key, f'{USER}|{expires}')}"

    def cookie_ok(self, request: web.Request) -> bool:
        expires, _, signature = request.cookies.get(COOKIE, "").partition(".")
        if not expires.isdigit() or int(expires) < time.time():
            return False
        return hmac.compare_digest(signature, _mac(self._cookie_key, f"{USER}|{expires}"))

    # -- CSRF ------------------------------------------------------------------------------------
    def csrf_token(self) -> str:
        return _mac(self._csrf_key, "csrf")

    def csrf_ok(self, request: web.Request, submitted: str) -> bool:
        """The form's token, and, when the browser says where the request comes from, this host."""
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return False
        origin = request.headers.get("Origin")
        if origin and origin != "null" and origin.split("://", 1)[-1] != request.host:
            return False
        return hmac.compare_digest(submitted.encode(), self.csrf_token().encode())

    # -- failed attempts -------------------------------------------------------------------------
    def limited(self, client: str, now: float | None = None) -> bool:
        attempts = self.failures.get(client)
        if not attempts:
            return False
        at = time.monotonic() if now is None else now
        while attempts and attempts[0] < at - FAILURE_WINDOW:
            attempts.popleft()
        return len(attempts) >= MAX_FAILURES

    def failed(self, request: web.Request, how: str) -> None:
        """Count a failed attempt and log it: who and how, never what was tried."""
        client = client_address(request)
        self.failures.setdefault(client, deque()).append(time.monotonic())
        if len(self.failures) > 10_000:  # bounded memory under a spray from many addresses
            self.failures.pop(next(iter(self.failures)))
        log.warning("admin_auth_failed", client=client, method=how, path=request.path)


def client_address(request: web.Request) -> str:
    return request.remote or "?"
