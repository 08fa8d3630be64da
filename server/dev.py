"""`alap dev`: the server and the sandbox fakes in one process, wired together.

This is the only production-side module that imports `server/sandbox/`, and only `alap dev`
imports it.
"""
from __future__ import annotations

from aiohttp import web

from .app import create_app
from .config import Settings
from .sandbox.bdapps import create_bdapps_fake

SANDBOX_APP_ID = "APP_000001"
SANDBOX_PASSWORD = "sandbox"


def dev_settings(settings: Settings) -> Settings:
    """Fill what a newcomer has not configured with sandbox values pointing at this process."""
    base = f"http://127.0.0.1:{settings.port}/sandbox"
    updates = {"bdapps_base_url": f"{base}/bdapps"}
    if not settings.bdapps_app_id:
        updates |= {"bdapps_app_id": SANDBOX_APP_ID, "bdapps_password": SANDBOX_PASSWORD}
    return settings.model_copy(update=updates)


def create_dev_app(settings: Settings) -> web.Application:
    settings = dev_settings(settings)
    app = create_app(settings)
    callback = f"http://127.0.0.1:{settings.port}/bdapps/ussd"
    app.add_subapp("/sandbox/bdapps/", create_bdapps_fake(callback, settings.bdapps_app_id, settings.bdapps_password))
    return app
