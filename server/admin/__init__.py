"""The operator console (`/admin`): each flow's funnel as a picture, the recharge ledger, a
subscriber's profile and live session. Off (404) unless ALAP_ADMIN_TOKEN is set.

Also serves the shipped Bengali web font at `/fonts/` (server/fonts/, SIL OFL), for the console
and the web simulator: Bengali renders on machines without Bengali system fonts."""
from __future__ import annotations

from pathlib import Path

from aiohttp import web

from ..store import Store
from ..store.ledger import Ledger
from .auth import AdminAuth
from .routes import CONSOLE, Console, add_console_routes

FONTS_DIR = Path(__file__).parent.parent / "fonts"


def add_admin(app: web.Application, token: str | None, store: Store, ledger: Ledger) -> None:
    app.router.add_static("/fonts/", FONTS_DIR)
    if not token:
        return  # no routes: every /admin page is a 404
    app[CONSOLE] = Console(AdminAuth(token), store, ledger)
    add_console_routes(app)


__all__ = ["add_admin"]
